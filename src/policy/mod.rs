//! Pure policy evaluation: (jobs, now, policies, grace marks) -> decisions.
//!
//! Architecture invariant: nothing here does I/O, reads a clock or can fail at run time. `now`
//! is an argument; grace marks and step times come in as data. A kind is one file implementing
//! [`Rule`] plus one line in `kinds.rs`.

mod allowed_models;
mod budget;
mod config;
mod deadline;
pub mod format;
mod kinds;
mod loss;
mod loss_divergence;
mod loss_plateau;
mod matcher;
mod max_epochs;
mod max_job_cost;
mod max_queue_time;
mod max_runtime;
mod required_metadata;
mod stalled;
mod standing;

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::model::glob::glob;
pub use crate::model::metrics::{Curves, LossMetric};
pub use crate::model::{GraceKey, GroupNotice};
pub use budget::{
    BudgetError, BudgetSpec, GroupBy, GroupSpend, Period, Spend, SpendTally, group_key,
    parse_timezone, period_start, spend_by_group,
};
pub use config::{LimitValue, PolicyConfig, PolicyError, UnknownCost, compile};
use matcher::{Exempt, Matcher};
pub use standing::{Standing, standing};

use crate::cost::JobCost;
use crate::model::{Crossing, Job, JobRef};

/// What a policy does to an offending job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    #[default]
    Cancel,
    Pause,
    Notify,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Pause => "pause",
            Self::Notify => "notify",
        }
    }
}

/// What to do when a pause is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    Cancel,
    Notify,
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    /// The kind as configured (`max_runtime`, `budget`, ...).
    pub kind: &'static str,
    pub rule: Box<dyn Rule>,
    pub action: ActionKind,
    pub fallback: Fallback,
    pub grace: Duration,
    pub dry_run: bool,
    pub schedule: Option<crate::model::schedule::Schedule>,
    pub matcher: Matcher,
    pub exempt: Exempt,
    pub allow_job_overrides: bool,
}

impl Clone for Policy {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            kind: self.kind,
            rule: self.rule.clone_box(),
            action: self.action,
            fallback: self.fallback,
            grace: self.grace,
            dry_run: self.dry_run,
            schedule: self.schedule.clone(),
            matcher: self.matcher.clone(),
            exempt: self.exempt.clone(),
            allow_job_overrides: self.allow_job_overrides,
        }
    }
}

/// A job as policies see it: the stored job plus facts gathered around it.
#[derive(Debug, Clone, Copy)]
pub struct JobView<'a> {
    pub account: &'a str,
    pub job: &'a Job,
    /// When the newest training step was reported (from events), if known.
    pub last_step_at: Option<i64>,
    /// When the job's events were last fetched successfully: `last_step_at` is as of then.
    pub steps_checked_at: Option<i64>,
    /// What the job has cost and will cost.
    pub cost: &'a JobCost,
    /// Its stored loss curves, for training-quality policies (None: none loaded).
    pub curves: Option<&'a Curves>,
}

/// What a rule may consult besides the job.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    pub now: i64,
    /// The policy lets job metadata tighten its limit.
    pub allow_overrides: bool,
}

impl EvalContext {
    /// The limit after a job's `ftguard.<kind>` metadata, which may only tighten it.
    pub fn duration_limit(&self, job: &Job, kind: &str, limit: Duration) -> Duration {
        if !self.allow_overrides {
            return limit;
        }
        job.metadata
            .get(&format!("ftguard.{kind}"))
            .and_then(|v| humantime::parse_duration(v).ok())
            .map_or(limit, |o| o.min(limit))
    }

    /// Numeric variant of [`Self::duration_limit`].
    pub fn number_limit(&self, job: &Job, kind: &str, limit: f64) -> f64 {
        if !self.allow_overrides {
            return limit;
        }
        job.metadata
            .get(&format!("ftguard.{kind}"))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(limit, |o| o.min(limit))
    }
}

