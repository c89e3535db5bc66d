//! Docker Swarm through the same Engine API (DESIGN §10): a slot is a service, a redeploy is a
//! service update with `order = start-first`. The seam's words for services live here; the
//! Docker adapter's service calls are the `impl DockerRuntime` below, which
//! [`super::docker`]'s `ContainerRuntime` impl delegates to. We never schedule anything ourselves.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, NetworkAttachmentConfig, NetworkCreateRequest, NodeState,
    ServiceSpec as BollardServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, ServiceUpdateStatusStateEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::{
    InspectServiceOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder, UpdateServiceOptionsBuilder,
};
use serde::Deserialize;

use super::docker::{DockerRuntime, credentials, engine_error, forward_lines, logs_options, tail_lines};
use super::{ContainerInfo, EngineLook, LABEL_MANAGED, RegistryAuth, Removal, RuntimeError};
use crate::look::Look;

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

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Our spec in the Engine API's words. Updates are start-first and roll back on failure, so a
/// failed update leaves the previous tasks serving; tiny-forge reads that as a failed deploy.
fn bollard_spec(s: &ServiceSpec) -> BollardServiceSpec {
    let health_check = s.health_command.as_ref().map(|cmd| {
        let mut test = vec!["CMD".to_owned()];
        test.extend(cmd.iter().cloned());
        HealthConfig {
            test: Some(test),
            interval: Some(nanos(s.health.interval)),
            timeout: Some(nanos(s.health.timeout)),
            retries: Some(i64::from(s.health.retries)),
            start_period: Some(nanos(s.health.start_period)),
            start_interval: Some(nanos(s.health.start_interval)),
        }
    });
    let monitor = monitor(&s.health);
    BollardServiceSpec {
        name: Some(s.name.clone()),
        labels: Some(s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(s.image.clone()),
                env: Some(s.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                command: s.command.clone(),
                health_check,
                ..TaskSpecContainerSpec::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit { nano_cpus: s.nano_cpus, memory_bytes: s.memory, pids: None }),
                ..TaskSpecResources::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(nanos(Duration::from_secs(1))),
                max_attempts: None,
                window: None,
            }),
            placement: (!s.constraints.is_empty()).then(|| TaskSpecPlacement {
                constraints: Some(s.constraints.clone()),
                ..TaskSpecPlacement::default()
            }),
            force_update: Some(s.generation),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(s.network.clone()),
                ..NetworkAttachmentConfig::default()
            }]),
            ..TaskSpec::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(i64::try_from(s.replicas).unwrap_or(1)) }),
            ..ServiceSpecMode::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(nanos(monitor)),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(0),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(nanos(monitor)),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(match s.endpoint_mode {
                EndpointMode::Vip => EndpointSpecModeEnum::VIP,
                EndpointMode::Dnsrr => EndpointSpecModeEnum::DNSRR,
            }),
            ports: None,
        }),
        ..BollardServiceSpec::default()
    }
}

fn image_of(spec: Option<&BollardServiceSpec>) -> Option<String> {
    spec.and_then(|s| s.task_template.as_ref()).and_then(|t| t.container_spec.as_ref()).and_then(|c| c.image.clone())
}

fn service_info(s: bollard::models::Service) -> ServiceInfo {
    let update = s.update_status.as_ref().and_then(|u| match u.state? {
        ServiceUpdateStatusStateEnum::UPDATING => Some(UpdateState::Updating),
        ServiceUpdateStatusStateEnum::PAUSED => Some(UpdateState::Paused),
        ServiceUpdateStatusStateEnum::COMPLETED => Some(UpdateState::Completed),
        ServiceUpdateStatusStateEnum::ROLLBACK_STARTED => Some(UpdateState::RollbackStarted),
        ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED => Some(UpdateState::RollbackPaused),
        ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED => Some(UpdateState::RollbackCompleted),
        ServiceUpdateStatusStateEnum::EMPTY => None,
    });
    let replicas = s
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0);
    ServiceInfo {
        id: s.id.unwrap_or_default(),
        name: s.spec.as_ref().and_then(|s| s.name.clone()).unwrap_or_default(),
        version: s.version.and_then(|v| v.index).unwrap_or(0),
        generation: s.spec.as_ref().and_then(|s| s.task_template.as_ref()).and_then(|t| t.force_update).unwrap_or(0),
        image: image_of(s.spec.as_ref()).unwrap_or_default(),
        labels: s.spec.and_then(|s| s.labels).unwrap_or_default().into_iter().collect(),
        update,
        update_message: s.update_status.and_then(|u| u.message),
        replicas,
    }
}

