//! The seam's words for Swarm services (DESIGN §10): what a service is made of, what the engine
//! says about it and its tasks, and the timing a swarm update follows from the health policy.
//! The adapter that speaks the Engine API is `engine/docker/services.rs`; nothing here names bollard.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::ContainerInfo;

/// A swarm stage's service settings (`engine = { kind = "swarm", … }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmSettings {
    /// Tasks per slot.
    pub replicas: u64,
    /// Placement constraints.
    pub constraints: Vec<String>,
    /// VIP or DNS round robin.
    pub endpoint_mode: EndpointMode,
}

impl SwarmSettings {
    /// The settings `engine = { kind = "swarm", … }` at `key` gives, checked against what a
    /// service can do with the rest of the stage (`stage`); a problem line for each thing to
    /// change.
    pub(crate) fn resolve(
        key: &str,
        file: &super::EngineFile,
        stage: &super::StageFacts<'_>,
        problems: &mut Vec<String>,
    ) -> Self {
        let replicas = file.replicas.unwrap_or(1);
        if replicas == 0 {
            problems.push(format!("{key}.engine.replicas: must be at least 1"));
        }
        if let Some(c) = file.constraints.iter().find(|c| !["==", "!="].iter().any(|op| c.contains(op))) {
            problems.push(format!(
                "{key}.engine.constraints `{c}`: write each as `node.role == worker` or `node.labels.zone != b`"
            ));
        }
        if stage.health_command.is_some_and(<[String]>::is_empty) {
            problems.push(format!("{key}.health.command: give at least the program, or remove the key"));
        }
        if stage.has_volumes {
            problems.push(format!(
                "{key}: the project's volumes are host binds, which a swarm stage cannot use (a task may land on any node); drop them or use engine.kind = \"docker\""
            ));
        }
        if stage.forward_by_ip {
            problems.push(format!(
                "{key}.engine: a swarm slot is reached by its service name on the overlay network; set proxy.forward = \"name\" and attach the proxy to settings.network"
            ));
        }
        Self { replicas, constraints: file.constraints.clone(), endpoint_mode: file.endpoint_mode.unwrap_or_default() }
    }
}

/// How a service is reached on its overlay network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    /// One virtual IP that balances over the tasks (Swarm's default; needs IPVS on the nodes).
    #[default]
    Vip,
    /// The service name resolves to the tasks' own addresses (DNS round robin).
    Dnsrr,
}

/// Everything needed to create or update one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Service name (one per slot).
    pub name: String,
    /// Image by digest (`repo@sha256:…`).
    pub image: String,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Labels of the service (ours and the user's); its tasks' containers carry none of ours.
    pub labels: BTreeMap<String, String>,
    /// The overlay network it joins.
    pub network: String,
    /// Replicas.
    pub replicas: u64,
    /// Placement constraints, Swarm syntax (`node.role == worker`).
    pub constraints: Vec<String>,
    /// VIP or DNS round robin.
    pub endpoint_mode: EndpointMode,
    /// The health check Swarm runs in each task (exec form); `None`: the image's `HEALTHCHECK`.
    pub health_command: Option<Vec<String>>,
    /// Its timing: interval, timeout, retries, start period, start interval.
    pub health: crate::health::HealthPolicy,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// CPU limit in nano-CPUs.
    pub nano_cpus: Option<i64>,
    /// Command override.
    pub command: Option<Vec<String>>,
    /// Swarm's `ForceUpdate` counter: a new value replaces every task even when nothing else
    /// changed (a forced redeploy of the same digest). tiny-forge uses the deploy id.
    pub generation: u64,
}

/// Where an update of a service stands, as Swarm reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateState {
    /// Replacing tasks.
    Updating,
    /// Stopped half-way (a task failed and the failure action is `pause`).
    Paused,
    /// Every task runs the new spec.
    Completed,
    /// A task failed; Swarm is going back to the previous spec.
    RollbackStarted,
    /// Swarm's rollback stopped half-way.
    RollbackPaused,
    /// Swarm went back to the previous spec.
    RollbackCompleted,
}