/// One kind of limit. `evaluate` returns the human reason when the job breaks it.
pub trait Rule: RuleClone + std::fmt::Debug + Send + Sync {
    fn evaluate(&self, job: &JobView, ctx: &EvalContext) -> Option<String>;
    /// When a time-based limit will be crossed, if the job stays as it is.
    fn crossing_at(&self, _job: &JobView, _ctx: &EvalContext) -> Option<i64> {
        None
    }
    /// Whether this rule needs the job's events (step times).
    fn needs_events(&self) -> bool {
        false
    }
    /// Whether the job's events should be fetched before this rule decides on it: only when
    /// what is stored already points at a violation. Newer steps can only clear a job, so a
    /// job the stored steps clear needs no request (see [`events_wanted`]).
    fn wants_events(&self, _job: &JobView, _ctx: &EvalContext) -> bool {
        false
    }
    /// For a rule that judges progress in steps (training quality): where the job stands, in
    /// words (`show`, `plan --upcoming`), when it does not break it yet.
    fn progress(&self, _job: &JobView, _ctx: &EvalContext) -> Option<String> {
        None
    }
    /// For a rule judging a curve (training quality): the first reported step at or after
    /// `from_step` at which it breaks, judging the curve as it stood at that step — what a pass
    /// at each step would have found first, in one pass over the curve (`ftguard replay`).
    fn first_breach(&self, _job: &JobView, _ctx: &EvalContext, _from_step: i64) -> Option<i64> {
        None
    }
    /// The loss a training-quality rule judges: running jobs it matches have their metrics
    /// read and stored, and their curves loaded for it.
    fn needs_metrics(&self) -> Option<LossMetric> {
        None
    }
    /// The loss this job is judged on (training-quality rules): an action names the best
    /// checkpoint by it.
    fn judged_loss(&self, _job: &JobView) -> Option<LossMetric> {
        None
    }
    /// Whether this rule needs projected costs (so training files are counted).
    fn needs_costs(&self) -> bool {
        false
    }
    /// Group-aware rules (budgets) see every matching job, finished ones included, and return
    /// the jobs to act on and any notices about groups. `finished` is spend of finished jobs
    /// the caller tallied beforehand instead of passing them in `jobs` (see [`BudgetTallies`]).
    /// Per-job rules keep this default.
    fn evaluate_set(
        &self,
        jobs: &[JobView],
        ctx: &EvalContext,
        _finished: &GroupSpend,
    ) -> SetOutcome {
        SetOutcome {
            hits: jobs
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.job.status.is_terminal())
                .filter_map(|(i, v)| self.evaluate(v, ctx).map(|r| (i, r)))
                .collect(),
            notices: Vec::new(),
        }
    }
    /// The oldest creation time of finished jobs this rule needs to see, if any.
    fn lookback(&self, _now: i64) -> Option<i64> {
        None
    }
    /// Whether `evaluate_set` needs finished jobs too (budgets count their spend). Other
    /// kinds never see them, which keeps evaluation over a long history cheap.
    fn needs_finished_jobs(&self) -> bool {
        false
    }
    /// Whether each job is decided on its own (the default `evaluate_set`): then the jobs can
    /// be evaluated a chunk at a time, and a pass over thousands holds a chunk. Group-aware
    /// rules (budgets) see every job at once.
    fn per_job(&self) -> bool {
        true
    }
    /// What a budget measures (budget kinds only).
    fn budget(&self) -> Option<BudgetSpec> {
        None
    }
}

/// What a rule found over a set of jobs.
#[derive(Debug, Default)]
pub struct SetOutcome {
    /// (index into the jobs, reason) of the jobs to act on.
    pub hits: Vec<(usize, String)>,
    /// Notices about groups rather than jobs (budget thresholds); `policy` is filled in by
    /// [`evaluate_with_spend`].
    pub notices: Vec<GroupNotice>,
}

/// What one evaluation found: decisions about jobs, and notices about budget groups.
#[derive(Debug, Default)]
pub struct Evaluation<'a> {
    pub decisions: Vec<Decision<'a>>,
    pub notices: Vec<GroupNotice>,
}

impl Evaluation<'_> {
    /// The same evaluation, owning its identifiers.
    pub fn into_owned(self) -> Evaluation<'static> {
        Evaluation {
            decisions: self
                .decisions
                .into_iter()
                .map(Decision::into_owned)
                .collect(),
            notices: self.notices,
        }
    }
}

/// Boxed rules clone (policies are cloned on reload and per schedule); every `Clone` rule gets it.
pub trait RuleClone {
    fn clone_box(&self) -> Box<dyn Rule>;
}

impl<T: Rule + Clone + 'static> RuleClone for T {
    fn clone_box(&self) -> Box<dyn Rule> {
        Box::new(self.clone())
    }
}

