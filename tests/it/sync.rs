//! `ftguard sync` and `jobs` against the simulator, as a user runs them.

use crate::common::*;

/// `show --json`'s status history as (from, to) pairs.
fn history_pairs(shown: &serde_json::Value) -> Vec<(serde_json::Value, serde_json::Value)> {
    shown["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["from"].clone(), t["to"].clone()))
        .collect()
}

#[tokio::test]
async fn syncs_250_jobs_over_3_pages_and_shows_them_as_the_api_does() {
    let now = now();
    let statuses = [
        "validating_files",
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ];
    let jobs: Vec<SimJob> = (0..250)
        .map(|i| {
            SimJob::in_status(
                &format!("ftjob-{i:04}"),
                statuses[i % statuses.len()],
                60 + i as i64 * 37,
                now,
            )
        })
        .collect();
    let (sim, env) = sim_env(jobs).await;

    let out = env.ok(&["sync"]).await;
    assert!(out.contains("250 jobs in 3 pages"), "{out}");
    let lists = hits(&sim, "/fine_tuning/jobs");
    assert_eq!(lists, 3);

    let stored = env.json(&["jobs", "--json"]).await;
    assert_eq!(stored.as_array().unwrap().len(), 250);
    // Compare every job with what the API says about it now.
    let http = reqwest::Client::new();
    for i in [0usize, 1, 2, 3, 4, 5, 99, 100, 101, 249] {
        let id = format!("ftjob-{i:04}");
        let api: serde_json::Value = http
            .get(format!("{}/fine_tuning/jobs/{id}", sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mine = by_id(&stored, "id", &id);
        assert_eq!(mine.len(), 1, "{id}");
        for field in [
            "status",
            "model",
            "created_at",
            "finished_at",
            "trained_tokens",
            "training_file",
            "metadata",
        ] {
            assert_eq!(mine[0][field], api[field], "{id} {field}");
        }
        assert_eq!(mine[0]["account"], "sim");
    }
    // Filters.
    let running = env.json(&["jobs", "--json", "--status", "running"]).await;
    assert!(
        running
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] == "running")
    );
    assert_eq!(
        running.as_array().unwrap().len(),
        250 / 6 + usize::from(250 % 6 > 2)
    );
}

#[tokio::test]
async fn a_cursor_that_does_not_advance_stops_with_a_warning() {
    let now = now();
    let jobs: Vec<SimJob> = (0..150)
        .map(|i| SimJob::in_status(&format!("ftjob-{i:03}"), "succeeded", 100 + i, now))
        .collect();
    let sim = Sim::start(jobs).await.unwrap();
    sim.set_stuck_cursor(true);
    let env = Env::new();
    env.sim_config(&sim, "", "");
    let out = env.ok(&["sync"]).await;
    assert!(out.contains("cursor did not advance"), "{out}");
    let lists = hits(&sim, "/fine_tuning/jobs");
    assert_eq!(
        lists, 2,
        "one page, then the repeated page reveals the stuck cursor"
    );
}

#[tokio::test]
async fn max_pages_bounds_an_endless_has_more() {
    let now = now();
    let jobs: Vec<SimJob> = (0..450)
        .map(|i| SimJob::in_status(&format!("ftjob-{i:03}"), "succeeded", 100 + i, now))
        .collect();
    let sim = Sim::start(jobs).await.unwrap();
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"sim\"\nbase_url = \"{}\"\nmax_pages = 2\n",
            sim.base_url()
        ),
    );
    let out = env.ok(&["sync"]).await;
    assert!(out.contains("max_pages = 2"), "{out}");
    assert_eq!(
        env.json(&["jobs", "--json"])
            .await
            .as_array()
            .unwrap()
            .len(),
        200
    );
}

