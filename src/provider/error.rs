//! Provider errors: which account, which endpoint, what status, and the API's own message.

/// Why a call to the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("account {account:?}: {endpoint} returned {status}: {message}")]
    Status {
        account: String,
        endpoint: String,
        status: u16,
        message: String,
        /// Made by the Portkey gateway itself (`x-portkey-gateway-exception: true`), not by the
        /// provider behind it.
        by_gateway: bool,
    },
    #[error("account {account:?}: {endpoint} failed: {kind}: {detail}")]
    Transport {
        account: String,
        endpoint: String,
        kind: TransportKind,
        detail: String,
    },
    #[error(
        "account {account:?}: {endpoint} answered more than {limit} bytes{}: not read (max_response_bytes; a page of 100 jobs is a few hundred KB)",
        declared.map(|n| format!(" ({n} declared)")).unwrap_or_default()
    )]
    TooLarge {
        account: String,
        endpoint: String,
        limit: u64,
        declared: Option<u64>,
    },
    #[error(
        "account {account:?}: job id {id:?} cannot be sent to the API ({why}); ftguard never acts on it"
    )]
    UnusableId {
        account: String,
        id: String,
        why: String,
    },
    #[error(
        "account {account:?}: {endpoint} for {asked:?} answered about another job ({answered:?}): not an answer about this job"
    )]
    OtherJob {
        account: String,
        endpoint: String,
        asked: String,
        answered: String,
    },
    #[error(
        "account {account:?}: {endpoint} answered {status} with a body that is not what the API specifies: {detail}"
    )]
    Decode {
        account: String,
        endpoint: String,
        status: u16,
        detail: String,
    },
}

/// How a request failed to get an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The connection was never made: the request surely was not applied.
    Connect,
    Timeout,
    /// Reset, truncated body, anything else after the request may have left.
    Other,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connect => "could not connect",
            Self::Timeout => "timed out",
            Self::Other => "connection error",
        })
    }
}

impl ProviderError {
    /// HTTP status when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::TooLarge { .. } | Self::OtherJob { .. } => Some(200),
            Self::Transport { .. } | Self::UnusableId { .. } => None,
        }
    }

    /// Whether the Portkey gateway made this error itself rather than pass on the provider's:
    /// for a route it does not map for the provider, that is every time.
    pub fn by_gateway(&self) -> bool {
        matches!(
            self,
            Self::Status {
                by_gateway: true,
                ..
            }
        )
    }

    /// Whether the request provably was not applied (safe to retry a cancel).
    pub fn surely_not_applied(&self) -> bool {
        matches!(
            self,
            Self::Status { status: 429, .. } | Self::UnusableId { .. }
        ) || matches!(
            self,
            Self::Transport {
                kind: TransportKind::Connect,
                ..
            }
        )
    }
}