/// What the engine says about a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The version an update must name.
    pub version: u64,
    /// The `ForceUpdate` value of its spec: the deploy that last created or updated it.
    pub generation: u64,
    /// The image its spec runs now.
    pub image: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The state of its last update, if it had one.
    pub update: Option<UpdateState>,
    /// What Swarm said about it.
    pub update_message: Option<String>,
    /// Replicas asked for.
    pub replicas: u64,
}

impl ServiceInfo {
    /// Seen as an instance (for the by-name calls that work on both engines), in `state`.
    #[must_use]
    pub fn as_instance(self, state: String) -> ContainerInfo {
        ContainerInfo {
            id: self.id,
            name: self.name,
            state,
            exit_code: None,
            restarts: 0,
            ip: None,
            addresses: BTreeMap::new(),
            labels: self.labels,
            image: self.image,
            is_service: true,
            created: None,
        }
    }
}

/// What the engine says about one task of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// Id.
    pub id: String,
    /// The node it was given to.
    pub node: String,
    /// The image its spec runs.
    pub image: String,
    /// The `ForceUpdate` value of its spec: the deploy that made it.
    pub generation: u64,
    /// `new` … `starting`, `running`, `complete`, `failed`, `shutdown`, `rejected`, …
    pub state: String,
    /// What Swarm wants it to be (`running`, `shutdown`).
    pub desired: String,
    /// Its container's exit code, once it exited.
    pub exit_code: Option<i64>,
    /// Swarm's message or error for it.
    pub message: String,
    /// Its container, once it has one.
    pub container: Option<String>,
    /// Its address on the service's network, when its container is on this node.
    pub ip: Option<IpAddr>,
    /// Its address on `docker_gwbridge`, through which this host reaches it, when on this node.
    pub gateway: Option<IpAddr>,
}

impl TaskInfo {
    /// Has it ended badly (a task Swarm will not bring back as it is)? A task that exits 0 has
    /// too: an instance must keep running (review F10).
    #[must_use]
    pub fn failed(&self) -> bool {
        matches!(self.state.as_str(), "failed" | "rejected")
            || (self.state == "complete" && self.desired != "shutdown")
            || (self.state == "shutdown" && self.exit_code.is_some_and(|c| c != 0) && self.desired != "shutdown")
    }

    /// The scheduler's reason when it cannot place the task at all (no node satisfies its
    /// constraints, no node has the resources): such a task stays `pending` for ever.
    #[must_use]
    pub fn unschedulable(&self) -> Option<&str> {
        let m = self.message.to_ascii_lowercase();
        (self.state == "pending" && (m.contains("no suitable node") || m.contains("insufficient resources")))
            .then_some(self.message.as_str())
    }
}

/// Whether the engine can run services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmInfo {
    /// `active`, `inactive`, `pending`, `error`, `locked`.
    pub state: String,
    /// This engine is a manager (services can be created through it).
    pub manager: bool,
    /// Nodes in the swarm.
    pub nodes: u32,
    /// Nodes that are ready.
    pub ready: u32,
}

/// How long Swarm watches each updated task before it calls the update (or rollback) done:
/// a few health checks. Not the start period: with start-first, a task runs only once it is
/// healthy, so its start is already behind it (review F8: the start period here added itself to
/// every redeploy and pushed rollbacks past their bound).
#[must_use]
pub fn monitor(health: &crate::health::HealthPolicy) -> Duration {
    health.interval * (health.retries + 1)
}

/// How long Swarm may take, at most, to replace `replicas` tasks one at a time: each may have
/// to pull, start and pass its start period and checks, and is then watched for [`monitor`].
#[must_use]
pub fn update_bound(health: &crate::health::HealthPolicy, replicas: u64, pull: Duration) -> Duration {
    let per_task =
        pull + health.start_period + (health.interval + health.timeout) * (health.retries + 1) + monitor(health);
    per_task * u32::try_from(replicas.max(1)).unwrap_or(u32::MAX)
}
