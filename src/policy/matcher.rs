//! Which jobs a policy looks at (`match`) and which it leaves alone (`exempt`).

use crate::model::glob::glob;
use std::collections::BTreeMap;

use super::JobView;
use super::config::{ExemptConfig, MatchConfig};

/// Every non-empty criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub accounts: Vec<String>,
    models: Vec<String>,
    methods: Vec<String>,
    suffixes: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl Matcher {
    pub fn build(c: &MatchConfig) -> Self {
        Self {
            accounts: c.accounts.clone(),
            models: c.models.clone(),
            methods: c.methods.clone(),
            suffixes: c.suffixes.clone(),
            metadata: c.metadata.clone(),
        }
    }

    pub fn matches(&self, v: &JobView) -> bool {
        let job = v.job;
        (self.accounts.is_empty() || self.accounts.iter().any(|a| a == v.account))
            && (self.models.is_empty() || self.models.iter().any(|g| glob(g, &job.model)))
            && (self.methods.is_empty()
                || self
                    .methods
                    .iter()
                    .any(|m| m == job.method.as_deref().unwrap_or("supervised")))
            && (self.suffixes.is_empty()
                || job
                    .suffix
                    .as_deref()
                    .is_some_and(|s| self.suffixes.iter().any(|g| glob(g, s))))
            && self
                .metadata
                .iter()
                .all(|(k, want)| job.metadata.get(k) == Some(want))
    }
}

/// Any criterion exempts.
#[derive(Debug, Clone, Default)]
pub struct Exempt {
    jobs: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl Exempt {
    pub fn build(c: &ExemptConfig) -> Self {
        Self {
            jobs: c.jobs.clone(),
            metadata: c.metadata.clone(),
        }
    }

    pub fn exempts(&self, v: &JobView) -> bool {
        self.jobs.iter().any(|j| j == v.job.id.as_str())
            || self
                .metadata
                .iter()
                .any(|(k, want)| v.job.metadata.get(k) == Some(want))
    }
}
