//! Reading jobs back: listings in chunks after a cursor, one job by id, counts for `/metrics`.

use sqlx::Row;

use super::jobs::{ACTIVE, StoredJob};
use super::{Store, StoreError};
use crate::model::AccountName;

/// Which jobs to list.
#[derive(Debug, Default, Clone)]
pub struct JobFilter {
    pub account: Option<String>,
    pub status: Option<String>,
    pub active_only: bool,
    /// With `active_only`: also finished jobs created at or after this time (never gone ones).
    pub created_since: Option<i64>,
    /// Only jobs created at or after this time (`jobs --since`).
    pub created_after: Option<i64>,
    /// At most this many jobs, the newest (`jobs --limit`).
    pub limit: Option<usize>,
    /// Only jobs whose model matches this glob, as policies' `match.models` (`jobs --model`).
    pub model: Option<String>,
    /// Also read each job's payload as received (`Job::raw`, to be shown: `jobs --json`);
    /// otherwise it is left empty, and a pass over thousands of jobs does not hold it.
    pub with_payload: bool,
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

/// Ids of an account's active jobs (once per sync).
pub(super) const ACTIVE_IDS_SQL: &str = "SELECT id FROM jobs INDEXED BY jobs_active
    WHERE account = ? AND status NOT IN ('succeeded','failed','cancelled') AND gone_at IS NULL";

/// How many jobs are active (from the partial index `jobs_active`).
pub(super) const ACTIVE_COUNT_SQL: &str = "SELECT COUNT(*) FROM jobs INDEXED BY jobs_active
    WHERE status NOT IN ('succeeded','failed','cancelled') AND gone_at IS NULL";

/// A job by id (`?1`) in one account or, with `?2` NULL, in any. Ids are random, so no index
/// is keyed by them (each would take a first sync's every page to scattered index pages): this
/// reads the identity index, which holds every id (a few milliseconds at 100,000 jobs), and
/// then only the rows that match.
pub(super) const JOB_BY_ID_SQL: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs INDEXED BY jobs_identity WHERE id = ?1 AND (?2 IS NULL OR account = ?2)"
);

/// The status `/metrics` and `jobs --status` give jobs the API no longer knows.
pub const GONE: &str = "gone";

/// Jobs per account and status (from the covering index `jobs_by_status`).
pub(super) const JOB_COUNTS_SQL: &str =
    "SELECT account, status, COUNT(*) FROM jobs GROUP BY account, status";

/// Gone jobs per account and the status they had (from the partial index `jobs_gone`).
pub(super) const GONE_COUNTS_SQL: &str =
    "SELECT account, status, COUNT(*) FROM jobs INDEXED BY jobs_gone
    WHERE gone_at IS NOT NULL GROUP BY account, status";

/// Rows a listing reads per query (see [`Store::for_each_job`]).
pub(super) const LISTING_CHUNK: usize = 500;

/// The listing query for a filter, newest first, one chunk of [`LISTING_CHUNK`] rows at a time
/// after a cursor. Binds: account and status when set (not for [`GONE`]), then the cursor
/// (`created_at`, `account`, `id`) of the last row read (`i64::MAX`, "", "" to start).
///
/// Every filter reads an index that already holds its rows in that order — `jobs_active` for
/// active jobs, the identity index `(created_at, account, id)` for the rest — so neither the
/// first chunk nor the last needs a sort, and the cursor is a seek. The account is compared as
/// `+account`: as an index term, SQLite would take it for a constant, no longer see that the
/// index order is the listing's, and sort each chunk.
pub(super) fn jobs_sql(filter: &JobFilter) -> String {
    let mut sql = String::from(if filter.with_payload {
        concat!("SELECT ", job_columns!(), " FROM jobs")
    } else {
        concat!("SELECT ", job_columns_without_payload!(), " FROM jobs")
    });
    // Active jobs only: from their own small index, not by reading the whole history.
    sql.push_str(if filter.active_only && filter.created_since.is_none() {
        " INDEXED BY jobs_active"
    } else {
        " INDEXED BY jobs_identity"
    });
    sql.push_str(" WHERE 1=1");
    if filter.account.is_some() {
        sql.push_str(" AND +account = ?");
    }
    match filter.status.as_deref() {
        Some(GONE) => sql.push_str(" AND gone_at IS NOT NULL"),
        Some(_) => sql.push_str(" AND status = ?"),
        None => {}
    }
    if filter.created_after.is_some() {
        sql.push_str(" AND created_at >= ?");
    }
    match (filter.active_only, filter.created_since) {
        // Gone jobs are neither active nor finished: a period's spend leaves them out.
        (true, Some(t)) => sql.push_str(&format!(
            " AND (({ACTIVE}) OR created_at >= {t}) AND gone_at IS NULL"
        )),
        (true, None) => sql.push_str(&format!(" AND {ACTIVE}")),
        (false, _) => {}
    }
    sql.push_str(&format!(
        " AND (created_at, account, id) < (?, ?, ?) ORDER BY created_at DESC, account DESC, id DESC LIMIT {LISTING_CHUNK}"
    ));
    sql
}

