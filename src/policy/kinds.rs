//! The registry of policy kinds: one line per kind.

use super::{PolicyConfig, Rule};

/// A kind: its name, the kind-specific keys it reads, and how to build its rule.
pub struct Kind {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub build: fn(&PolicyConfig) -> Result<Box<dyn Rule>, super::PolicyError>,
}

const KINDS: &[Kind] = &[
    super::max_runtime::KIND,
    super::max_queue_time::KIND,
    super::deadline::KIND,
    super::allowed_models::KIND,
    super::max_epochs::KIND,
    super::required_metadata::KIND,
    super::stalled::KIND,
    super::max_job_cost::KIND,
    super::budget::KIND,
    super::loss_plateau::KIND,
    super::loss_divergence::KIND,
];

pub fn find(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}
