//! Jobs as stored: writing a page of them, reading a row back, and the steps seen in a job's
//! events. Listings are in `listing.rs`, status history in `history.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Store, StoreError};
use crate::model::{AccountName, Job, JobId, JobStatus};

/// A job's domain values as the store keeps them in `detail`: ftguard's own JSON, not the
/// API's (`raw` is kept only to be shown). Everything but the id and creation time, which are
/// the key's columns; the columns queried (`status`, `model`, ...) are written from the same
/// job. One text to read per row is faster than a column each. Migration 0016 wrote it for the
/// rows stored before.
#[derive(Serialize)]
struct DetailOut<'a> {
    model: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trained_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_finish: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    training_file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fine_tuned_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n_epochs: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suffix: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a serde_json::Value>,
}

/// [`DetailOut`] read back.
#[derive(Deserialize)]
struct Detail {
    model: String,
    status: String,
    #[serde(default)]
    finished_at: Option<i64>,
    #[serde(default)]
    trained_tokens: Option<i64>,
    #[serde(default)]
    estimated_finish: Option<i64>,
    #[serde(default)]
    training_file: Option<String>,
    #[serde(default)]
    fine_tuned_model: Option<String>,
    #[serde(default)]
    validation_file: Option<String>,
    #[serde(default)]
    n_epochs: Option<serde_json::Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

fn detail_of(job: &Job) -> String {
    let detail = DetailOut {
        model: &job.model,
        status: job.status.as_str(),
        finished_at: job.finished_at,
        trained_tokens: job.trained_tokens,
        estimated_finish: job.estimated_finish,
        training_file: job.training_file.as_deref(),
        fine_tuned_model: job.fine_tuned_model.as_deref(),
        validation_file: job.validation_file.as_deref(),
        n_epochs: job.n_epochs.as_ref(),
        method: job.method.as_deref(),
        suffix: job.suffix.as_deref(),
        metadata: &job.metadata,
        error: job.error.as_ref(),
    };
    // Strings, numbers, maps and JSON values always serialize.
    serde_json::to_string(&detail).unwrap_or_else(|_| "{}".to_owned())
}

/// A job as stored, with what ftguard learnt around it.
#[derive(Debug, Clone)]
pub struct StoredJob {
    pub account: AccountName,
    pub job: Job,
    pub last_step_at: Option<i64>,
    /// When its events were last fetched successfully (`last_step_at` is as of then).
    pub steps_checked_at: Option<i64>,
    /// When the API answered 404 for it: no longer watched (migration 0007).
    pub gone_at: Option<i64>,
    pub first_seen_at: i64,
    pub updated_at: i64,
}

/// Where the status history ended before some writes (see [`Store::written_since`]).
#[derive(Debug, Clone, Copy)]
pub struct WriteMark {
    transitions: i64,
    /// The newest job row when the mark was taken.
    pub(super) jobs: i64,
}

/// What writing a page changed.
#[derive(Debug, Default, Clone)]
pub struct PageStats {
    pub new: u32,
    pub changed: u32,
    /// Jobs already known whose payload changed but not their status.
    pub updated: u32,
    /// Status changes of jobs already known: (id, from, to).
    pub changes: Vec<(String, String, String)>,
}

/// The API's finished statuses, as an SQL list.
pub(super) const TERMINAL: &str = "('succeeded','failed','cancelled')";

/// Jobs ftguard watches: not finished and not gone from the API. Must read exactly like the
/// `WHERE` of the partial index `jobs_active` (migration 0007), or SQLite cannot use it.
pub(super) const ACTIVE: &str =
    "status NOT IN ('succeeded','failed','cancelled') AND gone_at IS NULL";

/// Above this many rows written, new rows are counted from the index `jobs_by_status` (see
/// [`written_since_sql`]).
const COUNT_NEW_BY_INDEX: u64 = 1000;

/// The query of [`Store::written_since`]. New rows are those past the mark: read from the
/// table when few rows were written (a steady sync: the rows past the mark are a handful),
/// from the small index `jobs_by_status` — which holds each row's account and seq, about 20
/// bytes against a row's kilobyte — when many were (a first sync would otherwise read all it
/// wrote back for one count; BENCHMARKS.md has the figures).
pub(super) fn written_since_sql(written: u64) -> String {
    let new_rows = if written > COUNT_NEW_BY_INDEX {
        "jobs INDEXED BY jobs_by_status"
    } else {
        "jobs NOT INDEXED"
    };
    format!(
        "SELECT 0, 0, NULL, NULL, NULL, COUNT(*) FROM {new_rows}
          WHERE seq > ?1 AND account = ?3
         UNION ALL
         SELECT 1, seq, job_id, from_status, to_status, NULL FROM status_transitions
          WHERE seq > ?2 AND account = ?3 AND from_status IS NOT NULL
         ORDER BY 1, 2"
    )
}

impl Store {
    /// Writes jobs and says what that changed: [`Store::write_jobs`] between a
    /// [`Store::write_mark`] and [`Store::written_since`]. For a job or two (a retrieve, a
    /// cancel's answer); a sync writes its pages with `write_jobs` alone and asks once at the
    /// end, since each round trip to SQLite's thread costs more than writing a job.
    pub async fn upsert_jobs(
        &self,
        account: &AccountName,
        jobs: &[Job],
        now: i64,
    ) -> Result<PageStats, StoreError> {
        let mark = self.write_mark().await?;
        let written = self.write_jobs(account, jobs, now).await?;
        self.written_since(account, mark, written).await
    }

