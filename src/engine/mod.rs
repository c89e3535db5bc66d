//! The container runtime seam: what the deploy saga needs from a container engine, in our own
//! words. [`docker::DockerRuntime`] implements it over the Docker Engine API (bollard).

pub mod auth;
pub mod docker;
pub mod swarm;
#[cfg(test)]
mod test_server;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use docker::DockerRuntime;
pub use swarm::{EndpointMode, ServiceInfo, ServiceSpec, SwarmInfo, TaskInfo, UpdateState};

use crate::secret::Secret;

/// What a look at one engine resource found: there, not there (a 404), or could not look.
pub type EngineLook<T> = crate::look::Look<T, RuntimeError>;

/// What an instance of a slot is in the engine: a container (the Docker engine), or a service
/// (the Swarm engine). The by-name calls that undo an instance look it up as this kind only, so
/// that a swarm that cannot answer is never read as "no such service".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceKind {
    /// A container.
    Container,
    /// A Swarm service.
    Service,
}

/// Prefix of every label tiny-forge sets; user labels may not use it.
pub const LABEL_PREFIX: &str = "dev.tiny-forge.";
/// Present (`true`) on every container tiny-forge creates. Nothing without it is ever touched.
pub const LABEL_MANAGED: &str = "dev.tiny-forge.managed";
/// The project.
pub const LABEL_PROJECT: &str = "dev.tiny-forge.project";
/// The stage.
pub const LABEL_STAGE: &str = "dev.tiny-forge.stage";
/// The tag.
pub const LABEL_TAG: &str = "dev.tiny-forge.tag";
/// The slot key, `project/stage/tag`.
pub const LABEL_SLOT: &str = "dev.tiny-forge.slot";
/// The deploy that created the container.
pub const LABEL_DEPLOY_ID: &str = "dev.tiny-forge.deploy-id";
/// The id of the state file whose deploy created the container (DESIGN §8): a container
/// stamped with another id belongs to another state file and is never touched.
pub const LABEL_STATE: &str = "dev.tiny-forge.state";
/// What a container is for when it is not an instance: `release`, `on_create`, `on_remove`.
pub const LABEL_ROLE: &str = "dev.tiny-forge.role";

/// Docker restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// `no`.
    No,
    /// `always`.
    Always,
    /// `unless-stopped` (default).
    UnlessStopped,
    /// `on-failure`.
    OnFailure,
}

impl RestartPolicy {
    /// Docker's word for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
            Self::OnFailure => "on-failure",
        }
    }
}

/// The user name Docker's `config.json` and credential helpers give an identity token (an OAuth
/// refresh token, e.g. Azure's), whose secret is then the token.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

/// Registry credentials for one registry host, from the config or the Docker CLI's credential
/// store. A user name of [`IDENTITY_TOKEN_USER`] means the password is an identity token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: Secret,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Container name (deterministic per deploy).
    pub name: String,
    /// Image by digest (`repo@sha256:…`).
    pub image: String,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Labels, ours and the user's.
    pub labels: BTreeMap<String, String>,
    /// Network joined at creation.
    pub network: String,
    /// Port the app listens on (exposed).
    pub port: u16,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// CPU limit in nano-CPUs.
    pub nano_cpus: Option<i64>,
    /// Command override.
    pub command: Option<Vec<String>>,
    /// Volume binds.
    pub volumes: Vec<String>,
}

/// A pulled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// `sha256:…` manifest digest from the registry.
    pub digest: String,
    /// `repository@sha256:…`, what containers are created from.
    pub reference: String,
}

/// Pull progress of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// Layer id.
    pub layer: String,
    /// Status word.
    pub status: String,
    /// Bytes done.
    pub current: Option<u64>,
    /// Bytes in all.
    pub total: Option<u64>,
}

/// What the engine says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Id.
    pub id: String,
    /// Name, without the leading `/`.
    pub name: String,
    /// `running`, `exited`, `restarting`, …
    pub state: String,
    /// Exit code once it has exited (also while its restart policy restarts it).
    pub exit_code: Option<i64>,
    /// How many times its restart policy has restarted it.
    pub restarts: u32,
    /// Address on the network asked about, if attached.
    pub ip: Option<IpAddr>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Image digest reference it was created from.
    pub image: String,
    /// It is a swarm slot's service, seen as an instance (not a container).
    pub is_service: bool,
    /// When it was created (Unix seconds), when the engine says.
    pub created: Option<i64>,
}