#[tokio::test]
async fn one_failing_account_does_not_stop_the_others() {
    let now = now();
    let sim = Sim::start(vec![SimJob::in_status("ftjob-a", "running", 60, now)])
        .await
        .unwrap();
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"good\"\nbase_url = \"{}\"\n\n[[accounts]]\nname = \"down\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmax_attempts = 1\nconnect_timeout = \"1s\"\n",
            sim.base_url()
        ),
    );
    let out = env.run(&["sync"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("good: 1 job in 1 page,"), "{text}");
    assert!(
        text.contains("down: FAILED") && text.contains("could not connect"),
        "{text}"
    );

    // One account alone: the other is not asked.
    let out = env.run(&["sync", "--account", "good", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(v[0]["account"], "good");
    let out = env.run(&["sync", "--account", "down"]).await;
    assert!(!out.status.success() && !stdout(&out).contains("good:"));
    let out = env.run(&["sync", "--account", "nope"]).await;
    assert!(
        !out.status.success()
            && stderr(&out)
                .contains("--account \"nope\" is not configured (configured: good, down)"),
        "{}",
        stderr(&out)
    );

    // Another account's credentials are not needed to sync the one named.
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"good\"\nbase_url = \"{}\"\n\n[[accounts]]\nname = \"locked\"\nbearer_token = {{ env = \"FT_TEST_NOT_HERE\" }}\n",
            sim.base_url()
        ),
    );
    let all = env.run(&["sync"]).await;
    assert!(
        !all.status.success() && stderr(&all).contains("FT_TEST_NOT_HERE"),
        "{}",
        stderr(&all)
    );
    let out = env.run(&["sync", "--account", "good"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("good: 1 job in 1 page"),
        "{}",
        stdout(&out)
    );
    let out = env.run(&["sync", "--account", "locked"]).await;
    assert!(
        !out.status.success()
            && stderr(&out).contains(
                "accounts[1]: account \"locked\": bearer_token: environment variable FT_TEST_NOT_HERE is not set"
            ),
        "{}",
        stderr(&out)
    );

    // All accounts failing is a failure.
    env.write_config(
        "",
        "[[accounts]]\nname = \"down\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmax_attempts = 1\n",
    );
    assert!(!env.run(&["sync"]).await.status.success());
}

#[tokio::test]
async fn status_changes_are_recorded_as_history() {
    let now = now();
    let sim = Sim::start(vec![SimJob::in_status("ftjob-h", "queued", 60, now)])
        .await
        .unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", "");
    env.ok(&["sync"]).await;
    sim.set_status("ftjob-h", "running");
    env.ok(&["sync"]).await;
    sim.set_status("ftjob-h", "succeeded");
    env.ok(&["sync"]).await;
    let shown = env.json(&["show", "ftjob-h", "--json"]).await;
    let hist = history_pairs(&shown);
    assert_eq!(
        hist,
        vec![
            (serde_json::Value::Null, "queued".into()),
            ("queued".into(), "running".into()),
            ("running".into(), "succeeded".into())
        ]
    );
    let unknown = env.run(&["show", "ftjob-nope"]).await;
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("ftjob-nope"),
        "{}",
        stderr(&unknown)
    );
}

#[tokio::test]
async fn accounts_syncing_at_once_do_not_trip_over_the_database() {
    let now = now();
    let jobs: Vec<SimJob> = (0..400)
        .map(|i| SimJob::in_status(&format!("ftjob-{i:03}"), "running", 100 + i, now))
        .collect();
    let sim = Sim::start(jobs).await.unwrap();
    let env = Env::new();
    let accounts: String = (0..4)
        .map(|i| {
            format!(
                "[[accounts]]\nname = \"a{i}\"\nbase_url = \"{}\"\n\n",
                sim.base_url()
            )
        })
        .collect();
    env.write_config("", &accounts);
    for _ in 0..3 {
        let out = env.ok(&["sync"]).await;
        assert_eq!(out.matches("400 jobs in 4 pages").count(), 4, "{out}");
    }
    assert_eq!(
        env.json(&["jobs", "--json"])
            .await
            .as_array()
            .unwrap()
            .len(),
        1600
    );
}

