//! SQLite store: jobs, status transitions, sync runs, actions, grace marks.
//! One function per question; queries live here and nowhere else.

mod actions;
mod file_tokens;
mod grace;
mod jobs;
mod sync_runs;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use actions::{ActionRecord, NewAction, Outcome, ResponseFields};
pub use file_tokens::FileKey;
pub use jobs::{JobFilter, PageStats, StoredJob, Transition};
pub use sync_runs::SyncRun;

/// A store failure, naming the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: cannot open: {message}")]
    Open { path: PathBuf, message: String },
    #[error("database {path}: cannot apply migrations: {message}")]
    Migrate { path: PathBuf, message: String },
    #[error("database {path}: {source}")]
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
    /// Durability: WAL journal with `synchronous = FULL`, so a committed action row survives
    /// power loss, not just a process crash; the cost (an fsync per commit) is negligible at
    /// ftguard's write rate. A busy timeout lets the CLI read while the daemon writes.
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
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // 256 KiB of page cache per connection instead of SQLite's 2 MiB: the OS page
            // cache holds the file anyway, and this halves a first sync's heap (BENCHMARKS.md).
            .pragma("cache_size", "-256");
        let pool = SqlitePoolOptions::new()
            // The daemon needs two at most (a pass, and /metrics or the CLI); each costs a
            // thread and a page cache.
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(|e| {
            let message = match &e {
                sqlx::migrate::MigrateError::VersionMissing(v) => format!(
                    "it was written by a newer ftguard (schema version {v} is unknown to this one); upgrade ftguard — the file was left untouched"
                ),
                other => other.to_string(),
            };
            StoreError::Migrate { path: path.to_owned(), message }
        })?;
        Ok(Self {
            pool,
            path: path.to_owned(),
        })
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