/// An image in the engine's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its id (`sha256:…` of its config).
    pub id: String,
    /// `repository@sha256:…` references it is known by.
    pub repo_digests: Vec<String>,
    /// `repository:tag` names it carries.
    pub repo_tags: Vec<String>,
    /// Bytes on disk (shared layers counted in full).
    pub size: u64,
}

impl ImageInfo {
    /// The repositories it belongs to (from its digests and tags), canonical
    /// (`docker.io/library/nginx` for the engine's `nginx@…`). A name that does not parse is
    /// kept as it is: it matches no configured repository, so such an image is never deleted.
    #[must_use]
    pub fn repositories(&self) -> std::collections::BTreeSet<String> {
        self.repo_digests
            .iter()
            .chain(self.repo_tags.iter().filter(|t| *t != "<none>:<none>"))
            .map(|n| crate::image_ref::Reference::parse(n).map_or_else(|_| n.clone(), |r| r.repo.canonical()))
            .collect()
    }

    /// Its registry digests (`sha256:…`).
    #[must_use]
    pub fn digests(&self) -> std::collections::BTreeSet<&str> {
        self.repo_digests.iter().filter_map(|d| d.split_once('@').map(|(_, g)| g)).collect()
    }
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

/// What `logs` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogsRequest {
    /// Keep streaming until the container stops or goes away.
    pub follow: bool,
    /// Only lines since this Unix time (seconds).
    pub since: Option<i64>,
    /// Only the last this many lines.
    pub tail: Option<usize>,
}

/// The outcome of a removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// It was there and is gone now.
    Removed,
    /// It was already gone (counts as done).
    AlreadyGone,
}

/// A failed engine operation. `op` says what was being done and `subject` to what.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine cannot be reached.
    #[error(
        "cannot reach the Docker Engine: {message}; start Docker, check the socket's permissions, or set DOCKER_HOST"
    )]
    Unreachable {
        /// What the connection said.
        message: String,
    },
    /// The registry refused the pull or does not have the image.
    #[error("pull of {image} failed: {message}")]
    Pull {
        /// The image reference.
        image: String,
        /// What the registry or engine said.
        message: String,
    },
    /// A container's name is in use (by a container this run did not make).
    #[error("create container {name} failed: the name is already in use")]
    NameTaken {
        /// The container name.
        name: String,
    },
    /// The image a container was to be made from is not on the engine: another run's image
    /// cleanup (a prune, another state file's retire, `docker image prune -a`) took it after
    /// the pull.
    #[error("create container {name} failed: no such image {image}")]
    MissingImage {
        /// The container name.
        name: String,
        /// The image reference.
        image: String,
    },
    /// The engine answered with an error.
    #[error("{op} {subject} failed: {message}")]
    Engine {
        /// What was being done (`create container`, `start container`, …).
        op: &'static str,
        /// The container, image or network.
        subject: String,
        /// Engine's status code.
        status: u16,
        /// Engine's message.
        message: String,
    },
    /// Something else went wrong talking to the engine.
    #[error("{op} {subject} failed: {message}")]
    Other {
        /// What was being done.
        op: &'static str,
        /// The subject.
        subject: String,
        /// Detail.
        message: String,
    },
}

/// What an engine without Swarm answers to a service call.
fn no_swarm(op: &'static str, subject: &str) -> RuntimeError {
    RuntimeError::Other { op, subject: subject.to_owned(), message: "this engine does not run Swarm services".into() }
}