/// Is this the engine's answer for "no such service"? (A 503, "not a swarm manager", "the swarm
/// is locked", is an error: the service may well be there.)
fn not_there(e: &BollardError) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code: 404, .. })
}

impl DockerRuntime {
    /// Fails unless this engine is a swarm manager that can answer now: a node outside a
    /// swarm, a worker, and a swarm that is locked, pending or in error cannot tell us which
    /// services exist, so nothing may be read as "no such service" there.
    async fn services_visible(&self, subject: &str) -> Result<(), RuntimeError> {
        let info = self.docker().info().await.map_err(|e| engine_error("read info of", "engine", e))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.map(|s| s.to_string()).unwrap_or_default();
        let message = match state.as_str() {
            "active" if swarm.control_available == Some(true) => return Ok(()),
            "active" => "this node is a swarm worker, which cannot see services; run tiny-forge on a manager",
            "" | "inactive" => "this engine is not in a swarm (was swarm mode left?); a swarm stage needs a manager",
            "locked" => "the swarm is locked (autolock after a restart); unlock it with `docker swarm unlock`",
            _ => "the swarm cannot answer now (pending, or in error); wait, then run again",
        };
        Err(RuntimeError::Other { op: "look for service", subject: subject.to_owned(), message: message.into() })
    }

    pub(super) async fn swarm_info_(&self) -> Result<SwarmInfo, RuntimeError> {
        let info = self.docker().info().await.map_err(|e| engine_error("read info of", "engine", e))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.map(|s| s.to_string()).unwrap_or_default();
        let manager = swarm.control_available.unwrap_or(false);
        let (mut nodes, mut ready) = (0, 0);
        if manager {
            let list = self.docker().list_nodes(None).await.map_err(|e| engine_error("list", "nodes", e))?;
            for n in list {
                nodes += 1;
                if n.status.and_then(|s| s.state) == Some(NodeState::READY) {
                    ready += 1;
                }
            }
        }
        Ok(SwarmInfo { state, manager, nodes, ready })
    }

    pub(super) async fn ensure_overlay_(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.docker().inspect_network(name, None).await {
            Ok(n) if n.driver.as_deref() != Some("overlay") => Err(RuntimeError::Other {
                op: "use network",
                subject: name.to_owned(),
                message: format!(
                    "it is a `{}` network; a swarm stage needs an attachable overlay network: set settings.network to another name",
                    n.driver.unwrap_or_default()
                ),
            }),
            Ok(n) if n.attachable != Some(true) => Err(RuntimeError::Other {
                op: "use network",
                subject: name.to_owned(),
                message: "the overlay network is not attachable, so one-off containers and proxies cannot join it; recreate it with --attachable".into(),
            }),
            Ok(_) => Ok(false),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {
                let req = NetworkCreateRequest {
                    name: name.to_owned(),
                    driver: Some("overlay".into()),
                    attachable: Some(true),
                    labels: Some(HashMap::from([(LABEL_MANAGED.to_owned(), "true".to_owned())])),
                    ..NetworkCreateRequest::default()
                };
                match self.docker().create_network(req).await {
                    Ok(_) => Ok(true),
                    Err(BollardError::DockerResponseServerError { status_code: 409, .. }) => Ok(false),
                    Err(e) => Err(engine_error("create overlay network", name, e)),
                }
            }
            Err(e) => Err(engine_error("inspect network", name, e)),
        }
    }

    pub(super) async fn service_(&self, name: &str) -> EngineLook<ServiceInfo> {
        let options = InspectServiceOptionsBuilder::default().insert_defaults(false).build();
        match self.docker().inspect_service(name, Some(options)).await {
            Ok(s) => Look::Found(service_info(s)),
            Err(e) if not_there(&e) => Look::Absent,
            Err(e) => Look::Unknown(engine_error("inspect service", name, e)),
        }
    }

