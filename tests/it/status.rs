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
