//! Replays of known histories, with answers computed by hand in the comments.

use super::*;
use crate::model::Job;
use crate::policy::testkit::policy;

const H: i64 = 3600;
const DAY: i64 = 86_400;
/// 2026-10-01T00:00:00Z.
const OCT: i64 = 1_790_812_800;
/// 2026-11-01T00:00:00Z.
const NOV: i64 = 1_793_491_200;
const NOW: i64 = 1_796_083_200;

/// A gpt-4o-mini job ($3 per million trained tokens) created at `created`, finished at
/// `finished` having trained `millions` million tokens; `changes` as ftguard saw them, from
/// `first` at creation.
fn life(
    id: &str,
    created: i64,
    finished: Option<i64>,
    millions: i64,
    first: &str,
    changes: &[(i64, &str)],
) -> Life {
    let status = match (finished, changes.last()) {
        (Some(_), Some((_, s))) => (*s).to_owned(),
        (Some(_), None) => "succeeded".to_owned(),
        (None, Some((_, s))) => (*s).to_owned(),
        (None, None) => first.to_owned(),
    };
    let job = Job {
        finished_at: finished,
        trained_tokens: finished.map(|_| millions * 1_000_000),
        training_file: Some("file-1".into()),
        method: Some("supervised".into()),
        ..Job::new(id, "gpt-4o-mini-2024-07-18", &status, created)
    };
    Life::new(
        Stored {
            account: "prod".into(),
            first_seen_at: created,
            job,
            gone_at: None,
            first_status: first.into(),
            changes: changes.iter().map(|(t, s)| (*t, (*s).to_owned())).collect(),
            file: None,
            metrics: Vec::new(),
        },
        &PriceTable::default(),
        NOW,
    )
}

fn run(lives: &[Life], toml: &str, since: i64) -> PolicyReplay {
    let p = policy(toml);
    let mut r = replay(lives, &[p], &PriceTable::default(), since, NOW);
    r.policies.remove(0)
}

fn stops(r: &PolicyReplay) -> Vec<(&str, i64, i64)> {
    r.jobs
        .iter()
        .map(|s| (s.job_id.as_str(), s.at, s.saved.0))
        .collect()
}

#[test]
fn a_runtime_limit_stops_the_long_job_at_its_limit_and_saves_the_rest() {
    // Both first seen finished (a first sync of old history): running from creation.
    let c = OCT + DAY;
    let lives = [
        life("two-h", c, Some(c + 2 * H), 8, "succeeded", &[]),
        life("eight-h", c, Some(c + 8 * H), 8, "succeeded", &[]),
    ];
    let r = run(&lives, "name='rt'\nkind='max_runtime'\nlimit='6h'", OCT);
    // Crossed one second after 6 h; 8M tokens cost $24; saved 24 x (8h - 6h - 1s) / 8h.
    assert_eq!(
        stops(&r),
        [("eight-h", c + 6 * H + 1, 24_000_000 * (2 * H - 1) / (8 * H))]
    );
    assert_eq!(r.jobs[0].reason, "ran 6h00m > 6h", "the reason plan gives");
    assert_eq!(r.jobs[0].actual_status, "succeeded");
    assert_eq!(r.jobs[0].actual_cost, Some(Usd(24_000_000)));
    assert_eq!(r.saved, Usd(5_999_166));
}

#[test]
fn grace_delays_the_stop_and_a_watched_queue_time_counts_training_from_running() {
    let c = OCT + DAY;
    // Queued 1 h, then running 7 h (seen by ftguard), 8M tokens ($24).
    let watched = life(
        "w",
        c,
        Some(c + 8 * H),
        8,
        "queued",
        &[(c + H, "running"), (c + 8 * H + 40, "succeeded")],
    );
    let r = run(
        std::slice::from_ref(&watched),
        "name='rt'\nkind='max_runtime'\nlimit='6h'\ngrace='30m'",
        OCT,
    );
    // Over at 6h+1s, acted on 30 min later; training ran 1h..8h: saved 24 x (1.5h - 1s) / 7h.
    let at = c + 6 * H + 1 + 1800;
    assert_eq!(
        stops(&r),
        [("w", at, 24_000_000 * (8 * H - (at - c)) / (7 * H))]
    );
    // Queued 1 h under a 30 min queue limit: acted on while queued, before any training.
    let r = run(
        std::slice::from_ref(&watched),
        "name='q'\nkind='max_queue_time'\nlimit='30m'",
        OCT,
    );
    assert_eq!(stops(&r), [("w", c + 1800 + 1, 24_000_000)]);
    // A grace longer than the queueing: it started running in time, nothing done.
    let r = run(
        &[watched],
        "name='q'\nkind='max_queue_time'\nlimit='30m'\ngrace='45m'",
        OCT,
    );
    assert_eq!(stops(&r), []);
}