#[tokio::test]
async fn a_job_repeated_within_a_page_is_stored_once() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let job =
        serde_json::json!({"id": "ftjob-dup", "model": "m", "status": "running", "created_at": 1});
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"object": "list", "data": [job.clone(), job], "has_more": false}),
        ))
        .mount(&server)
        .await;
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"w\"\nbase_url = \"{}/v1\"\n",
            server.uri()
        ),
    );
    env.ok(&["sync"]).await;
    assert_eq!(
        env.json(&["jobs", "--json"])
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_long_listing_reports_its_progress() {
    let now = now();
    let jobs: Vec<SimJob> = (0..450u64)
        .map(|i| {
            SimJob::in_status(
                &ftguard::sim::history_id(i),
                "succeeded",
                60 + i as i64,
                now,
            )
        })
        .collect();
    let sim = Sim::start(jobs).await.unwrap();
    // 5 pages at 1.3 s each: past the 5 s progress interval once, before the last page.
    sim.set_latency(std::time::Duration::from_millis(1300));
    let env = Env::new();
    env.sim_config(&sim, "", "");
    let out = env.run(&["sync"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    let progress: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("still listing jobs"))
        .collect();
    assert_eq!(progress.len(), 1, "{log}");
    assert!(
        progress[0].contains("pages=4") && progress[0].contains("jobs=400"),
        "{log}"
    );
    assert!(stdout(&out).contains("450 jobs in 5 pages"));
}

#[tokio::test]
async fn a_job_the_api_no_longer_knows_is_marked_gone_and_left_alone() {
    // Over its 1h limit; then the provider forgets it (deleted, or the key now points at
    // another project).
    let now = now();
    let mut jobs: Vec<SimJob> = (0..150)
        .map(|i| SimJob::in_status(&format!("ftjob-old-{i:03}"), "succeeded", 10 * H + i, now))
        .collect();
    let vanishing = SimJob::in_status("ftjob-vanish", "running", 2 * H, now);
    jobs.push(vanishing.clone());
    jobs.push(SimJob::in_status("ftjob-fresh", "running", 60, now));
    let sim = Sim::start(jobs).await.unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"1h\"\naction = \"notify\"\n",
    );
    env.ok(&["sync"]).await;
    sim.remove_job("ftjob-vanish");
    let retrieves = || hits(&sim, "/fine_tuning/jobs/ftjob-vanish");

    let out = env.ok(&["sync"]).await;
    assert!(
        out.contains("1 active job unknown to the API marked gone")
            && out.contains("ftjob-vanish is unknown to the API (404)"),
        "{out}"
    );
    assert_eq!(retrieves(), 1);
    let listed = env.json(&["jobs", "--json"]).await;
    let gone = by_id(&listed, "id", "ftjob-vanish")[0];
    assert!(gone["gone_at"].as_i64().is_some(), "{gone}");
    assert_eq!(
        gone["status"], "running",
        "the last status the API gave is kept"
    );
    assert!(env.ok(&["jobs"]).await.contains("gone (was running)"));
    // Active: the jobs still watched, not the gone one (whose last status was running).
    let active = env.json(&["jobs", "--status", "active", "--json"]).await;
    let ids: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ftjob-fresh"], "{active}");
    let only_gone = env.json(&["jobs", "--status", "gone", "--json"]).await;
    assert_eq!(only_gone.as_array().unwrap().len(), 1, "{only_gone}");
    assert_eq!(only_gone[0]["id"], "ftjob-vanish");
    // Counted as gone, not as running (what /metrics reports per status too).
    let none = env.ok(&["jobs", "--status", "paused"]).await;
    assert!(
        none.contains("stored statuses: gone, running, succeeded"),
        "{none}"
    );
    let shown = env.ok(&["show", "ftjob-vanish"]).await;
    assert!(shown.contains("no longer watched"), "{shown}");
    // Its cost is not counted in a period's spend: only ftjob-fresh's (unknown) is.
    let spend = env.json(&["spend", "--json"]).await;
    assert_eq!(spend[0]["unknown_cost_jobs"], 1, "{spend}");

    // From then on: not asked about, not decided on, not an active job, and the incremental
    // listing no longer pages down to it (one page, not two).
    let lists = hits(&sim, "/fine_tuning/jobs");
    let out = env.ok(&["run", "--once"]).await;
    assert_eq!(retrieves(), 1, "{out}");
    assert_eq!(hits(&sim, "/fine_tuning/jobs") - lists, 1, "{out}");
    assert!(!out.contains("ftjob-vanish"), "{out}");
    assert!(out.contains("1 active"), "{out}");
    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(actions, serde_json::json!([]));

    // If the API shows it again, it is watched again.
    sim.add_job(vanishing);
    env.ok(&["sync", "--full"]).await;
    let listed = env.json(&["jobs", "--json"]).await;
    assert!(by_id(&listed, "id", "ftjob-vanish")[0]["gone_at"].is_null());
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("ftjob-vanish"), "{out}");
}

