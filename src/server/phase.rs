//! Where the server stands in its life: the one value the executor, the accept loop, the
//! handlers and the binary's signal handler all watch.

/// Where the server stands in its life. Ordered: each phase only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Taking work.
    Serving,
    /// The first SIGTERM: no new work (503); running deploys go on within `grace`, and their
    /// jobs and event streams are still answered.
    Draining,
    /// Every deploy has ended: event streams end, connections close.
    Closing,
}
