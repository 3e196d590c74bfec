//! Replaying a policy that decides each job on its own: walk the job's life from its creation,
//! evaluating at each moment something could change the verdict — a status change, the moment
//! a time limit is crossed, the end of a grace period — with the same evaluation a pass makes.

use std::collections::HashMap;

use super::life::Life;
use crate::cost::pricing::PriceTable;
use crate::model::{GraceKey, Job};
use crate::policy::{self, JobView, Policy, Verdict};

/// More moments than a life has phases and crossings: a guard against a rule whose crossing
/// never moves forward.
const MAX_MOMENTS: usize = 10_000;

/// `t`, or for a policy with its own schedule its first run at or after `t`: such a policy
/// evaluates only at its runs.
fn at_or_after(policy: &Policy, t: i64) -> Option<i64> {
    match &policy.schedule {
        None => Some(t),
        Some(s) => s.next_after(t.saturating_sub(1)),
    }
}

/// The job's grace mark under `policy` as evaluation takes it: when it was first seen
/// breaking it, if it is in grace.
fn grace_marks(life: &Life, policy: &Policy, mark: Option<i64>) -> HashMap<GraceKey, i64> {
    mark.map(|m| {
        (
            (
                life.account.clone(),
                life.job.id.as_str().to_owned(),
                policy.name.clone(),
            ),
            m,
        )
    })
    .into_iter()
    .collect()
}

/// The first moment `policy` would have acted on the job (after its grace, at a run of its own
/// schedule), and why; None if it never would have. `snapshots` are the life's
/// ([`Life::snapshots`]), built once for every policy.
pub fn first_action(
    life: &Life,
    snapshots: &[Job],
    policy: &Policy,
    prices: &PriceTable,
    now: i64,
) -> Option<(i64, String)> {
    let policies = std::slice::from_ref(policy);
    let mut t = at_or_after(policy, life.job.created_at)?;
    // When the job was first seen breaking the policy (its grace period started).
    let mut mark: Option<i64> = None;
    for _ in 0..MAX_MOMENTS {
        let i = life.phase_at(t, now)?;
        let job = snapshots.get(i)?;
        let cost = life.cost_at(job, prices, t);
        let views = [JobView {
            account: &life.account,
            job,
            last_step_at: None,
            steps_checked_at: None,
            curves: None,
            cost: &cost,
        }];
        let marks = grace_marks(life, policy, mark);
        if let Some(d) = policy::evaluate(&views, t, policies, &marks, false)
            .into_iter()
            .next()
        {
            match d.verdict {
                Verdict::Act(_) => return Some((t, d.reason)),
                Verdict::Warn { .. } => mark = Some(t),
                Verdict::Clear => mark = None,
            }
        }
        let marks = grace_marks(life, policy, mark);
        let crossing = policy::next_crossings(&views, t, policies, &marks)
            .first()
            .map(|c| c.at);
        let next = [crossing, life.phase_end(i)].into_iter().flatten().min()?;
        t = at_or_after(policy, next.max(t.saturating_add(1)))?;
    }
    None
}

/// Breaches followed at most along one job's metrics (a grace period that clears, a breach
/// again...): a guard, far beyond what a curve gives.
const MAX_BREACHES: usize = 1_000;

/// For a training-quality policy: the first moment it would have acted on the job along its
/// stored metrics, with the step it would have stopped at and the last step it trained. The
/// rule finds its first breach in one pass over the curve (`Rule::first_breach`, the curve as
/// it stood at each step); the pass's own evaluation (`policy::evaluate`) then decides there,
/// on the curve as reported by that moment, as a pass would — grace, schedule, match and
/// exemptions included. None if it never would have, or nothing is stored.
pub fn first_action_by_steps(
    life: &Life,
    snapshots: &[Job],
    policy: &Policy,
    prices: &PriceTable,
    now: i64,
) -> Option<(i64, String, i64, i64)> {
    let policies = std::slice::from_ref(policy);
    let (_, last) = life.metrics.last()?;
    let trained = last.step;
    let mut full = crate::model::metrics::Curves::default();
    for (_, m) in &life.metrics {
        full.push(m);
    }
    let ctx = crate::policy::EvalContext {
        now,
        allow_overrides: policy.allow_job_overrides,
    };
    // The pass's verdict at `t`, on the metrics reported by then.
    let decide = |t: i64, mark: Option<i64>| {
        let i = life.phase_at(t, now)?;
        let job = snapshots.get(i)?;
        let mut curves = crate::model::metrics::Curves::default();
        for (_, m) in life.metrics.iter().take_while(|(at, _)| *at <= t) {
            curves.push(m);
        }
        let cost = life.cost_at(job, prices, t);
        let views = [JobView {
            account: &life.account,
            job,
            last_step_at: None,
            steps_checked_at: None,
            cost: &cost,
            curves: Some(&curves),
        }];
        let marks = grace_marks(life, policy, mark);
        policy::evaluate(&views, t, policies, &marks, false)
            .into_iter()
            .next()
            .map(|d| (d.verdict, d.reason, curves.last_step().unwrap_or(0)))
    };
    let reported = |step: i64| {
        let i = life.metrics.partition_point(|(_, m)| m.step < step);
        life.metrics.get(i).map(|(at, _)| *at)
    };
    let full_view = JobView {
        account: &life.account,
        job: snapshots.last()?,
        last_step_at: None,
        steps_checked_at: None,
        cost: &crate::cost::NO_COST,
        curves: Some(&full),
    };
    let mut from = i64::MIN;
    for _ in 0..MAX_BREACHES {
        let breach = policy.rule.first_breach(&full_view, &ctx, from)?;
        let t = at_or_after(policy, reported(breach)?)?;
        match decide(t, None) {
            Some((Verdict::Act(_), reason, step)) => return Some((t, reason, step, trained)),
            Some((Verdict::Warn { until }, _, _)) => {
                let then = at_or_after(policy, until)?;
                match decide(then, Some(t)) {
                    Some((Verdict::Act(_), reason, step)) => {
                        return Some((then, reason, step, trained));
                    }
                    // Compliant again during grace: look for the next breach after it.
                    _ => {
                        from = life
                            .metrics
                            .iter()
                            .find(|(at, _)| *at > then)
                            .map(|(_, m)| m.step)?;
                    }
                }
            }
            // Not decided there (not matched, exempt, not running any more, paused under a
            // pause policy): the next breach, if any.
            _ => from = breach.saturating_add(1),
        }
    }
    None
}
