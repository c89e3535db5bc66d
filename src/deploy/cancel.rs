//! Cancellation in two levels. The binary turns the first SIGINT/SIGTERM into
//! [`CancelHandle::cancel`]: the saga notices between steps and during waits, and rolls back.
//! A second signal is [`CancelHandle::abort`]: the rollback stops where it is, and what it did
//! not undo is recorded as leftovers (exit 3), for `prune` to finish.

use tokio::sync::watch;

/// How far a cancellation has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Running,
    Cancelled,
    Aborted,
}

/// The sending side, kept by whoever catches signals.
#[derive(Debug)]
pub struct CancelHandle(watch::Sender<Level>);

/// The receiving side, given to a deployer.
#[derive(Debug, Clone)]
pub struct Cancel(Option<watch::Receiver<Level>>);

impl CancelHandle {
    /// A new handle and its receiver.
    #[must_use]
    pub fn new() -> (Self, Cancel) {
        let (tx, rx) = watch::channel(Level::Running);
        (Self(tx), Cancel(Some(rx)))
    }

    /// Asks the deploy to stop and roll back.
    pub fn cancel(&self) {
        self.0.send_if_modified(|l| {
            let was = *l;
            *l = (*l).max(Level::Cancelled);
            was != *l
        });
    }

    /// Asks a rollback in progress to stop at once, recording what it leaves.
    pub fn abort(&self) {
        self.0.send_replace(Level::Aborted);
    }
}

impl Cancel {
    /// A cancel that never fires.
    #[must_use]
    pub fn never() -> Self {
        Self(None)
    }

    fn level(&self) -> Level {
        self.0.as_ref().map_or(Level::Running, |rx| *rx.borrow())
    }

    /// Has it fired?
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.level() >= Level::Cancelled
    }

    /// Has the rollback been told to stop?
    #[must_use]
    pub fn is_aborted(&self) -> bool {
        self.level() >= Level::Aborted
    }

    async fn reached(&self, level: Level) {
        let Some(rx) = &self.0 else {
            return std::future::pending().await;
        };
        let mut rx = rx.clone();
        if rx.wait_for(|v| *v >= level).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves when it fires (never, for [`Cancel::never`] or a dropped handle).
    pub async fn cancelled(&self) {
        self.reached(Level::Cancelled).await;
    }

    /// Resolves when the rollback is told to stop.
    pub async fn aborted(&self) {
        self.reached(Level::Aborted).await;
    }
}
