//! Webhook notifications: grace warnings and cancels reach the webhook in both formats;
//! a failing webhook never blocks enforcement.

use crate::common::*;
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn received(server: &MockServer, n: usize) -> Vec<serde_json::Value> {
    // Generous: returns as soon as n have arrived; a loaded CI machine may be slow.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reqs = server.received_requests().await.unwrap_or_default();
        if reqs.len() >= n || Instant::now() > deadline {
            return reqs
                .iter()
                .map(|r| serde_json::from_slice(&r.body).unwrap())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cancels_and_warnings_are_sent_as_json_and_slack() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-cancel", "running", 7 * H, now()),
        SimJob::in_status("ftjob-warn", "queued", 3 * H, now()),
    ])
    .await
    .unwrap();
    let env = Env::new();
    let url_file = env.dir.path().join("hook-url");
    std::fs::write(&url_file, format!("{}/hook", hook.uri())).unwrap();
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n\n[[policies]]\nname = \"q\"\nkind = \"max_queue_time\"\nlimit = \"2h\"\ngrace = \"1h\"\n\n[[notifiers]]\nurl = { file = \"URL\" }\n\n[[notifiers]]\nurl = { file = \"URL\" }\nformat = \"slack\"\n"
            .replace("URL", url_file.to_str().unwrap())
            .as_str(),
    );
    let app = env.app().await;
    app.sync().await;
    app.enforce(&app.config().policies).await.unwrap();
    let bodies = received(&hook, 4).await;
    assert_eq!(bodies.len(), 4, "{bodies:#?}");
    let json: Vec<_> = bodies.iter().filter(|b| b.get("event").is_some()).collect();
    let slack: Vec<_> = bodies.iter().filter(|b| b.get("text").is_some()).collect();
    assert_eq!((json.len(), slack.len()), (2, 2));
    let events: Vec<(&str, &str)> = json
        .iter()
        .map(|b| (b["event"].as_str().unwrap(), b["job_id"].as_str().unwrap()))
        .collect();
    assert!(
        events.contains(&("cancelled", "ftjob-cancel")),
        "{events:?}"
    );
    assert!(
        events.contains(&("grace_warning", "ftjob-warn")),
        "{events:?}"
    );
    // The cancel's notice says what the API answered: the job's status and what it trained
    // (hence billed) before it stopped; the warning has no answer to tell.
    let cancelled = json.iter().find(|b| b["event"] == "cancelled").unwrap();
    let stored = app.store().job(Some("sim"), "ftjob-cancel").await.unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["trained_tokens"].as_i64(),
        stored[0].job.trained_tokens,
        "{cancelled}"
    );
    assert!(
        cancelled["trained_tokens"].as_i64().unwrap() > 0,
        "{cancelled}"
    );
    let warned = json.iter().find(|b| b["event"] == "grace_warning").unwrap();
    assert!(
        warned.get("status").is_none() && warned.get("trained_tokens").is_none(),
        "{warned}"
    );
    let line = slack
        .iter()
        .map(|b| b["text"].as_str().unwrap())
        .find(|t| t.contains("ftjob-cancel"))
        .unwrap();
    assert!(
        line.starts_with(
            "ftguard: cancelled sim job ftjob-cancel (policy rt): ran 7h00m > 6h (now cancelled, "
        ) && line.ends_with(" tokens trained)"),
        "{line}"
    );
}

