//! The engine kinds, in one place: [`AnyEngine`], the engine the library connects to (one
//! variant per adapter, as [`AnyProxy`](crate::proxy::AnyProxy) is for proxies), and
//! [`Engine`], what runs a stage's instances, read from `engine = { kind = … }` by
//! [`EngineFile`], each kind checking its own keys ([`SwarmSettings::resolve`]). The CLI and
//! the server hold an `AnyEngine` and never name an adapter. Both kinds (`docker`, `swarm`)
//! speak the Docker Engine API, so today there is one adapter. A new engine adds a variant to
//! each enum here, its keys to `EngineFile`, a `connect` arm and a line in `delegate!`.

use serde::Deserialize;

use super::{
    ContainerInfo, ContainerSpec, Containers, DockerRuntime, EndpointMode, EngineLook, ImageInfo, Images, InstanceKind,
    LogStream, LogsRequest, Networks, PullProgress, PulledImage, RegistryAuth, Removal, RuntimeError, ServiceInfo,
    ServiceSpec, Services, SwarmInfo, SwarmSettings, TaskInfo,
};

/// What runs a stage's instances (`engine = { kind = … }`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Engine {
    /// A container per instance on this host's Docker Engine.
    #[default]
    Docker,
    /// A Swarm service per slot, updated in place (start-first) by each deploy.
    Swarm(SwarmSettings),
}

impl Engine {
    /// What a slot's instance is on this engine.
    #[must_use]
    pub fn instance_kind(&self) -> InstanceKind {
        match self {
            Self::Docker => InstanceKind::Container,
            Self::Swarm(_) => InstanceKind::Service,
        }
    }
}

/// `engine = { … }` as written: what runs a stage's instances. A stage's table replaces the
/// project's. Each kind's keys are checked by [`EngineFile::resolve`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineFile {
    /// `docker` (a container per instance on this engine) or `swarm` (a service per slot).
    /// Default: `docker`.
    #[serde(default)]
    pub kind: EngineKind,
    /// Swarm: tasks per slot. Default: 1.
    pub replicas: Option<u64>,
    /// Swarm: placement constraints, e.g. `["node.role == worker"]`. Default: none.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// Swarm: `vip` (default) or `dnsrr`.
    pub endpoint_mode: Option<EndpointMode>,
}

/// `engine.kind`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The Docker Engine of this host.
    #[default]
    Docker,
    /// Docker Swarm, through a manager.
    Swarm,
}

/// What an engine kind needs to know of the rest of its stage to check it.
#[derive(Debug, Clone, Copy)]
pub struct StageFacts<'a> {
    /// `health.command`, when set (run by the engine itself, where it can).
    pub health_command: Option<&'a [String]>,
    /// Whether the project binds host volumes.
    pub has_volumes: bool,
    /// Whether the proxy forwards to instances by IP address.
    pub forward_by_ip: bool,
}

impl EngineFile {
    /// The engine `file` (at `key`; `None`: not set) chooses for a stage with `stage`'s facts,
    /// with a problem line for each thing to change.
    pub fn resolve(file: Option<&Self>, key: &str, stage: &StageFacts<'_>, problems: &mut Vec<String>) -> Engine {
        let Some(file) = file else {
            if stage.health_command.is_some() {
                problems.push(format!(
                    "{key}: health.command is run by Swarm's tasks; it needs engine = {{ kind = \"swarm\" }} (the docker engine probes over HTTP)"
                ));
            }
            return Engine::Docker;
        };
        match file.kind {
            EngineKind::Docker => {
                if file.replicas.is_some() || !file.constraints.is_empty() || file.endpoint_mode.is_some() {
                    problems.push(format!(
                        "{key}.engine: replicas, constraints and endpoint_mode are for kind = \"swarm\""
                    ));
                }
                if stage.health_command.is_some() {
                    problems.push(format!(
                        "{key}: health.command is run by Swarm's tasks; it needs engine.kind = \"swarm\""
                    ));
                }
                Engine::Docker
            }
            EngineKind::Swarm => Engine::Swarm(SwarmSettings::resolve(key, file, stage, problems)),
        }
    }
}

/// A connected engine.
#[derive(Debug, Clone)]
pub enum AnyEngine {
    /// The Docker Engine (and its Swarm mode), at `DOCKER_HOST` or the local socket.
    Docker(DockerRuntime),
}

impl AnyEngine {
    /// Connects to the engine and agrees on an API version, so an unreachable engine is found
    /// before anything is recorded.
    ///
    /// # Errors
    /// [`RuntimeError::Unreachable`] when the engine does not answer.
    pub async fn connect() -> Result<Self, RuntimeError> {
        Ok(Self::Docker(DockerRuntime::connect().await?))
    }