    /// Where the status history ends now: what [`Store::written_since`] counts from.
    pub async fn write_mark(&self) -> Result<WriteMark, StoreError> {
        let (transitions, jobs): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM status_transitions),
                    (SELECT COALESCE(MAX(seq), 0) FROM jobs)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(WriteMark { transitions, jobs })
    }

    /// Writes a page of jobs in one multi-row upsert: its own transaction, with the status
    /// history written by triggers in the same statement (migration 0004), one round trip to
    /// SQLite's thread and no per-job queries. Returns how many rows it wrote. A job whose
    /// payload is exactly what is stored is not written at all, so the page a steady-state
    /// sync lists every minute costs no disk writes (and `updated_at` is when what the API
    /// says about the job last changed).
    pub async fn write_jobs(
        &self,
        account: &AccountName,
        jobs: &[Job],
        now: i64,
    ) -> Result<u64, StoreError> {
        // An API that repeats a job within a page must not make it count twice.
        let mut unique = std::collections::HashSet::new();
        let jobs: Vec<&Job> = jobs
            .iter()
            .filter(|j| unique.insert(j.id.as_str()))
            .collect();
        let mut written = 0;
        // 13 binds a row: 500 rows stay far below SQLite's 32,766 limit. Pages are 100.
        for chunk in jobs.chunks(500) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO jobs (account, id, model, status, created_at, finished_at, trained_tokens, estimated_finish, training_file, raw, detail, first_seen_at, updated_at) ",
            );
            q.push_values(chunk, |mut b, job| {
                b.push_bind(account.as_str())
                    .push_bind(job.id.as_str())
                    .push_bind(&job.model)
                    .push_bind(job.status.as_str())
                    .push_bind(job.created_at)
                    .push_bind(job.finished_at)
                    .push_bind(job.trained_tokens)
                    .push_bind(job.estimated_finish)
                    .push_bind(&job.training_file)
                    .push_bind(job.raw.as_str())
                    .push_bind(detail_of(job))
                    .push_bind(now)
                    .push_bind(now);
            });
            // In DO UPDATE, `jobs.status` is the row before the update: kept as prev_status
            // (an insert leaves it NULL). Every other column is derived from the payload: the same
            // payload means nothing to write, unless the job was gone and is back.
            // No `RETURNING`: each returned row would cross to SQLite's thread and back on its
            // own (BENCHMARKS.md, first sync).
            q.push(
                " ON CONFLICT (created_at, account, id) DO UPDATE SET prev_status = jobs.status, model = excluded.model,
                   status = excluded.status, created_at = excluded.created_at, finished_at = excluded.finished_at,
                   trained_tokens = excluded.trained_tokens, estimated_finish = excluded.estimated_finish,
                   training_file = excluded.training_file, raw = excluded.raw, detail = excluded.detail, updated_at = excluded.updated_at,
                   gone_at = NULL
                 WHERE jobs.raw IS NOT excluded.raw OR jobs.gone_at IS NOT NULL",
            );
            written += q
                .build()
                .execute(&self.pool)
                .await
                .map_err(|e| self.err(e))?
                .rows_affected();
        }
        Ok(written)
    }

    /// What writes of an account's jobs since `mark` did, `written` being the rows they wrote:
    /// each new job is a row past the mark, each status change of a stored one a status
    /// transition (another account's sync writing meanwhile is told apart by the account);
    /// every other row written was a stored job whose payload changed. One query, whatever
    /// the number of jobs.
    pub async fn written_since(
        &self,
        account: &AccountName,
        mark: WriteMark,
        written: u64,
    ) -> Result<PageStats, StoreError> {
        let rows = sqlx::query(&written_since_sql(written))
            .bind(mark.jobs)
            .bind(mark.transitions)
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut stats = PageStats::default();
        for r in rows {
            match r.get::<Option<String>, _>(2) {
                None => stats.new = u32::try_from(r.get::<i64, _>(5)).unwrap_or(u32::MAX),
                Some(id) => {
                    stats.changed += 1;
                    stats.changes.push((id, r.get(3), r.get(4)));
                }
            }
        }
        let written = u32::try_from(written).unwrap_or(u32::MAX);
        stats.updated = written.saturating_sub(stats.new.saturating_add(stats.changed));
        Ok(stats)
    }

    /// Marks a job the API answered 404 for as gone (once: the first time is kept). Gone jobs
    /// are not active any more: no retrieves, policies, timers or projected cost.
    pub async fn mark_gone(
        &self,
        account: &AccountName,
        id: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET gone_at = ?1 WHERE seq = (SELECT seq FROM jobs INDEXED BY jobs_identity WHERE account = ?2 AND id = ?3) AND gone_at IS NULL",
        )
        .bind(at)
        .bind(account.as_str())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    /// Records what a successful fetch of a job's events found: when its newest training step
    /// happened (kept as it was when the events showed none) and when they were checked.
    pub async fn record_steps(
        &self,
        account: &AccountName,
        id: &str,
        last_step: Option<i64>,
        checked_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET last_step_at = MAX(COALESCE(?1, last_step_at), COALESCE(last_step_at, ?1)), steps_checked_at = ?2 WHERE seq = (SELECT seq FROM jobs INDEXED BY jobs_identity WHERE account = ?3 AND id = ?4)",
        )
        .bind(last_step)
        .bind(checked_at)
        .bind(account.as_str())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A job from a row read with `job_columns!()`. A row whose `detail` cannot be read (the
    /// file was edited by hand) is skipped with a warning, not fatal.
    pub(super) fn row_to_job(&self, r: &sqlx::sqlite::SqliteRow) -> Option<StoredJob> {
        let id: String = r.get(8);
        let detail = r
            .get::<Option<&str>, _>(9)
            .ok_or_else(|| "no detail".to_owned())
            .and_then(|d| serde_json::from_str::<Detail>(d).map_err(|e| e.to_string()));
        let detail = match detail {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(database = %self.path.display(), job_id = %id, error = %e, "skipping unreadable job row");
                return None;
            }
        };
        let first_seen_at: i64 = r.get(3);
        let mut job = Job {
            id: JobId::new(id),
            model: detail.model,
            status: JobStatus::parse(&detail.status),
            created_at: r.get(7),
            finished_at: detail.finished_at,
            trained_tokens: detail.trained_tokens,
            estimated_finish: detail.estimated_finish,
            fine_tuned_model: detail.fine_tuned_model,
            training_file: detail.training_file,
            validation_file: detail.validation_file,
            n_epochs: detail.n_epochs.filter(|v| !v.is_null()),
            method: detail.method,
            suffix: detail.suffix,
            metadata: detail.metadata,
            error: detail.error.filter(|v| !v.is_null()),
            raw: r.get(1),
        };
        // A created_at that cannot be believed (before 2015, or after the job was first seen)
        // would exempt the job from every time limit: it is judged from when ftguard first saw
        // it instead, which it surely existed by (said once by the sync).
        if !crate::model::plausible_created_at(job.created_at, first_seen_at) {
            job.created_at = first_seen_at;
        }
        Some(StoredJob {
            account: AccountName::from_trusted(r.get(0)),
            job,
            last_step_at: r.get(2),
            steps_checked_at: r.get(5),
            gone_at: r.get(6),
            first_seen_at,
            updated_at: r.get(4),
        })
    }
}

