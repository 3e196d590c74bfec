//! Replaying a policy that decides each job on its own: walk the job's life from its creation,
//! evaluating at each moment something could change the verdict — a status change, the moment
//! a time limit is crossed, the end of a grace period — with the same evaluation a pass makes.

use std::collections::HashMap;

use super::life::Life;
use crate::cost::pricing::PriceTable;
use crate::model::Job;
use crate::policy::{self, JobView, Policy, Verdict};

/// More moments than a life has phases and crossings: a guard against a rule whose crossing
/// never moves forward.
const MAX_MOMENTS: usize = 10_000;

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
    // A policy with a schedule evaluates only at its runs.
    let at_or_after = |t: i64| match &policy.schedule {
        None => Some(t),
        Some(s) => s.next_after(t.saturating_sub(1)),
    };
    let key = || {
        (
            life.account.clone(),
            life.job.id.as_str().to_owned(),
            policy.name.clone(),
        )
    };
    let mut t = at_or_after(life.job.created_at)?;
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
        let marks: HashMap<_, _> = mark.map(|m| (key(), m)).into_iter().collect();
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
        let marks: HashMap<_, _> = mark.map(|m| (key(), m)).into_iter().collect();
        let crossing = policy::next_crossings(&views, t, policies, &marks)
            .first()
            .map(|c| c.at);
        let next = [crossing, life.phase_end(i)].into_iter().flatten().min()?;
        t = at_or_after(next.max(t.saturating_add(1)))?;
    }
    None
}

/// Evaluations along a job's stored metrics at most: a pass sees a batch of new steps at each
/// sync, not every step, and each evaluation reads the curve so far.
const METRIC_MOMENTS: usize = 500;

/// For a training-quality policy: the first moment it would have acted on the job along its
/// stored metrics — evaluated as the metrics were reported, the curve so far at each moment —
/// with the step it would have stopped at and the last step it trained. None if it never
/// would have, or nothing is stored.
pub fn first_action_by_steps(
    life: &Life,
    snapshots: &[Job],
    policy: &Policy,
    prices: &PriceTable,
    now: i64,
) -> Option<(i64, String, i64, i64)> {
    let policies = std::slice::from_ref(policy);
    let n = life.metrics.len();
    let stride = n.div_ceil(METRIC_MOMENTS).max(1);
    let key = || {
        (
            life.account.clone(),
            life.job.id.as_str().to_owned(),
            policy.name.clone(),
        )
    };
    let mut curves = crate::model::metrics::Curves::default();
    let mut mark: Option<i64> = None;
    for (k, (at, m)) in life.metrics.iter().enumerate() {
        curves.push(m);
        if (k + 1) % stride != 0 && k + 1 != n {
            continue;
        }
        let Some(job) = life.phase_at(*at, now).and_then(|i| snapshots.get(i)) else {
            continue;
        };
        let cost = life.cost_at(job, prices, *at);
        let views = [JobView {
            account: &life.account,
            job,
            last_step_at: None,
            steps_checked_at: None,
            cost: &cost,
            curves: Some(&curves),
        }];
        let marks: HashMap<_, _> = mark.map(|t| (key(), t)).into_iter().collect();
        if let Some(d) = policy::evaluate(&views, *at, policies, &marks, false)
            .into_iter()
            .next()
        {
            match d.verdict {
                Verdict::Act(_) => {
                    // What it cost covers the steps it did train: the last one stored.
                    let trained = life.metrics.last().map_or(m.step, |(_, last)| last.step);
                    return Some((*at, d.reason, m.step, trained));
                }
                Verdict::Warn { .. } => mark = Some(*at),
                Verdict::Clear => mark = None,
            }
        }
    }
    None
}
