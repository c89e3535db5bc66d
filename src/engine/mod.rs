//! The engine seam: what the deploy needs from a container engine, in our own words, split by
//! resource ([`Images`], [`Networks`], [`Containers`], [`Services`]; [`ContainerRuntime`] is all
//! four). `types` holds the vocabulary, `service` the words for Swarm services, `auth` the
//! registry credentials; [`DockerRuntime`] (in `docker/`, one file per resource) implements it
//! over the Docker Engine API, the fakes of `crate::testing` in memory. [`AnyEngine`] is the
//! engine the CLI and the server hold, one variant per adapter. Every read that can
//! answer "not there" answers a [`Look`](crate::look::Look).

mod any;
pub mod auth;
mod docker;
pub mod service;
mod types;

pub use any::{AnyEngine, Engine, EngineFile, EngineKind, StageFacts};
pub use docker::DockerRuntime;
pub use service::{EndpointMode, ServiceInfo, ServiceSpec, SwarmInfo, SwarmSettings, TaskInfo, UpdateState};
pub use types::{
    ContainerInfo, ContainerSpec, IDENTITY_TOKEN_USER, ImageInfo, LogStream, LogsRequest, PullProgress, PulledImage,
    RegistryAuth, Removal, RestartPolicy, RuntimeError, Vitals,
};

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

/// The engine seam, split by resource like the Engine API itself (bollard puts each in a file of
/// its own): [`Images`], [`Networks`], [`Containers`] and [`Services`]. An engine is all four
/// ([`ContainerRuntime`]). Each method is one engine operation in our words; the exceptions are
/// said on the method: [`Images::pull`] pulls again when another run's image cleanup takes the
/// image before it can be looked at, [`Containers::wait_exit`] reads events with a polling
/// fallback, and [`Containers::logs`] reads a swarm slot's service logs under its name.
///
/// Every read that can answer "not there" answers a [`Look`](crate::look::Look): a failed look
/// is never an absence.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub trait Images {
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

    /// Pulls `image` (`repo:tag` or `repo@digest`) and resolves the registry digest it pulled.
    /// Progress is reported per layer. Pulls again, a few times, when the image is gone before
    /// it can be looked at (another run's cleanup).
    ///
    /// # Errors
    /// [`RuntimeError::Pull`] when the registry refuses or lacks it.
    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PulledImage, RuntimeError>;

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

    /// Which of the image ids `among` containers (any, managed or not, running or not) were
    /// created from. Asked about a few images, so that the answer does not grow with the
    /// number of containers the engine runs.
    ///
    /// # Errors
    /// On engine failure.
    async fn images_in_use(
        &self,
        among: &std::collections::BTreeSet<String>,
    ) -> Result<std::collections::BTreeSet<String>, RuntimeError>;

    /// Removes image `id` by taking off `names` (its tags and digest references, as listed;
    /// by id when none), never by force: one a container uses is refused, and one that has
    /// gained another name since stays.
    ///
    /// # Errors
    /// On engine failure, when a container uses it, and when it stays.
    async fn remove_image(&self, id: &str, names: &[String]) -> Result<Removal, RuntimeError>;

    /// Whether image `reference` (present in the engine) declares a `HEALTHCHECK`.
    ///
    /// # Errors
    /// On engine failure.
    async fn image_has_healthcheck(&self, reference: &str) -> Result<bool, RuntimeError>;
}

/// The networks a stage's instances join.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub trait Networks {
    /// Makes sure a bridge network named `name` exists; true when it was created now.
    ///
    /// # Errors
    /// When it cannot be inspected or created.
    async fn ensure_network(&self, name: &str) -> Result<bool, RuntimeError>;

    /// Makes sure an attachable overlay network named `name` exists; true when it was created
    /// now.
    ///
    /// # Errors
    /// When it cannot be created, or a network of that name is not an attachable overlay.
    async fn ensure_overlay(&self, name: &str) -> Result<bool, RuntimeError>;

    /// Removes network `name` when tiny-forge made it (it carries [`LABEL_MANAGED`]) and no
    /// container is attached; true when it was removed.
    ///
    /// # Errors
    /// On engine failure.
    async fn remove_network_if_idle(&self, name: &str) -> Result<bool, RuntimeError>;
}

