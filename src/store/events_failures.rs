//! Jobs whose events the API would not give: said once, retried hourly (migration 0013).

use std::collections::HashSet;

use sqlx::Row;

use super::{Store, StoreError};

/// Failures of jobs that ended or are gone (or were never stored).
pub(super) fn prune_events_failures_sql() -> String {
    format!(
        "DELETE FROM events_failures WHERE NOT EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_identity
           WHERE jobs.account = events_failures.account AND jobs.id = events_failures.job_id
             AND jobs.status NOT IN {} AND jobs.gone_at IS NULL)",
        super::jobs::TERMINAL
    )
}

impl Store {
    /// The jobs of `account` whose events failed at or after `since`: not asked again yet.
    pub async fn events_failed_since(
        &self,
        account: &str,
        since: i64,
    ) -> Result<HashSet<String>, StoreError> {
        let rows =
            sqlx::query("SELECT job_id FROM events_failures WHERE account = ? AND failed_at >= ?")
                .bind(account)
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Records that a job's events could not be fetched. `true` the first time since they last
    /// could (the failure to say); later failures only move the retry on.
    pub async fn record_events_failure(
        &self,
        account: &str,
        job_id: &str,
        error: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let existed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events_failures WHERE account = ? AND job_id = ?)",
        )
        .bind(account)
        .bind(job_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        sqlx::query(
            "INSERT INTO events_failures (account, job_id, failed_at, error) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account, job_id) DO UPDATE SET failed_at = ?3, error = ?4",
        )
        .bind(account)
        .bind(job_id)
        .bind(at)
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(!existed)
    }

    /// A job's events came: forgets its failures. `true` when there were some.
    pub async fn clear_events_failure(
        &self,
        account: &str,
        job_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM events_failures WHERE account = ? AND job_id = ?")
            .bind(account)
            .bind(job_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets the failures of jobs that ended or are gone: nothing asks for their events again.
    pub async fn prune_events_failures(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(&prune_events_failures_sql())
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::model::AccountName;
    use crate::store::jobs::fixtures::{job_in, store};

    #[tokio::test]
    async fn a_failure_is_first_once_until_cleared_and_ended_jobs_are_pruned() {
        let (_dir, store) = store().await;
        let prod = AccountName::from_trusted("prod".into());
        let jobs = [
            job_in("ftjob-run", "running", None),
            job_in("ftjob-end", "running", None),
        ];
        store.upsert_jobs(&prod, &jobs, 1).await.unwrap();

        assert!(
            store
                .record_events_failure("prod", "ftjob-run", "404", 100)
                .await
                .unwrap()
        );
        assert!(
            !store
                .record_events_failure("prod", "ftjob-run", "404", 200)
                .await
                .unwrap()
        );
        assert!(
            store
                .record_events_failure("prod", "ftjob-end", "404", 100)
                .await
                .unwrap()
        );
        let since = |t| {
            let store = store.clone();
            async move {
                let mut ids: Vec<String> = store
                    .events_failed_since("prod", t)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
                ids.sort();
                ids
            }
        };
        assert_eq!(
            since(150).await,
            ["ftjob-run"],
            "the later failure moved the retry on"
        );
        assert_eq!(since(0).await, ["ftjob-end", "ftjob-run"]);

        let ended = job_in("ftjob-end", "cancelled", Some(10));
        store.upsert_jobs(&prod, &[ended], 2).await.unwrap();
        assert_eq!(store.prune_events_failures().await.unwrap(), 1);
        assert_eq!(since(0).await, ["ftjob-run"]);

        assert!(
            store
                .clear_events_failure("prod", "ftjob-run")
                .await
                .unwrap()
        );
        assert!(
            !store
                .clear_events_failure("prod", "ftjob-run")
                .await
                .unwrap()
        );
        assert!(since(0).await.is_empty());
        assert!(
            store
                .record_events_failure("prod", "ftjob-run", "404", 300)
                .await
                .unwrap(),
            "first again"
        );
    }
}
