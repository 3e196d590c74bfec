//! One daemon per database: an exclusive lock on `<database>.lock`, held while running.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Held for the daemon's lifetime; released by the OS even on SIGKILL.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another ftguard daemon is already running on database {database} (lock {lock} is held); stop it first"
    )]
    Held { database: PathBuf, lock: PathBuf },
    #[error("cannot create lock file {lock}: {source}")]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DaemonLock {
    pub fn acquire(database: &Path) -> Result<Self, LockError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let lock = PathBuf::from(name);
        let io = |source| LockError::Io {
            lock: lock.clone(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(&lock).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held {
                database: database.to_owned(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }
}
