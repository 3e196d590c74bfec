//! The circuit breaker: how many more cancels and pauses a pass may send, per pass and, when
//! `max_cancels_per_hour` is set, per hour across passes.

use crate::store::{Store, StoreError};

/// The window of `max_cancels_per_hour`.
const WINDOW_SECS: i64 = 3600;

/// One pass's count against the limits.
pub(super) struct Breaker {
    per_pass: u32,
    per_hour: Option<u32>,
    sent: u32,
    /// What the hour still allowed when the pass began, read once the first action is due.
    hour_left: Option<u32>,
}

/// Why an action is held: the limit, as configured, and the same for a notice.
pub(super) struct Held {
    pub limit: String,
    pub why: String,
}

impl Breaker {
    pub fn new(per_pass: u32, per_hour: Option<u32>) -> Self {
        Self {
            per_pass,
            per_hour,
            sent: 0,
            hour_left: None,
        }
    }

    /// `Some` when one more action now would break a limit.
    pub async fn check(&mut self, store: &Store, now: i64) -> Result<Option<Held>, StoreError> {
        if self.sent >= self.per_pass {
            return Ok(Some(Held {
                limit: format!("max_cancels_per_pass = {}", self.per_pass),
                why: format!("more than {} actions in one pass", self.per_pass),
            }));
        }
        let Some(max) = self.per_hour else {
            return Ok(None);
        };
        let left = match self.hour_left {
            Some(left) => left,
            None => {
                let sent = store.actions_sent_since(now - WINDOW_SECS).await?;
                *self.hour_left.insert(max.saturating_sub(sent))
            }
        };
        Ok((self.sent >= left).then(|| Held {
            limit: format!("max_cancels_per_hour = {max}"),
            why: format!("{max} actions already sent in the last hour"),
        }))
    }

    /// One more action goes out.
    pub fn sent(&mut self) {
        self.sent = self.sent.saturating_add(1);
    }

    /// An action counted by [`Self::sent`] was not sent after all.
    pub fn unsent(&mut self) {
        self.sent = self.sent.saturating_sub(1);
    }
}