/// Containers: a slot's instance on the Docker engine, and every one-off.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub trait Containers {
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

    /// How the container is doing: running, its last exit code, its restart count, and whether
    /// the kernel killed it for lack of memory. [`Look::Absent`](crate::look::Look::Absent) only
    /// when the engine says there is no such container.
    async fn vitals(&self, id: &str) -> EngineLook<Vitals>;

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

    /// A container's (or a swarm slot's service's) log lines, each with the stream it came
    /// from, as they come.
    ///
    /// # Errors
    /// On engine failure, or when the container does not exist.
    async fn logs(
        &self,
        id: &str,
        req: LogsRequest,
        on_line: &mut dyn FnMut(LogStream, &str),
    ) -> Result<(), RuntimeError>;

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

    /// The managed containers of one slot (those whose [`LABEL_SLOT`] is `slot`): what
    /// [`list_managed`](Self::list_managed) shows of it. An engine that can filter by label
    /// asks for only these, so the answer does not grow with the number of other slots.
    ///
    /// # Errors
    /// As [`list_managed`](Self::list_managed).
    async fn list_managed_of_slot(&self, slot: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let all = self.list_managed().await?;
        Ok(all.into_iter().filter(|c| c.labels.get(LABEL_SLOT).is_some_and(|s| s == slot)).collect())
    }

    /// Calls `on_change` with the id of each managed container that changed (created, started,
    /// died, renamed, destroyed, …) since `since`, as the engine's event stream reports it,
    /// until that stream ends. What changed is not said: the caller looks again. For a view
    /// kept current without a list per request (`serve`'s `list` and web page).
    ///
    /// # Errors
    /// When the engine streams no events, or the stream fails: the caller's view is then not
    /// current any more.
    async fn watch_managed(
        &self,
        _since: std::time::SystemTime,
        _on_change: &mut dyn FnMut(&str),
    ) -> Result<(), RuntimeError> {
        Err(RuntimeError::Other {
            op: "watch",
            subject: "containers".into(),
            message: "this engine streams no events".into(),
        })
    }
}

/// Swarm services: a slot's instance on the Swarm engine.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub trait Services {
    /// Whether the engine is a Swarm manager, and its nodes.
    ///
    /// # Errors
    /// On engine failure.
    async fn swarm_info(&self) -> Result<SwarmInfo, RuntimeError>;

    /// The service named `name`: [`Look::Absent`](crate::look::Look::Absent) only when a
    /// manager says there is none; a locked swarm, a manager without a leader and a node that is
    /// not a manager are [`Look::Unknown`](crate::look::Look::Unknown).
    async fn service(&self, name: &str) -> EngineLook<ServiceInfo>;

    /// Service `name` seen as an instance of a slot (`running` when a task of its current spec
    /// runs), with the same three answers as [`Services::service`].
    async fn service_instance(&self, name: &str) -> EngineLook<ContainerInfo>;

    /// Every service carrying [`LABEL_MANAGED`], seen as instances.
    ///
    /// # Errors
    /// When the swarm cannot be asked (not a manager, locked, no leader): never an empty list
    /// for a swarm that could not answer.
    async fn list_managed_services(&self) -> Result<Vec<ContainerInfo>, RuntimeError>;

    /// Creates a service; returns its id. `auth` goes with the request, so that every node can
    /// pull.
    ///
    /// # Errors
    /// When the engine refuses.
    async fn create_service(&self, spec: &ServiceSpec, auth: Option<&RegistryAuth>) -> Result<String, RuntimeError>;

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
    ) -> Result<(), RuntimeError>;

    /// Puts service `name` back on the spec it had before its last update (Swarm's rollback),
    /// at the version the service has when the call is made.
    ///
    /// # Errors
    /// When the engine refuses.
    async fn rollback_service(&self, name: &str) -> Result<(), RuntimeError>;

    /// Removes service `name` (never a container); a missing one is [`Removal::AlreadyGone`].
    ///
    /// # Errors
    /// On engine failure.
    async fn remove_service(&self, name: &str) -> Result<Removal, RuntimeError>;

    /// The tasks of service `name`, newest first, with their addresses on `network`.
    ///
    /// # Errors
    /// On engine failure.
    async fn tasks(&self, name: &str, network: &str) -> Result<Vec<TaskInfo>, RuntimeError>;

    /// The last `lines` log lines of task `id`.
    ///
    /// # Errors
    /// On engine failure.
    async fn task_logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError>;
}

/// A container engine: images, networks, containers and services. Implemented for everything
/// that is all four.
pub trait ContainerRuntime: Images + Networks + Containers + Services {}

impl<T: Images + Networks + Containers + Services> ContainerRuntime for T {}

/// Every managed container and service, for display (`list`): `None` when either could not be
/// read. A node outside any swarm simply has no services. Never use this to decide a removal:
/// it is for showing states only.
pub async fn managed_for_display<R: Containers + Services>(runtime: &R) -> Option<Vec<ContainerInfo>> {
    let containers = runtime.list_managed().await.ok()?;
    with_services(runtime, containers).await
}

/// `containers` (the managed containers, from a list or a view kept current) with the managed
/// services beside them, as [`managed_for_display`] answers; `None` when the services could
/// not be listed on an engine in a swarm.
pub async fn with_services<R: Services>(runtime: &R, mut all: Vec<ContainerInfo>) -> Option<Vec<ContainerInfo>> {
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