#[test]
fn a_cost_cap_acts_on_the_queued_job_and_saves_all_of_it() {
    let c = OCT + DAY;
    // Never counted its file: what it cost in the end ($15) stands in for the projection.
    let big = life(
        "big",
        c,
        Some(c + 6 * H),
        5,
        "queued",
        &[(c + H, "running"), (c + 6 * H, "succeeded")],
    );
    let small = life(
        "small",
        c,
        Some(c + 6 * H),
        2,
        "queued",
        &[(c + H, "running"), (c + 6 * H, "succeeded")],
    );
    let r = run(
        &[big, small],
        "name='cap'\nkind='max_job_cost'\nlimit_usd=10.0",
        OCT,
    );
    assert_eq!(stops(&r), [("big", c, 15_000_000)]);
    assert!(r.jobs[0].reason.contains("$15.00"), "{}", r.jobs[0].reason);
}

#[test]
fn a_monthly_budget_replays_in_time_order_and_counts_what_stopped_jobs_cost() {
    let d = |n: i64| OCT + n * DAY;
    let lives = [
        // October: $30 finished, then $15 running when $20 more starts: 65 > 50, newest first.
        life("a", d(1), Some(d(1) + 4 * H), 10, "succeeded", &[]),
        life("b", d(2), Some(d(2) + 4 * H), 5, "succeeded", &[]),
        life("c", d(2) + H, Some(d(2) + 5 * H), 20 / 3, "succeeded", &[]),
        // $3 later in October: 30 + 15 + 0 (c stopped before it trained) + 3 = 48: kept. Had c
        // counted what it did cost, 66 would be over.
        life("d", d(10), Some(d(10) + H), 4 / 3, "succeeded", &[]),
        // November: a new period, $30 + $27 = 57 > 50 when the second starts.
        life(
            "e",
            NOV + DAY,
            Some(NOV + DAY + 2 * H),
            10,
            "succeeded",
            &[],
        ),
        life(
            "f",
            NOV + 2 * DAY,
            Some(NOV + 2 * DAY + 2 * H),
            9,
            "succeeded",
            &[],
        ),
    ];
    let r = run(
        &lives,
        "name='monthly'\nkind='budget'\nlimit_usd=50.0\nperiod='month'",
        OCT,
    );
    // c: 6M tokens, $18, stopped at its creation (its training start): all saved. f: $27.
    assert_eq!(
        stops(&r),
        [
            ("f", NOV + 2 * DAY, 27_000_000),
            ("c", d(2) + H, 18_000_000)
        ]
    );
    assert!(
        r.jobs[1].reason.starts_with("budget: $63.00 > $50.00"),
        "{}",
        r.jobs[1].reason
    );
    assert_eq!(r.saved, Usd(45_000_000));
    // The window starts in November: October's jobs are not judged, and do not count.
    let r = run(
        &lives,
        "name='monthly'\nkind='budget'\nlimit_usd=50.0\nperiod='month'",
        NOV,
    );
    assert_eq!(stops(&r), [("f", NOV + 2 * DAY, 27_000_000)]);
}

#[test]
fn notify_saves_nothing_and_stalled_is_not_judged() {
    let c = OCT + DAY;
    let lives = [life("x", c, Some(c + 8 * H), 8, "succeeded", &[])];
    let r = run(
        &lives,
        "name='rt'\nkind='max_runtime'\nlimit='6h'\naction='notify'",
        OCT,
    );
    assert_eq!(stops(&r), [("x", c + 6 * H + 1, 0)]);
    let r = run(&lives, "name='s'\nkind='stalled'\nlimit='30m'", OCT);
    assert!(r.jobs.is_empty());
    assert_eq!(r.not_judged.len(), 1);
    assert_eq!(r.not_judged[0].jobs, 1);
}

