//! What an upstream sent that ftguard cannot trust about a job, said once per job and kind
//! across passes and restarts (migration 0015).

use super::{Store, StoreError};

impl Store {
    /// Records that `what` was said about a job. `true` the first time (say it now); `false`
    /// when it was said before.
    pub async fn say_once(
        &self,
        account: &str,
        job_id: &str,
        what: &str,
        detail: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO said_once (account, job_id, what, detail, said_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (account, job_id, what) DO NOTHING",
        )
        .bind(account)
        .bind(job_id)
        .bind(what)
        .bind(detail)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::jobs::fixtures::store;

    #[tokio::test]
    async fn said_once_per_job_and_kind_even_after_reopening() {
        let (dir, s) = store().await;
        assert!(
            s.say_once("a", "ftjob-1", "unusable_id", "d", 1)
                .await
                .unwrap()
        );
        assert!(
            !s.say_once("a", "ftjob-1", "unusable_id", "d", 2)
                .await
                .unwrap()
        );
        assert!(
            s.say_once("a", "ftjob-1", "negative_count", "d", 2)
                .await
                .unwrap()
        );
        assert!(
            s.say_once("b", "ftjob-1", "unusable_id", "d", 2)
                .await
                .unwrap()
        );
        let path = dir.path().join("ftguard.db");
        s.close().await;
        let again = crate::store::Store::open(&path).await.unwrap();
        assert!(
            !again
                .say_once("a", "ftjob-1", "unusable_id", "d", 3)
                .await
                .unwrap()
        );
    }
}
