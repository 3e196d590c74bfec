//! SQLite store: jobs, status transitions, sync runs, actions, grace marks.
//! One function per question; queries live here and nowhere else.

/// The columns `Store::row_to_job` (`jobs.rs`) reads, in its order, as a literal for `concat!`
/// (`created_at` and `id`, at 7 and 8, are also a listing's cursor).
macro_rules! job_columns {
    () => {
        "account, raw, last_step_at, first_seen_at, updated_at, steps_checked_at, gone_at, \
         created_at, id, detail"
    };
}

/// [`job_columns`] without the payload as received (an empty `raw`): what passes, budgets and
/// tables read. The payload is most of a row; only `show` and `jobs --json` print it.
macro_rules! job_columns_without_payload {
    () => {
        "account, '' AS raw, last_step_at, first_seen_at, updated_at, steps_checked_at, \
         gone_at, created_at, id, detail"
    };
}

mod actions;
mod events_failures;
mod file_tokens;
mod grace;
mod history;
mod jobs;
mod listing;
mod lock;
mod metrics;
mod moved;
mod notices;
mod outbox;
mod said_once;
mod sync_runs;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use actions::{ActionRecord, Completion, MANUAL_POLICY, NewAction, Outcome, ResponseFields};
pub use file_tokens::FileKey;
pub use history::{HistoryMark, Transition};
pub use jobs::{PageStats, StoredJob, WriteMark};
pub use listing::{GONE, JobFilter};
pub use lock::{DatabaseLock, LockError};
pub use moved::MovedJob;
pub use notices::NoticeRecord;
pub use outbox::PendingNotice;
pub use sync_runs::{Failing, SyncRun};

/// A store failure, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: cannot open: {message}")]
    Open { path: PathBuf, message: String },
    #[error(
        "database {path} does not exist yet: `ftguard sync` or the daemon creates it (is this the configuration the service uses?)"
    )]
    Missing { path: PathBuf },
    #[error("database {path}: cannot apply migrations: {message}")]
    Migrate { path: PathBuf, message: String },
    #[error("database {path}: {}", explain(.source))]
    Query {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
}

