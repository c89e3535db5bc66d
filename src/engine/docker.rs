//! [`ContainerRuntime`] over the Docker Engine API, through bollard. This is the one place that
//! names bollard; [`engine_error`] translates every engine answer into a [`RuntimeError`].

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    RestartPolicy as BollardRestart, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt as _;

use super::{
    ContainerInfo, ContainerRuntime, ContainerSpec, ImageInfo, LABEL_MANAGED, LogStream, LogsRequest, PullProgress,
    PulledImage, Removal, RuntimeError,
};
use super::{EngineLook, RegistryAuth, RestartPolicy};
use crate::image_ref::Reference;
use crate::look::Look;
use crate::report::one_line;

/// The Docker Engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
}

/// Translates a bollard error for `op` on `subject`.
pub(super) fn engine_error(op: &'static str, subject: &str, e: BollardError) -> RuntimeError {
    match e {
        BollardError::DockerResponseServerError { status_code, message } => {
            RuntimeError::Engine { op, subject: subject.to_owned(), status: status_code, message }
        }
        BollardError::SocketNotFoundError(path) => {
            RuntimeError::Unreachable { message: format!("no socket at {path}") }
        }
        BollardError::HyperLegacyError { .. } | BollardError::IOError { .. } | BollardError::RequestTimeoutError => {
            RuntimeError::Unreachable { message: one_line(&e) }
        }
        other => RuntimeError::Other { op, subject: subject.to_owned(), message: one_line(&other) },
    }
}

impl DockerRuntime {
    pub(super) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Over an already-made client (tests talk to a recording server).
    #[cfg(test)]
    pub(super) fn over(docker: Docker) -> Self {
        Self { docker }
    }

