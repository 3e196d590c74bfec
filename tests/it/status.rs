//! `ftguard status` as an operator or a monitoring script runs it: healthy only when every
//! account synced recently, with what is stored and what was done, and exit 1 otherwise.

use crate::common::*;

#[tokio::test]
async fn status_says_whether_every_account_synced_and_what_was_done() {
    let now = now();
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-runaway", "running", 7 * H, now),
        SimJob::in_status("ftjob-young", "running", H, now),
        SimJob::in_status("ftjob-done", "succeeded", 9 * H, now),
    ])
    .await
    .unwrap();
    let env = Env::new();
    let policy = "[[policies]]\nname = \"runtime-6h\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n";
    env.sim_config(&sim, "", policy);

    // No database yet (the wrong configuration, or nothing ever ran): exit 1, named.
    let out = env.run(&["status"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not exist yet"),
        "{}",
        stderr(&out)
    );

    // Nothing synced yet: unhealthy, and said why.
    env.app().await.store().close().await;
    let out = env.run(&["status"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("UNHEALTHY") && stdout(&out).contains("sim: not synced yet"),
        "{}",
        stdout(&out)
    );

    env.ok(&["run", "--once"]).await;
    let text = env.ok(&["status"]).await;
    assert!(text.starts_with("ftguard: healthy"), "{text}");
    let row = text.lines().find(|l| l.starts_with("sim ")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    // account, date, time, ago, active, stored: one job left running of three.
    assert_eq!(cells[4..], ["1", "3"], "{row}");
    assert!(
        text.contains("actions in the last 24h: 1 cancel succeeded"),
        "{text}"
    );
    let v = env.json(&["status", "--json"]).await;
    assert_eq!(v["healthy"], true, "{v:#}");
    assert_eq!(v["accounts"][0]["account"], "sim");
    assert_eq!(v["accounts"][0]["active_jobs"], 1);
    assert_eq!(v["accounts"][0]["stored_jobs"], 3);
    assert!(v["accounts"][0]["last_successful_sync"].as_i64().unwrap() >= now);
    assert_eq!(v["actions_last_24h"]["cancel"]["succeeded"], 1);
    assert_eq!(v["pending_actions"], 0);

    // A second account that cannot be reached makes it unhealthy, naming it and its error;
    // the account that works stays as it was.
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"sim\"\nbase_url = \"{}\"\n[[accounts]]\nname = \"broken\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmax_attempts = 1\n{policy}",
            sim.base_url()
        ),
    );
    env.run(&["sync"]).await;
    let out = env.run(&["status"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("broken: never synced successfully; last error: account \"broken\"")
            && !text.contains("  sim:"),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&env.run(&["status", "--json"]).await)).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["problems"][0]["account"], "broken");
    assert!(
        v["accounts"][1]["last_error"]
            .as_str()
            .unwrap()
            .contains("could not connect")
    );
}

/// Many accounts stay readable: one summary line (how many, which are not synced), then the
/// accounts not synced before the others in the table; a repeated account is warned about;
/// `max_concurrent_requests` out of range is named.
#[tokio::test]
async fn many_accounts_read_as_a_summary_with_the_unhealthy_first() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", H, now())])
        .await
        .unwrap();
    let env = Env::new();
    let mut accounts = String::new();
    for i in 0..30 {
        accounts.push_str(&format!(
            "[[accounts]]\nname = \"team-{i:02}\"\nbase_url = \"{}\"\nheaders = {{ \"x-team\" = \"{i}\" }}\n",
            sim.base_url()
        ));
    }
    // Nothing listens on port 9; this one sorts last by name but must be listed first.
    accounts.push_str(
        "[[accounts]]\nname = \"zz-down\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmax_attempts = 1\n",
    );
    // The same base_url and headers as team-03: its jobs would be watched twice.
    accounts.push_str(&format!(
        "[[accounts]]\nname = \"team-03-again\"\nbase_url = \"{}/\"\nheaders = {{ \"x-team\" = \"3\" }}\n",
        sim.base_url()
    ));
    env.write_config("max_concurrent_requests = 4", &accounts);
    let check = env.run(&["config", "check"]).await;
    let said = format!("{}{}", stdout(&check), stderr(&check));
    assert!(
        said.contains("accounts[31] (\"team-03-again\") repeats accounts[3] (\"team-03\")"),
        "{said}"
    );
    let out = env.run(&["sync"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // 31 of 32 accounts answered through 4 request slots.
    assert_eq!(hits(&sim, "/fine_tuning/jobs"), 31);

    let out = env.run(&["status"]).await;
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("ftguard: UNHEALTHY: 1 of 32 accounts not synced within ")
            && first.ends_with(": zz-down"),
        "{text}"
    );
    let header = text.lines().position(|l| l.starts_with("ACCOUNT")).unwrap();
    let rows: Vec<&str> = text.lines().skip(header + 1).take(32).collect();
    assert!(rows[0].starts_with("zz-down "), "{text}");
    assert!(rows[1].starts_with("team-00 "), "{text}");

    env.write_config("max_concurrent_requests = 0", &accounts);
    let out = env.run(&["config", "check"]).await;
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("daemon.max_concurrent_requests")
            && stderr(&out).contains("between 1 and 1024"),
        "{}",
        stderr(&out)
    );
}