/// The database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if missing, mode 0600) and migrates the database.
    ///
    /// Durability: WAL journal with `synchronous = NORMAL` (crash-safe; what is lost to a power
    /// cut can be fetched again), and `FULL` for the commits that write action rows (see
    /// `durable`), so a recorded cancel survives power loss too. A busy timeout lets the CLI read while the daemon writes.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: path.to_owned(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(open_err(format!(
                "directory {} does not exist",
                dir.display()
            )));
        }
        if !path.exists() {
            create_private(path).map_err(|e| open_err(e.to_string()))?;
        }
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| open_err(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Crash-safe, fsynced at checkpoints: right for job views, which can always be
            // fetched again. Action rows commit with FULL (see `durable`).
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // 256 KiB of page cache per connection: the OS page cache holds the file anyway,
            // and a first sync's heap stays small.
            .pragma("cache_size", "-256")
            // A checkpoint every 2,000 pages: each costs two fsyncs, so fewer of them in a long
            // first sync, while what is stored reaches the database file within 8 MB (a copy of
            // ftguard.db alone holds it, and reads do not wade through a long log). After a
            // checkpoint the -wal file is cut back to 8 MB.
            .pragma("wal_autocheckpoint", "2000")
            .pragma("journal_size_limit", "8388608")
            // A listing streamed into a slow reader (`ftguard jobs | less`) keeps its statement
            // open for as long as the reader takes: not worth a warning on stderr.
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        let pool = SqlitePoolOptions::new()
            // The daemon needs two at most (a pass, and /metrics or the CLI); each costs a
            // thread and a page cache.
            .max_connections(2)
            // sqlx pings a connection each time it leaves the pool: for SQLite a round trip to
            // its thread that proves nothing (it cannot hang up; a worker that died takes the
            // process with it, panic = "abort"), and one more per query.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| open_err(explain(&e)))?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(|e| {
            let message = match &e {
                sqlx::migrate::MigrateError::VersionMissing(v) => format!(
                    "it was written by a newer ftguard (schema version {v} is unknown to this one); upgrade ftguard — the file was left untouched"
                ),
                sqlx::migrate::MigrateError::Execute(e) => explain(e),
                other => other.to_string(),
            };
            StoreError::Migrate { path: path.to_owned(), message }
        })?;
        Ok(Self {
            pool,
            path: path.to_owned(),
        })
    }

    /// Opens a database that must exist already: commands that only read do not create one
    /// (a missing file is most often the wrong configuration, and an empty one made by root
    /// would be in the service's way).
    pub async fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        Self::open(path).await
    }

    /// Runs one write that must survive a power cut before ftguard acts on it (action rows:
    /// the pending row goes down before the cancel goes out), on a connection switched to
    /// `synchronous = FULL` for it: that commit fsyncs the WAL. Other writes stay NORMAL, so a
    /// first sync does not pay one fsync per page.
    pub(crate) async fn durable<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
        let result = query.execute(&mut *conn).await;
        let restored = sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await;
        if restored.is_err() {
            // Left at FULL it is only slower; closing it keeps the pool uniform anyway.
            conn.close_on_drop();
        }
        result
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, source: sqlx::Error) -> StoreError {
        StoreError::Query {
            path: self.path.clone(),
            source,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// An SQLite error, with what to do about the ones an operator meets: a file that is not a
/// database, or a damaged one (SQLite refuses to write to either).
fn explain(e: &sqlx::Error) -> String {
    let code = e
        .as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok());
    // Extended result codes carry the primary one in their low byte.
    match code.map(|c| c & 0xff) {
        Some(26) => "not an SQLite database (a wrong `database` path, or a file overwritten); \
                     ftguard does not repair or replace it"
            .into(),
        Some(11) => "the file is damaged (SQLite: database disk image is malformed); ftguard \
                     does not repair or replace it. Recover what it holds with `sqlite3 FILE .recover | \
                     sqlite3 NEW.db`, or move it aside to start afresh (jobs are fetched again \
                     from the API; the recorded actions are only in the old file)"
            .into(),
        _ => e.to_string(),
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(|_| ())
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::fixtures::store;

    async fn synchronous_of_every_connection(store: &Store) -> Vec<i64> {
        // Hold both connections at once so that each is asked.
        let mut a = store.pool.acquire().await.unwrap();
        let mut b = store.pool.acquire().await.unwrap();
        let mut out = Vec::new();
        for c in [&mut a, &mut b] {
            let v: i64 = sqlx::query_scalar("SELECT synchronous FROM pragma_synchronous()")
                .fetch_one(&mut **c)
                .await
                .unwrap();
            out.push(v);
        }
        out
    }

    #[tokio::test]
    async fn durable_writes_commit_with_full_and_leave_the_pool_normal() {
        let (_dir, store) = store().await;
        // NORMAL = 1, FULL = 2.
        assert_eq!(synchronous_of_every_connection(&store).await, [1, 1]);
        store
            .durable(sqlx::query(
                "CREATE TABLE seen AS SELECT synchronous AS s FROM pragma_synchronous()",
            ))
            .await
            .unwrap();
        let during: i64 = sqlx::query_scalar("SELECT s FROM seen")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(during, 2);
        assert_eq!(synchronous_of_every_connection(&store).await, [1, 1]);
    }

    /// What SQLite would do for `sql`, one line per step.
    async fn plan(store: &Store, sql: &str) -> Vec<String> {
        use sqlx::Row;
        sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(&store.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| r.get::<String, _>(3))
            .collect()
    }

    #[tokio::test]
    async fn the_queries_a_daemon_repeats_are_answered_from_indexes() {
        let (_dir, store) = store().await;
        let active = JobFilter::active();
        let active_in_account = JobFilter {
            account: Some("prod".into()),
            ..active.clone()
        };
        // Every sync, pass and probe; each must find its rows through an index, never by reading
        // a whole table (a `SCAN t` step without `USING`) or sorting all of it. `accounts` is the
        // little table of account names the recursive queries build; grace marks and events
        // failures are a few rows each, all of them looked at by their prunes.
        let queries = [
            (
                "active ids (every sync)",
                listing::ACTIVE_IDS_SQL.to_owned(),
            ),
            (
                "boundary (every sync)",
                sync_runs::SAVE_SYNC_STATE_SQL.to_owned(),
            ),
            ("active jobs (every pass)", listing::jobs_sql(&active)),
            (
                "active jobs of an account",
                listing::jobs_sql(&active_in_account),
            ),
            (
                "how many jobs are active (sizing a pass)",
                listing::ACTIVE_COUNT_SQL.to_owned(),
            ),
            (
                "a job by id in any account",
                listing::JOB_BY_ID_SQL.to_owned(),
            ),
            (
                "jobs per status (/metrics)",
                listing::JOB_COUNTS_SQL.to_owned(),
            ),
            ("gone jobs (/metrics)", listing::GONE_COUNTS_SQL.to_owned()),
            (
                "jobs that finished since the last pass (budgets)",
                history::finished_between_sql(),
            ),
            (
                "status changes since the last pass",
                history::changed_between_sql(),
            ),
            // Listings are read in chunks after a cursor: a sort would be redone per chunk.
            (
                "every job (jobs, spend)",
                listing::jobs_sql(&JobFilter::default()),
            ),
            (
                "jobs of a status",
                listing::jobs_sql(&JobFilter {
                    status: Some("failed".into()),
                    ..JobFilter::default()
                }),
            ),
            (
                "jobs of an account and status",
                listing::jobs_sql(&JobFilter {
                    account: Some("prod".into()),
                    status: Some("failed".into()),
                    ..JobFilter::default()
                }),
            ),
            (
                "a budget period (first pass)",
                listing::jobs_sql(&JobFilter {
                    created_since: Some(1_700_000_000),
                    ..active.clone()
                }),
            ),
            (
                "jobs of an account (jobs --account)",
                listing::jobs_sql(&JobFilter {
                    account: Some("prod".into()),
                    created_after: Some(1_700_000_000),
                    ..JobFilter::default()
                }),
            ),
            (
                "gone jobs (jobs --status gone)",
                listing::jobs_sql(&JobFilter {
                    status: Some(listing::GONE.into()),
                    ..JobFilter::default()
                }),
            ),
            (
                "grace marks of ended jobs (every pass)",
                grace::prune_grace_marks_sql(),
            ),
            (
                "events failures of ended jobs (every sync)",
                events_failures::prune_events_failures_sql(),
            ),
            (
                "twins of new jobs (a sync that stored some)",
                moved::MOVED_SQL.to_owned(),
            ),
            ("newest runs (/healthz)", sync_runs::latest_runs_sql()),
            (
                "newest successes (/healthz, /metrics)",
                sync_runs::last_ok_sql(),
            ),
        ];
        for (what, sql) in queries {
            let steps = plan(&store, &sql).await;
            for step in &steps {
                let full_scan = step.starts_with("SCAN ")
                    && !step.contains(" USING ")
                    && ![
                        "SCAN CONSTANT ROW",
                        "SCAN accounts",
                        "SCAN a",
                        "SCAN grace_marks",
                        "SCAN events_failures",
                    ]
                    .contains(&step.as_str());
                assert!(
                    !full_scan && !step.starts_with("USE TEMP B-TREE"),
                    "{what}: {steps:#?}"
                );
            }
        }
        // No index is keyed by the random ids: twins of new rows are found by reading the
        // stored ids once against a temporary index of the few new rows, not every stored id
        // again for each new row.
        let moved = plan(&store, moved::MOVED_SQL).await;
        assert!(moved.iter().any(|s| s.contains("AUTOMATIC")), "{moved:#?}");
        // What a sync wrote: the few rows past the mark, or for many, the small status index
        // rather than every row written read back (its sort is of the status changes alone).
        let few = plan(&store, &jobs::written_since_sql(3)).await;
        assert!(
            few.iter()
                .any(|s| s == "SEARCH jobs USING INTEGER PRIMARY KEY (rowid>?)"),
            "{few:#?}"
        );
        let many = plan(&store, &jobs::written_since_sql(10_000)).await;
        assert!(
            many.iter()
                .any(|s| s == "SCAN jobs USING COVERING INDEX jobs_by_status"),
            "{many:#?}"
        );
    }

    #[tokio::test]
    async fn missing_directory_names_the_path() {
        let err = Store::open(Path::new("/nonexistent-dir/ftguard.db"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent-dir"), "{err}");
    }

    #[tokio::test]
    async fn corrupt_file_is_a_clear_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.db");
        let junk = vec![0x42u8; 8192];
        std::fs::write(&p, &junk).unwrap();
        let err = Store::open(&p).await.unwrap_err().to_string();
        assert!(err.contains("bad.db"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), junk);
    }

    #[tokio::test]
    async fn new_database_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.db");
        Store::open(&p).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
