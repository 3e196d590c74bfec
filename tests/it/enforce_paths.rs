//! Every answer a cancel can get, restarts with pending actions, grace, pause with fallback,
//! and the circuit breaker — the real App against the simulator with a real database file.

use crate::common::*;
use ftguard::store::{NewAction, Outcome};
use std::time::Duration;

const RUNTIME: &str =
    "[[policies]]\nname = \"runtime-6h\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n";

async fn setup(jobs: Vec<SimJob>, daemon: &str, policies: &str) -> (Sim, Env, ftguard::app::App) {
    let sim = Sim::start(jobs).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, daemon, policies);
    let app = env.app().await;
    for (a, r) in app.sync().await {
        r.unwrap_or_else(|e| panic!("{a}: {e}"));
    }
    (sim, env, app)
}

async fn pass(app: &ftguard::app::App) -> ftguard::enforce::PassReport {
    app.enforce(&app.config().policies).await.unwrap()
}

async fn actions(app: &ftguard::app::App) -> Vec<ftguard::store::ActionRecord> {
    app.store().actions(None, None).await.unwrap()
}

#[tokio::test]
async fn answered_200() {
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())],
        "",
        RUNTIME,
    )
    .await;
    let r = pass(&app).await;
    assert_eq!(r.cancelled, 1);
    let a = &actions(&app).await[0];
    assert_eq!(
        (
            a.outcome.as_str(),
            a.http_status,
            a.response_status.as_deref()
        ),
        ("succeeded", Some(200), Some("cancelled"))
    );
    assert_eq!(sim.cancel_requests("ftjob-1"), 1);
}

#[tokio::test]
async fn answered_400_already_finished_records_the_real_final_state() {
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())],
        "",
        RUNTIME,
    )
    .await;
    sim.set_status("ftjob-1", "succeeded"); // finished between sync and cancel
    let r = pass(&app).await;
    assert_eq!(r.already_finished, 1);
    let a = &actions(&app).await[0];
    assert_eq!(a.outcome, "already_finished");
    assert_eq!(a.http_status, Some(400));
    assert_eq!(a.response_status.as_deref(), Some("succeeded"));
    assert!(a.response_trained_tokens.unwrap() > 0 && a.response_finished_at.is_some());
    assert_eq!(
        sim.cancel_requests("ftjob-1"),
        1,
        "no retry for a finished job"
    );
    let stored = app.store().job(None, "ftjob-1").await.unwrap();
    assert_eq!(stored[0].job.status.as_str(), "succeeded");
}

#[tokio::test]
async fn answered_502_after_applying_is_recognised_from_the_jobs_state() {
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())],
        "",
        RUNTIME,
    )
    .await;
    sim.fault(Endpoint::Cancel, Fault::ApplyThen(502));
    let r = pass(&app).await;
    assert_eq!(r.cancelled, 1);
    let a = &actions(&app).await[0];
    assert_eq!(a.outcome, "succeeded");
    assert_eq!(a.http_status, Some(502));
    assert_eq!(a.response_status.as_deref(), Some("cancelled"));
    assert!(
        a.note.as_deref().unwrap().contains("applied"),
        "{:?}",
        a.note
    );
    assert_eq!(
        sim.cancel_requests("ftjob-1"),
        1,
        "not sent again: the job shows it was applied"
    );
}

#[tokio::test]
async fn a_timeout_is_checked_then_retried_and_cancels_once() {
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())],
        "",
        RUNTIME,
    )
    .await;
    sim.fault(Endpoint::Cancel, Fault::Delay(Duration::from_secs(4)));
    let r = pass(&app).await;
    assert_eq!(r.cancelled, 1, "{r:?}");
    let all = actions(&app).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].outcome, "succeeded");
    assert_eq!(all[0].attempts, 2);
    assert_eq!(sim.status("ftjob-1").as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn answered_429_is_retried_after_retry_after() {
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())],
        "",
        RUNTIME,
    )
    .await;
    sim.fault(Endpoint::Cancel, Fault::RateLimited(1));
    let r = pass(&app).await;
    assert_eq!(r.cancelled, 1);
    assert_eq!(sim.cancel_requests("ftjob-1"), 2);
    assert_eq!(actions(&app).await[0].outcome, "succeeded");
}

