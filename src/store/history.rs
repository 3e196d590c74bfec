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
    /// The newest job row (a job stored for the first time adds no transition).
    pub jobs: i64,
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

/// Jobs that changed status between two marks (transitions `?1`, `?2`) or were stored for the
/// first time between them (rows `?3`, `?4`), are finished, and did not change again after `?2`.
pub(super) fn finished_between_sql() -> String {
    format!(
        "SELECT {columns}
           FROM jobs
           WHERE (seq IN (SELECT job_seq FROM status_transitions WHERE seq > ?1 AND seq <= ?2)
                  OR (seq > ?3 AND seq <= ?4))
             AND status IN {TERMINAL}
             AND NOT EXISTS (SELECT 1 FROM status_transitions t
                             WHERE t.job_seq = jobs.seq AND t.seq > ?2)",
        columns = job_columns_without_payload!()
    )
}

impl Store {
    /// Where the history of finished jobs stands: it moves whenever a job is stored for the
    /// first time (a new row), changes status (a status transition, written in the same
    /// transaction) or a finished job's payload is rewritten (migration 0006). While it stays
    /// the same, so do the finished jobs and what they cost.
    pub async fn history_mark(&self) -> Result<HistoryMark, StoreError> {
        let (transitions, jobs, rewrites): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM status_transitions),
                    (SELECT COALESCE(MAX(seq), 0) FROM jobs),
                    (SELECT finished_rewrites FROM store_marks WHERE id = 1)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(HistoryMark {
            transitions,
            jobs,
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
        // Transitions and job rows are numbered without reuse (transitions are never deleted,
        // and the only job rows deleted, by a merge of twins, are never the newest), so their
        // count is known without reading them; a merge also moves `rewrites`.
        let changes = (upto.transitions - since.transitions) + (upto.jobs - since.jobs);
        if since.rewrites != upto.rewrites
            || upto.transitions < since.transitions
            || upto.jobs < since.jobs
            || usize::try_from(changes).map_or(true, |c| c > limit)
        {
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
            .bind(since.jobs)
            .bind(upto.jobs)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Some(
            rows.iter().filter_map(|r| self.row_to_job(r)).collect(),
        ))
    }

    /// When a job last changed status as ftguard saw it (or was first seen); 0 when unknown.
    pub async fn last_status_change(&self, account: &str, id: &str) -> Result<i64, StoreError> {
        Ok(self
            .transitions(account, id)
            .await?
            .iter()
            .map(|t| t.observed_at)
            .max()
            .unwrap_or(0))
    }

    /// The status changes of every job created at or after `created_after`, oldest first per
    /// job, keyed by (account, job id), in one read: what `ftguard replay` rebuilds each job's
    /// life from. A job's first sight is its row (`StoredJob::first_seen_at`); rows of older
    /// files that record it as a change without `from` are left out.
    pub async fn status_changes_since(
        &self,
        created_after: i64,
    ) -> Result<std::collections::HashMap<(String, String), Vec<Transition>>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.account, t.job_id, t.from_status, t.to_status, t.observed_at
               FROM status_transitions t JOIN jobs j ON j.seq = t.job_seq
              WHERE j.created_at >= ? AND t.from_status IS NOT NULL
              ORDER BY t.seq",
        )
        .bind(created_after)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out: std::collections::HashMap<(String, String), Vec<Transition>> =
            std::collections::HashMap::new();
        for r in &rows {
            out.entry((r.get(0), r.get(1)))
                .or_default()
                .push(Transition {
                    from: r.get(2),
                    to: r.get(3),
                    observed_at: r.get(4),
                });
        }
        Ok(out)
    }

    /// Status history of a job, oldest first, from its first sight (`from` empty).
    pub async fn transitions(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Vec<Transition>, StoreError> {
        let job: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT seq, first_seen_at, status FROM jobs INDEXED BY jobs_identity
              WHERE account = ? AND id = ?",
        )
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let Some((seq, first_seen_at, status)) = job else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT from_status, to_status, observed_at FROM status_transitions
              WHERE job_seq = ? ORDER BY seq",
        )
        .bind(seq)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut history: Vec<Transition> = rows
            .iter()
            .map(|r| Transition {
                from: r.get(0),
                to: r.get(1),
                observed_at: r.get(2),
            })
            .collect();
        // Since migration 0011 the first sight is the row itself: the status it was first
        // seen in is what its first change left (or what it still is). Older files have it
        // as a transition without `from`.
        if history.first().is_none_or(|t| t.from.is_some()) {
            let first = history
                .first()
                .and_then(|t| t.from.clone())
                .unwrap_or(status);
            history.insert(
                0,
                Transition {
                    from: None,
                    to: first,
                    observed_at: first_seen_at,
                },
            );
        }
        Ok(history)
    }
}

#[cfg(test)]
mod tests {
    use super::super::jobs::fixtures::*;
    use super::*;
    use crate::model::{AccountName, Job};

    #[tokio::test]
    async fn a_history_starts_with_the_first_sight_then_each_change() {
        let (_dir, store) = store().await;
        let account = AccountName::from_trusted("a".into());
        store
            .upsert_jobs(&account, &[job_in("ftjob-q", "queued", None)], 100)
            .await
            .unwrap();
        store
            .upsert_jobs(&account, &[job_in("ftjob-same", "succeeded", Some(1))], 100)
            .await
            .unwrap();
        let stats = store
            .upsert_jobs(&account, &[job_in("ftjob-q", "running", None)], 200)
            .await
            .unwrap();
        assert_eq!(
            stats.changes,
            [("ftjob-q".into(), "queued".into(), "running".into())]
        );
        let entries = |h: Vec<Transition>| {
            h.into_iter()
                .map(|t| (t.from, t.to, t.observed_at))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            entries(store.transitions("a", "ftjob-q").await.unwrap()),
            [
                (None, "queued".to_owned(), 100),
                (Some("queued".to_owned()), "running".to_owned(), 200)
            ]
        );
        assert_eq!(
            entries(store.transitions("a", "ftjob-same").await.unwrap()),
            [(None, "succeeded".to_owned(), 100)]
        );
        assert!(store.transitions("b", "ftjob-q").await.unwrap().is_empty());
    }

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
