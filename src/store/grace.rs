//! Grace marks: when a job was first seen violating a policy that has a grace period.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreError};
use crate::model::GraceKey;

/// Grace marks of jobs that ended or are gone.
pub(super) fn prune_grace_marks_sql() -> String {
    format!(
        "DELETE FROM grace_marks WHERE EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_identity
           WHERE jobs.account = grace_marks.account AND jobs.id = grace_marks.job_id
             AND (jobs.status IN {} OR jobs.gone_at IS NOT NULL))",
        super::jobs::TERMINAL
    )
}

impl Store {
    pub async fn grace_marks(&self) -> Result<HashMap<GraceKey, i64>, StoreError> {
        let rows = sqlx::query("SELECT account, job_id, policy, first_seen_at FROM grace_marks")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| ((r.get(0), r.get(1), r.get(2)), r.get(3)))
            .collect())
    }

    pub async fn set_grace_mark(
        &self,
        account: &str,
        job_id: &str,
        policy: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO grace_marks (account, job_id, policy, first_seen_at) VALUES (?, ?, ?, ?)")
            .bind(account)
            .bind(job_id)
            .bind(policy)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub async fn clear_grace_mark(
        &self,
        account: &str,
        job_id: &str,
        policy: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM grace_marks WHERE account = ? AND job_id = ? AND policy = ?")
            .bind(account)
            .bind(job_id)
            .bind(policy)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets grace marks of jobs that have ended (cancelled after their grace, or finished on
    /// their own): nothing evaluates them again, and otherwise every graced violation would
    /// leave a row that each pass loads forever.
    pub async fn prune_grace_marks(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(&prune_grace_marks_sql())
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{AccountName, Job};
    use crate::store::jobs::fixtures::store;

    #[tokio::test]
    async fn marks_of_ended_jobs_are_pruned_and_the_others_kept() {
        let (_dir, store) = store().await;
        let jobs: Vec<_> = [
            ("ftjob-run", "running"),
            ("ftjob-end", "cancelled"),
            ("ftjob-ok", "succeeded"),
        ]
        .iter()
        .map(|(id, status)| Job {
            raw: format!(r#"{{"id":"{id}","status":"{status}"}}"#),
            ..Job::new(id, "m", status, 1)
        })
        .collect();
        store
            .upsert_jobs(&AccountName::from_trusted("prod".into()), &jobs, 1)
            .await
            .unwrap();
        for (account, job) in [
            ("prod", "ftjob-run"),
            ("prod", "ftjob-end"),
            ("prod", "ftjob-ok"),
            ("other", "ftjob-end"),
            ("prod", "ftjob-unknown"),
        ] {
            store.set_grace_mark(account, job, "rt", 5).await.unwrap();
        }
        assert_eq!(store.prune_grace_marks().await.unwrap(), 2);
        let mut left: Vec<(String, String)> = store
            .grace_marks()
            .await
            .unwrap()
            .into_keys()
            .map(|(a, j, _)| (a, j))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ("other".to_owned(), "ftjob-end".to_owned()),
                ("prod".to_owned(), "ftjob-run".to_owned()),
                ("prod".to_owned(), "ftjob-unknown".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn marks_of_jobs_gone_from_the_api_are_pruned() {
        let (_dir, store) = store().await;
        let account = AccountName::from_trusted("prod".into());
        let job = Job::new("ftjob-gone", "m", "running", 1);
        store.upsert_jobs(&account, &[job], 1).await.unwrap();
        store
            .set_grace_mark("prod", "ftjob-gone", "rt", 5)
            .await
            .unwrap();
        assert_eq!(store.prune_grace_marks().await.unwrap(), 0, "still watched");
        store.mark_gone(&account, "ftjob-gone", 9).await.unwrap();
        assert_eq!(store.prune_grace_marks().await.unwrap(), 1);
        assert!(store.grace_marks().await.unwrap().is_empty());
    }
}
