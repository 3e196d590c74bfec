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