#[tokio::test]
async fn a_dead_webhook_does_not_block_enforcement() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())])
        .await
        .unwrap();
    let env = Env::new().env("FT_TEST_HOOK", "http://127.0.0.1:9/hook");
    env.sim_config(&sim, "", "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n\n[[notifiers]]\nurl = { env = \"FT_TEST_HOOK\" }\n");
    let t = Instant::now();
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("cancelled sim ftjob-1"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_account_that_stops_syncing_is_notified_once_and_so_is_its_recovery() {
    let (hook, sim, env) = account_synced_every_second().await;
    // The API refuses the first six listings: six seconds of syncs once a second, twice the
    // three intervals tolerated.
    for _ in 0..6 {
        sim.fault(Endpoint::List, Fault::Status(401));
    }
    let started = Instant::now();
    let mut daemon = env.daemon();
    let bodies = received(&hook, 2).await;
    let elapsed = started.elapsed();
    let events: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| (b["event"].as_str().unwrap(), b["account"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [("sync_failing", "sim"), ("sync_recovered", "sim")],
        "{bodies:#?}"
    );
    assert!(
        bodies[0]["reason"]
            .as_str()
            .unwrap()
            .contains("last error: account \"sim\": GET /fine_tuning/jobs returned 401"),
        "{bodies:#?}"
    );
    assert!(bodies[0].get("policy").is_none(), "{bodies:#?}");
    assert!(
        elapsed >= Duration::from_secs(5),
        "recovered after {elapsed:?}"
    );
    // Nothing more while it keeps syncing: two more syncs go by.
    let lists = hits(&sim, "/fine_tuning/jobs");
    wait_until(Duration::from_secs(15), "two more syncs", || {
        (hits(&sim, "/fine_tuning/jobs") >= lists + 2).then_some(())
    })
    .await;
    daemon.kill().await.ok();
    assert_eq!(hook.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_restarted_daemon_remembers_since_when_an_account_fails() {
    let (hook, sim, env) = account_synced_every_second().await;
    // A sync that failed before the daemon (re)started, longer ago than three intervals.
    sim.fault(Endpoint::List, Fault::Status(503));
    assert!(!env.run(&["sync"]).await.status.success());
    tokio::time::sleep(Duration::from_millis(3200)).await;
    // Still failing at start, for one more sync only: said at once (a daemon counting from
    // its own start would see one failure and say nothing), then its recovery.
    sim.fault(Endpoint::List, Fault::Status(503));
    let mut daemon = env.daemon();
    let bodies = received(&hook, 2).await;
    daemon.kill().await.ok();
    let events: Vec<&str> = bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["sync_failing", "sync_recovered"], "{bodies:#?}");
    assert!(
        bodies[0]["reason"].as_str().unwrap().contains("503"),
        "{bodies:#?}"
    );
}

#[tokio::test]
async fn an_outage_said_before_a_restart_is_not_said_again() {
    let (hook, sim, env) = account_synced_every_second().await;
    for _ in 0..8 {
        sim.fault(Endpoint::List, Fault::Status(401));
    }
    let mut first = env.daemon();
    received(&hook, 1).await;
    first.kill().await.ok();
    // Still failing when it comes back (the faults left), then synced again.
    let mut second = env.daemon();
    let bodies = received(&hook, 2).await;
    // Nothing more while it keeps syncing: two more syncs go by.
    let lists = hits(&sim, "/fine_tuning/jobs");
    wait_until(Duration::from_secs(15), "two more syncs", || {
        (hits(&sim, "/fine_tuning/jobs") >= lists + 2).then_some(())
    })
    .await;
    second.kill().await.ok();
    let events: Vec<String> = events(&hook).await;
    assert_eq!(
        events,
        ["\"sync_failing\"", "\"sync_recovered\""],
        "{bodies:#?}"
    );
}

#[tokio::test]
async fn run_once_from_a_timer_says_an_outage_once_and_its_end() {
    let (hook, sim, env) = account_synced_every_second().await;
    // Three runs fail: the first starts the outage, the second (past three sync intervals)
    // says it, the third stays quiet; the fourth syncs again.
    sim.fault(Endpoint::List, Fault::Status(401));
    env.run(&["run", "--once"]).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    for _ in 0..2 {
        sim.fault(Endpoint::List, Fault::Status(401));
        env.run(&["run", "--once"]).await;
    }
    assert_eq!(events(&hook).await, ["\"sync_failing\""]);
    env.ok(&["run", "--once"]).await;
    assert_eq!(
        events(&hook).await,
        ["\"sync_failing\"", "\"sync_recovered\""]
    );
}

/// A webhook, the simulator with one running job, and a configuration syncing it every second
/// with one attempt per sync (so each queued fault fails exactly one sync).
async fn account_synced_every_second() -> (MockServer, Sim, Env) {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", H, now())])
        .await
        .unwrap();
    let env = Env::new().env("FT_TEST_HOOK", &format!("{}/hook", hook.uri()));
    env.sim_config(
        &sim,
        "sync_schedule = \"*/1 * * * * *\"",
        "[[notifiers]]\nurl = { env = \"FT_TEST_HOOK\" }\n",
    );
    let config = std::fs::read_to_string(env.config_path())
        .unwrap()
        .replace("max_attempts = 3", "max_attempts = 1");
    std::fs::write(env.config_path(), config).unwrap();
    (hook, sim, env)
}

/// A webhook that refuses its first delivery and accepts the next ones: a notice arrives only
/// if its retry is made.
async fn webhook_refusing_once() -> MockServer {
    webhook_refusing(1).await
}

/// A webhook that refuses its first `n` deliveries and accepts the next ones.
async fn webhook_refusing(n: u64) -> MockServer {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(n)
        .mount(&hook)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    hook
}

/// The bodies the webhook received so far (each delivery attempt), as JSON.
async fn bodies(hook: &MockServer) -> Vec<serde_json::Value> {
    hook.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// The events the webhook received (each delivery attempt).
async fn events(hook: &MockServer) -> Vec<String> {
    bodies(hook)
        .await
        .iter()
        .map(|b| b["event"].to_string())
        .collect()
}

/// The simulator with one job running for 7 hours, and a 6-hour runtime limit.
async fn job_over_its_limit(hook: &MockServer) -> (Sim, Env) {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())])
        .await
        .unwrap();
    let env = Env::new().env("FT_TEST_HOOK", &format!("{}/hook", hook.uri()));
    env.sim_config(&sim, "", "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n\n[[notifiers]]\nurl = { env = \"FT_TEST_HOOK\" }\n");
    (sim, env)
}

#[tokio::test]
async fn run_once_retries_its_notices_before_exiting_instead_of_dropping_them() {
    // Refuses the first delivery, takes the next, and notes when each came.
    let hook = MockServer::start().await;
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = times.clone();
    Mock::given(method("POST"))
        .respond_with(move |_: &wiremock::Request| {
            let mut t = seen.lock().unwrap();
            t.push(Instant::now());
            ResponseTemplate::new(if t.len() == 1 { 503 } else { 200 })
        })
        .mount(&hook)
        .await;
    let (_sim, env) = job_over_its_limit(&hook).await;
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("cancelled sim ftjob-1"), "{out}");
    // Counted once the process has exited: refused, then retried at once (not after the
    // 2-second pause a running daemon takes).
    assert_eq!(events(&hook).await, ["\"cancelled\""; 2]);
    let t = times.lock().unwrap().clone();
    assert!(
        t[1] - t[0] < Duration::from_millis(1500),
        "{:?}",
        t[1] - t[0]
    );
}