#[test]
fn a_job_created_before_the_window_is_left_out() {
    let c = OCT + DAY;
    let lives = [life("old", c, Some(c + 8 * H), 8, "succeeded", &[])];
    let r = run(&lives, "name='rt'\nkind='max_runtime'\nlimit='6h'", c + 1);
    assert_eq!(stops(&r), []);
}

#[test]
fn the_replayed_verdict_is_the_pass_verdict_at_that_moment() {
    // Replay's moment and reason are what `policy::evaluate` (what `plan` shows) says of the
    // job as it stood then; a second earlier it said nothing.
    let c = OCT + DAY;
    let l = life(
        "w",
        c,
        Some(c + 8 * H),
        8,
        "queued",
        &[(c + H, "running"), (c + 8 * H, "succeeded")],
    );
    let p = policy("name='rt'\nkind='max_runtime'\nlimit='5h'");
    let r = run(
        std::slice::from_ref(&l),
        "name='rt'\nkind='max_runtime'\nlimit='5h'",
        OCT,
    );
    let stop = &r.jobs[0];
    let at_phase = |t: i64| {
        let snapshots = l.snapshots();
        let job = &snapshots[l.phase_at(t, NOW).unwrap()];
        let cost = l.cost_at(job, &PriceTable::default(), t);
        let v = [crate::policy::JobView {
            account: "prod",
            job,
            last_step_at: None,
            steps_checked_at: None,
            curves: None,
            cost: &cost,
        }];
        crate::policy::evaluate(&v, t, std::slice::from_ref(&p), &Default::default(), false)
            .into_iter()
            .map(|d| d.reason)
            .next()
    };
    assert_eq!(at_phase(stop.at), Some(stop.reason.clone()));
    assert_eq!(at_phase(stop.at - 1), None);
}

#[test]
fn a_loss_policy_replays_along_the_stored_metrics_and_saves_by_steps() {
    use crate::model::metrics::StepMetrics;
    // 1,000 steps at one a second, 10M tokens ($30); its loss triples at step 501.
    let c = OCT + DAY;
    let mut l = life("div", c, Some(c + 1000), 10, "succeeded", &[]);
    l.metrics = (1..=1000)
        .map(|s| {
            let m = StepMetrics {
                step: s,
                total_steps: Some(1000),
                train_loss: Some(if s <= 500 { 0.5 } else { 3.0 }),
                ..StepMetrics::default()
            };
            (c + s, m)
        })
        .collect();
    let r = run(
        std::slice::from_ref(&l),
        "name='div'\nkind='loss_divergence'\nmetric='train_loss'\nfactor=2.0\npatience=30",
        OCT,
    );
    // The median of the last 50 is above 1.0 from step 525 (25 of 50 at 3.0); 30 steps later
    // is 555, reported at c + 555. Saved: $30 x (1000 - 555) / 1000.
    assert_eq!(stops(&r), [("div", c + 555, 30_000_000 * 445 / 1000)]);
    assert!(
        r.jobs[0].reason.contains("for 30 steps"),
        "{}",
        r.jobs[0].reason
    );
    // With a grace of 20 s (20 steps), still above then: 20 steps later.
    let r = run(
        std::slice::from_ref(&l),
        "name='div'\nkind='loss_divergence'\nmetric='train_loss'\nfactor=2.0\npatience=30\ngrace='20s'",
        OCT,
    );
    assert_eq!(stops(&r), [("div", c + 575, 30_000_000 * 425 / 1000)]);
    // A job without stored metrics is not judged, and said so.
    let bare = life("bare", c, Some(c + 1000), 10, "succeeded", &[]);
    let r = run(
        &[bare],
        "name='div'\nkind='loss_divergence'\nmetric='train_loss'\npatience=30",
        OCT,
    );
    assert!(r.jobs.is_empty());
    assert_eq!(r.not_judged[0].jobs, 1);
    assert!(r.not_judged[0].why.contains("no training metrics"));
}