/// A container engine. Every method is one engine operation; none retries by itself, except
/// [`ContainerRuntime::pull`], which pulls again when another run's image cleanup takes the
/// image before it can be looked at.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub trait ContainerRuntime {
    /// Credentials for `image`'s registry, where they come from (for the log, never the
    /// secret) and them: `configured` first, else whatever the engine's clients would use.
    /// Bounded in time and cancellable: a credential helper that never answers cannot freeze a
    /// deploy.
    ///
    /// # Errors
    /// A line saying which helper failed or did not answer; the pull then goes on without.
    async fn registry_auth(
        &self,
        image: &str,
        configured: Option<&RegistryAuth>,
    ) -> Result<Option<(String, RegistryAuth)>, String>;

    /// Pulls `image` (`repo:tag` or `repo@digest`) and resolves its registry digest. Progress is
    /// reported per layer.
    ///
    /// # Errors
    /// [`RuntimeError::Pull`] when the registry refuses or lacks it.
    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PulledImage, RuntimeError>;

    /// Makes sure a bridge network named `name` exists; true when it was created now.
    ///
    /// # Errors
    /// When it cannot be inspected or created.
    async fn ensure_network(&self, name: &str) -> Result<bool, RuntimeError>;

    /// Creates (does not start) a container; returns its id.
    ///
    /// # Errors
    /// [`RuntimeError::NameTaken`] when the name is in use; [`RuntimeError::MissingImage`] when
    /// the image is not on the engine; others when the engine refuses (bad limits, unknown
    /// network, …).
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;

    /// Starts a created container.
    ///
    /// # Errors
    /// When the engine refuses.
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;

    /// Inspects a container (never a service): [`Look::Absent`](crate::look::Look::Absent) only
    /// when the engine says there is no such container; `ip` is its address on `network`.
    async fn inspect(&self, id: &str, network: &str) -> EngineLook<ContainerInfo>;

    /// Resolves when the container first exits since it was created, with that exit's code:
    /// also when its restart policy has already restarted it (-1 where the engine no longer
    /// knows the code). A running container removed by force exits too (137).
    ///
    /// # Errors
    /// On engine failure, or when the container is gone (or stopped and removed) first.
    async fn wait_exit(&self, id: &str) -> Result<i64, RuntimeError>;

    /// The last `lines` lines of the container's stdout and stderr.
    ///
    /// # Errors
    /// On engine failure.
    async fn logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError>;

    /// Removes a container by id or name, killing it if it runs; a missing one is
    /// [`Removal::AlreadyGone`].
    ///
    /// # Errors
    /// On engine failure.
    async fn remove(&self, id: &str) -> Result<Removal, RuntimeError>;

    /// Every container carrying [`LABEL_MANAGED`], running or not (never a service).
    ///
    /// # Errors
    /// On engine failure: the list is complete or it is an error.
    async fn list_managed(&self) -> Result<Vec<ContainerInfo>, RuntimeError>;

    /// The registry's digest of `image` (`repo:tag`) now, asked through the engine (a manifest
    /// HEAD, in effect) with `auth`; nothing is pulled.
    ///
    /// # Errors
    /// [`RuntimeError::Pull`] when the registry lacks the tag or refuses.
    async fn resolve_digest(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<String, RuntimeError>;

    /// Every image in the engine's store.
    ///
    /// # Errors
    /// On engine failure.
    async fn list_images(&self) -> Result<Vec<ImageInfo>, RuntimeError>;

    /// The image ids that containers (any, managed or not, running or not) were created from.
    ///
    /// # Errors
    /// On engine failure.
    async fn images_in_use(&self) -> Result<std::collections::BTreeSet<String>, RuntimeError>;

    /// Removes image `id` by taking off `names` (its tags and digest references, as listed;
    /// by id when none), never by force: one a container uses is refused, and one that has
    /// gained another name since stays.
    ///
    /// # Errors
    /// On engine failure, when a container uses it, and when it stays.
    async fn remove_image(&self, id: &str, names: &[String]) -> Result<Removal, RuntimeError>;

    /// Removes network `name` when tiny-forge made it (it carries [`LABEL_MANAGED`]) and no
    /// container is attached; true when it was removed.
    ///
    /// # Errors
    /// On engine failure.
    async fn remove_network_if_idle(&self, name: &str) -> Result<bool, RuntimeError>;

    /// Whether the engine is a Swarm manager, and its nodes.
    ///
    /// # Errors
    /// On engine failure.
    async fn swarm_info(&self) -> Result<SwarmInfo, RuntimeError> {
        Err(no_swarm("inspect", "swarm"))
    }

    /// Makes sure an attachable overlay network named `name` exists; true when it was created
    /// now.
    ///
    /// # Errors
    /// When it cannot be created, or a network of that name is not an attachable overlay.
    async fn ensure_overlay(&self, name: &str) -> Result<bool, RuntimeError> {
        Err(no_swarm("create overlay network", name))
    }

    /// The service named `name`: [`Look::Absent`](crate::look::Look::Absent) only when a
    /// manager says there is none; a locked swarm, a manager without a leader and a node that is
    /// not a manager are [`Look::Unknown`](crate::look::Look::Unknown).
    async fn service(&self, name: &str) -> EngineLook<ServiceInfo> {
        crate::look::Look::Unknown(no_swarm("inspect service", name))
    }

    /// Service `name` seen as an instance of a slot (`running` when a task of its current spec
    /// runs), with the same three answers as [`ContainerRuntime::service`].
    async fn service_instance(&self, name: &str) -> EngineLook<ContainerInfo> {
        crate::look::Look::Unknown(no_swarm("inspect service", name))
    }

    /// Every service carrying [`LABEL_MANAGED`], seen as instances.
    ///
    /// # Errors
    /// When the swarm cannot be asked (not a manager, locked, no leader): never an empty list
    /// for a swarm that could not answer.
    async fn list_managed_services(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        Err(no_swarm("list", "services"))
    }

    /// Creates a service; returns its id. `auth` goes with the request, so that every node can
    /// pull.
    ///
    /// # Errors
    /// When the engine refuses.
    async fn create_service(&self, spec: &ServiceSpec, auth: Option<&RegistryAuth>) -> Result<String, RuntimeError> {
        let _ = auth;
        Err(no_swarm("create service", &spec.name))
    }

    /// Updates service `spec.name` at `version` to `spec` (start-first: new tasks start and
    /// must be healthy before old ones stop).
    ///
    /// # Errors
    /// When the engine refuses (e.g. the version moved on).
    async fn update_service(
        &self,
        spec: &ServiceSpec,
        version: u64,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        let _ = (version, auth);
        Err(no_swarm("update service", &spec.name))
    }

    /// Puts service `name` back on the spec it had before its last update (Swarm's rollback),
    /// at the version the service has when the call is made.
    ///
    /// # Errors
    /// When the engine refuses.
    async fn rollback_service(&self, name: &str) -> Result<(), RuntimeError> {
        Err(no_swarm("roll back service", name))
    }

    /// Removes service `name` (never a container); a missing one is [`Removal::AlreadyGone`].
    ///
    /// # Errors
    /// On engine failure.
    async fn remove_service(&self, name: &str) -> Result<Removal, RuntimeError> {
        Err(no_swarm("remove service", name))
    }

    /// The tasks of service `name`, newest first, with their addresses on `network`.
    ///
    /// # Errors
    /// On engine failure.
    async fn tasks(&self, name: &str, network: &str) -> Result<Vec<TaskInfo>, RuntimeError> {
        let _ = network;
        Err(no_swarm("list tasks of", name))
    }

    /// The last `lines` log lines of task `id`.
    ///
    /// # Errors
    /// On engine failure.
    async fn task_logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError> {
        let _ = lines;
        Err(no_swarm("read logs of task", id))
    }

    /// Whether image `reference` (present in the engine) declares a `HEALTHCHECK`.
    ///
    /// # Errors
    /// On engine failure.
    async fn image_has_healthcheck(&self, reference: &str) -> Result<bool, RuntimeError> {
        Err(no_swarm("inspect image", reference))
    }

    /// A container's log lines, each with the stream it came from, as they come.
    ///
    /// # Errors
    /// On engine failure, or when the container does not exist.
    async fn logs(
        &self,
        id: &str,
        req: LogsRequest,
        on_line: &mut dyn FnMut(LogStream, &str),
    ) -> Result<(), RuntimeError>;
}

