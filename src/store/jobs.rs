//! Jobs and their status transitions.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreError};
use crate::model::{AccountName, Job};
use crate::provider::payload::parse_job_str;

/// A job as stored, with what ftguard learnt around it.
#[derive(Debug, Clone)]
pub struct StoredJob {
    pub account: AccountName,
    pub job: Job,
    pub last_step_at: Option<i64>,
    pub first_seen_at: i64,
    pub updated_at: i64,
}

/// One observed status change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Transition {
    pub from: Option<String>,
    pub to: String,
    pub observed_at: i64,
}

/// What writing a page changed.
#[derive(Debug, Default, Clone)]
pub struct PageStats {
    pub new: u32,
    pub changed: u32,
    /// Status changes of jobs already known: (id, from, to).
    pub changes: Vec<(String, String, String)>,
}

/// Which jobs to list.
#[derive(Debug, Default, Clone)]
pub struct JobFilter {
    pub account: Option<String>,
    pub status: Option<String>,
    pub active_only: bool,
    /// With `active_only`: also finished jobs created at or after this time.
    pub created_since: Option<i64>,
}

const TERMINAL: &str = "('succeeded','failed','cancelled')";

impl Store {
    /// Writes a page of jobs in one transaction, recording status transitions.
    pub async fn upsert_jobs(
        &self,
        account: &AccountName,
        jobs: &[Job],
        now: i64,
    ) -> Result<PageStats, StoreError> {
        // Job views can always be fetched again, so their pages commit with
        // synchronous = NORMAL (durable against a crash, fsynced at checkpoints) instead of
        // FULL: a 10,000-job first sync would otherwise pay 100 fsyncs. Action rows keep FULL.
        let mut conn = self.pool.acquire().await.map_err(|e| self.err(e))?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await
            .map_err(|e| self.err(e))?;
        let result = self.upsert_on(&mut conn, account, jobs, now).await;
        let restored = sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await;
        if restored.is_err() {
            // Never hand a relaxed connection back to the pool.
            conn.detach();
        }
        result
    }