    /// The engine's version, for `doctor`.
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn version(&self) -> Result<String, RuntimeError> {
        match self {
            Self::Docker(d) => d.version().await,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $e:ident => $body:expr) => {
        match $self {
            Self::Docker($e) => $body,
        }
    };
}

impl Images for AnyEngine {
    async fn registry_auth(
        &self,
        image: &str,
        configured: Option<&RegistryAuth>,
    ) -> Result<Option<(String, RegistryAuth)>, String> {
        delegate!(self, e => e.registry_auth(image, configured).await)
    }

    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PulledImage, RuntimeError> {
        delegate!(self, e => e.pull(image, auth, progress).await)
    }

    async fn resolve_digest(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<String, RuntimeError> {
        delegate!(self, e => e.resolve_digest(image, auth).await)
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        delegate!(self, e => e.list_images().await)
    }

    async fn images_in_use(
        &self,
        among: &std::collections::BTreeSet<String>,
    ) -> Result<std::collections::BTreeSet<String>, RuntimeError> {
        delegate!(self, e => e.images_in_use(among).await)
    }

    async fn remove_image(&self, id: &str, names: &[String]) -> Result<Removal, RuntimeError> {
        delegate!(self, e => e.remove_image(id, names).await)
    }

    async fn image_has_healthcheck(&self, reference: &str) -> Result<bool, RuntimeError> {
        delegate!(self, e => e.image_has_healthcheck(reference).await)
    }
}

impl Networks for AnyEngine {
    async fn ensure_network(&self, name: &str) -> Result<bool, RuntimeError> {
        delegate!(self, e => e.ensure_network(name).await)
    }

    async fn ensure_overlay(&self, name: &str) -> Result<bool, RuntimeError> {
        delegate!(self, e => e.ensure_overlay(name).await)
    }

    async fn remove_network_if_idle(&self, name: &str) -> Result<bool, RuntimeError> {
        delegate!(self, e => e.remove_network_if_idle(name).await)
    }
}

impl Containers for AnyEngine {
    async fn watch_managed(
        &self,
        since: std::time::SystemTime,
        on_change: &mut dyn FnMut(&str),
    ) -> Result<(), RuntimeError> {
        delegate!(self, e => e.watch_managed(since, on_change).await)
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        delegate!(self, e => e.create(spec).await)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        delegate!(self, e => e.start(id).await)
    }

    async fn inspect(&self, id: &str, network: &str) -> EngineLook<ContainerInfo> {
        delegate!(self, e => e.inspect(id, network).await)
    }

    async fn wait_exit(&self, id: &str) -> Result<i64, RuntimeError> {
        delegate!(self, e => e.wait_exit(id).await)
    }

    async fn vitals(&self, id: &str) -> EngineLook<crate::engine::Vitals> {
        delegate!(self, e => e.vitals(id).await)
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError> {
        delegate!(self, e => e.logs_tail(id, lines).await)
    }

    async fn logs(
        &self,
        id: &str,
        req: LogsRequest,
        on_line: &mut dyn FnMut(LogStream, &str),
    ) -> Result<(), RuntimeError> {
        delegate!(self, e => e.logs(id, req, on_line).await)
    }

    async fn remove(&self, id: &str) -> Result<Removal, RuntimeError> {
        delegate!(self, e => e.remove(id).await)
    }

    async fn list_managed(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        delegate!(self, e => e.list_managed().await)
    }

    async fn list_managed_of_slot(&self, slot: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        delegate!(self, e => e.list_managed_of_slot(slot).await)
    }
}

impl Services for AnyEngine {
    async fn swarm_info(&self) -> Result<SwarmInfo, RuntimeError> {
        delegate!(self, e => e.swarm_info().await)
    }

    async fn service(&self, name: &str) -> EngineLook<ServiceInfo> {
        delegate!(self, e => e.service(name).await)
    }

    async fn service_instance(&self, name: &str) -> EngineLook<ContainerInfo> {
        delegate!(self, e => e.service_instance(name).await)
    }

    async fn list_managed_services(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        delegate!(self, e => e.list_managed_services().await)
    }

    async fn create_service(&self, spec: &ServiceSpec, auth: Option<&RegistryAuth>) -> Result<String, RuntimeError> {
        delegate!(self, e => e.create_service(spec, auth).await)
    }

    async fn update_service(
        &self,
        spec: &ServiceSpec,
        version: u64,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        delegate!(self, e => e.update_service(spec, version, auth).await)
    }

    async fn rollback_service(&self, name: &str) -> Result<(), RuntimeError> {
        delegate!(self, e => e.rollback_service(name).await)
    }

    async fn remove_service(&self, name: &str) -> Result<Removal, RuntimeError> {
        delegate!(self, e => e.remove_service(name).await)
    }

    async fn tasks(&self, name: &str, network: &str) -> Result<Vec<TaskInfo>, RuntimeError> {
        delegate!(self, e => e.tasks(name, network).await)
    }

    async fn task_logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError> {
        delegate!(self, e => e.task_logs_tail(id, lines).await)
    }
}
