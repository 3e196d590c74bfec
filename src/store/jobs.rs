//! Jobs and their status transitions.

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
    /// When its events were last fetched successfully (`last_step_at` is as of then).
    pub steps_checked_at: Option<i64>,
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
    /// Jobs already known whose payload changed but not their status.
    pub updated: u32,
    /// Status changes of jobs already known: (id, from, to).
    pub changes: Vec<(String, String, String)>,
}

/// See [`Store::history_mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryMark {
    /// The newest status transition.
    pub transitions: i64,
    /// How many times a finished job's payload was rewritten.
    pub rewrites: i64,
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

impl JobFilter {
    /// Every active (not finished) job: what syncs, passes and timers look at.
    pub fn active() -> Self {
        Self {
            active_only: true,
            ..Self::default()
        }
    }
}

/// Must read exactly like the `WHERE` of the partial index `jobs_active` (migration 0005), or
/// SQLite cannot use it.
pub(super) const TERMINAL: &str = "('succeeded','failed','cancelled')";

/// Ids of an account's active jobs (once per sync).
pub(super) const ACTIVE_IDS_SQL: &str = "SELECT id FROM jobs INDEXED BY jobs_active
    WHERE account = ? AND status NOT IN ('succeeded','failed','cancelled')";

/// A job by id (`?1`) in one account (`?2`) or, with `?2` NULL, in any: the unique index is
/// (account, id), so this hops through the stored accounts (a handful) and looks the id up in
/// each instead of scanning every row for an id alone.
pub(super) const JOB_BY_ID_SQL: &str = "WITH RECURSIVE accounts(name) AS (
        SELECT COALESCE(?2, (SELECT MIN(account) FROM jobs))
        UNION ALL
        SELECT (SELECT MIN(account) FROM jobs WHERE account > name) FROM accounts
        WHERE name IS NOT NULL AND ?2 IS NULL)
    SELECT j.account, j.raw, j.last_step_at, j.first_seen_at, j.updated_at, j.steps_checked_at
    FROM accounts a JOIN jobs j ON j.account = a.name AND j.id = ?1";

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
        "SELECT account, raw, last_step_at, first_seen_at, updated_at, steps_checked_at FROM jobs
           WHERE seq IN (SELECT job_seq FROM status_transitions WHERE seq > ?1 AND seq <= ?2)
             AND status IN {TERMINAL}
             AND NOT EXISTS (SELECT 1 FROM status_transitions t
                             WHERE t.job_seq = jobs.seq AND t.seq > ?2)"
    )
}

/// Rows a listing reads per query (see [`Store::for_each_job`]).
pub(super) const LISTING_CHUNK: usize = 500;

/// The listing query for a filter, newest first, one chunk of [`LISTING_CHUNK`] rows at a time
/// after a cursor. Binds: account and status when set, then the cursor (`created_at`, `seq`)
/// of the last row read (`i64::MAX` twice to start).
///
/// Each filter is read through the index that already holds its rows in creation order
/// (`seq`, the rowid, breaks ties for free), so neither the first chunk nor the last needs a
/// sort and the cursor is a seek.
pub(super) fn jobs_sql(filter: &JobFilter) -> String {
    let mut sql = String::from(
        "SELECT account, raw, last_step_at, first_seen_at, updated_at, steps_checked_at, created_at, seq FROM jobs",
    );
    // Active jobs only: from their own small index, not by reading the whole history.
    sql.push_str(
        match (
            filter.active_only && filter.created_since.is_none(),
            &filter.account,
        ) {
            (true, _) => " INDEXED BY jobs_active",
            (false, Some(_)) => " INDEXED BY jobs_by_account",
            (false, None) => " INDEXED BY jobs_by_created",
        },
    );
    sql.push_str(" WHERE 1=1");
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
    sql.push_str(&format!(
        " AND (created_at, seq) < (?, ?) ORDER BY created_at DESC, seq DESC LIMIT {LISTING_CHUNK}"
    ));
    sql
}

