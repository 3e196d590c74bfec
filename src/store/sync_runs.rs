//! Sync runs: one row per account per sync, for `/healthz` and for people.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

/// An account whose syncs fail now (see [`Store::failing_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    pub account: String,
    /// When the first failed run of this outage started.
    pub since: i64,
    /// Whether `sync_failing` was notified during this outage.
    pub notified: bool,
}

/// A finished (or failed) sync of one account.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncRun {
    pub account: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub pages: i64,
    pub jobs_seen: i64,
    pub error: Option<String>,
}

/// Sync runs older than this are deleted as new ones are recorded (except each account's
/// newest successful run, which `/healthz` reports): a sync a minute would otherwise add half
/// a million rows a year per account.
pub const KEEP_SYNC_RUNS_SECS: i64 = 30 * 86_400;

/// The accounts that have sync runs, found by hopping through the index (one lookup per
/// account) rather than reading every run.
const ACCOUNTS: &str = "WITH RECURSIVE accounts(name) AS (
        SELECT MIN(account) FROM sync_runs
        UNION ALL
        SELECT (SELECT MIN(account) FROM sync_runs WHERE account > name) FROM accounts
        WHERE name IS NOT NULL)";

/// The newest run of each account.
pub(super) fn latest_runs_sql() -> String {
    format!(
        "{ACCOUNTS}
         SELECT s.account, s.started_at, s.finished_at, s.pages, s.jobs_seen, s.error
         FROM accounts a JOIN sync_runs s ON s.id =
           (SELECT id FROM sync_runs WHERE account = a.name
            ORDER BY started_at DESC, id DESC LIMIT 1)"
    )
}

/// When each account's newest successful run finished.
pub(super) fn last_ok_sql() -> String {
    format!(
        "{ACCOUNTS}
         SELECT s.account, s.finished_at FROM accounts a JOIN sync_runs s ON s.id =
           (SELECT id FROM sync_runs WHERE account = a.name AND error IS NULL
            ORDER BY started_at DESC, id DESC LIMIT 1)
         WHERE s.finished_at IS NOT NULL"
    )
}

/// For each account whose newest run failed: when its first failure since its newest success
/// started (the whole run of failures, as far as the kept runs tell), and whether
/// `sync_failing` was notified since then.
pub(super) fn failing_since_sql() -> String {
    format!(
        "{ACCOUNTS}
         SELECT f.name, f.since, n.failing_notified_at >= f.since FROM
           (SELECT a.name, (SELECT MIN(f.started_at) FROM sync_runs f
                            WHERE f.account = a.name AND f.error IS NOT NULL
                              AND f.started_at > COALESCE(
                                (SELECT MAX(o.started_at) FROM sync_runs o
                                 WHERE o.account = a.name AND o.error IS NULL), -1)) AS since
            FROM accounts a WHERE a.name IS NOT NULL) f
         LEFT JOIN sync_notices n ON n.account = f.name
         WHERE f.since IS NOT NULL"
    )
}

/// The incremental boundary of account `?1` (its oldest active job's creation time, else its
/// newest job's) and, when `?2` is set, when it was last listed completely.
pub(super) const SAVE_SYNC_STATE_SQL: &str =
    "INSERT INTO sync_state (account, boundary, last_full_at)
    SELECT ?1, COALESCE(
        (SELECT MIN(created_at) FROM jobs INDEXED BY jobs_active
          WHERE account = ?1 AND status NOT IN ('succeeded','failed','cancelled') AND gone_at IS NULL),
        (SELECT MAX(created_at) FROM jobs INDEXED BY jobs_identity WHERE account = ?1)), ?2
    WHERE 1
    ON CONFLICT (account) DO UPDATE SET boundary = excluded.boundary,
        last_full_at = COALESCE(excluded.last_full_at, sync_state.last_full_at)";

