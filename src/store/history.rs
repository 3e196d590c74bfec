//! Status history: each job's transitions, and where the history of finished jobs stands
//! (what budget tallies kept between passes depend on).

use sqlx::Row;

use super::jobs::{StoredJob, TERMINAL};
use super::{Store, StoreError};

/// One observed status change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Transition {
    pub from: Option<String>,
    pub to: String,
    pub observed_at: i64,
}

/// See [`Store::history_mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryMark {
    /// The newest status transition.
    pub transitions: i64,
    /// How many times a finished job's payload was rewritten.
    pub rewrites: i64,
}

/// How many status changes between two marks (`?1`, `?2`) left a finished status.
pub(super) fn changed_between_sql() -> String {
    format!(
        "SELECT COALESCE(SUM(from_status IN {TERMINAL}), 0)
           FROM status_transitions WHERE seq > ?1 AND seq <= ?2"
    )
}

/// Jobs that changed status between two marks (`?1`, `?2`), are finished, and did not change
/// again after `?2`.
pub(super) fn finished_between_sql() -> String {
    format!(
        "SELECT account, raw, last_step_at, first_seen_at, updated_at, steps_checked_at, gone_at
           FROM jobs
           WHERE seq IN (SELECT job_seq FROM status_transitions WHERE seq > ?1 AND seq <= ?2)
             AND status IN {TERMINAL}
             AND NOT EXISTS (SELECT 1 FROM status_transitions t
                             WHERE t.job_seq = jobs.seq AND t.seq > ?2)"
    )
}

impl Store {
    /// Where the history of finished jobs stands: it moves whenever a job is stored for the
    /// first time or changes status (each such write adds a status transition in the same
    /// transaction) or a finished job's payload is rewritten (migration 0006). While it stays
    /// the same, so do the finished jobs and what they cost.
    pub async fn history_mark(&self) -> Result<HistoryMark, StoreError> {
        let (transitions, rewrites): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM status_transitions),
                    (SELECT finished_rewrites FROM store_marks WHERE id = 1)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(HistoryMark {
            transitions,
            rewrites,
        })
    }

    /// The jobs that finished between two marks, when that is all that happened: `None` when
    /// there were more than `limit` status changes in between or one left a finished status (then
    /// whatever was kept must be counted again from scratch). Jobs still active are left out,
    /// and so are jobs that changed again after `upto`: the next call, from `upto`, has them.
    pub async fn finished_between(
        &self,
        since: HistoryMark,
        upto: HistoryMark,
        limit: usize,
    ) -> Result<Option<Vec<StoredJob>>, StoreError> {
        // Transitions are numbered without reuse, so their count is known without reading them.
        let changes = upto.transitions - since.transitions;
        if since.rewrites != upto.rewrites || changes < 0 || changes as usize > limit {
            return Ok(None);
        }
        let reopened: i64 = sqlx::query_scalar(&changed_between_sql())
            .bind(since.transitions)
            .bind(upto.transitions)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        if reopened > 0 {
            return Ok(None);
        }
        let rows = sqlx::query(&finished_between_sql())
            .bind(since.transitions)
            .bind(upto.transitions)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Some(
            rows.iter().filter_map(|r| self.row_to_job(r)).collect(),
        ))
    }

    /// Status history of a job, oldest first.
    pub async fn transitions(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Vec<Transition>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.from_status, t.to_status, t.observed_at FROM status_transitions t
               JOIN jobs j ON j.seq = t.job_seq WHERE j.account = ? AND j.id = ? ORDER BY t.seq",
        )
        .bind(account)
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| Transition {
                from: r.get(0),
                to: r.get(1),
                observed_at: r.get(2),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::jobs::fixtures::*;
    use super::*;
    use crate::model::{AccountName, Job};

    #[tokio::test]
    async fn jobs_finished_between_two_marks_are_each_found_once() {
        let (_dir, store) = store().await;
        let account = AccountName::from_trusted("a".into());
        let write = |job: Job| {
            let (store, account) = (store.clone(), account.clone());
            async move { store.upsert_jobs(&account, &[job], 1).await.unwrap() }
        };
        let between = |since: HistoryMark, upto: HistoryMark| {
            let store = store.clone();
            async move {
                store
                    .finished_between(since, upto, 10)
                    .await
                    .unwrap()
                    .map(|jobs| {
                        jobs.iter()
                            .map(|j| j.job.id.to_string())
                            .collect::<Vec<_>>()
                    })
            }
        };
        let m0 = store.history_mark().await.unwrap();
        write(job_in("ftjob-done", "succeeded", Some(1))).await;
        write(job("ftjob-x")).await;
        let m1 = store.history_mark().await.unwrap();
        // ftjob-x finishes after m1 was read: not counted up to m1 (it was running then), but
        // from m1 on; counting it in both would count its cost twice.
        write(job_in("ftjob-x", "succeeded", Some(1))).await;
        let m2 = store.history_mark().await.unwrap();
        assert_eq!(between(m0, m1).await, Some(vec!["ftjob-done".to_owned()]));
        assert_eq!(between(m1, m2).await, Some(vec!["ftjob-x".to_owned()]));
        assert_eq!(between(m2, m2).await, Some(vec![]));
        // A job leaving a finished status, or a finished one rewritten: start again.
        write(job("ftjob-x")).await;
        let m3 = store.history_mark().await.unwrap();
        assert_eq!(between(m2, m3).await, None);
        write(job_in("ftjob-done", "succeeded", Some(2))).await;
        let m4 = store.history_mark().await.unwrap();
        assert_eq!(m4.transitions, m3.transitions);
        assert_eq!(between(m3, m4).await, None);
        // More jobs than the limit: start again.
        for i in 0..11 {
            write(job_in(&format!("ftjob-{i}"), "failed", None)).await;
        }
        assert_eq!(between(m4, store.history_mark().await.unwrap()).await, None);
    }
}