/// However many accounts, at most `max_concurrent_requests` requests are in flight at once
/// (the accounts' syncs share them), and all of them are used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_across_accounts_are_bounded() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (f, m) = (in_flight.clone(), most.clone());
    let app = axum::Router::new().fallback(move || {
        let (f, m) = (f.clone(), m.clone());
        async move {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(40)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            axum::Json(serde_json::json!({"object": "list", "data": [], "has_more": false}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let env = Env::new();
    let mut accounts = String::new();
    for i in 0..60 {
        accounts.push_str(&format!(
            "[[accounts]]\nname = \"a{i:02}\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nheaders = {{ \"x-team\" = \"{i}\" }}\n"
        ));
    }
    env.write_config("max_concurrent_requests = 5", &accounts);
    let out = env.run(&["sync"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 5, "{most} requests in flight at once");
    assert!(most >= 2, "the accounts were synced one by one");
}

/// A pass over more active jobs than it evaluates at a time (500) decides exactly what one
/// evaluation of them all decides, each job once, and the deadline timer gets the earliest
/// crossing even when it belongs to the oldest job, read last.
#[tokio::test]
async fn a_pass_in_chunks_decides_as_one_evaluation_of_all() {
    let now = now();
    // 1,300 running jobs, newest first: every third ran past 6h; the rest will cross 6h at
    // distinct moments, the oldest of them first.
    let jobs: Vec<SimJob> = (0..1300)
        .map(|i| {
            let age = if i % 3 == 0 { 7 * H + i } else { 5 * H + i };
            SimJob::in_status(&format!("ftjob-{i:05}"), "running", age, now)
        })
        .collect();
    let (_sim, env) = sim_env(jobs).await;
    let rest = "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n\
                [[policies]]\nname = \"models\"\nkind = \"allowed_models\"\nmodels = [\"gpt-4o*\"]\n";
    let text = std::fs::read_to_string(env.config_path()).unwrap() + rest;
    std::fs::write(env.config_path(), text).unwrap();
    env.ok(&["sync"]).await;
    let app = env.app().await;
    let policies = app.config().policies.clone();
    let evaluation = app.decide(&policies, now).await.unwrap();
    let mut got: Vec<(String, String)> = evaluation
        .decisions
        .iter()
        .map(|d| (d.job_id.to_string(), d.policy.to_string()))
        .collect();
    // The same policies over every active job at once.
    let all = app
        .store()
        .jobs(&ftguard::store::JobFilter::active())
        .await
        .unwrap();
    assert_eq!(all.len(), 1300);
    let views: Vec<ftguard::policy::JobView> = all
        .iter()
        .map(|j| ftguard::app::view(j, &ftguard::cost::NO_COST))
        .collect();
    let whole = ftguard::policy::evaluate_with_spend(
        &views,
        &Default::default(),
        now,
        &policies,
        &Default::default(),
        false,
    );
    let mut want: Vec<(String, String)> = whole
        .decisions
        .iter()
        .map(|d| (d.job_id.to_string(), d.policy.to_string()))
        .collect();
    assert_eq!(want.len(), 434, "every third job ran past 6h");
    got.sort();
    want.sort();
    assert!(
        got == want,
        "{} decisions in chunks, {} at once; first difference: {:?}",
        got.len(),
        want.len(),
        got.iter().zip(&want).find(|(a, b)| a != b)
    );

    // The earliest crossing: the oldest job under the limit, 6h after it was created.
    let crossings = app.next_crossings(now).await.unwrap();
    let oldest_under = (0..1300).filter(|i| i % 3 != 0).max().unwrap();
    assert_eq!(crossings.len(), 1, "{crossings:?}");
    assert_eq!(crossings[0].job.job_id, format!("ftjob-{oldest_under:05}"));
    app.store().close().await;
}
