//! Is ftguard doing its job: every account synced successfully within three sync intervals.
//! One rule and one type for `/healthz`, `ftguard status` and `status --json`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::store::{Store, StoreError, SyncRun};

/// The health of every configured account, as `/healthz` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub status: HealthStatus,
    /// One line for people: how many accounts are healthy, and which are not (the first ten).
    pub summary: String,
    /// Why each unhealthy account is so, one entry each.
    pub problems: Vec<Problem>,
    pub accounts: BTreeMap<String, AccountHealth>,
    /// The tolerance: three sync intervals, in seconds.
    #[serde(skip)]
    pub window_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub account: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountHealth {
    pub last_successful_sync: Option<i64>,
    pub last_error: Option<String>,
    pub healthy: bool,
}

impl Health {
    /// Healthy when every account synced successfully within three sync intervals.
    pub fn evaluate(
        accounts: &[String],
        latest: &[SyncRun],
        last_ok: &[(String, i64)],
        now: i64,
        interval_secs: i64,
    ) -> Self {
        let window = interval_secs.max(1).saturating_mul(3);
        let mut problems = Vec::new();
        let mut details = BTreeMap::new();
        // By name, so a thousand accounts cost a thousand lookups, not a million comparisons.
        let ok_by: std::collections::HashMap<&str, i64> =
            last_ok.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        let latest_by: std::collections::HashMap<&str, &SyncRun> =
            latest.iter().map(|r| (r.account.as_str(), r)).collect();
        for a in accounts {
            let ok_at = ok_by.get(a.as_str()).copied();
            let last_error = latest_by.get(a.as_str()).and_then(|r| r.error.clone());
            let fresh = ok_at.is_some_and(|t| now.saturating_sub(t) <= window);
            if !fresh {
                let reason = match (ok_at, &last_error) {
                    (None, Some(e)) => format!("never synced successfully; last error: {e}"),
                    (None, None) => "not synced yet".to_owned(),
                    (Some(t), Some(e)) => format!(
                        "last successful sync {}s ago (> {window}s); last error: {e}",
                        now.saturating_sub(t)
                    ),
                    (Some(t), None) => format!(
                        "last successful sync {}s ago (> {window}s)",
                        now.saturating_sub(t)
                    ),
                };
                problems.push(Problem {
                    account: a.clone(),
                    reason,
                });
            }
            details.insert(
                a.clone(),
                AccountHealth {
                    last_successful_sync: ok_at,
                    last_error,
                    healthy: fresh,
                },
            );
        }
        Self {
            status: if problems.is_empty() {
                HealthStatus::Ok
            } else {
                HealthStatus::Unhealthy
            },
            summary: summary(accounts.len(), &problems, window),
            problems,
            accounts: details,
            window_secs: window,
        }
    }

    pub fn healthy(&self) -> bool {
        self.status == HealthStatus::Ok
    }

    /// From the store alone (no credentials needed): what `ftguard status` and `/healthz` say.
    pub async fn read(config: &Config, store: &Store, now: i64) -> Result<Self, StoreError> {
        let accounts: Vec<String> = config.accounts.iter().map(|a| a.name.to_string()).collect();
        let latest = store.latest_sync_runs().await?;
        let last_ok = store.last_successful_syncs().await?;
        let interval = config.sync_schedule.interval_or_minute(now);
        Ok(Self::evaluate(&accounts, &latest, &last_ok, now, interval))
    }
}

/// `all 3 accounts synced within 3m`, or `2 of 200 accounts not synced within 3m: a, b`.
fn summary(accounts: usize, problems: &[Problem], window_secs: i64) -> String {
    let within = crate::policy::format::secs(window_secs);
    if accounts == 0 {
        return "no accounts configured: nothing is watched".to_owned();
    }
    if problems.is_empty() {
        let all = if accounts == 1 { "the account" } else { "all" };
        let n = if accounts == 1 {
            String::new()
        } else {
            format!(" {accounts} accounts")
        };
        return format!("{all}{n} synced within {within}");
    }
    let mut names = problems
        .iter()
        .take(10)
        .map(|p| p.account.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if problems.len() > 10 {
        names.push_str(&format!(" and {} more", problems.len() - 10));
    }
    format!(
        "{} of {accounts} accounts not synced within {within}: {names}",
        problems.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(account: &str, error: Option<&str>) -> SyncRun {
        SyncRun {
            account: account.into(),
            started_at: 0,
            finished_at: Some(0),
            error: error.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn healthy_only_when_every_account_synced_within_three_intervals() {
        let now = 10_000;
        let accounts = ["fresh".to_owned(), "stale".to_owned(), "never".to_owned()];
        let latest = [run("stale", Some("401 bad key")), run("never", None)];
        let last_ok = [
            ("fresh".to_owned(), now - 180),
            ("stale".to_owned(), now - 181),
        ];
        let h = Health::evaluate(&accounts, &latest, &last_ok, now, 60);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert!(h.accounts["fresh"].healthy);
        assert!(!h.accounts["stale"].healthy);
        assert_eq!(
            h.problems,
            [
                Problem {
                    account: "stale".into(),
                    reason: "last successful sync 181s ago (> 180s); last error: 401 bad key"
                        .into()
                },
                Problem {
                    account: "never".into(),
                    reason: "not synced yet".into()
                },
            ]
        );
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["status"], "unhealthy");
        assert_eq!(json["accounts"]["stale"]["last_error"], "401 bad key");
        assert_eq!(
            json["summary"],
            "2 of 3 accounts not synced within 3m00s: stale, never"
        );
        let ok = Health::evaluate(&accounts[..1], &[], &last_ok, now, 60);
        assert!(ok.healthy());
        assert_eq!(serde_json::to_value(&ok).unwrap()["status"], "ok");
        assert_eq!(ok.summary, "the account synced within 3m00s");
    }

    #[test]
    fn the_summary_of_hundreds_names_ten_and_counts_the_rest() {
        let now = 10_000;
        let accounts: Vec<String> = (0..200).map(|i| format!("a{i:03}")).collect();
        // Every tenth account never synced; the others just did.
        let last_ok: Vec<(String, i64)> = accounts
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 10 != 0)
            .map(|(_, a)| (a.clone(), now - 5))
            .collect();
        let h = Health::evaluate(&accounts, &[], &last_ok, now, 60);
        assert_eq!(
            h.summary,
            "20 of 200 accounts not synced within 3m00s: a000, a010, a020, a030, a040, a050, \
             a060, a070, a080, a090 and 10 more"
        );
        let all: Vec<(String, i64)> = accounts.iter().map(|a| (a.clone(), now)).collect();
        assert_eq!(
            Health::evaluate(&accounts, &[], &all, now, 60).summary,
            "all 200 accounts synced within 3m00s"
        );
    }
}