#[tokio::test]
async fn persistent_failure_marks_failed_and_a_later_pass_decides_again() {
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())],
        "",
        RUNTIME,
    )
    .await;
    for _ in 0..4 {
        sim.fault(Endpoint::Cancel, Fault::Status(500));
    }
    let r = pass(&app).await;
    assert_eq!(r.failed, 1);
    assert_eq!(actions(&app).await[0].outcome, "failed");
    let r = pass(&app).await;
    assert_eq!(r.cancelled, 1);
    let all = actions(&app).await;
    assert_eq!(all.iter().filter(|a| a.outcome == "succeeded").count(), 1);
    assert_eq!(sim.status("ftjob-1").as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn a_pending_action_left_by_a_crash_is_reconciled_at_start() {
    let now = now();
    let (sim, env, app) = setup(
        vec![
            SimJob::in_status("ftjob-sent", "running", 7 * H, now),
            SimJob::in_status("ftjob-unsent", "running", 7 * H, now),
        ],
        "",
        "",
    )
    .await;
    // A crash after writing the rows: one cancel reached the API, one did not.
    for id in ["ftjob-sent", "ftjob-unsent"] {
        let row = NewAction {
            account: "sim",
            job_id: id,
            policy: "runtime-6h",
            action: "cancel",
            reason: "ran 7h00m > 6h",
            outcome: Outcome::Pending,
        };
        app.store().insert_action(&row, now).await.unwrap().unwrap();
    }
    sim.set_status("ftjob-sent", "cancelled");
    app.store().close().await;

    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("reconciled"), "{out}");
    let all = env.json(&["actions", "--json"]).await;
    for id in ["ftjob-sent", "ftjob-unsent"] {
        let a = by_id(&all, "job_id", id);
        assert_eq!(a.len(), 1, "{id}: {all:#}");
        assert_eq!(a[0]["outcome"], "succeeded", "{id}");
        assert_eq!(a[0]["response_status"], "cancelled", "{id}");
    }
    assert_eq!(
        sim.cancel_requests("ftjob-sent"),
        0,
        "already applied: not sent again"
    );
    assert_eq!(sim.cancel_requests("ftjob-unsent"), 1);
}

#[tokio::test]
async fn a_pending_row_of_another_kind_is_closed_never_sent_as_a_cancel() {
    let now = now();
    let (sim, env, app) = setup(
        vec![SimJob::in_status("ftjob-r", "running", 7 * H, now)],
        "",
        "",
    )
    .await;
    // Only cancels and pauses are written pending; a row of another kind (a newer ftguard's,
    // or edited by hand) must not be reconciled into a cancel.
    let row = NewAction {
        account: "sim",
        job_id: "ftjob-r",
        policy: "manual",
        action: "resume",
        reason: "by hand",
        outcome: Outcome::Pending,
    };
    app.store().insert_action(&row, now).await.unwrap().unwrap();
    app.store().close().await;

    // A row closed as failed is an action that failed: a timer's `run --once` says so with
    // exit status 2, and `--json` carries the line and the count.
    let run = env.run(&["run", "--once", "--json"]).await;
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    let report: serde_json::Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(report["failed"], 1, "{report:#}");
    let out = report["lines"].to_string();
    assert!(out.contains("not reconciled: sim ftjob-r resume"), "{out}");
    assert_eq!(sim.cancel_requests("ftjob-r"), 0);
    assert_eq!(sim.status("ftjob-r").as_deref(), Some("running"));
    let all = env.json(&["actions", "--json"]).await;
    assert_eq!(all[0]["outcome"], "failed", "{all:#}");
    assert!(
        all[0]["note"].as_str().unwrap().contains("not sent again"),
        "{all:#}"
    );
    // Closed: the next run has nothing to reconcile.
    let again = env.ok(&["run", "--once"]).await;
    assert!(!again.contains("reconcile"), "{again}");
}