/// Every managed container and service, for display (`list`): `None` when either could not be
/// read. A node outside any swarm simply has no services. Never use this to decide a removal:
/// it is for showing states only.
pub async fn managed_for_display<R: ContainerRuntime>(runtime: &R) -> Option<Vec<ContainerInfo>> {
    let mut all = runtime.list_managed().await.ok()?;
    match runtime.list_managed_services().await {
        Ok(services) => all.extend(services),
        Err(_) => match runtime.swarm_info().await {
            Ok(info) if info.state.is_empty() || info.state == "inactive" => {}
            _ => return None,
        },
    }
    Some(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review F3: image GC compares repositories canonically, so `docker.io/library/nginx` in
    /// the config is the engine's `nginx@…`.
    #[test]
    fn an_image_s_repositories_are_canonical_whatever_the_engine_calls_them() {
        let image = ImageInfo {
            id: "sha256:1".into(),
            repo_digests: vec!["nginx@sha256:aa".into(), "127.0.0.1:5000/shop@sha256:bb".into()],
            repo_tags: vec!["acme/app:v1".into(), "<none>:<none>".into()],
            size: 1,
        };
        let repos: Vec<String> = image.repositories().into_iter().collect();
        assert_eq!(repos, ["127.0.0.1:5000/shop", "docker.io/acme/app", "docker.io/library/nginx"]);
    }
}
