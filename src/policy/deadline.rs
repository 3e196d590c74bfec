//! `deadline`: the API's `estimated_finish` - created_at exceeds the limit; cancel early
//! instead of waiting for the runtime cap.

use std::time::Duration;

use super::format;
use super::kinds::Kind;
use super::{EvalContext, JobView, Rule};

pub const KIND: Kind = Kind {
    name: "deadline",
    keys: &["limit"],
    build: |c| {
        Ok(Box::new(Deadline {
            limit: c.limit_duration()?,
        }))
    },
};

#[derive(Debug, Clone)]
struct Deadline {
    limit: Duration,
}

impl Rule for Deadline {
    fn evaluate(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        let finish = v.job.estimated_finish?;
        let limit = ctx.duration_limit(v.job, KIND.name, self.limit);
        let total = finish.saturating_sub(v.job.created_at);
        (total > crate::model::secs(limit)).then(|| {
            format!(
                "estimated to finish after {} > {}",
                format::secs(total),
                format::limit(limit)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn cases() {
        let p = "name='d'\nkind='deadline'\nlimit='4h'";
        let mut j = job("a", "running", 3600);
        assert_eq!(check(p, &j), None, "no estimate, no verdict");
        j.estimated_finish = Some(j.created_at + 5 * 3600);
        assert_eq!(
            check(p, &j).as_deref(),
            Some("estimated to finish after 5h00m > 4h")
        );
        j.estimated_finish = Some(j.created_at + 3 * 3600);
        assert_eq!(check(p, &j), None);
    }
}