#[tokio::test]
async fn grace_warns_then_cancels_if_still_violating() {
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())],
        "",
        &format!("{RUNTIME}grace = \"30m\"\n"),
    )
    .await;
    let t = now();
    let policies = app.config().policies.clone();
    let r = app.enforce_at(&policies, t).await.unwrap();
    assert_eq!(r.warned, 1);
    let r = app.enforce_at(&policies, t + 600).await.unwrap();
    assert_eq!((r.warned, r.cancelled), (0, 0), "inside grace: nothing");
    assert_eq!(sim.cancel_requests("ftjob-1"), 0);
    let r = app.enforce_at(&policies, t + 1800).await.unwrap();
    assert_eq!(r.cancelled, 1);
    let outcomes: Vec<String> = actions(&app).await.into_iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, ["warned", "succeeded"]);
}

#[tokio::test]
async fn grace_ends_without_cancel_when_the_job_becomes_compliant() {
    let policy = "[[policies]]\nname = \"queue-2h\"\nkind = \"max_queue_time\"\nlimit = \"2h\"\ngrace = \"30m\"\n";
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "queued", 3 * H, now())],
        "",
        policy,
    )
    .await;
    let t = now();
    let policies = app.config().policies.clone();
    assert_eq!(app.enforce_at(&policies, t).await.unwrap().warned, 1);
    sim.set_status("ftjob-1", "running");
    app.sync().await;
    let r = app.enforce_at(&policies, t + 1800).await.unwrap();
    assert_eq!((r.cleared, r.cancelled), (1, 0));
    assert_eq!(sim.cancel_requests("ftjob-1"), 0);
    let all = actions(&app).await;
    assert_eq!(all[1].outcome, "cleared");
    assert!(all[1].note.as_deref().unwrap().contains("compliant"));
    assert!(app.store().grace_marks().await.unwrap().is_empty());
}

#[tokio::test]
async fn pause_succeeds_on_a_training_job() {
    let policy = "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"1h\"\naction = \"pause\"\nfallback = \"cancel\"\n";
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "running", 2 * H, now())],
        "",
        policy,
    )
    .await;
    let r = pass(&app).await;
    assert_eq!(r.paused, 1, "{r:?}");
    assert_eq!(sim.status("ftjob-1").as_deref(), Some("paused"));
    assert_eq!(sim.cancel_requests("ftjob-1"), 0);
    // Later passes leave it paused: a second pause would be refused by the API and that
    // refusal would set off the fallback, cancelling the job the policy meant to keep.
    for (a, r) in app.sync().await {
        r.unwrap_or_else(|e| panic!("{a}: {e}"));
    }
    let r = pass(&app).await;
    assert!(r.lines.is_empty(), "{r:?}");
    let posts: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(posts, ["/fine_tuning/jobs/ftjob-1/pause"]);
    assert_eq!(sim.status("ftjob-1").as_deref(), Some("paused"));
}

