//! The deploy saga (DESIGN §4): lock → record → pull → network → release → `on_create` → create →
//! start → health → proxy → verify → finish → retire, and on any failure a rollback through the
//! one undo executor.
//!
//! The container joins the network when it is created (so the app never starts without it); the
//! `network` step therefore makes sure the network exists *before* `create`. Traffic moves to a
//! container only after it is healthy: a bad deploy never takes over a subdomain.
//!
//! Every resource is recorded before it is made, under a deterministic name, so a rollback (or a
//! later recovery) can undo it even when the process died between "made" and "recorded".
//!
//! - `saga/`: the forward steps in order (`mod.rs` is the table of contents of a deploy), the
//!   no-op path (`unchanged.rs`), one-offs, publishing, `finish`/`retire`/rollback;
//! - `place/`: how a slot's instance is placed, one `Placement` per engine kind (a
//!   container, a Swarm service); the saga calls it and never matches on the engine;
//! - `spec.rs`: the hash of what an instance is made of (the no-op check, drift);
//! - `journal.rs`: events and leftovers written down, row filters: used by every operation;
//! - `undo.rs`: [`Compensation`] and the one executor, used by rollback, retire, `remove`,
//!   recovery and `prune`; `oneoff.rs`: one-off containers (release, hooks);
//! - `instance.rs`: taking an instance down (host, container or service, row), shared by every
//!   undo of an instance; `recover.rs`: deploys whose process died;
//! - `plan/`: `prune` and `deploy --dry-run` as data, executed by `lifecycle.rs`;
//! - `lifecycle.rs`: `remove`, the rollback source, `prune`.
//!
//! Within the module the edges run one way, from the operations (`saga`, `lifecycle`, `plan`,
//! `recover`) to the shared parts (`instance`, `journal`, `undo`, `oneoff`, `outcome`), with one
//! exception: a placement receives the running saga (its step runner and journal) as its
//! context, so `place` and `saga` know each other.

mod cancel;
mod instance;
mod journal;
mod lifecycle;
mod oneoff;
mod outcome;
mod place;
mod plan;
mod recover;
mod saga;
mod spec;
mod undo;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use cancel::{Cancel, CancelHandle};
pub use lifecycle::{PruneReport, PruneRequest, RemoveReport, RollbackError};
pub use oneoff::{OneOffError, OneOffRun};
pub use outcome::{DeployError, DeployFailure, DeployOutcome, DeploySuccess, FailedStep, RollbackReport, StepError};
pub use plan::{Action, DeployPlan, PlanError, Reason, StagePlan};
pub use undo::Compensation;

use crate::config::ResolvedStage;
use crate::domain::{Tag, Trigger};
use crate::engine::ContainerRuntime;
use crate::health::Probe;
use crate::lock::LockWait;
use crate::notify::{NoNotifier, Notifier};
use crate::proxy::Proxy;
use crate::report::{NoReporter, Reporter, Step};
use crate::store::Store;

/// How long a step may take before it counts as hung and the deploy rolls back. The health
/// step is bounded by its own policy (plus one probe timeout); a proxy call by the proxy's
/// timeout, which these bounds only back up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepTimeouts {
    /// Pulling an image (default 10 minutes: images can be large).
    pub pull: Duration,
    /// Any other engine step, and each compensation (default 2 minutes).
    pub engine: Duration,
    /// The proxy step (default 2 minutes).
    pub proxy: Duration,
}

impl Default for StepTimeouts {
    fn default() -> Self {
        Self { pull: Duration::from_secs(600), engine: Duration::from_secs(120), proxy: Duration::from_secs(120) }
    }
}

impl StepTimeouts {
    /// The bound for `step` (`None`: bounded by other means).
    #[must_use]
    pub fn of(&self, step: Step) -> Option<Duration> {
        match step {
            Step::Pull => Some(self.pull),
            Step::Network | Step::Create | Step::Start | Step::Finish | Step::Retire => Some(self.engine),
            Step::Proxy => Some(self.proxy),
            _ => None,
        }
    }
}

/// One deploy to run.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// The project's stage, resolved from config.
    pub stage: ResolvedStage,
    /// The tag (the stage's default tag when the user gave none).
    pub tag: Tag,
    /// Why it runs.
    pub trigger: Trigger,
    /// Deploy this exact reference (`repo@sha256:…`) instead of `image:tag` (rollbacks).
    pub image_override: Option<String>,
    /// How long to wait for the stage's lock.
    pub lock_wait: LockWait,
    /// Redeploy even when the slot already runs this digest with this spec.
    pub force: bool,
    /// Run the verify step when the stage has one (`false`: `deploy --no-verify`).
    pub verify: bool,
}

/// Runs deploys against the seams it is given.
pub struct Deployer<'a, R, P, S, Pr> {
    runtime: &'a R,
    proxy: &'a P,
    store: &'a S,
    probe: &'a Pr,
    reporter: &'a dyn Reporter,
    notifier: &'a dyn Notifier,
    cancel: Cancel,
    lock_dir: PathBuf,
    host: String,
    pauses: Vec<(Step, std::time::Duration)>,
    timeouts: StepTimeouts,
    actor: Option<String>,
}

