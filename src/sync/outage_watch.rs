//! Blind spots said out loud: an account whose syncs keep failing (a revoked key, a moved
//! gateway) leaves its jobs unwatched while ftguard itself looks fine. ftguard notifies once
//! when an account has failed for as long as `/healthz` tolerates (three sync intervals), and
//! once more when it syncs again. Pure: the daemon (or `run --once`) resumes it from the store
//! and feeds it each sync's outcome; whether the outage was said is recorded, so a restart or
//! the next `run --once` does not say it again.

use std::collections::HashMap;

use crate::notify::{Event, Notice};
use crate::policy::format::secs;
use crate::store::Failing;

/// Webhook event when an account has not synced for the whole window.
pub const FAILING: Event = Event::SyncFailing;
/// Webhook event when it syncs again after [`FAILING`] was sent.
pub const RECOVERED: Event = Event::SyncRecovered;

#[derive(Debug, Default)]
struct AccountState {
    /// The first failure of the current run of failures.
    failing_since: Option<i64>,
    notified: bool,
}

/// Each account's run of failed syncs, across passes (the daemon's lifetime).
#[derive(Debug, Default)]
pub struct SyncWatch {
    accounts: HashMap<String, AccountState>,
}

impl SyncWatch {
    /// Picks up, at start, the accounts that were failing (since when, and whether that was
    /// said) from the store, so a restart during an outage neither resets its clock nor says
    /// it twice.
    pub fn resume(&mut self, failing: &[Failing]) {
        for f in failing {
            self.accounts.insert(
                f.account.clone(),
                AccountState {
                    failing_since: Some(f.since),
                    notified: f.notified,
                },
            );
        }
    }

    /// Takes one sync's outcome (`Err` carries its error text); returns the notice to send, if
    /// any. `window`: how long failing is tolerated before it is said.
    pub fn observe(
        &mut self,
        account: &str,
        outcome: Result<(), &str>,
        now: i64,
        window: i64,
    ) -> Option<Notice> {
        let state = self.accounts.entry(account.to_owned()).or_default();
        match outcome {
            Ok(()) => {
                let since = state.failing_since.take();
                let notified = std::mem::take(&mut state.notified);
                since.filter(|_| notified).map(|since| {
                    Notice::account(
                        RECOVERED,
                        account,
                        &format!("syncs again after failing for {}", secs(now - since)),
                    )
                })
            }
            Err(error) => {
                let since = *state.failing_since.get_or_insert(now);
                if state.notified || now - since < window {
                    return None;
                }
                state.notified = true;
                Some(Notice::account(
                    FAILING,
                    account,
                    &format!(
                        "every sync for {} failed: its jobs are not watched (policies see only what was stored before); last error: {error}",
                        secs(now - since)
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_is_said_once_after_the_window_and_recovery_once_after_that() {
        let mut w = SyncWatch::default();
        let window = 180;
        // (time, outcome, expected event)
        let steps: [(i64, Result<(), &str>, Option<Event>); 9] = [
            (0, Ok(()), None),
            (60, Err("401"), None),
            (120, Err("401"), None),
            (180, Err("401"), None),
            (240, Err("401"), Some(FAILING)),
            (300, Err("401"), None),
            (360, Ok(()), Some(RECOVERED)),
            (420, Err("timeout"), None),
            (480, Ok(()), None),
        ];
        for (now, outcome, expect) in steps {
            let got = w.observe("prod", outcome, now, window);
            assert_eq!(got.as_ref().map(|n| n.event), expect, "at {now}");
            if let Some(n) = got {
                assert_eq!(n.account.as_deref(), Some("prod"));
                assert!(n.job_id.is_none());
                match n.event {
                    FAILING => assert_eq!(
                        n.reason,
                        "every sync for 3m00s failed: its jobs are not watched (policies see only what was stored before); last error: 401"
                    ),
                    _ => assert_eq!(n.reason, "syncs again after failing for 5m00s"),
                }
            }
        }
    }

    fn failing(since: i64, notified: bool) -> Failing {
        Failing {
            account: "prod".into(),
            since,
            notified,
        }
    }

    #[test]
    fn an_outage_said_before_a_restart_is_not_said_again_but_its_end_is() {
        let mut w = SyncWatch::default();
        w.resume(&[failing(0, true)]);
        assert!(w.observe("prod", Err("401"), 600, 180).is_none());
        assert_eq!(
            w.observe("prod", Ok(()), 660, 180).map(|n| n.event),
            Some(RECOVERED)
        );
    }

    #[test]
    fn a_restart_during_an_outage_keeps_its_clock() {
        let mut w = SyncWatch::default();
        w.resume(&[failing(0, false)]);
        let failing = w.observe("prod", Err("401"), 200, 180);
        assert_eq!(failing.map(|n| n.event), Some(FAILING));
        let back = w.observe("prod", Ok(()), 260, 180);
        assert_eq!(
            back.map(|n| n.reason),
            Some("syncs again after failing for 4m20s".to_owned())
        );
    }

    #[test]
    fn accounts_are_watched_apart() {
        let mut w = SyncWatch::default();
        assert!(w.observe("a", Err("x"), 0, 10).is_none());
        assert!(w.observe("b", Ok(()), 5, 10).is_none());
        assert!(w.observe("b", Err("y"), 9, 10).is_none());
        assert_eq!(
            w.observe("a", Err("x"), 10, 10).map(|n| n.account),
            Some(Some("a".to_owned()))
        );
        assert!(
            w.observe("b", Err("y"), 10, 10).is_none(),
            "b has failed for 1s only"
        );
    }
}