#[tokio::test]
async fn refused_pause_falls_back_to_cancel_or_notify() {
    let cancel = "[[policies]]\nname = \"q\"\nkind = \"max_queue_time\"\nlimit = \"1h\"\naction = \"pause\"\nfallback = \"cancel\"\n";
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "queued", 2 * H, now())],
        "",
        cancel,
    )
    .await;
    let r = pass(&app).await;
    assert_eq!(r.cancelled, 1, "{r:?}");
    assert_eq!(sim.status("ftjob-1").as_deref(), Some("cancelled"));
    let all = actions(&app).await;
    assert_eq!(
        (all[0].action.as_str(), all[0].outcome.as_str()),
        ("pause", "failed")
    );
    assert_eq!(
        (all[1].action.as_str(), all[1].outcome.as_str()),
        ("cancel", "succeeded")
    );

    let notify = cancel.replace("fallback = \"cancel\"", "fallback = \"notify\"");
    let (sim, env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "queued", 2 * H, now())],
        "",
        &notify,
    )
    .await;
    let r = pass(&app).await;
    assert_eq!(r.notified, 1, "{r:?}");
    assert_eq!(sim.status("ftjob-1").as_deref(), Some("queued"));
    assert_eq!(sim.cancel_requests("ftjob-1"), 0);
    // Said once: later passes neither send the pause again nor notify again (it was a POST,
    // a notice and an action row every pass).
    let r = pass(&app).await;
    assert!(r.lines.is_empty(), "{r:?}");
    let posts = sim.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1);
    assert_eq!(actions(&app).await.len(), 1);
    // The operator switches the policy to `fallback = "cancel"`: the job is tried again, and
    // cancelled when the pause is refused.
    env.sim_config(&sim, "", cancel);
    let app = env.app().await;
    let r = pass(&app).await;
    assert_eq!(r.cancelled, 1, "{r:?}");
    assert_eq!(sim.status("ftjob-1").as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn the_circuit_breaker_holds_the_excess() {
    let now = now();
    let jobs = (0..5)
        .map(|i| SimJob::in_status(&format!("ftjob-{i}"), "running", 7 * H + i, now))
        .collect();
    let (sim, _env, app) = setup(jobs, "max_cancels_per_pass = 2", RUNTIME).await;
    let r = pass(&app).await;
    assert_eq!((r.cancelled, r.held), (2, 3), "{r:?}");
    let cancels = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .count();
    assert_eq!(cancels, 2);
    let held = actions(&app)
        .await
        .into_iter()
        .filter(|a| a.outcome == "held")
        .count();
    assert_eq!(held, 3);
}

/// At most 2 cancels an hour, whatever the passes: the second pass holds everything, a manual
/// cancel still goes out and does not count, and once the hour has passed the next pass sends
/// two again.
#[tokio::test]
async fn the_hourly_circuit_breaker_holds_across_passes() {
    let now = now();
    let jobs = (0..7)
        .map(|i| SimJob::in_status(&format!("ftjob-{i}"), "running", 7 * H + i, now))
        .collect();
    let (sim, env, app) = setup(
        jobs,
        "max_cancels_per_pass = 5\nmax_cancels_per_hour = 2",
        RUNTIME,
    )
    .await;
    let cancels = || {
        sim.requests()
            .iter()
            .filter(|r| r.path.ends_with("/cancel"))
            .count()
    };
    let r = pass(&app).await;
    assert_eq!((r.cancelled, r.held), (2, 5), "{r:?}");
    assert!(
        r.lines
            .iter()
            .any(|l| l.contains("(max_cancels_per_hour = 2)")),
        "{r:?}"
    );
    let r = pass(&app).await;
    assert_eq!((r.cancelled, r.held), (0, 5), "{r:?}");
    assert_eq!(cancels(), 2);

    // An operator is not held by the breaker.
    let manual = |job: &'static str| {
        let app = app.clone();
        async move { app.manual_cancel("sim", job, "by hand").await.unwrap() }
    };
    assert_eq!(manual("ftjob-2").await.cancelled, 1);
    assert_eq!(cancels(), 3);

    // An hour on the window has room again; a manual cancel within it does not count.
    sqlite3(
        &env.db(),
        "UPDATE actions SET requested_at = requested_at - 3601",
    );
    assert_eq!(manual("ftjob-3").await.cancelled, 1);
    let r = pass(&app).await;
    assert_eq!((r.cancelled, r.held), (2, 1), "{r:?}");
    assert_eq!(cancels(), 6);
}

