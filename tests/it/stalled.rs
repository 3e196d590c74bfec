//! `stalled` as a user runs it: events are fetched only for running jobs the stored steps do
//! not clear, a job that stopped training is cancelled on fresh evidence, and a job whose
//! events cannot be fetched is never called stalled for lack of known steps.

use crate::common::*;

const POLICY: &str = r#"
[[policies]]
name = "stalled-30m"
kind = "stalled"
limit = "30m"
"#;

/// Running 3h: one stopped reporting steps after its first hour of training, one trains on
/// (a step a minute), one started 10 minutes ago.
fn scenario(now: i64) -> Vec<SimJob> {
    let mut stuck = SimJob::in_status("ftjob-stuck", "running", 3 * H, now);
    stuck.stall_after = Some(H);
    vec![
        stuck,
        SimJob::in_status("ftjob-busy", "running", 3 * H, now),
        SimJob::in_status("ftjob-young", "running", 600, now),
    ]
}

fn events_requests(sim: &Sim, id: &str) -> usize {
    let path = format!("/fine_tuning/jobs/{id}/events");
    sim.requests().iter().filter(|r| r.path == path).count()
}

#[tokio::test]
async fn only_suspects_cost_an_events_request_and_the_stuck_job_is_cancelled() {
    let sim = Sim::start(scenario(now())).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", POLICY);

    let out = env.ok(&["run", "--once"]).await;
    assert!(
        out.contains("cancelled sim ftjob-stuck: no training step for"),
        "{out}"
    );
    assert_eq!(sim.status("ftjob-stuck").as_deref(), Some("cancelled"));
    assert_eq!(sim.cancel_requests("ftjob-busy"), 0);
    // Nothing was known about the two older jobs, so both were checked; the young one cannot
    // have stalled yet and costs nothing.
    assert_eq!(events_requests(&sim, "ftjob-stuck"), 1);
    assert_eq!(events_requests(&sim, "ftjob-busy"), 1);
    assert_eq!(events_requests(&sim, "ftjob-young"), 0);

    // The busy job's stored step is a minute old: the next pass needs no events at all.
    env.ok(&["run", "--once"]).await;
    assert_eq!(events_requests(&sim, "ftjob-busy"), 1);
    assert_eq!(sim.cancel_requests("ftjob-busy"), 0);

    let jobs = env.json(&["jobs", "--json"]).await;
    let busy = by_id(&jobs, "id", "ftjob-busy")[0];
    assert!(
        busy["last_step_at"]
            .as_i64()
            .is_some_and(|t| now() - t < 120),
        "{busy:#}"
    );
}

#[tokio::test]
async fn no_events_no_verdict() {
    let sim = Sim::start(scenario(now())).await.unwrap();
    // All three attempts of both suspects' events requests fail (max_attempts = 3).
    for _ in 0..6 {
        sim.fault(Endpoint::Events, Fault::Status(500));
    }
    let env = Env::new();
    env.sim_config(&sim, "", POLICY);

    let out = env.run(&["run", "--once"]).await;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(sim.cancel_requests("ftjob-stuck"), 0, "{text}");
    assert_eq!(sim.status("ftjob-stuck").as_deref(), Some("running"));
    assert!(text.contains("events of ftjob-stuck"), "{text}");

    // Once the events answer again, the evidence is there and the job goes.
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("cancelled sim ftjob-stuck"), "{out}");
    assert_eq!(sim.cancel_requests("ftjob-busy"), 0);
}

/// Events the API refuses (a gateway that does not route `/events` for the provider, as
/// Portkey for Bedrock and Vertex AI): said once, then asked again hourly instead of at every
/// sync (it was a request and a warning a minute per running job); once they come, the job is
/// judged on them.
#[tokio::test]
async fn refused_events_are_said_once_and_asked_for_hourly() {
    let mut stuck = SimJob::in_status("ftjob-stuck", "running", 3 * H, now());
    stuck.stall_after = Some(H);
    let sim = Sim::start(vec![stuck]).await.unwrap();
    sim.fault(Endpoint::Events, Fault::Status(404));
    let env = Env::new();
    env.sim_config(&sim, "", POLICY);

    let first = env.json(&["sync", "--json"]).await;
    let warnings = first[0]["summary"]["warnings"].to_string();
    assert!(
        warnings.contains("events of ftjob-stuck") && warnings.contains("hourly"),
        "{first:#}"
    );
    for _ in 0..2 {
        let again = env.json(&["sync", "--json"]).await;
        assert_eq!(
            again[0]["summary"]["warnings"],
            serde_json::json!([]),
            "{again:#}"
        );
    }
    assert_eq!(events_requests(&sim, "ftjob-stuck"), 1);
    let out = env.ok(&["run", "--once"]).await;
    assert_eq!(sim.cancel_requests("ftjob-stuck"), 0, "{out}");

    // An hour later they are asked for again; they come, and the stalled job goes.
    sqlite3(
        &env.db(),
        "UPDATE events_failures SET failed_at = failed_at - 3601",
    );
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("cancelled sim ftjob-stuck"), "{out}");
    assert_eq!(events_requests(&sim, "ftjob-stuck"), 2);
    assert_eq!(
        sqlite3(&env.db(), "SELECT COUNT(*) FROM events_failures").trim(),
        "0"
    );
}
