//! `max_queue_time`: still `validating_files` or `queued` (Azure OpenAI: `created`, `pending`)
//! after the limit.

use std::time::Duration;

use super::format;
use super::kinds::Kind;
use super::{EvalContext, JobView, Rule};

pub const KIND: Kind = Kind {
    name: "max_queue_time",
    keys: &["limit"],
    build: |c| {
        Ok(Box::new(MaxQueueTime {
            limit: c.limit_duration()?,
        }))
    },
};

#[derive(Debug, Clone)]
struct MaxQueueTime {
    limit: Duration,
}

impl Rule for MaxQueueTime {
    fn evaluate(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        if !v.job.status.is_waiting() {
            return None;
        }
        let limit = ctx.duration_limit(v.job, KIND.name, self.limit);
        let waited = ctx.now.saturating_sub(v.job.created_at);
        (waited > crate::model::secs(limit)).then(|| {
            format!(
                "{} for {} > {}",
                v.job.status,
                format::secs(waited),
                format::limit(limit)
            )
        })
    }
    fn crossing_at(&self, v: &JobView, ctx: &EvalContext) -> Option<i64> {
        v.job.status.is_waiting().then(|| {
            v.job
                .created_at
                .saturating_add(crate::model::secs(
                    ctx.duration_limit(v.job, KIND.name, self.limit),
                ))
                .saturating_add(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn cases() {
        let p = "name='q'\nkind='max_queue_time'\nlimit='2h'";
        assert_eq!(
            check(p, &job("a", "queued", 3 * 3600)).as_deref(),
            Some("queued for 3h00m > 2h")
        );
        assert!(check(p, &job("a", "validating_files", 3 * 3600)).is_some());
        assert_eq!(
            check(p, &job("a", "running", 3 * 3600)),
            None,
            "running is not queued"
        );
        assert_eq!(check(p, &job("a", "queued", 3600)), None);
        // Azure OpenAI's names for the same two states.
        assert_eq!(
            check(p, &job("a", "pending", 3 * 3600)).as_deref(),
            Some("pending for 3h00m > 2h")
        );
        assert!(check(p, &job("a", "created", 3 * 3600)).is_some());
        assert_eq!(
            check(p, &job("a", "paused", 3 * 3600)),
            None,
            "paused on purpose"
        );
    }
}
