//! Domain types shared by every layer: identifiers, money, and the job as ftguard sees it.

pub mod glob;
pub mod metrics;
pub mod schedule;
pub mod time;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Whole seconds of a duration as unix-time arithmetic wants them: `i64`, saturating (a
/// `Duration` of 2^63 seconds or more is `i64::MAX`, never a negative number).
pub fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A count as `i64`, saturating at `i64::MAX`.
pub fn count_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The longest duration a configuration may give (100 years): anything longer is a typo, and
/// in unix-time arithmetic it would overflow (`292471208679y` is 2^63 seconds).
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);

/// A value a configuration may not give, named as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RangeError {
    #[error("{} is out of range: at most 100 years", humantime::format_duration(*.0))]
    Duration(std::time::Duration),
    #[error("{0:?} is out of range: a non-negative number of dollars, at most 1000000000")]
    Dollars(f64),
}

/// `d` when it is at most [`MAX_DURATION`].
pub fn bounded_duration(d: std::time::Duration) -> Result<std::time::Duration, RangeError> {
    if d <= MAX_DURATION {
        Ok(d)
    } else {
        Err(RangeError::Duration(d))
    }
}

/// The largest amount of dollars a configuration may give (a billion): `Usd` holds up to
/// about 9.2 trillion, so sums of many such amounts still saturate rather than wrap.
pub const MAX_DOLLARS: f64 = 1e9;

/// Dollars as written in a configuration, checked: finite, non-negative, at most
/// [`MAX_DOLLARS`].
pub fn bounded_dollars(d: f64) -> Result<Usd, RangeError> {
    if d.is_finite() && (0.0..=MAX_DOLLARS).contains(&d) {
        Ok(Usd::from_dollars(d))
    } else {
        Err(RangeError::Dollars(d))
    }
}

/// The earliest time a fine-tuning job can have been created (2015-01-01): anything before is a
/// time in a unit or form ftguard did not recognise.
pub const EARLIEST_PLAUSIBLE: i64 = 1_420_070_400;

/// How far after ftguard first saw a job its `created_at` may lie (clocks differ a little).
pub const CREATED_AFTER_SEEN_SLACK: i64 = 86_400;

/// Whether a job's `created_at` can be believed, given when ftguard first saw the job (or now,
/// for a job being listed).
pub fn plausible_created_at(created_at: i64, seen_at: i64) -> bool {
    created_at >= EARLIEST_PLAUSIBLE
        && created_at <= seen_at.saturating_add(CREATED_AFTER_SEEN_SLACK)
}

/// A count of things in memory as `u32`, saturating at `u32::MAX`.
pub fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A float as `i64`, rounded: Rust's float-to-integer conversion saturates (and NaN is 0), it
/// never wraps. The one place such a cast is written.
#[allow(clippy::cast_possible_truncation)]
pub fn round_i64(v: f64) -> i64 {
    v.round() as i64
}

/// A float as `u64`, rounded down; negative and NaN are 0, too large is `u64::MAX`.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn floor_u64(v: f64) -> u64 {
    v.floor() as u64
}

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

/// An account name that is not `[a-z0-9_-]+`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account name {0:?} is invalid: use lowercase letters, digits, '_' and '-'")]
pub struct InvalidAccountName(pub String);

/// The name of a configured account: unique, `[a-z0-9_-]+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccountName(String);

impl AccountName {
    /// Accepts only `[a-z0-9_-]+`, so a name is always safe in logs, metrics labels and paths.
    pub fn parse(name: &str) -> Result<Self, InvalidAccountName> {
        if !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidAccountName(name.to_owned()))
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
        Self(round_i64(d * 1_000_000.0))
    }
    /// Sums saturate at the largest amount: a hostile count must not wrap a total negative.
    #[must_use]
    pub fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }
    pub fn as_dollars(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = self
            .0
            .saturating_add(if self.0 >= 0 { 5_000 } else { -5_000 })
            / 10_000;
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
    /// A job of which only its id, model, status and creation time are known (the rest is set
    /// with struct update syntax); `raw` is empty.
    pub fn new(id: &str, model: &str, status: &str, created_at: i64) -> Self {
        Job {
            id: JobId::new(id),
            model: model.to_owned(),
            status: JobStatus::parse(status),
            created_at,
            finished_at: None,
            trained_tokens: None,
            estimated_finish: None,
            fine_tuned_model: None,
            training_file: None,
            validation_file: None,
            n_epochs: None,
            method: None,
            suffix: None,
            metadata: BTreeMap::new(),
            error: None,
            raw: String::new(),
        }
    }

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

/// A budget group that has reached one of its `warn_at` thresholds in a period. Not about a
/// job, so not an action: enforcement records each (policy, group, period, percent) once and
/// notifies then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupNotice {
    pub policy: String,
    pub group: String,
    /// Unix start of the budget period.
    pub period_start: i64,
    pub percent: u32,
    pub reason: String,
}

/// Identifies a grace period: (account, job id, policy name).
pub type GraceKey = (String, String, String);

/// A job by the account it belongs to and its id: what a deadline timer holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobRef {
    pub account: String,
    pub job_id: String,
}

/// The moment an active, compliant job will cross a time-based limit (or its grace period will
/// end), in unix seconds. Ordered by time first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Crossing {
    pub at: i64,
    pub job: JobRef,
}