impl Store {
    /// Jobs, newest first.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<StoredJob>, StoreError> {
        let mut jobs = Vec::with_capacity(self.active_hint(filter).await?);
        self.for_each_job(filter, |j| jobs.push(j)).await?;
        Ok(jobs)
    }

    /// How many jobs a listing of active jobs will give, to size what holds them (a vector
    /// grown by doubling holds its old and new buffers at once: with thousands of active jobs
    /// over hundreds of accounts, megabytes at a pass's peak); 0 for other filters. From the
    /// small partial index `jobs_active`.
    pub async fn active_hint(&self, filter: &JobFilter) -> Result<usize, StoreError> {
        if !(filter.active_only && filter.created_since.is_none() && filter.account.is_none()) {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar(ACTIVE_COUNT_SQL)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(usize::try_from(n).unwrap_or(0))
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
        let mut cursor: (i64, String, String) = (i64::MAX, String::new(), String::new());
        let mut given = 0usize;
        loop {
            let mut q = sqlx::query(&sql);
            if let Some(a) = &filter.account {
                q = q.bind(a);
            }
            if let Some(s) = filter.status.as_deref().filter(|s| *s != GONE) {
                q = q.bind(s);
            }
            if let Some(t) = filter.created_after {
                q = q.bind(t);
            }
            let rows = q
                .bind(cursor.0)
                .bind(&cursor.1)
                .bind(&cursor.2)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            for r in &rows {
                if filter.limit.is_some_and(|l| given >= l) {
                    return Ok(());
                }
                cursor = (r.get(7), r.get(0), r.get(8));
                if let Some(j) = self.row_to_job(r) {
                    if filter
                        .model
                        .as_deref()
                        .is_some_and(|g| !crate::model::glob::glob(g, &j.job.model))
                    {
                        continue;
                    }
                    each(j);
                    given += 1;
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

    /// (account, status, count) for `/metrics`; jobs gone from the API count as status
    /// "gone", not as the status they last had. Both counts come from indexes alone.
    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let counts = |sql| async move {
            let rows = sqlx::query(sql)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            Ok::<Vec<(String, String, i64)>, StoreError>(
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect(),
            )
        };
        let mut all = counts(JOB_COUNTS_SQL).await?;
        let gone = counts(GONE_COUNTS_SQL).await?;
        for (account, status, n) in &gone {
            if let Some(c) = all.iter_mut().find(|(a, s, _)| a == account && s == status) {
                c.2 -= n;
            }
        }
        all.retain(|(_, _, n)| *n > 0);
        let mut per_account: std::collections::BTreeMap<String, i64> = Default::default();
        for (account, _, n) in gone {
            *per_account.entry(account).or_default() += n;
        }
        all.extend(
            per_account
                .into_iter()
                .map(|(account, n)| (account, GONE.to_owned(), n)),
        );
        Ok(all)
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
    use super::super::jobs::fixtures::*;
    use super::*;
    use crate::model::Job;

    #[tokio::test]
    async fn listings_read_in_chunks_return_every_job_once_newest_first() {
        let (_dir, store) = store().await;
        // Two chunks and a bit, with creation times shared across the chunk boundaries and the
        // same ids in two accounts: the cursor must neither skip nor repeat a tie.
        let n = LISTING_CHUNK * 2 + 7;
        for account in ["a", "b"] {
            let jobs: Vec<Job> = (0..n)
                .map(|i| {
                    created(
                        &format!("ftjob-{i:04}"),
                        1_000 + i64::try_from(i / 3).unwrap(),
                    )
                })
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

        // A limit past a chunk boundary, and a creation-time floor, cut the same ordered list.
        let limited = listed(JobFilter {
            limit: Some(LISTING_CHUNK + 3),
            ..JobFilter::default()
        })
        .await;
        assert_eq!(limited[..], all[..LISTING_CHUNK + 3]);
        let floor = all[LISTING_CHUNK + 40].0;
        let recent = listed(JobFilter {
            created_after: Some(floor),
            ..JobFilter::default()
        })
        .await;
        let expected: Vec<_> = all.iter().filter(|j| j.0 >= floor).cloned().collect();
        assert_eq!(recent, expected);
    }

    #[tokio::test]
    async fn a_job_is_found_by_id_in_any_account_or_in_one() {
        let (_dir, store) = store().await;
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
