//! How a slot's instance is placed on its engine, behind one trait: a container on the Docker
//! engine ([`container`]: create, start, probe), or a Swarm service ([`service`]: create or
//! update start-first, wait for Swarm's health check and the update to complete, probe the
//! tasks this host reaches). [`for_stage`] is the one place that looks at the engine kind; the
//! saga calls [`Placement`] and never matches on it. A new engine is a new file here and a
//! variant of [`AnyPlacement`].

mod container;
mod service;

use std::time::Duration;

use super::outcome::FailedStep;
use super::saga::Saga;
use crate::config::{Engine, ResolvedStage};
use crate::domain::{DeployId, Slot};
use crate::engine::{ContainerRuntime, EngineLook, InstanceKind, PulledImage, RuntimeError, Vitals};
use crate::health::{HealthPolicy, Probe};
use crate::proxy::{Proxy, Upstream};
use crate::store::Store;

pub(super) use container::ContainerPlacement;
pub(super) use service::ServicePlacement;

/// How many log lines of an exited container (or task) go into the error.
const EXIT_LOG_LINES: usize = 20;

/// How a slot's instance lives on an engine.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub(super) trait Placement {
    /// What the instance is: a container, or a service.
    fn kind(&self) -> InstanceKind;

    /// How many copies of the instance run (a service's tasks).
    fn replicas(&self) -> u64;

    /// The instance's name for deploy `id` of `slot` (a container per deploy, a service per
    /// slot).
    fn instance_name(&self, slot: &Slot, id: DeployId) -> String;

    /// How long the health step may take beyond the probing of `health` (Swarm replaces tasks
    /// one at a time, each of which may pull first): `pull` is the pull step's bound.
    fn extra_health_bound(&self, health: &HealthPolicy, pull: Duration) -> Duration;

    /// The text of the spec an instance of `slot` is made from (without its name, image and
    /// deploy id), for the no-op hash.
    fn spec_text(
        &self,
        stage: &ResolvedStage,
        slot: &Slot,
        url: &str,
        labels: std::collections::BTreeMap<String, String>,
    ) -> String;

    /// How the running instance `live` names differs from what its deploy made (a service whose
    /// spec someone changed or whose update Swarm paused), if it does: then a redeploy of the
    /// same digest is not a no-op.
    ///
    /// # Errors
    /// When the instance cannot be looked at.
    async fn drift<R: ContainerRuntime>(
        &self,
        runtime: &R,
        live: &crate::store::InstanceRecord,
    ) -> Result<Option<String>, RuntimeError>;

    /// Makes sure the stage's network exists (a bridge, or an attachable overlay); true when it
    /// was made now.
    async fn network<R: ContainerRuntime>(&self, runtime: &R, name: &str) -> Result<bool, RuntimeError>;

    /// How deploy `id`'s instance `name` is doing (the verify step watches it): a container's
    /// state, or the tasks of the service's spec that deploy `id` made.
    async fn vitals<R: ContainerRuntime>(&self, runtime: &R, name: &str, id: DeployId) -> EngineLook<Vitals>;

    /// The last log lines of deploy `id`'s instance `name` after it crashed (its container, or
    /// its newest task that ended); empty when they cannot be read.
    async fn crash_logs<R: ContainerRuntime>(&self, runtime: &R, name: &str, id: DeployId) -> Vec<String>;

    /// Places the instance from `pulled` and waits until it is healthy, as the saga's steps
    /// (`create`, `start`, `health`), recording each undo before it acts. Returns where the
    /// proxy reaches it.
    async fn place<R, P, S, Pr>(
        &self,
        saga: &Saga<'_, '_, R, P, S, Pr>,
        pulled: &PulledImage,
    ) -> Result<Upstream, FailedStep>
    where
        R: ContainerRuntime,
        P: Proxy,
        S: Store,
        Pr: Probe;
}

/// The placements there are, chosen by a stage's engine.
#[derive(Debug, Clone, Copy)]
pub(super) enum AnyPlacement<'s> {
    /// A container per deploy.
    Container(ContainerPlacement),
    /// A service per slot.
    Service(ServicePlacement<'s>),
}

/// The placement of `stage`'s instances.
pub(super) fn for_stage(stage: &ResolvedStage) -> AnyPlacement<'_> {
    match &stage.engine {
        Engine::Docker => AnyPlacement::Container(ContainerPlacement),
        Engine::Swarm(sw) => AnyPlacement::Service(ServicePlacement { settings: sw }),
    }
}

macro_rules! delegate {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            AnyPlacement::Container($p) => $e,
            AnyPlacement::Service($p) => $e,
        }
    };
}

impl Placement for AnyPlacement<'_> {
    fn kind(&self) -> InstanceKind {
        delegate!(self, p => p.kind())
    }

    fn replicas(&self) -> u64 {
        delegate!(self, p => p.replicas())
    }

    fn instance_name(&self, slot: &Slot, id: DeployId) -> String {
        delegate!(self, p => p.instance_name(slot, id))
    }

    fn extra_health_bound(&self, health: &HealthPolicy, pull: Duration) -> Duration {
        delegate!(self, p => p.extra_health_bound(health, pull))
    }

    fn spec_text(
        &self,
        stage: &ResolvedStage,
        slot: &Slot,
        url: &str,
        labels: std::collections::BTreeMap<String, String>,
    ) -> String {
        delegate!(self, p => p.spec_text(stage, slot, url, labels))
    }

    async fn drift<R: ContainerRuntime>(
        &self,
        runtime: &R,
        live: &crate::store::InstanceRecord,
    ) -> Result<Option<String>, RuntimeError> {
        delegate!(self, p => p.drift(runtime, live).await)
    }

    async fn network<R: ContainerRuntime>(&self, runtime: &R, name: &str) -> Result<bool, RuntimeError> {
        delegate!(self, p => p.network(runtime, name).await)
    }

    async fn vitals<R: ContainerRuntime>(&self, runtime: &R, name: &str, id: DeployId) -> EngineLook<Vitals> {
        delegate!(self, p => p.vitals(runtime, name, id).await)
    }

    async fn crash_logs<R: ContainerRuntime>(&self, runtime: &R, name: &str, id: DeployId) -> Vec<String> {
        delegate!(self, p => p.crash_logs(runtime, name, id).await)
    }

    async fn place<R, P, S, Pr>(
        &self,
        saga: &Saga<'_, '_, R, P, S, Pr>,
        pulled: &PulledImage,
    ) -> Result<Upstream, FailedStep>
    where
        R: ContainerRuntime,
        P: Proxy,
        S: Store,
        Pr: Probe,
    {
        delegate!(self, p => p.place(saga, pulled).await)
    }
}
