//! What a notice is about: the `event` of every webhook body, one name per kind of notice.

use serde::Serialize;

/// A notice's event, as webhooks receive it (`"event": "cancelled"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A limit crossed with `grace` set: acts when the grace ends.
    GraceWarning,
    /// Compliant again before the grace ran out.
    Cleared,
    /// A `notify` policy's violation.
    Violation,
    Cancelled,
    /// The API answered the cancel with the job still active.
    CancelAccepted,
    /// Still active 10 minutes after the API accepted its cancel.
    CancelIneffective,
    /// A cancel (or pause) the API refused or never answered.
    CancelFailed,
    Paused,
    /// The API cannot pause the job; the fallback is `notify`.
    PauseRefused,
    /// Held by the circuit breaker.
    Held,
    Resumed,
    BudgetThreshold,
    SyncFailing,
    SyncRecovered,
    /// Sums up the job notices of one event and policy past the first ten of a pass.
    MoreNotices,
    /// `config check --test-notifiers`.
    #[default]
    Test,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GraceWarning => "grace_warning",
            Self::Cleared => "cleared",
            Self::Violation => "violation",
            Self::Cancelled => "cancelled",
            Self::CancelAccepted => "cancel_accepted",
            Self::CancelIneffective => "cancel_ineffective",
            Self::CancelFailed => "cancel_failed",
            Self::Paused => "paused",
            Self::PauseRefused => "pause_refused",
            Self::Held => "held",
            Self::Resumed => "resumed",
            Self::BudgetThreshold => "budget_threshold",
            Self::SyncFailing => "sync_failing",
            Self::SyncRecovered => "sync_recovered",
            Self::MoreNotices => "more_notices",
            Self::Test => "test",
        }
    }

    /// The `ftguard actions --outcome` that lists the actions behind notices of this event.
    pub fn outcome_filter(self) -> Option<&'static str> {
        Some(match self {
            Self::Held => "held",
            Self::GraceWarning => "warned",
            Self::Violation | Self::CancelIneffective | Self::PauseRefused => "notified",
            Self::Cancelled | Self::Paused => "succeeded",
            Self::CancelFailed => "failed",
            Self::CancelAccepted => "accepted",
            _ => return None,
        })
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn serialized_as_its_name() {
        for e in [
            Event::Cancelled,
            Event::CancelAccepted,
            Event::SyncFailing,
            Event::MoreNotices,
        ] {
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
    }
}
