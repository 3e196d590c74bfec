//! `stalled`: a running job whose newest training step is older than the limit.

use std::time::Duration;

use super::format;
use super::kinds::Kind;
use super::{EvalContext, JobView, Rule};
use crate::model::JobStatus;

pub const KIND: Kind = Kind {
    name: "stalled",
    keys: &["limit"],
    build: |c| {
        Ok(Box::new(Stalled {
            limit: c.limit_duration()?,
        }))
    },
};

#[derive(Debug, Clone)]
struct Stalled {
    limit: Duration,
}

impl Stalled {
    /// How long the job had gone without a training step as of `at`, and how to say it.
    fn idle_at(v: &JobView, at: i64) -> (i64, &'static str) {
        // No step yet: measure from creation, so a job that never trains is caught too.
        match v.last_step_at {
            Some(t) => (at - t, "no training step for"),
            None => (at - v.job.created_at, "no training step since creation,"),
        }
    }
}

impl Rule for Stalled {
    fn evaluate(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        if v.job.status != JobStatus::Running {
            return None;
        }
        let limit = ctx.duration_limit(v.job, KIND.name, self.limit);
        // Decided on evidence only: as of the newest successful fetch of the job's events. A
        // job whose events could not be fetched is not stalled for lack of known steps.
        let checked = v.steps_checked_at?.min(ctx.now);
        let (idle, what) = Self::idle_at(v, checked);
        (idle > crate::model::secs(limit))
            .then(|| format!("{what} {} > {}", format::secs(idle), format::limit(limit)))
    }
    fn needs_events(&self) -> bool {
        true
    }
    fn wants_events(&self, v: &JobView, ctx: &EvalContext) -> bool {
        let limit = ctx.duration_limit(v.job, KIND.name, self.limit);
        v.job.status == JobStatus::Running
            && Self::idle_at(v, ctx.now).0 > crate::model::secs(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{EvalContext, JobView};
    use crate::cost::NO_COST;

    const POLICY: &str = "name='s'\nkind='stalled'\nlimit='30m'";

    /// A job created 5h ago; (newest step, events checked) as seconds before NOW.
    fn v<'a>(
        j: &'a crate::model::Job,
        step_ago: Option<i64>,
        checked_ago: Option<i64>,
    ) -> JobView<'a> {
        JobView {
            last_step_at: step_ago.map(|a| NOW - a),
            steps_checked_at: checked_ago.map(|a| NOW - a),
            curves: None,
            ..view(j, &NO_COST)
        }
    }

    fn wants(view: JobView) -> bool {
        let p = policy(POLICY);
        let ctx = EvalContext {
            now: NOW,
            allow_overrides: true,
        };
        p.rule.wants_events(&view, &ctx)
    }

    #[test]
    fn decides_on_what_the_last_check_of_events_found() {
        let running = job("a", "running", 5 * 3600);
        let queued = job("b", "queued", 5 * 3600);
        // (job, newest step ago, checked ago, reason)
        type Case<'a> = (
            &'a crate::model::Job,
            Option<i64>,
            Option<i64>,
            Option<&'a str>,
        );
        let cases: [Case; 7] = [
            (
                &running,
                Some(3600),
                Some(0),
                Some("no training step for 1h00m > 30m"),
            ),
            (&running, Some(60), Some(0), None),
            (
                &running,
                None,
                Some(0),
                Some("no training step since creation, 5h00m > 30m"),
            ),
            // Never checked (or every fetch failed): no evidence, no decision.
            (&running, Some(3600), None, None),
            (&running, None, None, None),
            // As of the last check (40m ago) the step was 20m old: not stalled then.
            (&running, Some(3600), Some(2400), None),
            (&queued, Some(3600), Some(0), None),
        ];
        for (j, step, checked, want) in cases {
            assert_eq!(
                check_view(POLICY, v(j, step, checked)).as_deref(),
                want,
                "{} step {step:?} checked {checked:?}",
                j.status.as_str()
            );
        }
    }

    #[test]
    fn fetches_events_only_for_jobs_the_stored_steps_do_not_clear() {
        let running = job("a", "running", 5 * 3600);
        assert!(
            wants(v(&running, Some(3600), Some(3600))),
            "last step 1h old"
        );
        assert!(
            wants(v(&running, None, None)),
            "never checked, created 5h ago"
        );
        assert!(
            !wants(v(&running, Some(600), Some(600))),
            "a step 10m ago clears it"
        );
        let young = job("y", "running", 600);
        assert!(!wants(v(&young, None, None)), "created 10m ago");
        let queued = job("q", "queued", 5 * 3600);
        assert!(!wants(v(&queued, None, None)), "only running jobs stall");
    }
}
