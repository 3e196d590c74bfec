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

impl Rule for Stalled {
    fn evaluate(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        if v.job.status != JobStatus::Running {
            return None;
        }
        let limit = ctx.duration_limit(v.job, KIND.name, self.limit);
        // No step yet: measure from creation, so a job that never trains is caught too.
        let (since, what) = match v.last_step_at {
            Some(t) => (t, "no training step for"),
            None => (v.job.created_at, "no training step since creation,"),
        };
        let idle = ctx.now - since;
        (idle > limit.as_secs() as i64)
            .then(|| format!("{what} {} > {}", format::secs(idle), format::limit(limit)))
    }
    fn needs_events(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::JobView;
    use super::super::testkit::*;

    fn reason(last_step_ago: Option<i64>, status: &str) -> Option<String> {
        let j = job("a", status, 5 * 3600);
        let v = JobView {
            last_step_at: last_step_ago.map(|a| NOW - a),
            ..view(&j, &crate::cost::NO_COST)
        };
        check_view("name='s'\nkind='stalled'\nlimit='30m'", v)
    }

    #[test]
    fn cases() {
        assert_eq!(
            reason(Some(3600), "running").as_deref(),
            Some("no training step for 1h00m > 30m")
        );
        assert_eq!(reason(Some(60), "running"), None);
        assert_eq!(
            reason(Some(3600), "queued"),
            None,
            "only running jobs stall"
        );
        assert!(reason(None, "running").is_some());
    }
}