/// What evaluation asks enforcement to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Carry out the policy's action.
    Act(ActionKind),
    /// First violation of a policy with grace: warn, act after `until`.
    Warn { until: i64 },
    /// Was in grace, now compliant: unmark.
    Clear,
}

/// One decision about one job under one policy. Identifiers borrow from the jobs and policies
/// evaluated, so evaluating a large fleet allocates only reasons; `into_owned` detaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub account: Cow<'a, str>,
    pub job_id: Cow<'a, str>,
    pub policy: Cow<'a, str>,
    pub verdict: Verdict,
    pub reason: String,
    /// Nothing is sent: the policy or the daemon is in dry-run.
    pub dry_run: bool,
    /// For pause: what to do if the pause is refused.
    pub fallback: Fallback,
    /// The job has not started training: cancelling now costs nothing.
    pub waiting: bool,
    pub created_at: i64,
    /// The evaluation time; a grace period starts here.
    pub observed_at: i64,
    /// For training-quality policies: the loss judged, which names the best checkpoint.
    pub judged_loss: Option<LossMetric>,
}

impl Decision<'_> {
    /// The same decision, owning its identifiers.
    pub fn into_owned(self) -> Decision<'static> {
        Decision {
            account: Cow::Owned(self.account.into_owned()),
            job_id: Cow::Owned(self.job_id.into_owned()),
            policy: Cow::Owned(self.policy.into_owned()),
            verdict: self.verdict,
            reason: self.reason,
            dry_run: self.dry_run,
            fallback: self.fallback,
            waiting: self.waiting,
            created_at: self.created_at,
            observed_at: self.observed_at,
            judged_loss: self.judged_loss,
        }
    }
}

/// Evaluates every policy against every active job. `grace_marks` holds when each
/// (account, job, policy) was first seen violating, for policies with a grace period.
pub fn evaluate<'a>(
    jobs: &[JobView<'a>],
    now: i64,
    policies: &'a [Policy],
    grace_marks: &HashMap<GraceKey, i64>,
    global_dry_run: bool,
) -> Vec<Decision<'a>> {
    evaluate_with_spend(
        jobs,
        &HashMap::new(),
        now,
        policies,
        grace_marks,
        global_dry_run,
    )
    .decisions
}

/// [`evaluate`], with finished jobs' spend already tallied per budget policy
/// ([`BudgetTallies`]) instead of the finished jobs themselves in `jobs`: a pass then holds
/// only active jobs, however long the budget period's history.
pub fn evaluate_with_spend<'a>(
    jobs: &[JobView<'a>],
    finished: &HashMap<String, GroupSpend>,
    now: i64,
    policies: &'a [Policy],
    grace_marks: &HashMap<GraceKey, i64>,
    global_dry_run: bool,
) -> Evaluation<'a> {
    let no_spend = GroupSpend::new();
    let mut out = Vec::new();
    let mut notices = Vec::new();
    // One buffer for every policy's candidates: at 100,000 jobs a fresh one per policy cost
    // more in page faults than the rules themselves.
    let mut candidates: Vec<JobView<'a>> = Vec::new();
    for policy in policies {
        let ctx = EvalContext {
            now,
            allow_overrides: policy.allow_job_overrides,
        };
        let finished_too = policy.rule.needs_finished_jobs();
        candidates.clear();
        candidates.extend(jobs.iter().copied().filter(|v| {
            (finished_too || !v.job.status.is_terminal())
                && policy.matcher.matches(v)
                && !policy.exempt.exempts(v)
        }));
        let dry_run = global_dry_run || policy.dry_run;
        let decision = |view: &JobView<'a>, verdict, reason| Decision {
            account: Cow::Borrowed(view.account),
            job_id: Cow::Borrowed(view.job.id.as_str()),
            policy: Cow::Borrowed(policy.name.as_str()),
            verdict,
            reason,
            dry_run,
            fallback: policy.fallback,
            waiting: view.job.status.is_waiting(),
            created_at: view.job.created_at,
            observed_at: now,
            judged_loss: policy.rule.judged_loss(view),
        };
        // This policy's grace marks, looked up by borrowed keys: no allocation per job.
        let marks: HashMap<(&str, &str), i64> = grace_marks
            .iter()
            .filter(|((_, _, p), _)| *p == policy.name)
            .map(|((a, j, _), t)| ((a.as_str(), j.as_str()), *t))
            .collect();
        let mut hit = vec![false; candidates.len()];
        let spend = finished.get(&policy.name).unwrap_or(&no_spend);
        let found = policy.rule.evaluate_set(&candidates, &ctx, spend);
        for (i, reason) in found.hits {
            let Some(view) = candidates.get(i) else {
                continue;
            };
            if view.job.status.is_terminal() {
                continue;
            }
            hit[i] = true;
            // Already paused: where a pause policy puts it. Pausing it again is refused by the
            // API, and that refusal would set off the policy's fallback (a cancel).
            if policy.action == ActionKind::Pause && view.job.status.is_paused() {
                continue;
            }
            let grace = crate::model::secs(policy.grace);
            let verdict = if grace == 0 {
                Verdict::Act(policy.action)
            } else {
                match marks.get(&(view.account, view.job.id.as_str())).copied() {
                    None => Verdict::Warn { until: now + grace },
                    Some(first) if now >= first + grace => Verdict::Act(policy.action),
                    Some(_) => continue,
                }
            };
            out.push(decision(view, verdict, reason));
        }
        // Compliant again during grace: unmark.
        if !marks.is_empty() {
            for (i, view) in candidates.iter().enumerate() {
                if !hit[i]
                    && !view.job.status.is_terminal()
                    && marks.contains_key(&(view.account, view.job.id.as_str()))
                {
                    out.push(decision(
                        view,
                        Verdict::Clear,
                        "compliant again during grace".into(),
                    ));
                }
            }
        }
        notices.extend(found.notices.into_iter().map(|n| GroupNotice {
            policy: policy.name.clone(),
            ..n
        }));
    }
    Evaluation {
        decisions: out,
        notices,
    }
}

