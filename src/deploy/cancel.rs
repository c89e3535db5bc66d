//! Cancellation: the binary turns SIGINT/SIGTERM into a [`CancelHandle::cancel`]; the saga
//! notices between steps and during waits, and rolls back.

use tokio::sync::watch;

/// The sending side, kept by whoever catches signals.
#[derive(Debug)]
pub struct CancelHandle(watch::Sender<bool>);

/// The receiving side, given to a deployer.
#[derive(Debug, Clone)]
pub struct Cancel(Option<watch::Receiver<bool>>);

impl CancelHandle {
    /// A new handle and its receiver.
    #[must_use]
    pub fn new() -> (Self, Cancel) {
        let (tx, rx) = watch::channel(false);
        (Self(tx), Cancel(Some(rx)))
    }

    /// Asks the deploy to stop.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

impl Cancel {
    /// A cancel that never fires.
    #[must_use]
    pub fn never() -> Self {
        Self(None)
    }

    /// Has it fired?
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves when it fires (never, for [`Cancel::never`] or a dropped handle).
    pub async fn cancelled(&self) {
        let Some(rx) = &self.0 else {
            return std::future::pending().await;
        };
        let mut rx = rx.clone();
        if rx.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
