//! Replay: what a set of policies would have done over the stored history, and what it would
//! have saved (`ftguard replay`). Pure: lives come in as data, nothing is read or sent.
//!
//! The verdicts are the policies' own: each job's life is walked with the same evaluation a
//! pass makes (`policy::evaluate_with_spend`, `policy::next_crossings`), a job as it stood at
//! each moment ([`life::Life`]). Per-job policies replay job by job ([`per_job`]); budgets
//! replay every job in time order ([`budget`]).

pub mod budget;
pub mod life;
pub mod per_job;

use serde::Serialize;

pub use life::{Life, Stored};

use crate::cost::pricing::PriceTable;
use crate::model::Usd;
use crate::policy::{ActionKind, Policy};

/// A replayed action: (index into the lives, when, why, and for a stop judged on training
/// metrics the step it would have stopped at and the last step the job trained).
type Act = (usize, i64, String, Option<(i64, i64)>);

/// What one policy would have done to one job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stop {
    pub account: String,
    pub job_id: String,
    /// When it would have acted (unix seconds).
    pub at: i64,
    /// The same reason text as `plan`.
    pub reason: String,
    /// What did happen: the job's status now, and what it cost (so far, while active).
    pub actual_status: String,
    pub actual_cost: Option<Usd>,
    /// What acting then would have saved (nothing for a notify policy).
    pub saved: Usd,
}

/// Jobs a policy could not judge, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotJudged {
    pub jobs: usize,
    pub why: &'static str,
}

/// One policy's replay.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReplay {
    pub name: String,
    pub kind: &'static str,
    pub action: ActionKind,
    /// Largest saving first.
    pub jobs: Vec<Stop>,
    pub saved: Usd,
    pub not_judged: Vec<NotJudged>,
}

/// The replay of every policy over the jobs created since `since`.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    pub since: i64,
    pub until: i64,
    /// Jobs created in the window.
    pub jobs: usize,
    pub policies: Vec<PolicyReplay>,
    /// Over all policies: each job's largest saving counted once (a job stopped by two
    /// policies is stopped once).
    pub saved: Usd,
}

/// Replays `policies` over `lives` (jobs created since `since`, and for budgets also earlier
/// ones of their first period) up to `now`.
pub fn replay(
    lives: &[Life],
    policies: &[Policy],
    prices: &PriceTable,
    since: i64,
    now: i64,
) -> Replay {
    let in_window: Vec<usize> = (0..lives.len())
        .filter(|&i| lives[i].job.created_at >= since && lives[i].job.created_at <= now)
        .collect();
    // Per-job policies first, a life at a time: its snapshots are built once for all of them.
    let per_job: Vec<&Policy> = policies
        .iter()
        .filter(|p| !p.rule.needs_events() && p.rule.budget().is_none())
        .collect();
    let mut per_job_acts: std::collections::HashMap<String, Vec<Act>> =
        std::collections::HashMap::new();
    let mut no_metrics: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for &i in &in_window {
        let l = &lives[i];
        let snapshots = l.snapshots();
        for p in &per_job {
            let act = if p.rule.needs_metrics().is_some() {
                // Judged along its stored metrics; a job without them is not judged.
                if l.metrics.is_empty() {
                    if matches(l, p) {
                        *no_metrics.entry(p.name.clone()).or_default() += 1;
                    }
                    None
                } else {
                    per_job::first_action_by_steps(l, &snapshots, p, prices, now)
                        .map(|(t, r, step, total)| (i, t, r, Some((step, total))))
                }
            } else {
                per_job::first_action(l, &snapshots, p, prices, now).map(|(t, r)| (i, t, r, None))
            };
            if let Some(a) = act {
                per_job_acts.entry(p.name.clone()).or_default().push(a);
            }
        }
    }
    let mut out = Vec::with_capacity(policies.len());
    let mut best: std::collections::HashMap<usize, Usd> = std::collections::HashMap::new();
    for policy in policies {
        let mut not_judged = Vec::new();
        if let Some(&jobs) = no_metrics.get(&policy.name) {
            not_judged.push(NotJudged {
                jobs,
                why: "no training metrics stored (ftguard reads them for running jobs a loss policy matches)",
            });
        }
        let acts: Vec<Act> = if policy.rule.needs_events() {
            let matched = in_window
                .iter()
                .filter(|&&i| matches(&lives[i], policy))
                .count();
            if matched > 0 {
                not_judged.push(NotJudged {
                    jobs: matched,
                    why: "when a job's training steps were reported is not stored along its life",
                });
            }
            Vec::new()
        } else if let Some(spec) = policy.rule.budget() {
            budget::actions(lives, policy, spec, prices, since, now)
                .into_iter()
                .filter(|(i, _, _)| lives[*i].job.created_at >= since)
                .map(|(i, t, r)| (i, t, r, None))
                .collect()
        } else {
            per_job_acts
                .get_mut(&policy.name)
                .map(std::mem::take)
                .unwrap_or_default()
        };
        let mut jobs: Vec<Stop> = acts
            .into_iter()
            .map(|(i, at, reason, steps)| {
                let l = &lives[i];
                let saved = match steps {
                    _ if policy.action == ActionKind::Notify => Usd(0),
                    Some((step, total)) => l.saved_if_stopped_at_step(step, total),
                    None => l.saved_if_stopped(at, now),
                };
                let b = best.entry(i).or_default();
                *b = (*b).max(saved);
                Stop {
                    account: l.account.clone(),
                    job_id: l.job.id.as_str().to_owned(),
                    at,
                    reason,
                    actual_status: l.job.status.as_str().to_owned(),
                    actual_cost: l.cost.actual,
                    saved,
                }
            })
            .collect();
        jobs.sort_by(|a, b| {
            b.saved
                .cmp(&a.saved)
                .then(a.at.cmp(&b.at))
                .then(a.job_id.cmp(&b.job_id))
        });
        let saved = jobs.iter().fold(Usd(0), |s, j| s.saturating_add(j.saved));
        out.push(PolicyReplay {
            name: policy.name.clone(),
            kind: policy.kind,
            action: policy.action,
            jobs,
            saved,
            not_judged,
        });
    }
    Replay {
        since,
        until: now,
        jobs: in_window.len(),
        policies: out,
        saved: best.values().fold(Usd(0), |s, u| s.saturating_add(*u)),
    }
}

/// Whether the policy's match and exemptions take the job in (they read no cost).
fn matches(life: &Life, policy: &Policy) -> bool {
    let v = crate::policy::JobView {
        account: &life.account,
        job: &life.job,
        last_step_at: None,
        steps_checked_at: None,
        curves: None,
        cost: &crate::cost::NO_COST,
    };
    policy.matcher.matches(&v) && !policy.exempt.exempts(&v)
}

#[cfg(test)]
mod tests;