impl Store {
    /// Writes a page of jobs in one multi-row upsert (its own transaction; the status history
    /// is written by triggers in the same statement, migration 0004) that reports what it did
    /// with `RETURNING`: one round trip to SQLite's thread per page, no per-job queries.
    /// A job whose payload is exactly what is stored is not written at all, so the page a
    /// steady-state sync lists every minute costs no disk writes (and `updated_at` is when
    /// what the API says about the job last changed).
    pub async fn upsert_jobs(
        &self,
        account: &AccountName,
        jobs: &[Job],
        now: i64,
    ) -> Result<PageStats, StoreError> {
        // An API that repeats a job within a page must not make it count twice.
        let mut unique = std::collections::HashSet::new();
        let jobs: Vec<&Job> = jobs
            .iter()
            .filter(|j| unique.insert(j.id.as_str()))
            .collect();
        let mut stats = PageStats::default();
        // 12 binds a row: 500 rows stay far below SQLite's 32,766 limit. Pages are 100.
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
            // In DO UPDATE, `jobs.status` is the row before the update: kept as prev_status
            // (an insert leaves it NULL), so RETURNING can tell what this write did. Every
            // other column is derived from `raw`: the same payload means nothing to write,
            // and such a row is not returned.
            q.push(
                " ON CONFLICT (account, id) DO UPDATE SET prev_status = jobs.status, model = excluded.model,
                   status = excluded.status, created_at = excluded.created_at, finished_at = excluded.finished_at,
                   trained_tokens = excluded.trained_tokens, estimated_finish = excluded.estimated_finish,
                   training_file = excluded.training_file, raw = excluded.raw, updated_at = excluded.updated_at
                 WHERE jobs.raw IS NOT excluded.raw
                 RETURNING id, prev_status, status",
            );
            let rows = q
                .build()
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            for r in rows {
                let (id, prev, status): (String, Option<String>, String) =
                    (r.get(0), r.get(1), r.get(2));
                match prev {
                    None => stats.new += 1,
                    Some(prev) if prev != status => {
                        stats.changed += 1;
                        stats.changes.push((id, prev, status));
                    }
                    Some(_) => stats.updated += 1,
                }
            }
        }
        Ok(stats)
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
            "UPDATE jobs SET last_step_at = MAX(COALESCE(?1, last_step_at), COALESCE(last_step_at, ?1)), steps_checked_at = ?2 WHERE account = ?3 AND id = ?4",
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

