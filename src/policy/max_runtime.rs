//! `max_runtime`: now - created_at exceeds the limit.

use std::time::Duration;

use super::format;
use super::kinds::Kind;
use super::{EvalContext, JobView, Rule};

pub const KIND: Kind = Kind {
    name: "max_runtime",
    keys: &["limit"],
    build: |c| {
        Ok(Box::new(MaxRuntime {
            limit: c.limit_duration()?,
        }))
    },
};

#[derive(Debug, Clone)]
struct MaxRuntime {
    limit: Duration,
}

impl Rule for MaxRuntime {
    fn evaluate(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        let limit = ctx.duration_limit(v.job, KIND.name, self.limit);
        let ran = ctx.now.saturating_sub(v.job.created_at);
        (ran > crate::model::secs(limit))
            .then(|| format!("ran {} > {}", format::secs(ran), format::limit(limit)))
    }
    fn crossing_at(&self, v: &JobView, ctx: &EvalContext) -> Option<i64> {
        let limit = ctx.duration_limit(v.job, KIND.name, self.limit);
        Some(
            v.job
                .created_at
                .saturating_add(crate::model::secs(limit))
                .saturating_add(1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn cases() {
        let p = "name='rt'\nkind='max_runtime'\nlimit='6h'";
        assert_eq!(
            check(p, &job("a", "running", 7 * 3600 + 125)).as_deref(),
            Some("ran 7h02m > 6h")
        );
        assert_eq!(
            check(p, &job("a", "queued", 7 * 3600)).as_deref(),
            Some("ran 7h00m > 6h")
        );
        assert_eq!(
            check(p, &job("a", "running", 6 * 3600)),
            None,
            "at the limit is not over it"
        );
        assert_eq!(check(p, &job("a", "running", 60)), None);
    }
}
