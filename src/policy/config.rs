//! `[[policies]]` as written, and its compilation into a [`Policy`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::matcher::{Exempt, Matcher};
use super::{ActionKind, Fallback, Policy};

/// A limit as written: a duration string (`"6h"`) or a number (`3`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LimitValue {
    Number(f64),
    Text(String),
}

/// `match = { ... }`: every listed criterion must hold (globs for models and suffixes).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suffixes: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// `exempt = { ... }`: any listed criterion exempts the job.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExemptConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// One policy as written. Kind-specific keys are optional here and checked by the kind.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    #[serde(default)]
    pub action: ActionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    #[serde(default, with = "humantime_serde")]
    pub grace: Option<Duration>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, rename = "match")]
    pub matches: MatchConfig,
    #[serde(default)]
    pub exempt: ExemptConfig,
    #[serde(default)]
    pub allow_job_overrides: bool,
    /// Cost kinds: a limit in dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_usd: Option<f64>,
    /// `budget`: "day" | "week" | "month" (calendar, in `timezone`) or a rolling duration ("30d").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// `budget`: IANA time zone for calendar periods; default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `budget`: "account" | "model" | "metadata.KEY"; default one group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// `budget`: fractions of the limit that notify once per group and period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_at: Option<Vec<f64>>,
    /// Cost kinds: what to do with a job whose model has no price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_cost: Option<UnknownCost>,
    /// Training-quality kinds: the loss judged (train_loss | valid_loss | full_valid_loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Training-quality kinds: steps the condition must last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<i64>,
    /// `loss_plateau`: the least improvement of the best value that counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_delta: Option<f64>,
    /// Training-quality kinds: judge nothing before this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_steps: Option<i64>,
    /// `loss_divergence`: how many times its best value the loss must stay above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Training-quality kinds: reported values in the trailing median that smooths the loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
}

/// What a cost policy does with a job of unknown price.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownCost {
    #[default]
    Ignore,
    Cancel,
}

impl PolicyConfig {
    /// The kind-specific keys that are set, for rejecting ones a kind does not read.
    pub(crate) fn set_kind_keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.limit.is_some() {
            keys.push("limit");
        }
        if self.models.is_some() {
            keys.push("models");
        }
        if self.keys.is_some() {
            keys.push("keys");
        }
        for (set, key) in [
            (self.limit_usd.is_some(), "limit_usd"),
            (self.period.is_some(), "period"),
            (self.timezone.is_some(), "timezone"),
            (self.group_by.is_some(), "group_by"),
            (self.warn_at.is_some(), "warn_at"),
            (self.unknown_cost.is_some(), "unknown_cost"),
            (self.metric.is_some(), "metric"),
            (self.patience.is_some(), "patience"),
            (self.min_delta.is_some(), "min_delta"),
            (self.min_steps.is_some(), "min_steps"),
            (self.factor.is_some(), "factor"),
            (self.window.is_some(), "window"),
        ] {
            if set {
                keys.push(key);
            }
        }
        keys
    }

    /// `limit` as a duration (`"6h"`), for time-based kinds.
    pub(crate) fn limit_duration(&self) -> Result<Duration, PolicyError> {
        let text = match &self.limit {
            Some(LimitValue::Text(s)) => s,
            Some(LimitValue::Number(n)) => {
                return Err(format!("limit {n} needs a unit, e.g. \"{n}h\" or \"{n}m\"").into());
            }
            None => {
                let kind = &self.kind;
                return Err(format!("kind {kind:?} needs `limit` (a duration like \"6h\")").into());
            }
        };
        let d = humantime::parse_duration(text).map_err(|e| {
            PolicyError(format!(
                "limit {text:?} is not a duration like \"6h\" or \"30m\": {e}"
            ))
        })?;
        crate::model::bounded_duration(d).map_err(|e| PolicyError(format!("limit {text:?}: {e}")))
    }

    /// `limit_usd` as money.
    pub(crate) fn limit_money(&self) -> Result<crate::model::Usd, PolicyError> {
        let Some(d) = self.limit_usd else {
            let kind = &self.kind;
            return Err(format!("kind {kind:?} needs `limit_usd` (dollars, e.g. 10.0)").into());
        };
        crate::model::bounded_dollars(d).map_err(|e| PolicyError(format!("limit_usd {e}")))
    }

    /// `limit` as a positive number, for count-based kinds.
    pub(crate) fn limit_number(&self) -> Result<f64, PolicyError> {
        let detail = match &self.limit {
            Some(LimitValue::Number(n)) if !n.is_finite() || *n > 1e12 => {
                format!("limit {n:?} is out of range: at most 1000000000000")
            }
            Some(LimitValue::Number(n)) if *n >= 0.0 => return Ok(*n),
            Some(LimitValue::Text(s)) => match s.parse::<f64>() {
                Ok(n) if (0.0..=1e12).contains(&n) => return Ok(n),
                _ => format!("limit {s:?} is not a non-negative number"),
            },
            Some(LimitValue::Number(n)) => format!("limit {n} is negative"),
            None => format!("kind {:?} needs `limit` (a number)", self.kind),
        };
        Err(PolicyError(detail))
    }
}

/// Why a written policy cannot be compiled: the key and what is wrong with it, as the user
/// wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

impl From<String> for PolicyError {
    fn from(detail: String) -> Self {
        Self(detail)
    }
}

impl From<&str> for PolicyError {
    fn from(detail: &str) -> Self {
        Self(detail.to_owned())
    }
}

impl From<super::budget::BudgetError> for PolicyError {
    fn from(e: super::budget::BudgetError) -> Self {
        Self(e.to_string())
    }
}

/// Compiles a written policy: the kind builds its rule; common keys are checked here.
pub fn compile(c: &PolicyConfig) -> Result<Policy, PolicyError> {
    compile_checked(c)
}

fn compile_checked(c: &PolicyConfig) -> Result<Policy, PolicyError> {
    if c.name.trim().is_empty() {
        return Err("`name` is empty".into());
    }
    let kind = super::kinds::find(&c.kind).ok_or_else(|| {
        format!(
            "unknown kind {:?} (known: {})",
            c.kind,
            super::kinds::names().join(", ")
        )
    })?;
    for key in c.set_kind_keys() {
        if !kind.keys.contains(&key) {
            return Err(format!("key `{key}` does not apply to kind {:?}", c.kind).into());
        }
    }
    let rule = (kind.build)(c)?;
    if let Some(g) = c.grace {
        crate::model::bounded_duration(g).map_err(|e| format!("grace: {e}"))?;
    }
    let schedule = match &c.schedule {
        Some(s) => {
            Some(crate::model::schedule::Schedule::parse(s).map_err(|e| format!("schedule: {e}"))?)
        }
        None => None,
    };
    if c.fallback.is_some() && c.action != ActionKind::Pause {
        return Err("`fallback` only applies to action = \"pause\"".into());
    }
    Ok(Policy {
        name: c.name.clone(),
        kind: kind.name,
        rule,
        action: c.action,
        fallback: c.fallback.unwrap_or(Fallback::Notify),
        grace: c.grace.unwrap_or_default(),
        dry_run: c.dry_run,
        schedule,
        matcher: Matcher::build(&c.matches),
        exempt: Exempt::build(&c.exempt),
        allow_job_overrides: c.allow_job_overrides,
    })
}
