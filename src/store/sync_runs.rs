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
}
