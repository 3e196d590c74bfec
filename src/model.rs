//! Domain types shared by every layer: identifiers, money, and the job as ftguard sees it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A fine-tuning job id as the provider gives it (`ftjob-...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// The name of a configured account: unique, `[a-z0-9_-]+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccountName(String);

impl AccountName {
    /// Accepts only `[a-z0-9_-]+`, so a name is always safe in logs, metrics labels and paths.
    pub fn parse(name: &str) -> Result<Self, String> {
        if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "account name {name:?} is invalid: use lowercase letters, digits, '_' and '-'"
            ))
        }
    }
    /// For names read back from our own database, which only ever holds parsed names.
    pub(crate) fn from_trusted(name: String) -> Self {
        Self(name)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// Money in integer micro-dollars; never a float in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Usd(pub i64);

impl Usd {
    pub fn from_dollars(d: f64) -> Self {
        Self((d * 1_000_000.0).round() as i64)
    }
    pub fn as_dollars(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = (self.0 + if self.0 >= 0 { 5_000 } else { -5_000 }) / 10_000;
        let sign = if cents < 0 { "-" } else { "" };
        // Through `pad`, so table columns line up.
        f.pad(&format!(
            "{sign}${}.{:02}",
            cents.abs() / 100,
            cents.abs() % 100
        ))
    }
}

/// Job status; values the spec does not list are kept verbatim and treated as active.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JobStatus {
    ValidatingFiles,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Other(String),
}

impl JobStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "validating_files" => Self::ValidatingFiles,
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::ValidatingFiles => "validating_files",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Other(s) => s,
        }
    }
    /// Terminal jobs are never acted on.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
    /// Paused (OpenAI's pause): not training, resumable. Not a status the spec lists.
    pub fn is_paused(&self) -> bool {
        matches!(self, Self::Other(s) if s == "paused")
    }
    /// Not yet training: cancelling now costs nothing. Azure OpenAI's API (direct, or behind
    /// Portkey, which passes it on) says `created` and `pending` where OpenAI's says
    /// `validating_files` and `queued`; a job can sit `pending` in Azure's queue for hours.
    pub fn is_waiting(&self) -> bool {
        match self {
            Self::ValidatingFiles | Self::Queued => true,
            Self::Other(s) => matches!(s.as_str(), "created" | "pending"),
            _ => false,
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for JobStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

/// A fine-tuning job, parsed from the provider's payload. Fields the spec marks nullable are
/// optional; `raw` keeps the payload's JSON text as received so nothing the API said is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub model: String,
    pub status: JobStatus,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub trained_tokens: Option<i64>,
    pub estimated_finish: Option<i64>,
    pub fine_tuned_model: Option<String>,
    pub training_file: Option<String>,
    pub validation_file: Option<String>,
    /// `"auto"` or a number, verbatim.
    pub n_epochs: Option<serde_json::Value>,
    /// `method.type`: supervised, dpo, reinforcement (or something newer).
    pub method: Option<String>,
    pub suffix: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub error: Option<serde_json::Value>,
    /// The job object's JSON text, verbatim.
    pub raw: String,
}

impl Job {
    /// The payload as a JSON value (for showing API values verbatim).
    pub fn raw_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.raw).unwrap_or(serde_json::Value::Null)
    }

    /// `n_epochs` when the API has resolved it to a number.
    pub fn resolved_epochs(&self) -> Option<f64> {
        self.n_epochs.as_ref().and_then(epochs_number)
    }
}

/// `n_epochs` as a number: a JSON number, or a string of one (Google's APIs write 64-bit
/// integers as strings); `"auto"` and anything else is none.
pub fn epochs_number(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str()?.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_padding() {
        assert_eq!(Usd::from_dollars(18.404).to_string(), "$18.40");
        assert_eq!(Usd(-1_234_567).to_string(), "-$1.23");
        assert_eq!(Usd(4_999).to_string(), "$0.00");
        assert_eq!(format!("[{:>7}]", Usd::from_dollars(1.5)), "[  $1.50]");
        assert_eq!(format!("[{:<9}]", JobStatus::Queued), "[queued   ]");
        assert_eq!(format!("[{:<6}]", JobId::new("ft-1")), "[ft-1  ]");
    }
}