#[tokio::test]
async fn a_manual_cancel_delivers_its_notice_before_exiting() {
    let hook = webhook_refusing_once().await;
    let (_sim, env) = job_over_its_limit(&hook).await;
    let out = env
        .ok(&["cancel", "ftjob-1", "--account", "sim", "--reason", "test"])
        .await;
    assert!(out.contains("ftjob-1"), "{out}");
    assert_eq!(events(&hook).await, ["\"cancelled\""; 2]);
}

#[tokio::test]
async fn a_stopping_daemon_delivers_the_notices_still_on_their_way() {
    let hook = webhook_refusing_once().await;
    let (_sim, env) = job_over_its_limit(&hook).await;
    let mut daemon = env.daemon();
    // The first delivery was refused; the daemon would retry in 2 seconds. Stop it now.
    received(&hook, 1).await;
    let pid = daemon.id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), daemon.wait())
        .await
        .expect("the daemon did not stop")
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(events(&hook).await, ["\"cancelled\""; 2]);
}

#[tokio::test]
async fn config_check_sends_each_notifier_one_test_notice() {
    let hook = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/services/T0/s3cr3t-token"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    Mock::given(wiremock::matchers::path("/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&hook)
        .await;
    let env = Env::new()
        .env(
            "FT_TEST_SLACK",
            &format!("{}/services/T0/s3cr3t-token", hook.uri()),
        )
        .env("FT_TEST_GONE", &format!("{}/gone", hook.uri()))
        .env("FT_TEST_DEAD", "http://127.0.0.1:9/s3cr3t-dead");
    env.write_config(
        "",
        "[[notifiers]]\nurl = { env = \"FT_TEST_SLACK\" }\nformat = \"slack\"\n\n\
         [[notifiers]]\nurl = { env = \"FT_TEST_GONE\" }\n\n\
         [[notifiers]]\nurl = { env = \"FT_TEST_DEAD\" }\n",
    );
    let out = env.run(&["config", "check", "--test-notifiers"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    for line in [
        "#   notifiers[0] (slack, url from env FT_TEST_SLACK): OK, HTTP 200",
        "#   notifiers[1] (json, url from env FT_TEST_GONE): FAILED: refused: HTTP 404 Not Found",
        "#   notifiers[2] (json, url from env FT_TEST_DEAD): FAILED: could not connect",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(
        !text.contains("s3cr3t") && !stderr(&out).contains("s3cr3t"),
        "{text}"
    );
    // One try each, no retries; the Slack one is a line of text saying what it is.
    let reqs = hook.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let slack = reqs
        .iter()
        .find(|r| r.url.path().starts_with("/services"))
        .unwrap();
    let slack: serde_json::Value = serde_json::from_slice(&slack.body).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.starts_with("ftguard: test: ftguard config check --test-notifiers ("),
        "{text}"
    );
    assert!(
        !env.db().exists(),
        "config check must not create the database"
    );

    // Without the flag nothing is sent.
    env.run(&["config", "check"]).await;
    assert_eq!(hook.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_notice_the_webhook_refused_is_delivered_by_a_later_run() {
    // Down for the first three tries (two in the first run, one in the second), then back.
    let hook = webhook_refusing(3).await;
    let (_sim, env) = job_over_its_limit(&hook).await;
    env.ok(&["run", "--once"]).await;
    assert_eq!(events(&hook).await, ["\"cancelled\""; 2]);
    let status = env.json(&["status", "--json"]).await;
    assert_eq!(status["notices_waiting"], 1, "{status}");
    assert!(
        env.ok(&["status"])
            .await
            .contains("webhook notices not delivered yet: 1 (oldest ")
    );
    // Not due for a minute: a run right away leaves it alone.
    env.ok(&["run", "--once"]).await;
    assert_eq!(events(&hook).await.len(), 2);
    // Time passes (its retry comes due): refused once more, then delivered by the next run.
    let due = || sqlite3(&env.db(), "UPDATE outbox SET next_at = 0");
    due();
    env.ok(&["run", "--once"]).await;
    assert_eq!(events(&hook).await.len(), 3);
    assert_eq!(
        sqlite3(&env.db(), "SELECT attempts FROM outbox").trim(),
        "4"
    );
    due();
    env.ok(&["run", "--once"]).await;
    let bodies = bodies(&hook).await;
    assert_eq!(bodies.len(), 4);
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "the same notice each time: {bodies:#?}"
    );
    assert_eq!(bodies[0]["job_id"], "ftjob-1");
    let status = env.json(&["status", "--json"]).await;
    assert_eq!(status["notices_waiting"], 0, "{status}");
}

#[tokio::test]
async fn a_notice_cut_short_by_a_crash_is_sent_after_the_restart() {
    // The webhook takes far longer than the daemon lives.
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .mount(&hook)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let (sim, env) = job_over_its_limit(&hook).await;
    let mut daemon = env.daemon();
    received(&hook, 1).await;
    assert_eq!(sim.status("ftjob-1").as_deref(), Some("cancelled"));
    daemon.kill().await.unwrap(); // SIGKILL: no flush
    daemon.wait().await.unwrap();
    assert_eq!(
        sqlite3(&env.db(), "SELECT event FROM outbox").trim(),
        "cancelled"
    );
    // Its retry time comes; the restarted daemon's first pass delivers it.
    sqlite3(&env.db(), "UPDATE outbox SET next_at = 0");
    let mut daemon = env.daemon();
    let bodies = received(&hook, 2).await;
    daemon.kill().await.ok();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["event"], "cancelled");
    assert_eq!(bodies[1]["job_id"], "ftjob-1");
}

#[tokio::test]
async fn a_pass_sends_ten_notices_of_a_kind_and_sums_up_the_rest() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    // A limit that 15 jobs break at once, and a breaker letting 2 cancels through.
    let sim = Sim::start(
        (0..15)
            .map(|i| SimJob::in_status(&format!("ftjob-{i:02}"), "running", 7 * H, now()))
            .collect(),
    )
    .await
    .unwrap();
    let env = Env::new().env("FT_TEST_HOOK", &format!("{}/hook", hook.uri()));
    env.sim_config(
        &sim,
        "max_cancels_per_pass = 2",
        "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n\n[[notifiers]]\nurl = { env = \"FT_TEST_HOOK\" }\n",
    );
    env.ok(&["run", "--once"]).await;
    let bodies = bodies(&hook).await;
    let count = |event: &str| bodies.iter().filter(|b| b["event"] == event).count();
    assert_eq!(
        (count("cancelled"), count("held"), count("more_notices")),
        (2, 10, 1),
        "{bodies:#?}"
    );
    let more = bodies
        .iter()
        .find(|b| b["event"] == "more_notices")
        .unwrap();
    assert_eq!(
        (&more["of_event"], &more["policy"], &more["count"]),
        (
            &serde_json::json!("held"),
            &serde_json::json!("rt"),
            &serde_json::json!(3)
        ),
        "{more}"
    );
    assert!(
        more["reason"]
            .as_str()
            .unwrap()
            .contains("ftguard actions --policy rt --outcome held"),
        "{more}"
    );
    // Every hold is still recorded one by one.
    let held = env.json(&["actions", "--outcome", "held", "--json"]).await;
    assert_eq!(held.as_array().unwrap().len(), 13);
}

/// A cancel that fails pass after pass (the API down) is retried at every pass, but its
/// `cancel_failed` is sent once per job and policy — an hour's outage was sixty notices per
/// job; the `cancelled` that ends it is sent as usual.
#[tokio::test]
async fn a_cancel_failing_pass_after_pass_is_notified_once() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let (sim, env) = job_over_its_limit(&hook).await;
    // Four attempts a pass, two passes.
    for _ in 0..8 {
        sim.fault(Endpoint::Cancel, Fault::Status(500));
    }
    for _ in 0..2 {
        let out = env.run(&["run", "--once"]).await;
        assert!(stdout(&out).contains("failed"), "{}", stdout(&out));
    }
    env.ok(&["run", "--once"]).await;
    assert_eq!(sim.cancel_requests("ftjob-1"), 9);
    assert_eq!(events(&hook).await, ["\"cancel_failed\"", "\"cancelled\""]);
    let actions = env.json(&["actions", "--json"]).await;
    let outcomes: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "succeeded"]);
}