/// The next moment a time-based limit (or a grace period) will be crossed by an active job that
/// is compliant now, earliest first. The daemon keeps a timer
/// for the first, so a cancel goes out when the limit is crossed, not at the next poll.
pub fn next_crossings(
    jobs: &[JobView],
    now: i64,
    policies: &[Policy],
    grace_marks: &HashMap<GraceKey, i64>,
) -> Vec<Crossing> {
    let mut out = Vec::new();
    for policy in policies {
        let ctx = EvalContext {
            now,
            allow_overrides: policy.allow_job_overrides,
        };
        for v in jobs {
            if v.job.status.is_terminal() || !policy.matcher.matches(v) || policy.exempt.exempts(v)
            {
                continue;
            }
            // The key only when there are marks to look up: over many jobs (a replay calls this
            // at every moment of every job) three strings a job add up.
            let mark = if grace_marks.is_empty() {
                None
            } else {
                grace_marks
                    .get(&(
                        v.account.to_owned(),
                        v.job.id.as_str().to_owned(),
                        policy.name.clone(),
                    ))
                    .copied()
            };
            let at = match mark {
                Some(first) => Some(first.saturating_add(crate::model::secs(policy.grace))),
                None if policy.rule.evaluate(v, &ctx).is_none() => policy.rule.crossing_at(v, &ctx),
                None => None,
            };
            if let Some(at) = at.filter(|t| *t > now) {
                out.push(Crossing {
                    at,
                    job: JobRef {
                        account: v.account.to_owned(),
                        job_id: v.job.id.as_str().to_owned(),
                    },
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Spend of the jobs streamed through it, per policy that counts spend (budgets) and group,
/// each policy applying its own match, exemptions, period and grouping. Pure: the caller
/// streams the jobs in, so a pass or a `/metrics` scrape holds one job at a time.
#[derive(Debug)]
pub struct BudgetTallies<'p> {
    tallies: Vec<(&'p Policy, SpendTally)>,
}

impl<'p> BudgetTallies<'p> {
    pub fn new(policies: &'p [Policy], now: i64) -> Self {
        let tallies = policies
            .iter()
            .filter_map(|p| {
                let b = p.rule.budget()?;
                Some((p, SpendTally::new(b.start(now), b.group_by)))
            })
            .collect();
        Self { tallies }
    }

    /// Each budget policy's name and period start at `now`: what finished jobs' tallies depend
    /// on besides the jobs themselves (a cache of them is valid while these stay the same).
    pub fn periods(policies: &[Policy], now: i64) -> Vec<(String, i64)> {
        policies
            .iter()
            .filter_map(|p| Some((p.name.clone(), p.rule.budget()?.start(now))))
            .collect()
    }

    /// Whether any policy counts spend (otherwise nothing needs streaming).
    pub fn is_empty(&self) -> bool {
        self.tallies.is_empty()
    }

    pub fn add(&mut self, v: &JobView) {
        for (p, t) in &mut self.tallies {
            if p.matcher.matches(v) && !p.exempt.exempts(v) {
                t.add(v);
            }
        }
    }

    /// Spend per group, by policy name.
    pub fn finish(self) -> HashMap<String, GroupSpend> {
        self.tallies
            .into_iter()
            .map(|(p, t)| (p.name.clone(), t.finish()))
            .collect()
    }
}

/// The oldest creation time of finished jobs any policy needs (budgets look back a period).
pub fn lookback(policies: &[Policy], now: i64) -> Option<i64> {
    policies.iter().filter_map(|p| p.rule.lookback(now)).min()
}

/// Whether any policy needs projected costs (so training files are downloaded and counted).
pub fn needs_costs(policies: &[Policy]) -> bool {
    policies.iter().any(|p| p.rule.needs_costs())
}

/// Whether any policy needs job events (so the sync fetches them).
pub fn needs_events(policies: &[Policy]) -> bool {
    policies.iter().any(|p| p.rule.needs_events())
}

/// Whether any policy judges training metrics (so running jobs' metrics are read).
pub fn needs_metrics(policies: &[Policy]) -> bool {
    policies.iter().any(|p| p.rule.needs_metrics().is_some())
}

/// The running jobs, as (account, job id), that a training-quality policy matches: only their
/// metrics are read (queued and finished jobs publish none that could change a verdict).
pub fn metrics_wanted(jobs: &[JobView], policies: &[Policy]) -> Vec<(String, String)> {
    jobs.iter()
        .filter(|v| v.job.status == crate::model::JobStatus::Running)
        .filter(|v| {
            policies.iter().any(|p| {
                p.rule.needs_metrics().is_some() && p.matcher.matches(v) && !p.exempt.exempts(v)
            })
        })
        .map(|v| (v.account.to_owned(), v.job.id.as_str().to_owned()))
        .collect()
}

/// The active jobs, as (account, job id), whose events must be fetched before policies decide:
/// those a policy that needs events would act on from what is stored. Every other job is
/// left alone, so a fleet of healthy running jobs costs no event requests at all.
pub fn events_wanted(jobs: &[JobView], now: i64, policies: &[Policy]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for v in jobs {
        if v.job.status.is_terminal() {
            continue;
        }
        let wanted = policies.iter().any(|p| {
            let ctx = EvalContext {
                now,
                allow_overrides: p.allow_job_overrides,
            };
            p.rule.needs_events()
                && p.matcher.matches(v)
                && !p.exempt.exempts(v)
                && p.rule.wants_events(v, &ctx)
        });
        if wanted {
            out.push((v.account.to_owned(), v.job.id.as_str().to_owned()));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod testkit {
    use super::*;

    pub const NOW: i64 = 1_700_000_000;

    pub fn job(id: &str, status: &str, age_secs: i64) -> Job {
        Job {
            training_file: Some("file-1".into()),
            method: Some("supervised".into()),
            ..Job::new(id, "gpt-4o-mini-2024-07-18", status, NOW - age_secs)
        }
    }

    /// A view of a job in account "prod" with the given cost.
    pub fn view<'a>(job: &'a Job, cost: &'a JobCost) -> JobView<'a> {
        JobView {
            account: "prod",
            job,
            last_step_at: None,
            steps_checked_at: None,
            cost,
            curves: None,
        }
    }

    pub fn policy(toml: &str) -> Policy {
        let c: PolicyConfig = toml::from_str(toml).unwrap();
        compile(&c).unwrap()
    }

    /// The reason of the policy's first decision on one job, or None when it is left alone.
    pub fn check(policy_toml: &str, job: &Job) -> Option<String> {
        check_view(policy_toml, view(job, &crate::cost::NO_COST))
    }

    /// [`check`] for a view built by the caller (step times, costs).
    pub fn check_view(policy_toml: &str, v: JobView) -> Option<String> {
        let p = policy(policy_toml);
        evaluate(&[v], NOW, std::slice::from_ref(&p), &HashMap::new(), false)
            .into_iter()
            .next()
            .map(|d| d.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    const RUNTIME: &str = "name='rt'\nkind='max_runtime'\nlimit='6h'";

    #[test]
    fn terminal_jobs_are_never_acted_on() {
        for s in ["succeeded", "failed", "cancelled"] {
            assert_eq!(check(RUNTIME, &job("a", s, 10 * 3600)), None, "{s}");
        }
        assert!(
            check(RUNTIME, &job("a", "paused", 10 * 3600)).is_some(),
            "unknown status is active"
        );
    }

    #[test]
    fn a_pause_policy_leaves_a_paused_job_alone() {
        let pause = "name='rt'\nkind='max_runtime'\nlimit='6h'\naction='pause'\nfallback='cancel'";
        assert_eq!(check(pause, &job("a", "paused", 10 * 3600)), None);
        assert!(check(pause, &job("a", "running", 10 * 3600)).is_some());
        // A cancel policy still cancels a paused job past its limit.
        assert!(check(RUNTIME, &job("a", "paused", 10 * 3600)).is_some());
    }

    #[test]
    fn match_and_exempt() {
        let mut j = job("ftjob-x", "running", 7 * 3600);
        j.metadata.insert("team".into(), "research".into());
        j.suffix = Some("exp-1".into());
        for (extra, acts) in [
            ("match = { accounts = ['prod'] }", true),
            ("match = { accounts = ['staging'] }", false),
            ("match = { models = ['gpt-4o*'] }", true),
            ("match = { models = ['gpt-4.1*'] }", false),
            ("match = { methods = ['dpo'] }", false),
            ("match = { suffixes = ['exp-*'] }", true),
            ("match = { suffixes = ['prod-*'] }", false),
            ("match = { metadata = { team = 'research' } }", true),
            ("match = { metadata = { team = 'infra' } }", false),
            ("exempt = { jobs = ['ftjob-x'] }", false),
            ("exempt = { metadata = { team = 'research' } }", false),
            ("exempt = { metadata = { team = 'infra' } }", true),
        ] {
            let got = check(&format!("{RUNTIME}\n{extra}"), &j).is_some();
            assert_eq!(got, acts, "{extra}");
        }
    }

    fn verdicts(p: &Policy, j: &Job, now: i64, mark: Option<i64>) -> Vec<Verdict> {
        let views = [view(j, &crate::cost::NO_COST)];
        let mut marks = HashMap::new();
        if let Some(m) = mark {
            marks.insert(("prod".into(), j.id.to_string(), p.name.clone()), m);
        }
        evaluate(&views, now, std::slice::from_ref(p), &marks, false)
            .into_iter()
            .map(|d| d.verdict)
            .collect()
    }

    #[test]
    fn grace_warns_then_acts_or_clears() {
        let p = policy(&format!("{RUNTIME}\ngrace='15m'"));
        let j = job("a", "running", 7 * 3600);
        assert_eq!(
            verdicts(&p, &j, NOW, None),
            vec![Verdict::Warn { until: NOW + 900 }]
        );
        assert_eq!(
            verdicts(&p, &j, NOW, Some(NOW - 60)),
            vec![],
            "still in grace"
        );
        assert_eq!(
            verdicts(&p, &j, NOW, Some(NOW - 900)),
            vec![Verdict::Act(ActionKind::Cancel)]
        );
        let ok = job("a", "running", 3600);
        assert_eq!(verdicts(&p, &ok, NOW, Some(NOW - 60)), vec![Verdict::Clear]);
        assert_eq!(verdicts(&p, &ok, NOW, None), vec![]);
    }

    #[test]
    fn overrides_only_tighten_and_only_when_allowed() {
        let mut j = job("a", "running", 3 * 3600);
        j.metadata.insert("ftguard.max_runtime".into(), "2h".into());
        assert!(check(RUNTIME, &j).is_none(), "not allowed: ignored");
        let allowed = format!("{RUNTIME}\nallow_job_overrides=true");
        assert!(check(&allowed, &j).is_some(), "tightened to 2h");
        let mut loose = job("a", "running", 7 * 3600);
        loose
            .metadata
            .insert("ftguard.max_runtime".into(), "48h".into());
        assert!(check(&allowed, &loose).is_some(), "cannot loosen");
    }

    #[test]
    fn events_are_wanted_only_where_a_stalled_policy_would_act() {
        let all = policy("name='s'\nkind='stalled'\nlimit='30m'");
        let only_41 = policy(
            "name='s41'\nkind='stalled'\nlimit='10m'\nmatch={models=['gpt-4.1*']}\nexempt={metadata={ftguard='exempt'}}",
        );
        let runtime = policy(RUNTIME);
        let mut old_41 = job("old-41", "running", 3600);
        old_41.model = "gpt-4.1-2025-04-14".into();
        let mut exempt_41 = old_41.clone();
        exempt_41.id = crate::model::JobId::new("exempt-41");
        exempt_41.metadata.insert("ftguard".into(), "exempt".into());
        let mut young_41 = job("young-41", "running", 20 * 60);
        young_41.model = "gpt-4.1-2025-04-14".into();
        let old = job("old", "running", 3600);
        let done = job("done", "succeeded", 3600);
        let jobs = [&old_41, &exempt_41, &young_41, &old, &done];
        let views: Vec<JobView> = jobs
            .iter()
            .map(|j| view(j, &crate::cost::NO_COST))
            .collect();
        let ids = |policies: &[Policy]| -> Vec<String> {
            events_wanted(&views, NOW, policies)
                .into_iter()
                .map(|(a, id)| {
                    assert_eq!(a, "prod");
                    id
                })
                .collect()
        };
        assert_eq!(
            ids(std::slice::from_ref(&runtime)),
            Vec::<String>::new(),
            "no stalled policy"
        );
        assert_eq!(
            ids(std::slice::from_ref(&all)),
            ["old-41", "exempt-41", "old"]
        );
        // 20 minutes old: past the 10m limit of the policy that matches it, not of the other.
        assert_eq!(ids(std::slice::from_ref(&only_41)), ["old-41", "young-41"]);
        // Wanted by two policies, fetched once.
        assert_eq!(
            ids(&[all, only_41, runtime]),
            ["old-41", "exempt-41", "young-41", "old"]
        );
    }

    #[test]
    fn crossings_are_known_in_advance() {
        let rt = policy(RUNTIME);
        let q = policy("name='q'\nkind='max_queue_time'\nlimit='2h'\ngrace='10m'");
        let young = job("young", "running", 3600);
        let queued = job("queued", "queued", 60);
        let over = job("over", "running", 7 * 3600);
        let views: Vec<JobView> = [&young, &queued, &over]
            .iter()
            .map(|j| view(j, &crate::cost::NO_COST))
            .collect();
        let mut marks = HashMap::new();
        let c = next_crossings(&views, NOW, &[rt.clone(), q.clone()], &marks);
        let at = |id: &str| c.iter().find(|x| x.job.job_id == id).map(|x| x.at);
        assert_eq!(
            at("young"),
            Some(young.created_at + 6 * 3600 + 1),
            "runtime limit crossing"
        );
        assert_eq!(
            at("queued"),
            Some(queued.created_at + 2 * 3600 + 1),
            "queue limit crossing (the earlier of two)"
        );
        assert_eq!(
            at("over"),
            None,
            "already violating: the pass acts, no timer"
        );
        assert!(c.windows(2).all(|w| w[0].at <= w[1].at), "earliest first");
        // A grace period in progress: its expiry.
        marks.insert(("prod".into(), "queued".into(), "q".into()), NOW - 60);
        let c = next_crossings(&views, NOW, &[q], &marks);
        assert_eq!(
            c.iter().find(|x| x.job.job_id == "queued").map(|x| x.at),
            Some(NOW - 60 + 600)
        );
    }

    #[test]
    fn dry_run_is_carried() {
        let p = policy(&format!("{RUNTIME}\ndry_run=true"));
        let j = job("a", "running", 7 * 3600);
        let views = [view(&j, &crate::cost::NO_COST)];
        let d = evaluate(
            &views,
            NOW,
            std::slice::from_ref(&p),
            &HashMap::new(),
            false,
        );
        assert!(d[0].dry_run);
    }

    fn compile_err(toml: &str) -> String {
        let c: PolicyConfig = toml::from_str(toml).unwrap();
        compile(&c).unwrap_err().0
    }

    #[test]
    fn compile_errors_name_the_value() {
        assert!(compile_err("name='x'\nkind='max_runtim'\nlimit='1h'").contains("max_runtim"));
        assert!(compile_err("name='x'\nkind='max_runtime'\nlimit='6 hourz'").contains("6 hourz"));
        assert!(compile_err("name='x'\nkind='max_runtime'").contains("limit"));
        assert!(
            compile_err("name='x'\nkind='max_runtime'\nlimit='1h'\nmodels=['a']")
                .contains("models")
        );
        assert!(
            compile_err("name='x'\nkind='max_runtime'\nlimit='1h'\nschedule='bad'").contains("bad")
        );
    }
}