    /// Connects to the engine named by `DOCKER_HOST` (or the local socket) and agrees on an API
    /// version, so an unreachable engine is found before anything is recorded.
    ///
    /// # Errors
    /// [`RuntimeError::Unreachable`] when the engine does not answer.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker =
            Docker::connect_with_defaults().map_err(|e| RuntimeError::Unreachable { message: one_line(&e) })?;
        let docker = docker.negotiate_version().await.map_err(|e| match engine_error("connect to", "engine", e) {
            RuntimeError::Unreachable { message } => RuntimeError::Unreachable { message },
            other => RuntimeError::Unreachable { message: other.to_string() },
        })?;
        Ok(Self { docker })
    }

    /// Asks the registry, through the engine and with `auth`, for `image`'s manifest (a HEAD of
    /// the manifest, in effect): proves that the credentials work and the tag exists. Returns the
    /// digest.
    ///
    /// # Errors
    /// [`RuntimeError::Pull`] with what the registry said.
    pub async fn verify_image(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<String, RuntimeError> {
        let credentials = credentials(auth);
        match self.docker.inspect_registry_image(image, credentials).await {
            Ok(d) => Ok(d.descriptor.digest.unwrap_or_default()),
            Err(BollardError::DockerResponseServerError { message, .. }) => {
                Err(RuntimeError::Pull { image: image.to_owned(), message })
            }
            Err(e) => Err(engine_error("inspect registry image", image, e)),
        }
    }

    /// One pull of `repo:tag` through the engine, its layers reported to `progress`. Returns
    /// the digest the registry served, from the stream's closing `Digest: sha256:…` status,
    /// when the engine says it.
    async fn pull_stream(
        &self,
        repo: &str,
        tag: &str,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<Option<String>, RuntimeError> {
        let options = CreateImageOptionsBuilder::default().from_image(repo).tag(tag).build();
        let mut stream = self.docker.create_image(Some(options), None, credentials(auth));
        let mut served = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(d) = info.status.as_deref().and_then(|s| s.strip_prefix("Digest: ")) {
                        served = Some(d.trim().to_owned());
                    }
                    if let (Some(layer), Some(status)) = (info.id, info.status) {
                        let (current, total) =
                            info.progress_detail.map_or((None, None), |p| (to_u64(p.current), to_u64(p.total)));
                        progress(PullProgress { layer, status, current, total });
                    }
                }
                Err(BollardError::DockerStreamError { error }) => {
                    return Err(RuntimeError::Pull { image: image.to_owned(), message: error });
                }
                Err(BollardError::DockerResponseServerError { message, .. }) => {
                    return Err(RuntimeError::Pull { image: image.to_owned(), message });
                }
                Err(e) => return Err(engine_error("pull", image, e)),
            }
        }
        Ok(served)
    }

    /// [`ContainerRuntime::wait_exit`] by looking at the container every 50 ms: a restart
    /// between two looks loses the code (-1).
    async fn poll_exit(&self, id: &str) -> Result<i64, RuntimeError> {
        let mut first_restarts = None;
        loop {
            let info = match self.inspect(id, "").await {
                Look::Found(info) => info,
                Look::Absent => return Err(removed_while_waiting(id)),
                Look::Unknown(e) => return Err(e),
            };
            if let Some(code) = info.exit_code {
                return Ok(code);
            }
            if info.restarts > *first_restarts.get_or_insert(info.restarts) {
                return Ok(-1);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The engine's version string.
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn version(&self) -> Result<String, RuntimeError> {
        let v = self.docker.version().await.map_err(|e| engine_error("read version of", "engine", e))?;
        Ok(v.version.unwrap_or_default())
    }
}

/// `auth` as the engine takes it (the `X-Registry-Auth` of a pull, a manifest lookup, a service).
/// An identity token (user name `<token>`, as `config.json` and credential helpers give it,
/// e.g. after `az acr login`) goes as `identitytoken`: the daemon, unlike the Docker CLI, does
/// not translate `<token>` and would log in as that literal user.
pub(super) fn credentials(auth: Option<&RegistryAuth>) -> Option<DockerCredentials> {
    auth.map(|a| {
        if a.username == super::IDENTITY_TOKEN_USER {
            DockerCredentials { identitytoken: Some(a.password.expose().to_owned()), ..DockerCredentials::default() }
        } else {
            DockerCredentials {
                username: Some(a.username.clone()),
                password: Some(a.password.expose().to_owned()),
                ..DockerCredentials::default()
            }
        }
    })
}

/// The engine's log options for `req` (stdout and stderr both).
pub(super) fn logs_options(req: LogsRequest) -> bollard::query_parameters::LogsOptions {
    let mut options = LogsOptionsBuilder::default().stdout(true).stderr(true).follow(req.follow);
    if let Some(since) = req.since {
        options = options.since(i32::try_from(since).unwrap_or(i32::MAX));
    }
    if let Some(tail) = req.tail {
        options = options.tail(&tail.to_string());
    }
    options.build()
}

/// Hands each line of a log stream (a container's, a service's or a task's) to `on_line`, with
/// the stream it came from.
pub(super) async fn forward_lines(
    stream: impl futures_util::Stream<Item = Result<LogOutput, BollardError>>,
    on_line: &mut dyn FnMut(LogStream, &str),
    subject: &str,
) -> Result<(), RuntimeError> {
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        let (which, message) = match item {
            Ok(LogOutput::StdErr { message }) => (LogStream::Stderr, message),
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => (LogStream::Stdout, message),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => return Err(engine_error("read logs of", subject, e)),
        };
        for line in String::from_utf8_lossy(&message).lines() {
            on_line(which, line);
        }
    }
    Ok(())
}

/// The last `lines` lines of a log stream, stdout and stderr as they came.
pub(super) async fn tail_lines(
    stream: impl futures_util::Stream<Item = Result<LogOutput, BollardError>>,
    lines: usize,
    subject: &str,
) -> Result<Vec<String>, RuntimeError> {
    let mut all = Vec::new();
    forward_lines(stream, &mut |_, l| all.push(l.to_owned()), subject).await?;
    Ok(all.split_off(all.len().saturating_sub(lines)))
}

/// The code a container exited with, when it is not running: stopped, or being restarted by
/// its restart policy (this engine keeps `Running` true while restarting).
fn exit_code(state: Option<&bollard::models::ContainerState>) -> Option<i64> {
    let exited = !state.and_then(|s| s.running).unwrap_or(false) || state.and_then(|s| s.restarting).unwrap_or(false);
    if exited { state.and_then(|s| s.exit_code) } else { None }
}

/// What `wait_exit` answers for a container that is gone before it exited.
fn removed_while_waiting(id: &str) -> RuntimeError {
    RuntimeError::Other { op: "wait for container", subject: id.to_owned(), message: "it was removed".into() }
}

/// How long `wait_exit` waits for the replay of a restarted container's first `die`.
const REPLAY_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// How often a pull is tried when the image is gone again before it can be looked at.
const PULL_ATTEMPTS: u32 = 3;

/// Splits `repo:tag` or `repo@digest` into the repository and the tag or digest to pull
/// (`latest` when neither is given).
fn split_reference(image: &str) -> Result<(Reference, String), RuntimeError> {
    let r =
        Reference::parse(image).map_err(|e| RuntimeError::Pull { image: image.to_owned(), message: e.to_string() })?;
    let what = r.digest.clone().or_else(|| r.tag.clone()).unwrap_or_else(|| "latest".to_owned());
    Ok((r, what))
}

/// The `repo@digest` among `repo_digests` that is `wanted`'s repository (in any spelling: the
/// engine reports familiar names) and, when the registry said which, that digest.
fn repo_digest_of(repo_digests: &[String], wanted: &Reference, served: Option<&str>) -> Option<String> {
    repo_digests
        .iter()
        .filter(|d| Reference::parse(d).is_ok_and(|r| r.repo.canonical() == wanted.repo.canonical()))
        .find(|d| served.is_none_or(|g| d.ends_with(&format!("@{g}"))))
        .cloned()
}

fn restart(p: RestartPolicy) -> BollardRestart {
    let name = match p {
        RestartPolicy::No => RestartPolicyNameEnum::NO,
        RestartPolicy::Always => RestartPolicyNameEnum::ALWAYS,
        RestartPolicy::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
        RestartPolicy::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
    };
    BollardRestart { name: Some(name), maximum_retry_count: None }
}

fn to_u64(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

impl ContainerRuntime for DockerRuntime {
    async fn registry_auth(
        &self,
        image: &str,
        configured: Option<&RegistryAuth>,
    ) -> Result<Option<(String, RegistryAuth)>, String> {
        super::auth::for_image(image, configured, super::auth::HELPER_TIMEOUT).await
    }

    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PulledImage, RuntimeError> {
        let (wanted, what) = split_reference(image)?;
        // A digest names exactly one image: when the engine has it, there is nothing to pull
        // (a rollback to a kept digest works with the registry down).
        if let Some(digest) = &wanted.digest
            && let Ok(present) = self.docker.inspect_image(image).await
            && let Some(reference) = repo_digest_of(&present.repo_digests.unwrap_or_default(), &wanted, Some(digest))
        {
            return Ok(PulledImage { digest: digest.clone(), reference });
        }
        // Another run's image cleanup (a prune, another state file's retire, a host's
        // `docker image prune -a`) can take the image between the pull and the look at it: pull
        // again, a few times.
        let mut attempt = 0;
        let (inspect, served) = loop {
            let served = self.pull_stream(wanted.repo.as_str(), &what, image, auth, progress).await?;
            attempt += 1;
            match self.docker.inspect_image(image).await {
                Ok(inspect) => break (inspect, served),
                Err(BollardError::DockerResponseServerError { status_code: 404, .. }) if attempt < PULL_ATTEMPTS => {}
                Err(e) => return Err(engine_error("inspect image", image, e)),
            }
        };
        // The digest the tag resolved to in this pull (the stream says it); an image known by
        // several digests (a rebuild with new attestations) is then recorded by the right one.
        let served = served.or_else(|| wanted.digest.clone());
        let reference = repo_digest_of(&inspect.repo_digests.unwrap_or_default(), &wanted, served.as_deref())
            .ok_or_else(|| RuntimeError::Pull {
                image: image.to_owned(),
                message:
                    "the engine reports no registry digest for this image (was it built locally and never pushed?)"
                        .into(),
            })?;
        let digest = reference.split_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
        Ok(PulledImage { digest, reference })
    }

    async fn ensure_network(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_network(name, None).await {
            Ok(n) if n.config_only == Some(true) => Err(RuntimeError::Other {
                op: "use network",
                subject: name.to_owned(),
                message: "it is a configuration-only network, which containers cannot join; set settings.network to another network".into(),
            }),
            Ok(_) => Ok(false),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {
                let req = NetworkCreateRequest {
                    name: name.to_owned(),
                    driver: Some("bridge".into()),
                    attachable: Some(true),
                    labels: Some(HashMap::from([(LABEL_MANAGED.to_owned(), "true".to_owned())])),
                    ..NetworkCreateRequest::default()
                };
                match self.docker.create_network(req).await {
                    Ok(_) => Ok(true),
                    // Another deploy created it between our inspect and create.
                    Err(BollardError::DockerResponseServerError { status_code: 409, .. }) => Ok(false),
                    Err(e) => Err(engine_error("create network", name, e)),
                }
            }
            Err(e) => Err(engine_error("inspect network", name, e)),
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            cmd: spec.command.clone(),
            exposed_ports: Some(vec![format!("{}/tcp", spec.port)]),
            host_config: Some(HostConfig {
                restart_policy: Some(restart(spec.restart)),
                memory: spec.memory,
                nano_cpus: spec.nano_cpus,
                binds: (!spec.volumes.is_empty()).then(|| spec.volumes.clone()),
                network_mode: Some(spec.network.clone()),
                ..HostConfig::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), EndpointSettings::default())])),
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        let created = self.docker.create_container(Some(options), body).await.map_err(|e| match e {
            BollardError::DockerResponseServerError { status_code: 409, .. } => {
                RuntimeError::NameTaken { name: spec.name.clone() }
            }
            BollardError::DockerResponseServerError { status_code: 404, ref message }
                if message.contains("No such image") =>
            {
                RuntimeError::MissingImage { name: spec.name.clone(), image: spec.image.clone() }
            }
            e => engine_error("create container", &spec.name, e),
        })?;
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker.start_container(id, None).await.map_err(|e| engine_error("start container", id, e))
    }

    async fn inspect(&self, id: &str, network: &str) -> EngineLook<ContainerInfo> {
        let c = match self.docker.inspect_container(id, None).await {
            Ok(c) => c,
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Look::Absent,
            Err(e) => return Look::Unknown(engine_error("inspect container", id, e)),
        };
        let state = c.state.as_ref();
        let ip = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| n.get(network))
            .and_then(|e| e.ip_address.as_deref())
            .and_then(|ip| ip.parse().ok());
        let status = state.and_then(|s| s.status).map(|s| s.to_string()).unwrap_or_default();
        Look::Found(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c.name.unwrap_or_default().trim_start_matches('/').to_owned(),
            state: status,
            exit_code: exit_code(state),
            restarts: c.restart_count.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            ip,
            labels: c.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default().into_iter().collect(),
            image: c.config.and_then(|c| c.image).unwrap_or_default(),
            is_service: false,
            created: c
                .created
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok()),
        })
    }

    async fn wait_exit(&self, id: &str) -> Result<i64, RuntimeError> {
        // Stopped or restarting: its state has the code. Running: from the engine's `die`
        // events, replayed from the container's creation, since a restart policy may already
        // have undone an exit and its state lost the code (the wait API too); the first `die`
        // keeps it.
        let c = match self.docker.inspect_container(id, None).await {
            Ok(c) => c,
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {
                return Err(removed_while_waiting(id));
            }
            Err(e) => return Err(engine_error("inspect container", id, e)),
        };
        if let Some(code) = exit_code(c.state.as_ref()) {
            return Ok(code);
        }
        let full_id = c.id.clone().unwrap_or_else(|| id.to_owned());
        let filters = HashMap::from([
            ("container".to_owned(), vec![full_id]),
            ("event".to_owned(), vec!["die".to_owned(), "destroy".to_owned()]),
        ]);
        let mut options = EventsOptionsBuilder::default().filters(&filters);
        // In Unix seconds: older engines take no RFC 3339 here.
        let created = c.created.as_deref().and_then(|t| humantime::parse_rfc3339_weak(t).ok());
        if let Some(secs) = created.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
            options = options.since(&secs.as_secs().to_string());
        }
        let events = self.docker.events(Some(options.build()));
        let first_exit = async {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                // No events (a socket proxy may refuse them): watch its state instead.
                let Ok(event) = event else { return None };
                match event.action.as_deref() {
                    Some("die") => {
                        let code = event
                            .actor
                            .and_then(|a| a.attributes)
                            .and_then(|a| a.get("exitCode").and_then(|c| c.parse().ok()));
                        // Every engine we know names the code; without it, it is unknown.
                        return Some(Ok(code.unwrap_or(-1)));
                    }
                    Some("destroy") => return Some(Err(removed_while_waiting(id))),
                    _ => {}
                }
            }
            None
        };
        let restarted = c.restart_count.is_some_and(|n| n > 0);
        if restarted {
            // It exited already: its `die` is in the replay, unless the engine's event buffer
            // lost it on a busy host; then the code is unknown.
            return match tokio::time::timeout(REPLAY_GRACE, first_exit).await {
                Ok(Some(answer)) => answer,
                Ok(None) => self.poll_exit(id).await,
                Err(_) => Ok(-1),
            };
        }
        match first_exit.await {
            Some(answer) => answer,
            // The stream ended or failed (a socket proxy's idle timeout, events refused).
            None => self.poll_exit(id).await,
        }
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError> {
        let req = LogsRequest { tail: Some(lines), ..LogsRequest::default() };
        tail_lines(self.docker.logs(id, Some(logs_options(req))), lines, id).await
    }

    async fn remove(&self, id: &str) -> Result<Removal, RuntimeError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(Removal::Removed),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(Removal::AlreadyGone),
            // "removal already in progress": another remover owns it; it will be gone.
            Err(BollardError::DockerResponseServerError { status_code: 409, message })
                if message.contains("already in progress") =>
            {
                Ok(Removal::Removed)
            }
            Err(e) => Err(engine_error("remove container", id, e)),
        }
    }

    async fn list_managed(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list =
            self.docker.list_containers(Some(options)).await.map_err(|e| engine_error("list", "containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                exit_code: None,
                restarts: 0,
                ip: None,
                labels: c.labels.unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
                image: c.image.unwrap_or_default(),
                is_service: false,
                created: c.created,
            })
            .collect())
    }

    async fn resolve_digest(&self, image: &str, auth: Option<&RegistryAuth>) -> Result<String, RuntimeError> {
        self.verify_image(image, auth).await
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        let options = ListImagesOptionsBuilder::default().all(false).build();
        let list = self.docker.list_images(Some(options)).await.map_err(|e| engine_error("list", "images", e))?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                repo_digests: i.repo_digests,
                repo_tags: i.repo_tags,
                size: u64::try_from(i.size).unwrap_or(0),
            })
            .collect())
    }

    async fn images_in_use(&self) -> Result<std::collections::BTreeSet<String>, RuntimeError> {
        let options = ListContainersOptionsBuilder::default().all(true).build();
        let list =
            self.docker.list_containers(Some(options)).await.map_err(|e| engine_error("list", "containers", e))?;
        Ok(list.into_iter().filter_map(|c| c.image_id).collect())
    }

    async fn remove_image(&self, id: &str, names: &[String]) -> Result<Removal, RuntimeError> {
        let remove = |name: String| async move {
            let options = RemoveImageOptionsBuilder::default().force(false).noprune(false).build();
            match self.docker.remove_image(&name, Some(options), None).await {
                Ok(_) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
                Err(e) => Err(engine_error("remove image", &name, e)),
            }
        };
        // Only the names it was chosen by are taken off (never by force, which would also take
        // an image a container uses); the last one takes the image with it. A name someone gave
        // it since keeps it.
        if names.is_empty() {
            remove(id.to_owned()).await?;
        }
        for name in names {
            remove(name.clone()).await?;
        }
        match self.docker.inspect_image(id).await {
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(Removal::Removed),
            Ok(_) => Err(RuntimeError::Other {
                op: "remove image",
                subject: id.to_owned(),
                message: "it has other names now; kept".into(),
            }),
            Err(e) => Err(engine_error("inspect image", id, e)),
        }
    }

    async fn remove_network_if_idle(&self, name: &str) -> Result<bool, RuntimeError> {
        let n = match self.docker.inspect_network(name, None).await {
            Ok(n) => n,
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(false),
            Err(e) => return Err(engine_error("inspect network", name, e)),
        };
        let ours = n.labels.as_ref().and_then(|l| l.get(LABEL_MANAGED)).is_some_and(|v| v == "true");
        if !ours || n.containers.as_ref().is_some_and(|c| !c.is_empty()) {
            return Ok(false);
        }
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(true),
            // A container joined it meanwhile, or it is already gone: leave it.
            Err(BollardError::DockerResponseServerError { status_code: 403 | 404 | 409, .. }) => Ok(false),
            Err(e) => Err(engine_error("remove network", name, e)),
        }
    }

    async fn swarm_info(&self) -> Result<super::SwarmInfo, RuntimeError> {
        self.swarm_info_().await
    }

    async fn ensure_overlay(&self, name: &str) -> Result<bool, RuntimeError> {
        self.ensure_overlay_(name).await
    }

    async fn service(&self, name: &str) -> EngineLook<super::ServiceInfo> {
        self.service_(name).await
    }

    async fn service_instance(&self, name: &str) -> EngineLook<ContainerInfo> {
        self.service_as_container(name).await
    }

    async fn list_managed_services(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.managed_services().await
    }

    async fn create_service(
        &self,
        spec: &super::ServiceSpec,
        auth: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        self.create_service_(spec, auth).await
    }

    async fn update_service(
        &self,
        spec: &super::ServiceSpec,
        version: u64,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        self.update_service_(spec, version, auth).await
    }

    async fn rollback_service(&self, name: &str) -> Result<(), RuntimeError> {
        self.rollback_service_(name).await
    }

    async fn remove_service(&self, name: &str) -> Result<Removal, RuntimeError> {
        self.remove_service_(name).await
    }

    async fn tasks(&self, name: &str, network: &str) -> Result<Vec<super::TaskInfo>, RuntimeError> {
        self.tasks_(name, network).await
    }

    async fn task_logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError> {
        self.task_logs_tail_(id, lines).await
    }

    async fn image_has_healthcheck(&self, reference: &str) -> Result<bool, RuntimeError> {
        self.image_has_healthcheck_(reference).await
    }

    async fn logs(
        &self,
        id: &str,
        req: LogsRequest,
        on_line: &mut dyn FnMut(LogStream, &str),
    ) -> Result<(), RuntimeError> {
        // Not a container: a slot of a swarm stage is a service of that name.
        if let Err(BollardError::DockerResponseServerError { status_code: 404, .. }) =
            self.docker.inspect_container(id, None).await
            && let Look::Found(_) = self.service_as_container(id).await
        {
            return self.service_logs_(id, req, on_line).await;
        }
        forward_lines(self.docker.logs(id, Some(logs_options(req))), on_line, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_reference_splits_without_panicking(r in "(?s).{0,80}") {
            let _ = split_reference(&r);
        }
    }

    #[test]
    fn the_repo_digest_is_found_in_any_spelling_and_by_the_digest_served() {
        let digests = vec!["nginx@sha256:aaa".to_owned(), "nginx@sha256:bbb".to_owned(), "other@sha256:ccc".to_owned()];
        let wanted = Reference::parse("docker.io/library/nginx:1.27").unwrap();
        assert_eq!(repo_digest_of(&digests, &wanted, None).as_deref(), Some("nginx@sha256:aaa"));
        assert_eq!(repo_digest_of(&digests, &wanted, Some("sha256:bbb")).as_deref(), Some("nginx@sha256:bbb"));
        assert_eq!(repo_digest_of(&digests, &wanted, Some("sha256:ccc")), None);
        let acme = Reference::parse("docker.io/acme/shop:v1").unwrap();
        assert_eq!(
            repo_digest_of(&["acme/shop@sha256:d".to_owned()], &acme, None).as_deref(),
            Some("acme/shop@sha256:d")
        );
    }

    #[tokio::test]
    async fn an_image_removed_between_its_pull_and_the_look_at_it_is_pulled_again() {
        let inspected = r#"{"Id":"sha256:1","RepoDigests":["127.0.0.1:5000/shop@sha256:abc"]}"#;
        let (addr, server) = super::super::test_server::scripted_server(vec![
            (200, r#"{"status":"Pulling from shop","id":"v1"}"#),
            (404, r#"{"message":"No such image: 127.0.0.1:5000/shop:v1"}"#),
            (200, r#"{"status":"Pulling from shop","id":"v1"}"#),
            (200, inspected),
        ]);
        let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
        let pulled = DockerRuntime::over(docker).pull("127.0.0.1:5000/shop:v1", None, &mut |_| {}).await.unwrap();
        assert_eq!(pulled.reference, "127.0.0.1:5000/shop@sha256:abc");
        let heads = server.join().unwrap();
        let pulls = heads.iter().filter(|h| h.starts_with("POST ") && h.contains("/images/create?")).count();
        assert_eq!(pulls, 2, "{heads:#?}");
    }

    /// Review F3: the engine reports `RepoDigests` in the familiar form, whatever was pulled.
    #[tokio::test]
    async fn a_docker_hub_image_written_in_full_is_found_by_its_familiar_repo_digest() {
        for image in ["docker.io/acme/shop:v1", "acme/shop:v1", "index.docker.io/acme/shop:v1"] {
            let inspected = r#"{"Id":"sha256:1","RepoDigests":["acme/shop@sha256:abc"]}"#;
            let (addr, server) = super::super::test_server::scripted_server(vec![
                (200, r#"{"status":"Digest: sha256:abc"}"#),
                (200, inspected),
            ]);
            let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
            let pulled = DockerRuntime::over(docker).pull(image, None, &mut |_| {}).await.unwrap();
            assert_eq!((pulled.digest.as_str(), pulled.reference.as_str()), ("sha256:abc", "acme/shop@sha256:abc"));
            server.join().unwrap();
        }
    }

    /// Review F16: one image known by several digests (a rebuild with new attestations) is
    /// recorded by the digest the tag resolved to in this pull, not the first in the list.
    #[tokio::test]
    async fn the_pull_records_the_digest_the_registry_served() {
        let inspected =
            r#"{"Id":"sha256:1","RepoDigests":["127.0.0.1:5000/shop@sha256:aaa","127.0.0.1:5000/shop@sha256:bbb"]}"#;
        let (addr, server) = super::super::test_server::scripted_server(vec![
            (200, "{\"status\":\"Pulling from shop\",\"id\":\"v1\"}\n{\"status\":\"Digest: sha256:bbb\"}"),
            (200, inspected),
        ]);
        let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
        let pulled = DockerRuntime::over(docker).pull("127.0.0.1:5000/shop:v1", None, &mut |_| {}).await.unwrap();
        assert_eq!(pulled.digest, "sha256:bbb");
        assert_eq!(pulled.reference, "127.0.0.1:5000/shop@sha256:bbb");
        server.join().unwrap();
    }

    #[tokio::test]
    async fn an_image_that_keeps_vanishing_fails_the_pull_after_three_tries() {
        let gone = r#"{"message":"No such image: 127.0.0.1:5000/shop:v1"}"#;
        let pulling = r#"{"status":"Pulling from shop","id":"v1"}"#;
        let (addr, server) = super::super::test_server::scripted_server(vec![
            (200, pulling),
            (404, gone),
            (200, pulling),
            (404, gone),
            (200, pulling),
            (404, gone),
        ]);
        let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
        let err = DockerRuntime::over(docker).pull("127.0.0.1:5000/shop:v1", None, &mut |_| {}).await.unwrap_err();
        assert!(err.to_string().contains("No such image"), "{err}");
        assert_eq!(server.join().unwrap().len(), 6);
    }

    const RUNNING: &str = r#"{"Id":"abc","Created":"2026-11-27T18:05:58.123456789Z","State":{"Status":"running","Running":true,"Restarting":false,"ExitCode":0},"RestartCount":1}"#;

    #[tokio::test]
    async fn the_exit_code_of_a_running_container_comes_from_its_first_die_event_since_its_creation() {
        let die = r#"{"Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"5"}},"time":1}"#;
        let (addr, server) = super::super::test_server::scripted_server(vec![(200, RUNNING), (200, die)]);
        let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
        assert_eq!(DockerRuntime::over(docker).wait_exit("abc").await.unwrap(), 5);
        let heads = server.join().unwrap();
        let events = heads[1].lines().next().unwrap_or_default();
        assert!(events.contains("/events?") && events.contains("since=1795802758"), "{events}");
    }

    #[tokio::test]
    async fn without_events_the_exit_is_watched_in_the_container_s_state() {
        let exited = r#"{"Id":"abc","State":{"Status":"exited","Running":false,"Restarting":false,"ExitCode":7},"RestartCount":1}"#;
        let (addr, server) = super::super::test_server::scripted_server(vec![
            (200, RUNNING),
            (403, r#"{"message":"events are not allowed"}"#),
            (200, RUNNING),
            (200, exited),
        ]);
        let docker = bollard::Docker::connect_with_http(&addr, 5, bollard::API_DEFAULT_VERSION).unwrap();
        assert_eq!(DockerRuntime::over(docker).wait_exit("abc").await.unwrap(), 7);
        assert_eq!(server.join().unwrap().len(), 4);
    }

    #[test]
    fn an_identity_token_goes_as_identitytoken_and_a_password_as_basic_credentials() {
        let secret = crate::secret::Secret::new;
        let token = RegistryAuth { username: "<token>".into(), password: secret("eyJ0b2tlbiI".into()) };
        let sent = credentials(Some(&token)).unwrap();
        assert_eq!(sent.identitytoken.as_deref(), Some("eyJ0b2tlbiI"));
        assert_eq!((sent.username, sent.password), (None, None), "never the literal <token> user");
        let basic = RegistryAuth { username: "ci".into(), password: secret("pw".into()) };
        let sent = credentials(Some(&basic)).unwrap();
        assert_eq!(
            (sent.username.as_deref(), sent.password.as_deref(), sent.identitytoken),
            (Some("ci"), Some("pw"), None)
        );
    }

    #[test]
    fn references_split_into_repository_and_tag_or_digest() {
        let split = |s: &str| split_reference(s).map(|(r, w)| (r.repo.as_str().to_owned(), w)).unwrap();
        assert_eq!(split("127.0.0.1:5000/shop:v1"), ("127.0.0.1:5000/shop".into(), "v1".into()));
        assert_eq!(split("127.0.0.1:5000/shop"), ("127.0.0.1:5000/shop".into(), "latest".into()));
        assert_eq!(split("shop@sha256:abc"), ("shop".into(), "sha256:abc".into()));
    }
}
