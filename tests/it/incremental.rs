//! Incremental sync: with 10,000 finished jobs in history and 20 recent active ones, a
//! steady-state sync is one request; a full sync remains available.

use crate::common::*;

fn lists(sim: &Sim) -> usize {
    hits(sim, "/fine_tuning/jobs")
}

fn sql(env: &Env, q: &str) -> String {
    sqlite3(&env.db(), q)
}

fn others(sim: &Sim) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path != "/fine_tuning/jobs")
        .count()
}

#[tokio::test]
async fn a_steady_state_sync_is_one_request() {
    let now = now();
    let mut jobs: Vec<SimJob> = (0..10_000)
        .map(|i| SimJob::in_status(&format!("ftjob-old-{i:05}"), "succeeded", 10 * H + i, now))
        .collect();
    jobs.extend(
        (0..20).map(|i| SimJob::in_status(&format!("ftjob-active-{i:02}"), "running", 60 + i, now)),
    );
    let (sim, env) = sim_env(jobs).await;

    let out = env.ok(&["sync"]).await;
    assert!(out.contains("10020 jobs in 101 pages"), "{out}");
    assert!(out.contains("10020 new"), "{out}");
    assert_eq!(lists(&sim), 101);

    // Marks every stored row, so a row written by a later sync shows.
    sql(&env, "UPDATE jobs SET updated_at = 0");
    let before = (lists(&sim), others(&sim));
    let out = env.ok(&["sync"]).await;
    assert!(out.contains("(incremental)"), "{out}");
    assert_eq!(
        (lists(&sim) - before.0, others(&sim) - before.1),
        (1, 0),
        "steady state: one request"
    );
    // ... and no writes: the 100 jobs it listed are as stored.
    assert!(out.contains("0 new, 0 changed status, 0 updated"), "{out}");
    assert_eq!(
        sql(&env, "SELECT COUNT(*) FROM jobs WHERE updated_at != 0"),
        "0"
    );

    // New jobs and status changes within the window are still seen, in one request.
    sim.add_job(SimJob::in_status("ftjob-new", "queued", 1, now));
    sim.set_status("ftjob-active-05", "succeeded");
    let before = (lists(&sim), others(&sim));
    let out = env.ok(&["sync"]).await;
    assert_eq!(
        (lists(&sim) - before.0, others(&sim) - before.1),
        (1, 0),
        "{out}"
    );
    assert!(
        out.contains("ftjob-active-05: running -> succeeded"),
        "{out}"
    );
    assert_eq!(
        sql(
            &env,
            "SELECT id FROM jobs WHERE updated_at != 0 ORDER BY id"
        ),
        "ftjob-active-05\nftjob-new",
        "only what changed was written"
    );
    let jobs = env.json(&["jobs", "--json", "--status", "queued"]).await;
    assert_eq!(jobs[0]["id"], "ftjob-new");

    // A full listing on demand.
    let before = lists(&sim);
    let out = env.ok(&["sync", "--full"]).await;
    assert!(!out.contains("(incremental)"), "{out}");
    assert_eq!(lists(&sim) - before, 101);
}

#[tokio::test]
async fn an_old_active_job_moves_the_boundary() {
    let now = now();
    let mut jobs: Vec<SimJob> = (0..500)
        .map(|i| {
            SimJob::in_status(
                &format!("ftjob-old-{i:03}"),
                "succeeded",
                10 * H + i * 10,
                now,
            )
        })
        .collect();
    // Active, but 300 jobs deep in the listing.
    jobs.push(SimJob::in_status(
        "ftjob-deep-active",
        "running",
        10 * H + 3000 + 5,
        now,
    ));
    let (sim, env) = sim_env(jobs).await;
    env.ok(&["sync"]).await;
    let before = lists(&sim);
    let out = env.ok(&["sync"]).await;
    assert_eq!(
        lists(&sim) - before,
        4,
        "pages down to the oldest active job: {out}"
    );

    // It finishes: the next sync still pages down to where it was, and records the change.
    sim.set_status("ftjob-deep-active", "succeeded");
    env.ok(&["sync"]).await;
    let shown = env.json(&["show", "ftjob-deep-active", "--json"]).await;
    assert_eq!(shown["status"], "succeeded");
}

/// A server listing oldest first (not the API's order) would hide every new job from an
/// incremental sync, which stops at the first page reaching past the boundary: ftguard notices
/// the order, says so, and reads the listing to its end.
#[tokio::test]
async fn a_listing_oldest_first_is_read_to_its_end() {
    let now = now();
    let mut jobs: Vec<SimJob> = (0..250)
        .map(|i| SimJob::in_status(&format!("ftjob-old-{i:03}"), "succeeded", 10 * H + i, now))
        .collect();
    jobs.push(SimJob::in_status("ftjob-active", "running", H, now));
    let (sim, env) = sim_env(jobs).await;
    env.ok(&["sync"]).await;

    sim.set_oldest_first(true);
    sim.add_job(SimJob::in_status("ftjob-new", "running", 60, now));
    let before = lists(&sim);
    let summary = env.json(&["sync", "--json"]).await;
    let account = &summary[0]["summary"];
    assert_eq!(lists(&sim) - before, 3, "every page: {summary:#}");
    assert_eq!(account["new"], 1, "{summary:#}");
    let warnings = account["warnings"].to_string();
    assert!(warnings.contains("oldest first"), "{summary:#}");
    let shown = env.json(&["show", "ftjob-new", "--json"]).await;
    assert_eq!(shown["status"], "running");
}