    /// Jobs, newest first.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<StoredJob>, StoreError> {
        let mut jobs = Vec::new();
        self.for_each_job(filter, |j| jobs.push(j)).await?;
        Ok(jobs)
    }

    /// Calls `each` with every job matching `filter`, newest first, holding one chunk of rows
    /// at a time: `ftguard jobs` over 100,000 stored jobs needs a few megabytes, not hundreds.
    /// Each chunk is its own short read, and `each` runs between reads: a reader that stops
    /// reading (`ftguard jobs | less`, left open) holds no snapshot, so the daemon's
    /// checkpoints go on and the write-ahead log does not grow behind it.
    pub async fn for_each_job(
        &self,
        filter: &JobFilter,
        mut each: impl FnMut(StoredJob),
    ) -> Result<(), StoreError> {
        let sql = jobs_sql(filter);
        let mut cursor = (i64::MAX, i64::MAX);
        loop {
            let mut q = sqlx::query(&sql);
            if let Some(a) = &filter.account {
                q = q.bind(a);
            }
            if let Some(s) = &filter.status {
                q = q.bind(s);
            }
            let rows = q
                .bind(cursor.0)
                .bind(cursor.1)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            for r in &rows {
                cursor = (r.get(6), r.get(7));
                if let Some(j) = self.row_to_job(r) {
                    each(j);
                }
            }
            if rows.len() < LISTING_CHUNK {
                return Ok(());
            }
        }
    }

    /// One job by id, in one account or any (`?2`, NULL for any).
    pub async fn job(&self, account: Option<&str>, id: &str) -> Result<Vec<StoredJob>, StoreError> {
        let rows = sqlx::query(JOB_BY_ID_SQL)
            .bind(id)
            .bind(account)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        // A handful at most: sorted here, not by a sort step in the query.
        let mut jobs: Vec<StoredJob> = rows.iter().filter_map(|r| self.row_to_job(r)).collect();
        jobs.sort_by(|a, b| a.account.as_str().cmp(b.account.as_str()));
        Ok(jobs)
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
                steps_checked_at: r.get(5),
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
        let rows = sqlx::query(ACTIVE_IDS_SQL)
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> Job {
        job_in(id, "running", None)
    }

    fn job_in(id: &str, status: &str, trained_tokens: Option<i64>) -> Job {
        let tokens = trained_tokens.map_or("null".to_owned(), |t| t.to_string());
        parse_job_str(&format!(
            r#"{{"object":"fine_tuning.job","id":"{id}","model":"gpt-4o-mini-2024-07-18","created_at":1700000000,"status":"{status}","trained_tokens":{tokens},"training_file":"file-1","hyperparameters":{{}}}}"#
        ))
        .unwrap()
    }

    fn created(id: &str, created_at: i64) -> Job {
        parse_job_str(&format!(
            r#"{{"object":"fine_tuning.job","id":"{id}","model":"m","created_at":{created_at},"status":"succeeded","hyperparameters":{{}}}}"#
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn listings_read_in_chunks_return_every_job_once_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ftguard.db")).await.unwrap();
        // Two chunks and a bit, with creation times shared across the chunk boundaries and the
        // same ids in two accounts: the cursor must neither skip nor repeat a tie.
        let n = LISTING_CHUNK * 2 + 7;
        for account in ["a", "b"] {
            let jobs: Vec<Job> = (0..n)
                .map(|i| created(&format!("ftjob-{i:04}"), 1_000 + (i / 3) as i64))
                .collect();
            for page in jobs.chunks(100) {
                store
                    .upsert_jobs(&AccountName::from_trusted(account.into()), page, 1)
                    .await
                    .unwrap();
            }
        }
        let listed = |filter: JobFilter| {
            let store = store.clone();
            async move {
                let mut seen = Vec::new();
                store
                    .for_each_job(&filter, |j| {
                        seen.push((
                            j.job.created_at,
                            j.account.to_string(),
                            j.job.id.to_string(),
                        ))
                    })
                    .await
                    .unwrap();
                seen
            }
        };
        let all = listed(JobFilter::default()).await;
        assert_eq!(all.len(), 2 * n);
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 2 * n, "a job listed twice");
        assert!(all.windows(2).all(|w| w[0].0 >= w[1].0), "not newest first");
        let in_b = listed(JobFilter {
            account: Some("b".into()),
            status: Some("succeeded".into()),
            ..JobFilter::default()
        })
        .await;
        assert_eq!(in_b.len(), n);
        assert!(in_b.iter().all(|(_, a, _)| a == "b"));
        assert_eq!(in_b[0].2, format!("ftjob-{:04}", n - 1));
    }

    #[tokio::test]
    async fn jobs_finished_between_two_marks_are_each_found_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ftguard.db")).await.unwrap();
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

    #[tokio::test]
    async fn a_page_reports_what_it_wrote_and_skips_what_did_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ftguard.db")).await.unwrap();
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
    async fn a_job_is_found_by_id_in_any_account_or_in_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ftguard.db")).await.unwrap();
        for (account, ids) in [
            ("b", ["ftjob-x", "ftjob-b"]),
            ("a", ["ftjob-x", "ftjob-a"]),
            ("c", ["ftjob-c", "ftjob-cc"]),
        ] {
            let jobs: Vec<Job> = ids.iter().map(|i| job(i)).collect();
            store
                .upsert_jobs(&AccountName::from_trusted(account.into()), &jobs, 1)
                .await
                .unwrap();
        }
        let found = |account: Option<&'static str>, id: &'static str| {
            let store = store.clone();
            async move {
                store
                    .job(account, id)
                    .await
                    .unwrap()
                    .iter()
                    .map(|j| format!("{}/{}", j.account, j.job.id.as_str()))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(found(None, "ftjob-x").await, ["a/ftjob-x", "b/ftjob-x"]);
        assert_eq!(found(None, "ftjob-c").await, ["c/ftjob-c"]);
        assert_eq!(found(None, "ftjob-none").await, Vec::<String>::new());
        assert_eq!(found(Some("b"), "ftjob-x").await, ["b/ftjob-x"]);
        assert_eq!(found(Some("b"), "ftjob-a").await, Vec::<String>::new());
        assert_eq!(found(Some("zz"), "ftjob-x").await, Vec::<String>::new());
    }
}