#[tokio::test]
async fn notify_only_policies_record_once() {
    let policy = "[[policies]]\nname = \"models\"\nkind = \"allowed_models\"\nmodels = [\"gpt-4.1*\"]\naction = \"notify\"\n";
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "queued", 60, now())],
        "",
        policy,
    )
    .await;
    assert_eq!(pass(&app).await.notified, 1);
    assert_eq!(pass(&app).await.notified, 0);
    assert_eq!(
        sim.requests().iter().filter(|r| r.method == "POST").count(),
        0
    );
}

/// A job still active long after the API accepted its cancel (the provider did not stop it)
/// is said once — a `cancel` row `notified` naming the accepted cancel — and never cancelled
/// again. Soon after the cancel (the provider winding the job down) nothing is said.
#[tokio::test]
async fn a_cancel_that_did_not_take_is_said_once_and_not_resent() {
    let (sim, env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())],
        "",
        RUNTIME,
    )
    .await;
    assert_eq!(pass(&app).await.cancelled, 1);
    // The provider lists the job as running again.
    sim.set_status("ftjob-1", "running");
    let sync = || async {
        for (a, r) in app.sync().await {
            r.unwrap_or_else(|e| panic!("{a}: {e}"));
        }
    };
    sync().await;
    let r = pass(&app).await;
    assert_eq!((r.cancelled, r.notified), (0, 0), "{:?}", r.lines);
    assert_eq!(actions(&app).await.len(), 1);

    // Eleven minutes after the cancel was accepted.
    sqlite3(
        &env.db(),
        "UPDATE actions SET requested_at = requested_at - 660, completed_at = completed_at - 660",
    );
    let r = pass(&app).await;
    assert_eq!((r.cancelled, r.notified), (0, 1), "{:?}", r.lines);
    let all = actions(&app).await;
    let said: Vec<_> = all.iter().filter(|a| a.outcome == "notified").collect();
    assert_eq!(said.len(), 1, "{all:?}");
    assert_eq!(
        (said[0].action.as_str(), said[0].policy.as_str()),
        ("cancel", "runtime-6h")
    );
    assert!(
        said[0].reason.starts_with("still active 11m") && said[0].reason.contains("action #1"),
        "{}",
        said[0].reason
    );
    // Said once; the cancel is not sent again.
    let r = pass(&app).await;
    assert_eq!((r.cancelled, r.notified), (0, 0), "{:?}", r.lines);
    assert_eq!(sim.cancel_requests("ftjob-1"), 1);
}

/// A pause refused while the job could not be paused (queued: no step trained yet) is not a
/// verdict for good: once the job changes status (it starts training), the pause is sent
/// again, and this time it holds.
#[tokio::test]
async fn a_refused_pause_is_tried_again_once_the_job_changes_status() {
    let policy = "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"1h\"\naction = \"pause\"\nfallback = \"notify\"\n";
    let (sim, _env, app) = setup(
        vec![SimJob::in_status("ftjob-1", "queued", 2 * H, now())],
        "",
        policy,
    )
    .await;
    assert_eq!(pass(&app).await.notified, 1);
    assert!(
        pass(&app).await.lines.is_empty(),
        "said once while it stays queued"
    );

    // In the next second (status changes are kept to the second), it trains.
    let second = now();
    wait_until(Duration::from_secs(3), "the next second", || {
        (now() > second).then_some(())
    })
    .await;
    sim.set_status("ftjob-1", "running");
    for (a, r) in app.sync().await {
        r.unwrap_or_else(|e| panic!("{a}: {e}"));
    }
    let r = pass(&app).await;
    assert_eq!(r.paused, 1, "{r:?}");
    assert_eq!(sim.status("ftjob-1").as_deref(), Some("paused"));
    assert_eq!(sim.cancel_requests("ftjob-1"), 0);
}
