//! Signals during a deploy, rollback or removal on this host.

use tiny_forge::deploy::CancelHandle;

use super::exit;

/// The first SIGINT or SIGTERM cancels the deploy (which then rolls back); a second one stops
/// the rollback where it is, and what it did not undo is recorded as leftovers (exit 3). A third
/// exits at once with 3, for a rollback stuck where it cannot notice.
pub(crate) async fn cancel_on_signals(handle: CancelHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    let mut next = async || {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
    };
    next().await;
    handle.cancel();
    next().await;
    handle.abort();
    next().await;
    std::process::exit(i32::from(exit::INCOMPLETE));
}
