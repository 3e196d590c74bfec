//! Sync runs: one row per account per sync, for `/healthz` and for people.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

/// A finished (or failed) sync of one account.
#[derive(Debug, Clone, Serialize)]
pub struct SyncRun {
    pub account: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub pages: i64,
    pub jobs_seen: i64,
    pub error: Option<String>,
}

impl Store {
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
        Ok(())
    }

    /// The newest successful sync per account.
    pub async fn last_successful_syncs(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, MAX(finished_at) FROM sync_runs WHERE error IS NULL GROUP BY account",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The newest sync run per account (successful or not), for `/healthz`.
    pub async fn latest_sync_runs(&self) -> Result<Vec<SyncRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, started_at, finished_at, pages, jobs_seen, error FROM sync_runs s
             WHERE id = (SELECT MAX(id) FROM sync_runs t WHERE t.account = s.account)",
        )
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
        sqlx::query(
            "INSERT INTO sync_state (account, boundary, last_full_at)
             SELECT ?1, COALESCE(MIN(CASE WHEN status NOT IN ('succeeded','failed','cancelled') THEN created_at END), MAX(created_at)), ?2
             FROM jobs WHERE account = ?1
             ON CONFLICT (account) DO UPDATE SET boundary = excluded.boundary,
                 last_full_at = COALESCE(excluded.last_full_at, sync_state.last_full_at)",
        )
        .bind(account)
        .bind(full_at)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}
