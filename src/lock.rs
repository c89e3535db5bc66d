//! The per-(project, stage) advisory lock: a file beside the state file, locked with the OS's
//! file lock. The OS releases it when the process exits, even on a crash, so a deploy still
//! marked running whose lock is free was abandoned.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

/// How long to wait for a busy lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// Fail at once.
    NoWait,
    /// Wait at most this long.
    AtMost(Duration),
    /// Wait as long as it takes.
    Forever,
}

impl LockWait {
    /// When a wait that starts at `now` ends: `None` for ever. A duration too long to add to
    /// `now` (`--wait 400000000000y`) is for ever too, rather than a panic.
    #[must_use]
    pub fn deadline(self, now: Instant) -> Option<Instant> {
        match self {
            Self::NoWait => Some(now),
            Self::AtMost(d) => now.checked_add(d),
            Self::Forever => None,
        }
    }
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another tiny-forge holds it.
    #[error("{what} is locked by another tiny-forge run; wait for it or retry later")]
    Busy {
        /// `project/stage`.
        what: String,
    },
    /// The lock file could not be opened.
    #[error("cannot open lock file {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct StageLock {
    file: File,
}

impl StageLock {
    /// Takes the lock at `path`, waiting as `wait` says.
    ///
    /// # Errors
    /// [`LockError::Busy`] when it stays held; [`LockError::Io`] when the file cannot be opened.
    pub async fn acquire(path: &Path, what: &str, wait: LockWait) -> Result<Self, LockError> {
        let io = |source| LockError::Io { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io)?;
        let deadline = wait.deadline(Instant::now());
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(LockError::Busy { what: what.to_owned() });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Is the lock at `path` free right now? (Used to tell abandoned deploys from running ones.)
    #[must_use]
    pub fn is_free(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().write(true).open(path) else {
            return true;
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                true
            }
            Err(_) => false,
        }
    }
}

impl Drop for StageLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_lock_is_busy_for_a_second_taker_and_free_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks").join("shop.dev.lock");
        let held = StageLock::acquire(&path, "shop/dev", LockWait::NoWait).await.unwrap();
        assert!(!StageLock::is_free(&path));
        let busy = StageLock::acquire(&path, "shop/dev", LockWait::AtMost(Duration::from_millis(60))).await;
        assert!(matches!(busy, Err(LockError::Busy { .. })));
        drop(held);
        assert!(StageLock::is_free(&path));
        StageLock::acquire(&path, "shop/dev", LockWait::NoWait).await.unwrap();
    }

    #[tokio::test]
    async fn a_wait_too_long_to_add_to_now_is_a_wait_for_ever_not_a_panic() {
        let now = Instant::now();
        let huge = humantime::parse_duration("400000000000y").unwrap();
        assert_eq!(LockWait::AtMost(huge).deadline(now), None);
        assert_eq!(LockWait::AtMost(Duration::MAX).deadline(now), None);
        assert_eq!(LockWait::AtMost(Duration::from_secs(1)).deadline(now), Some(now + Duration::from_secs(1)));
        // And taking a free lock with such a wait works.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.dev.lock");
        StageLock::acquire(&path, "shop/dev", LockWait::AtMost(huge)).await.unwrap();
    }
}
