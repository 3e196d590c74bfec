//! Where one job stands with each policy (`ftguard show`): whether it breaks it now, when a
//! time-based limit will be reached, or why the policy leaves it alone. Answers the question
//! a job's owner asks — "when will ftguard cancel my job?" — with the rules the passes use.

use serde::Serialize;

use super::{ActionKind, EvalContext, JobView, Policy};

/// One policy's view of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "standing", rename_all = "snake_case")]
pub enum Standing {
    /// Breaks it now: the next pass acts (or, with `grace`, warns first).
    Breaks { reason: String },
    /// Breaks it, and is paused already: what this (pause) policy does; nothing more until the
    /// job is resumed.
    Paused { reason: String },
    /// Broke it and was warned; acted on at `until` if it still breaks it then.
    InGrace { reason: String, until: i64 },
    /// Keeps it now; a time-based limit is reached at `at` if nothing changes.
    Due { at: i64 },
    /// Keeps it for now; a training-quality policy says how far the job is from its limit in
    /// steps (best value and step, current, steps left if nothing improves).
    Watching { progress: String },
    /// Keeps it, with nothing time-based ahead.
    Keeps,
    /// Decided over a group of jobs (budgets): `ftguard spend` shows where the group stands.
    Group,
    /// The policy's `match` leaves this job out.
    NotMatched,
    /// The policy's `exempt` names this job.
    Exempt,
}

/// Where an active job stands with `policy` at `now`; `grace_mark` is when it was first seen
/// breaking it, if it is in grace. Finished jobs are never acted on: callers skip them.
pub fn standing(v: &JobView, now: i64, policy: &Policy, grace_mark: Option<i64>) -> Standing {
    if !policy.matcher.matches(v) {
        return Standing::NotMatched;
    }
    if policy.exempt.exempts(v) {
        return Standing::Exempt;
    }
    if policy.rule.needs_finished_jobs() {
        return Standing::Group;
    }
    let ctx = EvalContext {
        now,
        allow_overrides: policy.allow_job_overrides,
    };
    match (policy.rule.evaluate(v, &ctx), grace_mark) {
        (Some(reason), _) if policy.action == ActionKind::Pause && v.job.status.is_paused() => {
            Standing::Paused { reason }
        }
        (Some(reason), Some(first)) if !policy.grace.is_zero() => Standing::InGrace {
            reason,
            until: first.saturating_add(crate::model::secs(policy.grace)),
        },
        (Some(reason), _) => Standing::Breaks { reason },
        (None, _) => match policy.rule.crossing_at(v, &ctx) {
            Some(at) if at > now => Standing::Due { at },
            _ => match policy.rule.progress(v, &ctx) {
                Some(progress) => Standing::Watching { progress },
                None => Standing::Keeps,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn cases() {
        let no_cost = &crate::cost::NO_COST;
        let running_5h = job("a", "running", 5 * 3600);
        let running_7h = job("a", "running", 7 * 3600);
        let mut exempt = job("a", "running", 7 * 3600);
        exempt.metadata.insert("ftguard".into(), "exempt".into());
        let rt = "name='rt'\nkind='max_runtime'\nlimit='6h'";
        let rt_grace = "name='rt'\nkind='max_runtime'\nlimit='6h'\ngrace='15m'";
        let paused_7h = job("a", "paused", 7 * 3600);
        let rt_pause = "name='rt'\nkind='max_runtime'\nlimit='6h'\naction='pause'";
        let cases: [(&str, &crate::model::Job, Option<i64>, Standing); 11] = [
            (
                rt_pause,
                &paused_7h,
                None,
                Standing::Paused {
                    reason: "ran 7h00m > 6h".into(),
                },
            ),
            // A cancel policy cancels a paused job past its limit.
            (
                rt,
                &paused_7h,
                None,
                Standing::Breaks {
                    reason: "ran 7h00m > 6h".into(),
                },
            ),
            (rt, &running_5h, None, Standing::Due { at: NOW + 3600 + 1 }),
            (
                rt,
                &running_7h,
                None,
                Standing::Breaks {
                    reason: "ran 7h00m > 6h".into(),
                },
            ),
            (
                rt_grace,
                &running_7h,
                None,
                Standing::Breaks {
                    reason: "ran 7h00m > 6h".into(),
                },
            ),
            (
                rt_grace,
                &running_7h,
                Some(NOW - 60),
                Standing::InGrace {
                    reason: "ran 7h00m > 6h".into(),
                    until: NOW - 60 + 900,
                },
            ),
            (
                "name='m'\nkind='allowed_models'\nmodels=['gpt-4o-mini*']",
                &running_7h,
                None,
                Standing::Keeps,
            ),
            (
                "name='rt'\nkind='max_runtime'\nlimit='6h'\nmatch={accounts=['staging']}",
                &running_7h,
                None,
                Standing::NotMatched,
            ),
            (
                "name='rt'\nkind='max_runtime'\nlimit='6h'\nexempt={metadata={ftguard='exempt'}}",
                &exempt,
                None,
                Standing::Exempt,
            ),
            (
                "name='b'\nkind='budget'\nlimit_usd=10.0\nperiod='month'",
                &running_7h,
                None,
                Standing::Group,
            ),
            // Queue time is over once a job runs: nothing ahead.
            (
                "name='q'\nkind='max_queue_time'\nlimit='2h'",
                &running_5h,
                None,
                Standing::Keeps,
            ),
        ];
        for (toml, j, mark, expect) in cases {
            let p = policy(toml);
            assert_eq!(standing(&view(j, no_cost), NOW, &p, mark), expect, "{toml}");
        }
    }

    #[test]
    fn agrees_with_the_timer_and_the_pass() {
        // Due at the crossing the deadline timer arms; broken one second later, as a pass sees.
        let p = policy("name='rt'\nkind='max_runtime'\nlimit='6h'");
        let j = job("a", "running", 5 * 3600);
        let no_cost = &crate::cost::NO_COST;
        let v = view(&j, no_cost);
        let Standing::Due { at } = standing(&v, NOW, &p, None) else {
            panic!("not due");
        };
        let timer =
            super::super::next_crossings(&[v], NOW, std::slice::from_ref(&p), &Default::default());
        assert_eq!(timer[0].at, at);
        assert!(matches!(
            standing(&v, at, &p, None),
            Standing::Breaks { .. }
        ));
        assert_eq!(standing(&v, at - 1, &p, None), Standing::Due { at });
    }
}