    async fn upsert_on(
        &self,
        conn: &mut sqlx::SqliteConnection,
        account: &AccountName,
        jobs: &[Job],
        now: i64,
    ) -> Result<PageStats, StoreError> {
        use sqlx::Connection;
        // IMMEDIATE: this transaction reads, then writes. A deferred one would fail with
        // SQLITE_BUSY (no busy wait) when another writer commits between the two.
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.err(e))?;
        // One query for the page's previous statuses, not one per job.
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        let ids_json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        let rows = sqlx::query("SELECT id, status FROM jobs WHERE account = ? AND id IN (SELECT value FROM json_each(?))")
            .bind(account.as_str())
            .bind(&ids_json)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let previous: HashMap<String, String> =
            rows.into_iter().map(|r| (r.get(0), r.get(1))).collect();
        // An API that repeats a job within a page must not break the multi-row upsert.
        let mut unique = std::collections::HashSet::new();
        let deduped: Vec<&Job> = jobs
            .iter()
            .filter(|j| unique.insert(j.id.as_str()))
            .collect();
        let jobs = deduped.as_slice();
        let mut stats = PageStats::default();
        let mut transitions: Vec<(&str, Option<&String>, &str)> = Vec::new();
        for job in jobs {
            let old = previous.get(job.id.as_str());
            let status = job.status.as_str();
            if old.map(String::as_str) != Some(status) {
                match old {
                    None => stats.new += 1,
                    Some(from) => {
                        stats.changed += 1;
                        stats
                            .changes
                            .push((job.id.to_string(), from.clone(), status.to_owned()));
                    }
                }
                transitions.push((job.id.as_str(), old, status));
            }
        }
        // One multi-row statement per chunk, not one per job (12 binds a row, far below
        // SQLite's 32,766 limit at 500 rows).
        for chunk in jobs.chunks(500) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO jobs (account, id, model, status, created_at, finished_at, trained_tokens, estimated_finish, training_file, raw, first_seen_at, updated_at) ",
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
                    .push_bind(now)
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (account, id) DO UPDATE SET model = excluded.model, status = excluded.status,
                   created_at = excluded.created_at, finished_at = excluded.finished_at, trained_tokens = excluded.trained_tokens,
                   estimated_finish = excluded.estimated_finish, training_file = excluded.training_file, raw = excluded.raw,
                   updated_at = excluded.updated_at",
            );
            q.build().execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        for chunk in transitions.chunks(500) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO status_transitions (account, job_id, from_status, to_status, observed_at) ",
            );
            q.push_values(chunk, |mut b, (id, from, to)| {
                b.push_bind(account.as_str())
                    .push_bind(*id)
                    .push_bind(from.map(String::as_str))
                    .push_bind(*to)
                    .push_bind(now);
            });
            q.build().execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(stats)
    }

    /// Records when a job's newest training step happened (from its events).
    pub async fn set_last_step(
        &self,
        account: &AccountName,
        id: &str,
        at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET last_step_at = ? WHERE account = ? AND id = ?")
            .bind(at)
            .bind(account.as_str())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Jobs, newest first.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<StoredJob>, StoreError> {
        let mut sql = String::from(
            "SELECT account, raw, last_step_at, first_seen_at, updated_at FROM jobs WHERE 1=1",
        );
        if filter.account.is_some() {
            sql.push_str(" AND account = ?");
        }
        if filter.status.is_some() {
            sql.push_str(" AND status = ?");
        }
        match (filter.active_only, filter.created_since) {
            (true, Some(t)) => sql.push_str(&format!(
                " AND (status NOT IN {TERMINAL} OR created_at >= {t})"
            )),
            (true, None) => sql.push_str(&format!(" AND status NOT IN {TERMINAL}")),
            (false, _) => {}
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC");
        let mut q = sqlx::query(&sql);
        if let Some(a) = &filter.account {
            q = q.bind(a);
        }
        if let Some(s) = &filter.status {
            q = q.bind(s);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(|e| self.err(e))?;
        Ok(rows.iter().filter_map(|r| self.row_to_job(r)).collect())
    }

    /// One job by id, in one account or any.
    pub async fn job(&self, account: Option<&str>, id: &str) -> Result<Vec<StoredJob>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, raw, last_step_at, first_seen_at, updated_at FROM jobs WHERE id = ? AND (?2 IS NULL OR account = ?2) ORDER BY account",
        )
        .bind(id)
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().filter_map(|r| self.row_to_job(r)).collect())
    }

    fn row_to_job(&self, r: &sqlx::sqlite::SqliteRow) -> Option<StoredJob> {
        let raw: String = r.get(1);
        // The raw payload was parsed before it was stored, so this cannot fail unless the
        // file was edited by hand; such a row is skipped with a warning, not fatal.
        let parsed = parse_job_str(&raw);
        match parsed {
            Ok(job) => Some(StoredJob {
                account: AccountName::from_trusted(r.get(0)),
                job,
                last_step_at: r.get(2),
                first_seen_at: r.get(3),
                updated_at: r.get(4),
            }),
            Err(e) => {
                tracing::warn!(database = %self.path.display(), error = %e, "skipping unreadable job row");
                None
            }
        }
    }

    /// Status history of a job, oldest first.
    pub async fn transitions(
        &self,
        account: &str,
        id: &str,
    ) -> Result<Vec<Transition>, StoreError> {
        let rows = sqlx::query(
            "SELECT from_status, to_status, observed_at FROM status_transitions WHERE account = ? AND job_id = ? ORDER BY seq",
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

    /// (account, status, count) for `/metrics`.
    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT account, status, COUNT(*) FROM jobs GROUP BY account, status")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Ids of active jobs in an account (for retrieving ones a sync did not see).
    pub async fn active_job_ids(&self, account: &AccountName) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id FROM jobs WHERE account = ? AND status NOT IN {TERMINAL}"
        ))
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