impl<'a, R, P, S, Pr> Deployer<'a, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    /// A deployer; lock files go under `lock_dir` (beside the state file).
    pub fn new(runtime: &'a R, proxy: &'a P, store: &'a S, probe: &'a Pr, lock_dir: PathBuf) -> Self {
        Self {
            runtime,
            proxy,
            store,
            probe,
            reporter: &NoReporter,
            notifier: &NoNotifier,
            cancel: Cancel::never(),
            lock_dir,
            host: hostname(),
            pauses: Vec::new(),
            timeouts: StepTimeouts::default(),
            actor: None,
        }
    }

    /// Records `actor` (who asked: `token:NAME`, `webhook:RECEIVER:DELIVERY`) with every deploy,
    /// removal and prune row this deployer writes. Without it the actor is empty: the CLI on
    /// this host.
    #[must_use]
    pub fn with_actor(mut self, actor: Option<String>) -> Self {
        self.actor = actor;
        self
    }

    /// Sends events to `reporter` (after storing them).
    #[must_use]
    pub fn with_reporter(mut self, reporter: &'a dyn Reporter) -> Self {
        self.reporter = reporter;
        self
    }

    /// Tells `notifier` how each deploy ended (success, failure, incomplete rollback).
    #[must_use]
    pub fn with_notifier(mut self, notifier: &'a dyn Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// Stops the deploy (and rolls it back) when `cancel` fires.
    #[must_use]
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// Pauses (cancellably) after `step` finishes (`rollback`: at its start); for tests that
    /// interrupt a deploy at a known point. Only in builds with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[must_use]
    pub fn with_pause_after(mut self, step: Step, pause: std::time::Duration) -> Self {
        self.pauses.push((step, pause));
        self
    }

    /// Bounds each step (and each compensation) by `timeouts`.
    #[must_use]
    pub fn with_timeouts(mut self, timeouts: StepTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Runs one deploy to its end.
    ///
    /// # Errors
    /// [`DeployError`] when it could not begin (lock busy, state file unusable); nothing was
    /// created then. Every later failure is a [`DeployOutcome::Failed`].
    pub async fn deploy(&self, req: &DeployRequest) -> Result<DeployOutcome, DeployError> {
        saga::run(self, req).await
    }
}

impl<R: ContainerRuntime, P, S, Pr> Deployer<'_, R, P, S, Pr> {
    /// [`digest_now`] through this deployer's engine.
    async fn digest_now(&self, stage: &ResolvedStage, image: &str) -> Result<String, crate::engine::RuntimeError> {
        digest_now(self.runtime, stage, image).await
    }
}

/// The digest `image` (`repo:tag`, or `repo@digest`) of `stage` stands for now: a manifest
/// lookup through the engine with the stage's credentials; nothing is pulled. What a push, the
/// poller and a deploy's plan all ask before acting on a tag.
///
/// # Errors
/// [`RuntimeError::Pull`](crate::engine::RuntimeError::Pull) when the registry lacks the tag or
/// refuses; an engine error when the engine cannot ask.
pub async fn digest_now<R: crate::engine::Images>(
    runtime: &R,
    stage: &ResolvedStage,
    image: &str,
) -> Result<String, crate::engine::RuntimeError> {
    if let Some((_, digest)) = image.split_once('@') {
        return Ok(digest.to_owned());
    }
    let auth = runtime.registry_auth(stage.image.as_str(), stage.registry_auth.as_ref()).await.ok().flatten();
    runtime.resolve_digest(image, auth.as_ref().map(|(_, a)| a)).await
}

/// Hands `event` to the deployer's reporter without storing it (an event before any deploy
/// has a history row, as the lock step's).
pub(crate) fn report<R, P, S, Pr>(d: &Deployer<'_, R, P, S, Pr>, event: &crate::report::Event) {
    d.reporter.report(crate::store::now_ms(), event);
}

/// Looks up a slot's instance `name` as what it is on its engine (a container, or a swarm
/// service): never a service by a container's name, so a swarm that cannot answer is a look that
/// failed, not a missing container.
pub(crate) async fn look_instance<R: ContainerRuntime>(
    runtime: &R,
    kind: crate::engine::InstanceKind,
    name: &str,
    network: &str,
) -> crate::engine::EngineLook<crate::engine::ContainerInfo> {
    match kind {
        crate::engine::InstanceKind::Container => runtime.inspect(name, network).await,
        crate::engine::InstanceKind::Service => runtime.service_instance(name).await,
    }
}

impl<R, P, S, Pr> Deployer<'_, R, P, S, Pr> {
    /// The lock file of a (project, stage): deploys, `remove` and `prune` take the same one.
    fn lock_path(&self, project: &crate::domain::ProjectName, stage: &crate::domain::StageName) -> PathBuf {
        self.lock_dir.join(format!("{project}.{stage}.lock"))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var(crate::env::HOSTNAME).ok())
        .unwrap_or_else(|| "unknown".into())
}
