//! A stored job the API shows again under another `created_at`. Jobs are keyed by account,
//! creation time and id (migrations 0011 and 0014), so such a job would be stored twice; the API
//! never changes a job's creation time, but a gateway that changes how it reports one (seconds
//! to milliseconds, say) must not leave a stale twin that policies act on or budgets count.

use sqlx::Row;

use super::jobs::WriteMark;
use super::{Store, StoreError};
use crate::model::AccountName;

/// Beyond this many new jobs in one sync the twins are not looked for: it bounds the merging
/// (a few statements per twin). Looking them up is one read of the stored ids, at any count.
pub const MOVED_CHECK_LIMIT: u32 = 1000;

/// Pairs (new row, stored row) of one id under two creation times, for rows past mark `?1` of
/// account `?2`. No index is keyed by id (ids are random; see migration 0014): SQLite indexes
/// the few new rows by id on the fly and reads the stored ids once, instead of reading all of
/// them for each new row.
pub(super) const MOVED_SQL: &str =
    "WITH n AS MATERIALIZED (SELECT seq, account, id, created_at FROM jobs NOT INDEXED
                          WHERE seq > ?1 AND account = ?2)
    SELECT n.seq, o.seq, n.id, o.created_at, n.created_at
      FROM n JOIN jobs AS o INDEXED BY jobs_identity
        ON o.account = n.account AND o.id = n.id AND o.seq <= ?1
     WHERE EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_identity WHERE account = ?2 AND seq <= ?1)";

/// One job found twice and merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedJob {
    pub id: String,
    pub was_created_at: i64,
    pub created_at: i64,
}

impl Store {
    /// Merges every job written since `mark` whose id the account already had under another
    /// `created_at`: the new row keeps the API's view, takes over the old row's history and
    /// first sight (plus a status change between them), and the old row goes. Skipped for an
    /// account that had no jobs before `mark` (a first sync) or more than
    /// `MOVED_CHECK_LIMIT` new ones.
    pub async fn merge_moved_jobs(
        &self,
        account: &AccountName,
        mark: WriteMark,
        new: u32,
    ) -> Result<Vec<MovedJob>, StoreError> {
        if new == 0 || new > MOVED_CHECK_LIMIT {
            return Ok(Vec::new());
        }
        let pairs = sqlx::query(MOVED_SQL)
            .bind(mark.jobs)
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut moved = Vec::new();
        for p in pairs {
            let (new_seq, old_seq): (i64, i64) = (p.get(0), p.get(1));
            self.merge(new_seq, old_seq)
                .await
                .map_err(|e| self.err(e))?;
            moved.push(MovedJob {
                id: p.get(2),
                was_created_at: p.get(3),
                created_at: p.get(4),
            });
        }
        Ok(moved)
    }

    /// One merge, in one transaction: the new row (`keep`) takes over the old one's history,
    /// first sight and steps, with the status change between them; the old row goes.
    async fn merge(&self, keep: i64, old: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO status_transitions (job_seq, account, job_id, from_status, to_status, observed_at)
             SELECT n.seq, n.account, n.id, o.status, n.status, n.updated_at
               FROM jobs n, jobs o WHERE n.seq = ?1 AND o.seq = ?2 AND o.status IS NOT n.status",
        )
        .bind(keep)
        .bind(old)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE status_transitions SET job_seq = ?1 WHERE job_seq = ?2")
            .bind(keep)
            .bind(old)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE jobs SET (first_seen_at, last_step_at, steps_checked_at) =
               (SELECT o.first_seen_at, COALESCE(jobs.last_step_at, o.last_step_at),
                       COALESCE(jobs.steps_checked_at, o.steps_checked_at)
                  FROM jobs o WHERE o.seq = ?2)
             WHERE seq = ?1",
        )
        .bind(keep)
        .bind(old)
        .execute(&mut *tx)
        .await?;
        // The older row goes, so the newest row (what budget marks follow) stays.
        sqlx::query("DELETE FROM jobs WHERE seq = ?")
            .bind(old)
            .execute(&mut *tx)
            .await?;
        // Kept budget tallies may hold the old row's cost: they are counted again.
        sqlx::query(
            "UPDATE store_marks SET finished_rewrites = finished_rewrites + 1 WHERE id = 1",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}
