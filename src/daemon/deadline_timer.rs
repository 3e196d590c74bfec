//! A timer for the next moment a time-based limit is crossed, so the daemon acts then and not
//! at the next poll. Set from [`crate::policy::next_crossings`] after every pass and reload.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::model::{Crossing, JobRef};

/// Jobs due at one moment.
pub type Due = Vec<JobRef>;

/// The earliest pending crossing, as a tokio timer.
pub struct DeadlineTimer {
    due: Option<(i64, Due)>,
    sleep: Pin<Box<Sleep>>,
}

impl Default for DeadlineTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl DeadlineTimer {
    pub fn new() -> Self {
        Self {
            due: None,
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(365 * 86400))),
        }
    }

    /// Arms the timer for the earliest crossing (unix seconds), given the wall clock now in
    /// milliseconds; jobs crossing within the same second fire together.
    pub fn set(&mut self, crossings: &[Crossing], now_ms: i64) {
        let Some(first) = crossings.first().map(|c| c.at) else {
            self.due = None;
            return;
        };
        let jobs: Due = crossings
            .iter()
            .take_while(|c| c.at == first)
            .map(|c| c.job.clone())
            .collect();
        let wait = Duration::from_millis(
            u64::try_from(first.saturating_mul(1000).saturating_sub(now_ms)).unwrap_or(0),
        );
        self.sleep.as_mut().reset(Instant::now() + wait);
        self.due = Some((first, jobs));
    }

    /// The unix time it will fire at, if armed.
    pub fn at(&self) -> Option<i64> {
        self.due.as_ref().map(|d| d.0)
    }

    /// Waits for the crossing and returns the jobs due; never returns when not armed.
    pub async fn wait(&mut self) -> Due {
        if self.due.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.due.take().map(|d| d.1).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crossing_of(at: i64, account: &str, job_id: &str) -> Crossing {
        Crossing {
            at,
            job: job(account, job_id),
        }
    }

    fn job(account: &str, job_id: &str) -> JobRef {
        JobRef {
            account: account.into(),
            job_id: job_id.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_crossing_not_before() {
        let now_ms = 1_700_000_000_000;
        let crossing = 1_700_000_000 + 3600;
        let mut t = DeadlineTimer::new();
        t.set(
            &[
                crossing_of(crossing, "prod", "ftjob-a"),
                crossing_of(crossing, "prod", "ftjob-b"),
                crossing_of(crossing + 5, "prod", "ftjob-c"),
            ],
            now_ms,
        );
        assert_eq!(t.at(), Some(crossing));
        let start = Instant::now();
        assert!(
            tokio::time::timeout(Duration::from_secs(3599), t.wait())
                .await
                .is_err(),
            "not before the crossing"
        );
        let due = t.wait().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3600),
            "exactly at the crossing"
        );
        assert_eq!(due, vec![job("prod", "ftjob-a"), job("prod", "ftjob-b")]);
        assert_eq!(t.at(), None, "disarmed after firing");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unarmed_timer_never_fires_and_a_past_crossing_fires_at_once() {
        let mut t = DeadlineTimer::new();
        assert!(
            tokio::time::timeout(Duration::from_secs(10 * 86400), t.wait())
                .await
                .is_err()
        );
        t.set(&[crossing_of(100, "a", "j")], 200_000);
        let start = Instant::now();
        assert_eq!(t.wait().await.len(), 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
