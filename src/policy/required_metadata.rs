//! `required_metadata`: the job lacks a metadata key needed for cost attribution.

use super::kinds::Kind;
use super::{EvalContext, JobView, Rule};

pub const KIND: Kind = Kind {
    name: "required_metadata",
    keys: &["keys"],
    build: |c| match &c.keys {
        Some(k) if !k.is_empty() => Ok(Box::new(RequiredMetadata { keys: k.clone() })),
        _ => Err("kind \"required_metadata\" needs `keys` (a non-empty list)".into()),
    },
};

#[derive(Debug, Clone)]
struct RequiredMetadata {
    keys: Vec<String>,
}

impl Rule for RequiredMetadata {
    fn evaluate(&self, v: &JobView, _: &EvalContext) -> Option<String> {
        let missing: Vec<&str> = self
            .keys
            .iter()
            .filter(|k| v.job.metadata.get(*k).is_none_or(|s| s.is_empty()))
            .map(String::as_str)
            .collect();
        (!missing.is_empty()).then(|| format!("metadata lacks {}", missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn cases() {
        let p = "name='r'\nkind='required_metadata'\nkeys=['team','cost_center']";
        let mut j = job("a", "queued", 0);
        assert_eq!(
            check(p, &j).as_deref(),
            Some("metadata lacks team, cost_center")
        );
        j.metadata.insert("team".into(), "ml".into());
        assert_eq!(check(p, &j).as_deref(), Some("metadata lacks cost_center"));
        j.metadata.insert("cost_center".into(), "42".into());
        assert_eq!(check(p, &j), None);
    }
}