impl Store {
    /// Records a run and prunes the account's runs older than `KEEP_SYNC_RUNS_SECS` (30 days).
    pub async fn record_sync_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sync_runs (account, started_at, finished_at, pages, jobs_seen, error) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&run.account)
            .bind(run.started_at)
            .bind(run.finished_at)
            .bind(run.pages)
            .bind(run.jobs_seen)
            .bind(&run.error)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query(
            "DELETE FROM sync_runs WHERE account = ?1 AND started_at < ?2
               AND id IS NOT (SELECT id FROM sync_runs WHERE account = ?1 AND error IS NULL
                              ORDER BY started_at DESC, id DESC LIMIT 1)",
        )
        .bind(&run.account)
        .bind(run.started_at - KEEP_SYNC_RUNS_SECS)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The newest successful sync per account (when it finished).
    pub async fn last_successful_syncs(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(&last_ok_sql())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Accounts failing now: since when (their first failed run after their newest successful
    /// one) and whether that was notified. Where a restarted daemon's sync watch picks up.
    pub async fn failing_since(&self) -> Result<Vec<Failing>, StoreError> {
        let rows = sqlx::query(&failing_since_sql())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| Failing {
                account: r.get(0),
                since: r.get(1),
                notified: r.get::<Option<bool>, _>(2).unwrap_or(false),
            })
            .collect())
    }

    /// Records that `sync_failing` was notified for `account` at `at`.
    pub async fn record_failing_notified(&self, account: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_notices (account, failing_notified_at) VALUES (?1, ?2)
             ON CONFLICT (account) DO UPDATE SET failing_notified_at = excluded.failing_notified_at",
        )
        .bind(account)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The newest sync run per account (successful or not), for `/healthz`.
    pub async fn latest_sync_runs(&self) -> Result<Vec<SyncRun>, StoreError> {
        let rows = sqlx::query(&latest_runs_sql())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| SyncRun {
                account: r.get(0),
                started_at: r.get(1),
                finished_at: r.get(2),
                pages: r.get(3),
                jobs_seen: r.get(4),
                error: r.get(5),
            })
            .collect())
    }

    /// (boundary, last complete listing) of an account, if it was ever synced.
    pub async fn sync_state(
        &self,
        account: &str,
    ) -> Result<Option<(Option<i64>, Option<i64>)>, StoreError> {
        let row = sqlx::query("SELECT boundary, last_full_at FROM sync_state WHERE account = ?")
            .bind(account)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Records the boundary for the next incremental sync, computed from what is stored now:
    /// the oldest active job's creation time, else the newest job's. `full_at` is set when
    /// this sync listed everything.
    pub async fn save_sync_state(
        &self,
        account: &str,
        full_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(SAVE_SYNC_STATE_SQL)
            .bind(account)
            .bind(full_at)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::fixtures::store;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn run(account: &str, started_at: i64, error: Option<&str>) -> SyncRun {
        SyncRun {
            account: account.into(),
            started_at,
            finished_at: Some(started_at + 1),
            pages: 1,
            jobs_seen: 1,
            error: error.map(str::to_owned),
        }
    }

    async fn count(store: &Store, account: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM sync_runs WHERE account = ?")
            .bind(account)
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn newest_runs_per_account_and_pruning_keeps_the_last_success() {
        let (_dir, store) = store().await;
        // "prod" synced fine for 40 days, then failed for the last two; "lab" failed 50 days
        // ago and never succeeded since; "dev" synced once, 60 days ago.
        store
            .record_sync_run(&run("dev", NOW - 60 * DAY, None))
            .await
            .unwrap();
        for d in (2..=40).rev() {
            store
                .record_sync_run(&run("prod", NOW - d * DAY, None))
                .await
                .unwrap();
        }
        store
            .record_sync_run(&run("lab", NOW - 50 * DAY, Some("401")))
            .await
            .unwrap();
        store
            .record_sync_run(&run("prod", NOW - DAY, Some("timeout")))
            .await
            .unwrap();
        store
            .record_sync_run(&run("prod", NOW, Some("timeout")))
            .await
            .unwrap();
        store
            .record_sync_run(&run("lab", NOW, Some("401")))
            .await
            .unwrap();

        let mut ok = store.last_successful_syncs().await.unwrap();
        ok.sort();
        assert_eq!(
            ok,
            [
                ("dev".to_owned(), NOW - 60 * DAY + 1),
                ("prod".to_owned(), NOW - 2 * DAY + 1)
            ]
        );
        let mut latest = store.latest_sync_runs().await.unwrap();
        latest.sort_by(|a, b| a.account.cmp(&b.account));
        let latest: Vec<(&str, i64, Option<&str>)> = latest
            .iter()
            .map(|r| (r.account.as_str(), r.started_at, r.error.as_deref()))
            .collect();
        assert_eq!(
            latest,
            [
                ("dev", NOW - 60 * DAY, None),
                ("lab", NOW, Some("401")),
                ("prod", NOW, Some("timeout"))
            ]
        );
        // Failing now: prod since its first failure after day 2's success; lab since its only
        // kept run (the older failure was pruned). dev's newest run succeeded.
        let failing = |notified: [bool; 2]| {
            vec![
                Failing {
                    account: "lab".into(),
                    since: NOW,
                    notified: notified[0],
                },
                Failing {
                    account: "prod".into(),
                    since: NOW - DAY,
                    notified: notified[1],
                },
            ]
        };
        let sorted = |mut v: Vec<Failing>| {
            v.sort_by(|a, b| a.account.cmp(&b.account));
            v
        };
        assert_eq!(
            sorted(store.failing_since().await.unwrap()),
            failing([false, false])
        );
        // Notified during this outage counts; a notice from an earlier outage does not.
        store
            .record_failing_notified("prod", NOW - DAY)
            .await
            .unwrap();
        store
            .record_failing_notified("lab", NOW - 50 * DAY)
            .await
            .unwrap();
        assert_eq!(
            sorted(store.failing_since().await.unwrap()),
            failing([false, true])
        );
        store.record_failing_notified("lab", NOW + 1).await.unwrap();
        assert_eq!(
            sorted(store.failing_since().await.unwrap()),
            failing([true, true])
        );
        // prod: runs of the last 30 days are kept (days 2..=30 and the two failures); older
        // ones went as newer ones were recorded. lab: the 50-day-old failure went.
        assert_eq!(count(&store, "prod").await, 29 + 2);
        assert_eq!(count(&store, "lab").await, 1);
        // dev's only run is old but its newest success: kept until a newer success exists.
        store
            .record_sync_run(&run("dev", NOW, Some("boom")))
            .await
            .unwrap();
        assert_eq!(count(&store, "dev").await, 2);
        store
            .record_sync_run(&run("dev", NOW + 1, None))
            .await
            .unwrap();
        assert_eq!(count(&store, "dev").await, 2, "the 60-day-old run goes");
    }
}