/// Jobs for the store's tests.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// A fresh store in a temporary directory (kept alive by the returned guard).
    pub async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ftguard.db")).await.unwrap();
        (dir, store)
    }

    pub fn job(id: &str) -> Job {
        job_in(id, "running", None)
    }

    pub fn job_in(id: &str, status: &str, trained_tokens: Option<i64>) -> Job {
        let tokens = trained_tokens.map_or("null".to_owned(), |t| t.to_string());
        Job {
            trained_tokens,
            training_file: Some("file-1".into()),
            raw: format!(
                r#"{{"object":"fine_tuning.job","id":"{id}","model":"gpt-4o-mini-2024-07-18","created_at":1700000000,"status":"{status}","trained_tokens":{tokens},"training_file":"file-1","hyperparameters":{{}}}}"#
            ),
            ..Job::new(id, "gpt-4o-mini-2024-07-18", status, 1_700_000_000)
        }
    }

    pub fn created(id: &str, created_at: i64) -> Job {
        Job {
            raw: format!(r#"{{"id":"{id}","created_at":{created_at}}}"#),
            ..Job::new(id, "m", "succeeded", created_at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[tokio::test]
    async fn a_page_reports_what_it_wrote_and_skips_what_did_not_change() {
        let (_dir, store) = store().await;
        let account = AccountName::from_trusted("a".into());
        let write = |jobs: Vec<Job>, now: i64| {
            let (store, account) = (store.clone(), account.clone());
            async move {
                let s = store.upsert_jobs(&account, &jobs, now).await.unwrap();
                (s.new, s.changed, s.updated, s.changes)
            }
        };
        let updated_at = |id: &'static str| {
            let store = store.clone();
            async move { store.job(Some("a"), id).await.unwrap()[0].updated_at }
        };
        let page = || vec![job_in("ftjob-1", "running", None), job("ftjob-2")];
        assert_eq!(write(page(), 10).await, (2, 0, 0, vec![]));
        // The same page again: nothing written, nothing reported.
        assert_eq!(write(page(), 20).await, (0, 0, 0, vec![]));
        assert_eq!(updated_at("ftjob-1").await, 10);
        // A status change is reported once, not again when the next sync lists it unchanged.
        let done = || vec![job_in("ftjob-1", "succeeded", Some(900)), job("ftjob-2")];
        let change = (
            "ftjob-1".to_owned(),
            "running".to_owned(),
            "succeeded".to_owned(),
        );
        assert_eq!(write(done(), 30).await, (0, 1, 0, vec![change]));
        assert_eq!(write(done(), 40).await, (0, 0, 0, vec![]));
        assert_eq!(updated_at("ftjob-1").await, 30);
        // Another field changing is an update, with the new payload stored.
        let more = vec![job_in("ftjob-1", "succeeded", Some(950))];
        assert_eq!(write(more, 50).await, (0, 0, 1, vec![]));
        let stored = &store.job(Some("a"), "ftjob-1").await.unwrap()[0];
        assert_eq!(
            (stored.updated_at, stored.job.trained_tokens),
            (50, Some(950))
        );
        assert_eq!(stored.first_seen_at, 10);
        let history: Vec<String> = store
            .transitions("a", "ftjob-1")
            .await
            .unwrap()
            .into_iter()
            .map(|t| format!("{:?}->{}@{}", t.from, t.to, t.observed_at))
            .collect();
        assert_eq!(
            history,
            ["None->running@10", "Some(\"running\")->succeeded@30"]
        );
        assert_eq!(updated_at("ftjob-2").await, 10);
    }

    #[tokio::test]
    async fn new_rows_are_counted_alike_from_the_table_and_from_the_index() {
        let (_dir, store) = store().await;
        let (a, b) = (
            AccountName::from_trusted("a".into()),
            AccountName::from_trusted("b".into()),
        );
        store
            .write_jobs(&a, &[created("ftjob-old", 1)], 1)
            .await
            .unwrap();
        let mark = store.write_mark().await.unwrap();
        // Pages of two accounts interleaved past the mark, as two syncs at once write them.
        let mut written = 0;
        for page in 0..12i64 {
            let jobs: Vec<Job> = (0..100)
                .map(|i| created(&format!("ftjob-{page}-{i}"), 10 + page * 100 + i))
                .collect();
            written += store.write_jobs(&a, &jobs, 2).await.unwrap();
            store
                .write_jobs(&b, &[created(&format!("ftjob-b{page}"), 5)], 2)
                .await
                .unwrap();
        }
        assert!(written > COUNT_NEW_BY_INDEX);
        let by_index = store.written_since(&a, mark, written).await.unwrap();
        let by_table = store.written_since(&a, mark, 1).await.unwrap();
        assert_eq!((by_index.new, by_table.new), (1200, 1200));
        assert_eq!(
            store.written_since(&b, mark, written).await.unwrap().new,
            12
        );
    }
}
