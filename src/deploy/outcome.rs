//! What a deploy returns: success, a failure with its rollback report, or an error that struck
//! before anything was created.

use std::time::Duration;

use crate::domain::{DeployId, Leftover};
use crate::engine::RuntimeError;
use crate::health::HealthError;
use crate::lock::LockError;
use crate::proxy::ProxyError;
use crate::report::Step;
use crate::store::StoreError;

/// A deploy that put an instance into service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploySuccess {
    /// Its id.
    pub deploy_id: DeployId,
    /// Where it serves.
    pub url: String,
    /// The image digest it runs.
    pub digest: String,
    /// The container's name.
    pub container: String,
    /// Wall time.
    pub elapsed: Duration,
    /// Problems after it was serving (retire, eviction) that did not fail it.
    pub warnings: Vec<String>,
    /// What retire or eviction could not take away (`prune` finishes it).
    pub leftovers: Vec<Leftover>,
    /// The slot already ran this digest with the same settings: nothing was deployed.
    pub unchanged: bool,
}

/// The cause of a step's failure.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The container engine.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The health check.
    #[error(transparent)]
    Health(#[from] HealthError),
    /// The proxy.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The verify step: the new instance failed through the proxy, or crashed, after the
    /// cut-over.
    #[error(transparent)]
    Verify(#[from] crate::health::VerifyError),
    /// The state file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something the step found wrong (no address on the network, …).
    #[error("{0}")]
    Invalid(String),
    /// A release command or hook.
    #[error(transparent)]
    OneOff(#[from] super::oneoff::OneOffError),
    /// SIGINT or SIGTERM.
    #[error("interrupted by a signal")]
    Interrupted,
    /// The step did not finish in time (it hung).
    #[error("no progress within {}; the engine or proxy may be hung", humantime::format_duration(*.0))]
    TimedOut(std::time::Duration),
}

/// A failed step: which, and why.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed: {cause}")]
pub struct FailedStep {
    /// The step.
    pub step: Step,
    /// The cause.
    #[source]
    pub cause: StepError,
}

/// What a rollback could not undo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackReport {
    /// One entry per resource left behind, saying what and why (empty when complete).
    pub leftovers: Vec<Leftover>,
}

impl RollbackReport {
    /// Everything the deploy created is gone.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.leftovers.is_empty()
    }
}

/// A deploy that failed and was rolled back (completely or not).
#[derive(Debug)]
pub struct DeployFailure {
    /// Its id.
    pub deploy_id: DeployId,
    /// The step that failed.
    pub failed: FailedStep,
    /// What the rollback left.
    pub rollback: RollbackReport,
    /// Stopped by a signal.
    pub interrupted: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// How a deploy ended, once it was recorded.
#[derive(Debug)]
pub enum DeployOutcome {
    /// Serving.
    Succeeded(DeploySuccess),
    /// Failed; see the rollback report.
    Failed(DeployFailure),
}

/// A deploy that could not begin; nothing was created or changed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The stage's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The state file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A signal arrived while waiting for the lock.
    #[error("interrupted while waiting for the lock; nothing was changed")]
    Interrupted,
}
