//! One process acting on a database at a time (the daemon, or `run --once`): an exclusive `flock` on the database file itself, held while
//! running. Any path to the file — a symlink, a hard link, `..` in the path — reaches the same
//! file and so the same lock (a `<database>.lock` beside it was a lock on a name). SQLite's own
//! locks are POSIX record locks, which `flock` neither takes nor disturbs on Linux, so the CLI
//! still reads the database while the daemon runs.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Held for the daemon's lifetime; released by the OS even on SIGKILL.
#[derive(Debug)]
pub struct DatabaseLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another ftguard daemon is already running on database {database} (perhaps through another path to the same file); stop it first"
    )]
    Held { database: PathBuf },
    #[error("database {database}: cannot open it to lock it: {source}")]
    Io {
        database: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database {database}: cannot open: directory {} does not exist", .dir.display())]
    NoDirectory { database: PathBuf, dir: PathBuf },
}

impl DatabaseLock {
    /// Locks `database`, creating it empty (mode 0600) if missing; the store migrates it next.
    pub fn acquire(database: &Path) -> Result<Self, LockError> {
        if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(LockError::NoDirectory {
                database: database.to_owned(),
                dir: dir.to_owned(),
            });
        }
        let io = |source| LockError::Io {
            database: database.to_owned(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(database).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held {
                database: database.to_owned(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_path_to_the_same_file_is_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ftguard.db");
        let held = DatabaseLock::acquire(&db).unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        let hard = dir.path().join("hard.db");
        std::fs::hard_link(&db, &hard).unwrap();
        let dotted = dir.path().join(".").join("ftguard.db");
        for other in [&db, &link, &hard, &dotted] {
            let err = DatabaseLock::acquire(other).unwrap_err();
            assert!(matches!(err, LockError::Held { .. }), "{other:?}: {err}");
        }
        drop(held);
        DatabaseLock::acquire(&link).unwrap();
        let missing = dir.path().join("nope").join("ftguard.db");
        let err = DatabaseLock::acquire(&missing).unwrap_err().to_string();
        assert!(
            err.contains("directory") && err.contains("does not exist"),
            "{err}"
        );
    }
}
