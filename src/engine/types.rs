//! The engine's vocabulary: what a container is made of and what the engine says about one,
//! images, logs, and the errors of an engine call. No adapter type appears here.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::secret::Secret;

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
    /// Its address on each network it is attached to, by network name (from a list, where no
    /// network is asked about).
    pub addresses: BTreeMap<String, IpAddr>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Image digest reference it was created from.
    pub image: String,
    /// It is a swarm slot's service, seen as an instance (not a container).
    pub is_service: bool,
    /// When it was created (Unix seconds), when the engine says.
    pub created: Option<i64>,
}

/// How a running instance is doing: what the verify step watches after cut-over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vitals {
    /// It runs (a container being restarted by its policy counts as not running).
    pub running: bool,
    /// The code of its last exit, when it is not running.
    pub exit_code: Option<i64>,
    /// How many times its restart policy has restarted it (a service: how many of its current
    /// spec's tasks ended).
    pub restarts: u32,
    /// The kernel killed it for lack of memory (its last exit).
    pub oom_killed: bool,
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