/// Time limits are measured with this machine's clock against the API's timestamps: a drifted
/// clock is said by `sync` (text and JSON) and `config check --online`, from the `Date` header.
#[tokio::test]
async fn a_clock_far_from_the_apis_is_said_with_what_it_means() {
    let (sim, env) = sim_env(vec![SimJob::in_status("ftjob-a", "running", 600, now())]).await;

    // In step: no warning; the offset is in the JSON summary.
    let synced = env.json(&["sync", "--json"]).await;
    let offset = synced[0]["summary"]["clock_offset_secs"].as_i64().unwrap();
    assert!(offset.abs() <= 1, "{synced:#}");
    let out = env.ok(&["config", "check", "--online"]).await;
    assert!(out.contains("sim: clock agrees with the API's"), "{out}");

    // The API 10 minutes ahead: this machine's clock is behind, limits would be reached late.
    sim.advance(600);
    let run = env.run(&["sync"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    let text = stdout(&run);
    // 10m, give or take the second the header is rounded to.
    assert!(
        ["10m", "9m 59s", "10m 1s"]
            .iter()
            .any(|by| text.contains(&format!(
                "warning: this machine's clock is {by} behind the API's"
            ))),
        "{text}"
    );
    assert!(text.contains("acted on about"), "{text}");
    assert!(
        stderr(&run).contains("timedatectl"),
        "logged too: {}",
        stderr(&run)
    );
    let synced = env.json(&["sync", "--json"]).await;
    let offset = synced[0]["summary"]["clock_offset_secs"].as_i64().unwrap();
    assert!((599..=601).contains(&offset), "{synced:#}");
    assert!(
        synced[0]["summary"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("behind the API's"),
        "{synced:#}"
    );
    let out = env.ok(&["config", "check", "--online"]).await;
    assert!(
        out.contains("sim: warning: this machine's clock is"),
        "{out}"
    );
}

/// Jobs are keyed by (account, created_at, id): a stored job the API lists again under another
/// created_at (a gateway reporting times differently) must stay one job, with its history, not
/// become a stale running twin that policies would act on.
#[tokio::test]
async fn a_job_listed_with_another_created_at_stays_one_job() {
    let now = now();
    let (sim, env) = sim_env(vec![
        SimJob::in_status("ftjob-moved", "running", 2 * H, now),
        SimJob::in_status("ftjob-other", "succeeded", 3 * H, now),
    ])
    .await;
    env.ok(&["sync"]).await;

    sim.remove_job("ftjob-moved");
    sim.add_job(SimJob::in_status(
        "ftjob-moved",
        "succeeded",
        2 * H + 7,
        now,
    ));
    let run = env.run(&["sync", "--json"]).await;
    assert!(run.status.success(), "{}", stderr(&run));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&run)).unwrap();
    let s = &summary[0]["summary"];
    assert_eq!(s["new"], 0, "{summary:#}");
    assert!(
        s["warnings"][0]
            .as_str()
            .unwrap()
            .contains("ftjob-moved with created_at"),
        "{summary:#}"
    );

    let jobs = env.json(&["jobs", "--json"]).await;
    let moved = by_id(&jobs, "id", "ftjob-moved");
    assert_eq!(moved.len(), 1, "{jobs:#}");
    assert_eq!(moved[0]["status"], "succeeded");
    assert_eq!(moved[0]["created_at"], now - 2 * H - 7);
    let shown = env.json(&["show", "ftjob-moved", "--json"]).await;
    let history = history_pairs(&shown);
    assert_eq!(
        history,
        [
            (serde_json::Value::Null, "running".into()),
            ("running".into(), "succeeded".into())
        ],
        "{shown:#}"
    );
    // Nothing is left active to retrieve or act on.
    let active = env.json(&["jobs", "--status", "active", "--json"]).await;
    assert_eq!(active.as_array().unwrap().len(), 0, "{active:#}");
}

/// Pages are fetched ahead of the writing, but only a few: when the store refuses a page the
/// sync fails naming the database and the cause, keeps the pages written before it, and stops
/// listing instead of fetching the whole history for nothing.
#[tokio::test]
async fn a_page_the_store_refuses_stops_the_listing_and_keeps_the_pages_before() {
    let now = now();
    let jobs: Vec<SimJob> = (0..2_000)
        .map(|i| SimJob::in_status(&format!("ftjob-{i:04}"), "succeeded", 60 + i as i64, now))
        .collect();
    let (sim, env) = sim_env(jobs).await;
    // An existing database whose jobs table refuses the first job of the fifth page, and
    // writes the fourth slowly: time enough for the listing to run as far ahead as it would.
    ftguard::store::Store::open(&env.db())
        .await
        .unwrap()
        .close()
        .await;
    sqlite3(
        &env.db(),
        "CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN NEW.id = 'ftjob-0400'
         BEGIN SELECT RAISE(ABORT, 'the disk says no'); END;
         CREATE TRIGGER slow BEFORE INSERT ON jobs WHEN NEW.id LIKE 'ftjob-03%'
         BEGIN SELECT COUNT(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) SELECT x FROM c); END;",
    );

    let run = env.run(&["sync"]).await;
    assert!(!run.status.success());
    let err = stderr(&run);
    assert!(err.contains("the disk says no"), "{err}");
    assert!(err.contains(&env.db().display().to_string()), "{err}");
    assert_eq!(sqlite3(&env.db(), "SELECT COUNT(*) FROM jobs"), "400");
    // Page 5 failed; at most a handful of pages were fetched past it, not all 20.
    let lists = hits(&sim, "/fine_tuning/jobs");
    assert!((5..=10).contains(&lists), "{lists} pages fetched");
}