    pub(super) async fn create_service_(
        &self,
        spec: &ServiceSpec,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        let created = self
            .docker()
            .create_service(bollard_spec(spec), credentials(auth))
            .await
            .map_err(|e| engine_error("create service", &spec.name, e))?;
        Ok(created.id.unwrap_or_default())
    }

    pub(super) async fn update_service_(
        &self,
        spec: &ServiceSpec,
        version: u64,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        let options = UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .registry_auth_from("spec")
            .build();
        self.docker()
            .update_service(&spec.name, bollard_spec(spec), options, credentials(auth))
            .await
            .map_err(|e| engine_error("update service", &spec.name, e))?;
        Ok(())
    }

    /// Swarm's rollback of service `name`, at the version it has now: Swarm bumps the version
    /// whenever it changes the update status, so the caller's earlier look may be stale, and
    /// sending it would be refused as "out of sequence".
    pub(super) async fn rollback_service_(&self, name: &str) -> Result<(), RuntimeError> {
        let current = self
            .docker()
            .inspect_service(name, None::<bollard::query_parameters::InspectServiceOptions>)
            .await
            .map_err(|e| engine_error("inspect service", name, e))?;
        let version = current.version.as_ref().and_then(|v| v.index).unwrap_or(0);
        let options = UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .rollback("previous")
            .build();
        self.docker()
            .update_service(name, current.spec.unwrap_or_default(), options, None)
            .await
            .map_err(|e| engine_error("roll back service", name, e))?;
        Ok(())
    }

