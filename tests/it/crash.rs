//! Crash safety: the real daemon is SIGKILLed in the middle of enforcement, at different
//! points, and restarted. No action is lost or duplicated; pending ones are reconciled.

use crate::common::*;
use std::time::{Duration, Instant};

async fn wait_cancels(sim: &Sim, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = sim
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/cancel"))
            .count();
        if seen >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {seen} cancel request(s) arrived, waiting for {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_enforcement_loses_and_duplicates_nothing() {
    let now = now();
    let jobs: Vec<SimJob> = (0..5)
        .map(|i| SimJob::in_status(&format!("ftjob-{i}"), "running", 7 * H + i, now))
        .collect();
    let sim = Sim::start(jobs).await.unwrap();
    // Kill 1 lands after a cancel was applied but before its answer; kill 2 while a cancel is
    // stalled and not applied; kill 3 while the re-sent cancel is applied and stalled again.
    sim.fault(
        Endpoint::Cancel,
        Fault::ApplyThenDelay(Duration::from_secs(5)),
    );
    sim.fault(Endpoint::Cancel, Fault::Delay(Duration::from_secs(5)));
    sim.fault(
        Endpoint::Cancel,
        Fault::ApplyThenDelay(Duration::from_secs(5)),
    );
    let env = Env::new();
    env.sim_config(
        &sim,
        "sync_schedule = \"*/1 * * * * *\"",
        "[[policies]]\nname = \"runtime-6h\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n",
    );
    // request_timeout is 2s in sim_config: stalls of 5s leave time to kill mid-request.
    for kill_at in 1..=3 {
        let mut daemon = env.daemon();
        // The cancel reached the API, which stalls on it: the daemon is mid-request.
        wait_cancels(&sim, kill_at).await;
        daemon.start_kill().unwrap();
        daemon.wait().await.unwrap();
    }
    let pending_before = env.json(&["actions", "--json"]).await;
    assert!(
        pending_before
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["outcome"] == "pending"),
        "a kill should have left a pending action: {pending_before:#}"
    );
    env.ok(&["run", "--once"]).await;

    let actions = env.json(&["actions", "--json"]).await;
    for i in 0..5 {
        let id = format!("ftjob-{i}");
        assert_eq!(sim.status(&id).as_deref(), Some("cancelled"), "{id}");
        let mine = by_id(&actions, "job_id", &id);
        let outcomes: Vec<&str> = mine
            .iter()
            .map(|a| a["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(
            outcomes,
            ["succeeded"],
            "{id}: exactly one action, succeeded: {actions:#}"
        );
        let api = sim.job_json(&id).unwrap();
        assert_eq!(mine[0]["response_finished_at"], api["finished_at"], "{id}");
        assert_eq!(
            mine[0]["response_trained_tokens"], api["trained_tokens"],
            "{id}"
        );
    }
    // Applied-before-kill cancels were recognised, not re-sent: 5 jobs, 3 kills of which one
    // was not applied -> at most one extra request.
    let cancels = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .count();
    assert!(cancels <= 6, "{cancels} cancel requests");
}
