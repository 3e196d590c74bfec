//! `allowed_models`: the base model must match one of the globs. A job whose model the API does
//! not report (Portkey's mapping of Bedrock jobs has none) is not judged: an unknown model is
//! not a disallowed one, and a global allow-list would otherwise cancel every such job.

use super::kinds::Kind;
use super::{EvalContext, JobView, Rule, glob};

pub const KIND: Kind = Kind {
    name: "allowed_models",
    keys: &["models"],
    build: |c| match &c.models {
        Some(m) if !m.is_empty() => Ok(Box::new(AllowedModels { models: m.clone() })),
        _ => Err("kind \"allowed_models\" needs `models` (a non-empty list of globs)".into()),
    },
};

#[derive(Debug, Clone)]
struct AllowedModels {
    models: Vec<String>,
}

impl Rule for AllowedModels {
    fn evaluate(&self, v: &JobView, _: &EvalContext) -> Option<String> {
        if v.job.model.is_empty() {
            return None;
        }
        (!self.models.iter().any(|g| glob(g, &v.job.model))).then(|| {
            format!(
                "model {} is not in [{}]",
                v.job.model,
                self.models.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn cases() {
        let p = "name='m'\nkind='allowed_models'\nmodels=['gpt-4o-mini*','gpt-4.1-nano*']";
        let mut j = job("a", "queued", 0);
        assert_eq!(check(p, &j), None);
        j.model = "gpt-4o-2024-08-06".into();
        assert_eq!(
            check(p, &j).as_deref(),
            Some("model gpt-4o-2024-08-06 is not in [gpt-4o-mini*, gpt-4.1-nano*]")
        );
        j.model = String::new();
        assert_eq!(check(p, &j), None, "a model the API did not report");
    }
}
