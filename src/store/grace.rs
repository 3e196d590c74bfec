//! Grace marks: when a job was first seen violating a policy that has a grace period.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreError};
use crate::policy::GraceKey;

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
}