    /// `docker_gwbridge`'s address of each container on it, by container id.
    async fn gateways(&self) -> HashMap<String, IpAddr> {
        let Ok(n) = self.docker().inspect_network("docker_gwbridge", None).await else { return HashMap::new() };
        n.containers
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(id, c)| {
                let ip = c.ipv4_address?.split('/').next()?.parse().ok()?;
                Some((id, ip))
            })
            .collect()
    }

    pub(super) async fn tasks_(&self, name: &str, network: &str) -> Result<Vec<TaskInfo>, RuntimeError> {
        let filters = HashMap::from([("service", vec![name.to_owned()])]);
        let options = ListTasksOptionsBuilder::default().filters(&filters).build();
        let list = match self.docker().list_tasks(Some(options)).await {
            Ok(l) => l,
            Err(e) if not_there(&e) => return Ok(Vec::new()),
            Err(e) => return Err(engine_error("list tasks of", name, e)),
        };
        let gateways = self.gateways().await;
        let mut out = Vec::new();
        let mut dated = Vec::new();
        for t in list {
            // The filter matches by name prefix too; keep this service's tasks only.
            let status = t.status.clone().unwrap_or_default();
            let container = status.container_status.as_ref().and_then(|c| c.container_id.clone());
            let (ip, gateway) = match &container {
                Some(id) => {
                    let ip = self
                        .docker()
                        .inspect_container(id, None)
                        .await
                        .ok()
                        .and_then(|c| c.network_settings)
                        .and_then(|n| n.networks)
                        .and_then(|n| n.get(network).and_then(|e| e.ip_address.clone()))
                        .and_then(|ip| ip.parse().ok());
                    (ip, gateways.get(id).copied())
                }
                None => (None, None),
            };
            let info = TaskInfo {
                id: t.id.clone().unwrap_or_default(),
                node: t.node_id.clone().unwrap_or_default(),
                image: t
                    .spec
                    .as_ref()
                    .and_then(|s| s.container_spec.as_ref())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default(),
                generation: t.spec.as_ref().and_then(|s| s.force_update).unwrap_or(0),
                state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                desired: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
                exit_code: status.container_status.as_ref().and_then(|c| c.exit_code).filter(|_| {
                    matches!(status.state.map(|s| s.to_string()).as_deref(), Some("failed" | "shutdown" | "complete"))
                }),
                message: status.err.clone().filter(|e| !e.is_empty()).or(status.message.clone()).unwrap_or_default(),
                container,
                ip,
                gateway,
            };
            dated.push((t.created_at.clone().unwrap_or_default(), info));
        }
        dated.sort_by(|a, b| b.0.cmp(&a.0));
        out.extend(dated.into_iter().map(|(_, t)| t));
        Ok(out)
    }

    pub(super) async fn task_logs_tail_(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError> {
        let req = super::LogsRequest { tail: Some(lines), ..super::LogsRequest::default() };
        tail_lines(self.docker().task_logs(id, Some(logs_options(req))), lines, id).await
    }

    pub(super) async fn image_has_healthcheck_(&self, reference: &str) -> Result<bool, RuntimeError> {
        let image =
            self.docker().inspect_image(reference).await.map_err(|e| engine_error("inspect image", reference, e))?;
        Ok(image
            .config
            .and_then(|c| c.healthcheck)
            .and_then(|h| h.test)
            .is_some_and(|t| !t.is_empty() && t.first().is_some_and(|w| w != "NONE")))
    }

    /// Service `name` seen as an instance of a slot: `running` when a task of its current spec
    /// runs. Unknown unless a manager that can answer says whether it exists.
    pub(super) async fn service_as_container(&self, name: &str) -> EngineLook<ContainerInfo> {
        if let Err(e) = self.services_visible(name).await {
            return Look::Unknown(e);
        }
        let s = match self.service_(name).await {
            Look::Found(s) => s,
            Look::Absent => return Look::Absent,
            Look::Unknown(e) => return Look::Unknown(e),
        };
        let tasks = match self.tasks_(name, "").await {
            Ok(t) => t,
            Err(e) => return Look::Unknown(e),
        };
        let current: Vec<&TaskInfo> = tasks.iter().filter(|t| t.image == s.image && t.desired == "running").collect();
        let state = if current.iter().any(|t| t.state == "running") {
            "running".to_owned()
        } else {
            current.first().map_or_else(|| "pending".to_owned(), |t| t.state.clone())
        };
        Look::Found(s.as_instance(state))
    }

    /// Removes service `name` when there is one.
    pub(super) async fn remove_service_(&self, name: &str) -> Result<Removal, RuntimeError> {
        match self.docker().delete_service(name).await {
            Ok(()) => Ok(Removal::Removed),
            Err(e) if not_there(&e) => Ok(Removal::AlreadyGone),
            Err(e) => Err(engine_error("remove service", name, e)),
        }
    }

    /// Every service carrying [`LABEL_MANAGED`], seen as instances; an error (never an empty
    /// list) when the swarm cannot be asked.
    pub(super) async fn managed_services(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.services_visible("services").await?;
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListServicesOptionsBuilder::default().filters(&filters).build();
        let list = self.docker().list_services(Some(options)).await.map_err(|e| engine_error("list", "services", e))?;
        Ok(list.into_iter().map(|s| service_info(s).as_instance("running".into())).collect())
    }

    /// Service `name`'s log lines, each with its stream.
    pub(super) async fn service_logs_(
        &self,
        name: &str,
        req: super::LogsRequest,
        on_line: &mut dyn FnMut(super::LogStream, &str),
    ) -> Result<(), RuntimeError> {
        forward_lines(self.docker().service_logs(name, Some(logs_options(req))), on_line, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            name: "tf-shop-dev-main".into(),
            image: "r/shop@sha256:abc".into(),
            env: vec![("A".into(), "1".into())],
            labels: BTreeMap::from([(LABEL_MANAGED.to_owned(), "true".to_owned())]),
            network: "tf-overlay".into(),
            replicas: 2,
            constraints: vec!["node.role == worker".into()],
            endpoint_mode: EndpointMode::Dnsrr,
            health_command: Some(vec!["/app".into(), "probe".into()]),
            health: crate::health::HealthPolicy::default(),
            memory: None,
            nano_cpus: None,
            command: None,
            generation: 7,
        }
    }

    /// The registry credentials in a request head's `X-Registry-Auth`.
    fn registry_auth_of(head: &str) -> serde_json::Value {
        use base64::Engine as _;
        let value = head
            .lines()
            .find_map(|l| l.strip_prefix("x-registry-auth: ").or_else(|| l.strip_prefix("X-Registry-Auth: ")))
            .unwrap_or_else(|| panic!("no X-Registry-Auth header in:\n{head}"));
        let bytes = base64::engine::general_purpose::URL_SAFE.decode(value.trim()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn registry_credentials_go_with_the_service_create_and_update_so_every_node_can_pull() {
        let auth = RegistryAuth { username: "ci".into(), password: crate::secret::Secret::new("s3cret".into()) };
        for update in [false, true] {
            let (addr, server) =
                super::super::test_server::scripted_server(vec![(if update { 200 } else { 201 }, "{\"ID\":\"svc1\"}")]);
            let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
            let runtime = DockerRuntime::over(docker);
            if update {
                runtime.update_service_(&spec(), 3, Some(&auth)).await.unwrap();
            } else {
                runtime.create_service_(&spec(), Some(&auth)).await.unwrap();
            }
            let head = server.join().unwrap().remove(0);
            let creds = registry_auth_of(&head);
            assert_eq!(creds["username"], "ci", "{head}");
            assert_eq!(creds["password"], "s3cret");
            if update {
                assert!(head.starts_with("POST ") && head.contains("/services/tf-shop-dev-main/update?"), "{head}");
                assert!(head.contains("version=3"), "{head}");
            } else {
                assert!(head.contains("/services/create"), "{head}");
            }
        }
    }

    #[test]
    fn a_service_updates_start_first_and_rolls_back_on_failure() {
        let s = bollard_spec(&spec());
        let u = s.update_config.unwrap_or_default();
        assert_eq!(u.order, Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
        assert_eq!(u.failure_action, Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK));
        assert_eq!(s.endpoint_spec.and_then(|e| e.mode), Some(EndpointSpecModeEnum::DNSRR));
    }

    #[test]
    fn the_health_command_is_exec_form_and_our_labels_stay_off_the_tasks() {
        let s = bollard_spec(&spec());
        let c = s.task_template.and_then(|t| t.container_spec).unwrap_or_default();
        assert_eq!(c.health_check.and_then(|h| h.test), Some(vec!["CMD".into(), "/app".into(), "probe".into()]));
        assert_eq!(c.labels, None, "task containers must not look like managed containers to prune");
        assert!(s.labels.unwrap_or_default().contains_key(LABEL_MANAGED));
    }

    /// Review F8: the monitor window is a few health checks, never the start period (which
    /// start-first has already spent before a task runs).
    #[test]
    fn the_monitor_window_leaves_out_the_start_period() {
        let mut s = spec();
        s.health.start_period = Duration::from_secs(100);
        let b = bollard_spec(&s);
        let want = nanos(s.health.interval * (s.health.retries + 1));
        assert_eq!(b.update_config.and_then(|u| u.monitor), Some(want));
        assert_eq!(b.rollback_config.and_then(|r| r.monitor), Some(want));
        assert!(update_bound(&s.health, 1, Duration::ZERO) > s.health.start_period, "the wait bound still covers it");
    }

    #[test]
    fn a_task_that_exited_non_zero_has_failed_and_one_swarm_stopped_has_not() {
        let t = |state: &str, desired: &str, code| TaskInfo {
            id: "t".into(),
            node: "n".into(),
            image: "i".into(),
            generation: 1,
            state: state.into(),
            desired: desired.into(),
            exit_code: code,
            message: String::new(),
            container: None,
            ip: None,
            gateway: None,
        };
        assert!(t("failed", "shutdown", Some(1)).failed());
        assert!(t("rejected", "shutdown", None).failed());
        assert!(!t("shutdown", "shutdown", Some(137)).failed());
        assert!(!t("running", "running", None).failed());
        // Review F10: an instance that exits 0 is not running either.
        assert!(t("complete", "running", Some(0)).failed());
        let mut pending = t("pending", "running", None);
        assert_eq!(pending.unschedulable(), None);
        pending.message = "no suitable node (scheduling constraints not satisfied on 1 node)".into();
        assert!(pending.unschedulable().is_some_and(|m| m.contains("no suitable node")));
    }
}
