//! `max_epochs`: the resolved `n_epochs` is above the limit ("auto" is not judged until resolved).

use super::kinds::Kind;
use super::{EvalContext, JobView, Rule};

pub const KIND: Kind = Kind {
    name: "max_epochs",
    keys: &["limit"],
    build: |c| {
        Ok(Box::new(MaxEpochs {
            limit: c.limit_number()?,
        }))
    },
};

#[derive(Debug, Clone)]
struct MaxEpochs {
    limit: f64,
}

impl Rule for MaxEpochs {
    fn evaluate(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        let epochs = v.job.resolved_epochs()?;
        let limit = ctx.number_limit(v.job, KIND.name, self.limit);
        (epochs > limit).then(|| format!("n_epochs {epochs} > {limit}"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn cases() {
        let p = "name='e'\nkind='max_epochs'\nlimit=3";
        let mut j = job("a", "running", 0);
        j.n_epochs = Some(serde_json::json!("auto"));
        assert_eq!(check(p, &j), None);
        j.n_epochs = Some(serde_json::json!(4));
        assert_eq!(check(p, &j).as_deref(), Some("n_epochs 4 > 3"));
        j.n_epochs = Some(serde_json::json!(3));
        assert_eq!(check(p, &j), None);
    }
}
