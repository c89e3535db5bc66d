//! The file shape: mirrors the TOML one to one. Every struct rejects unknown keys; closed sets of
//! words (`kind`, `forward`, `probe_address`, `restart`, `format`, `slot`) are enums, so a misspelt one
//! is reported with its line when the file is read. Keys that a project or stage may override
//! are `Option`s, merged in [`super::resolve`]. Every default is written here, next to its field
//! (in a `Default` impl or a `#[serde(default = …)]` function), and repeated in
//! `examples/tiny-forge.toml`; the health defaults are [`crate::health::HealthPolicy`]'s.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::resolved::NotifyFormat;
use crate::domain::Address;
use crate::engine::RestartPolicy;
use crate::health::{HealthPolicy, VerifyPolicy};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    pub(crate) settings: SettingsFile,
    #[serde(default)]
    pub(crate) proxy: crate::proxy::ProxyFile,
    #[serde(default)]
    pub(crate) health: HealthFile,
    /// `[verify]`: watch every stage's new instance after the cut-over. Default: off.
    pub(crate) verify: Option<VerifyFile>,
    /// `[notify]` (one target) or `[[notify]]` (several).
    #[serde(default)]
    pub(crate) notify: Option<OneOrMany<NotifyFile>>,
    /// Registry credentials by registry host (`[registries."registry.example.com"]`).
    #[serde(default)]
    pub(crate) registries: BTreeMap<String, RegistryFile>,
    #[serde(default)]
    pub(crate) projects: BTreeMap<String, ProjectFile>,
    /// `[server]`: `tiny-forge serve`.
    #[serde(default)]
    pub(crate) server: ServerFile,
    /// `[[receivers]]`: registry webhooks `tiny-forge serve` accepts.
    #[serde(default)]
    pub(crate) receivers: Vec<ReceiverFile>,
}

/// `[server]`. A missing key takes its value from the `Default` impl below.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServerFile {
    /// Address to listen on; `serve --listen` beats it. Default: `127.0.0.1:8420`.
    pub(crate) listen: String,
    /// Time to answer one request (not counting an event stream's body); at least 5s.
    /// Default: 10s.
    #[serde(with = "humantime_serde")]
    pub(crate) request_timeout: Duration,
    /// A connection that sends no complete request head for this long is closed: an idle
    /// keep-alive connection, or a stalled or slow request line and headers. Default: 30s.
    #[serde(with = "humantime_serde")]
    pub(crate) idle_timeout: Duration,
    /// Connections served at once; more wait in the kernel's backlog. Default: 256.
    pub(crate) max_connections: usize,
    /// Reverse proxies (addresses or CIDRs) whose `X-Forwarded-For` / `X-Real-IP` name the
    /// client; from any other peer these headers are ignored. Default: none.
    pub(crate) trusted_proxies: Vec<String>,
    /// Largest request body accepted, in bytes. Default: 262144 (256 KiB).
    pub(crate) max_body_bytes: usize,
    /// A push waits this long for later pushes of the same tag before it deploys. Default: 2s.
    #[serde(with = "humantime_serde")]
    pub(crate) debounce: Duration,
    /// On SIGTERM, running deploys get this long to finish before they are rolled back.
    /// Default: 60s.
    #[serde(with = "humantime_serde")]
    pub(crate) grace: Duration,
    /// Failed authentications one client (an IPv4 address, an IPv6 /64) may make per
    /// `auth_window` before its failures are answered 429 until the window ends; a credential
    /// that verifies is never refused. Default: 10.
    pub(crate) auth_failures: u32,
    /// Default: 60s.
    #[serde(with = "humantime_serde")]
    pub(crate) auth_window: Duration,
    /// Serve HTTPS with this certificate chain (PEM), relative to the config file. Default:
    /// plain HTTP (behind the proxy tiny-forge manages, or on loopback).
    pub(crate) tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM), with `tls_cert_file`.
    pub(crate) tls_key_file: Option<PathBuf>,
}

impl Default for ServerFile {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8420".into(),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 256,
            trusted_proxies: Vec::new(),
            max_body_bytes: 256 * 1024,
            debounce: Duration::from_secs(2),
            grace: Duration::from_secs(60),
            auth_failures: 10,
            auth_window: Duration::from_secs(60),
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// `[[receivers]]`: one webhook endpoint, `/hooks/{name}` (Docker Hub and Quay:
/// `/hooks/{name}/{secret}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiverFile {
    pub(crate) name: String,
    pub(crate) kind: ReceiverKind,
    /// The shared secret: the `Authorization` value (distribution, GitLab, Harbor), the HMAC key
    /// (GitHub, Gitea) or the path token (Docker Hub, Quay). Required.
    pub(crate) secret_env: Option<String>,
    pub(crate) secret_file: Option<PathBuf>,
    /// The registry host the events are about (e.g. `registry.example.com:5000`). Default: the
    /// kind's own (`ghcr.io`, `docker.io`, …) or, for distribution, the request's host.
    pub(crate) registry: Option<String>,
}

/// A registry webhook format (`[[receivers]] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiverKind {
    /// CNCF distribution (`docker-registry`, `registry:2`/`:3`) notifications; static
    /// `Authorization` header.
    Distribution,
    /// A self-managed GitLab registry: distribution's format.
    Gitlab,
    /// GitHub `package` / `registry_package` events (GHCR); `X-Hub-Signature-256` HMAC.
    #[serde(alias = "ghcr")]
    Github,
    /// Gitea or Forgejo `package` events; `X-Gitea-Signature` / `X-Forgejo-Signature` HMAC.
    #[serde(alias = "forgejo")]
    Gitea,
    /// Harbor's default payload format (and `CloudEvents`); the policy's `Authorization` header.
    Harbor,
    /// Docker Hub repository webhooks; a secret path segment.
    Dockerhub,
    /// Quay "Push to Repository" notifications; a secret path segment.
    Quay,
}

impl ReceiverKind {
    /// The word in the config.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Distribution => "distribution",
            Self::Gitlab => "gitlab",
            Self::Github => "github",
            Self::Gitea => "gitea",
            Self::Harbor => "harbor",
            Self::Dockerhub => "dockerhub",
            Self::Quay => "quay",
        }
    }

    /// Senders that cannot sign or add a header: the secret travels in the URL path.
    #[must_use]
    pub fn secret_in_path(self) -> bool {
        matches!(self, Self::Dockerhub | Self::Quay)
    }
}

/// Where a rule's pushes deploy (`on_push.slot`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSlot {
    /// A slot per pushed tag (its host name uses `settings.tag_subdomain`).
    #[default]
    Tag,
    /// The stage's default slot (the default tag's host name), whatever the pushed tag.
    Default,
}

/// `[[projects.X.stages.Y.on_push]]`: which pushed tags this stage deploys, and where.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PushRuleFile {
    /// A tag or a glob (`*` is any run of characters): `main`, `pr-*`, `v*`.
    pub(crate) tags: String,
    /// `tag` (default): a slot per pushed tag; `default`: the stage's default slot.
    #[serde(default)]
    pub(crate) slot: RuleSlot,
    /// Hold matching pushes until `POST /v1/approvals/{id}`. Default: false.
    #[serde(default)]
    pub(crate) approval: bool,
    /// Also poll the registry for this tag at this interval (exact tags only). Default: never.
    #[serde(default, with = "humantime_serde")]
    pub(crate) poll: Option<Duration>,
}

/// `[settings]`. A missing key takes its value from the `Default` impl below.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SettingsFile {
    /// Host names are `{subdomain}.{domain}`. Default: `localhost`.
    pub(crate) domain: String,
    /// The default tag's subdomain. Default: `stage-{stage}-{project}`.
    pub(crate) subdomain: String,
    /// Any other tag's subdomain. Default: `stage-{stage}-{project}-{tag}`.
    pub(crate) tag_subdomain: String,
    /// Docker network; created when missing. Default: `tiny-forge`.
    pub(crate) network: String,
    /// State file, relative to the config file. Default: none (`$XDG_STATE_HOME/tiny-forge/state.db`).
    pub(crate) state: Option<PathBuf>,
    /// How the health check reaches a container. Default: `ip`.
    pub(crate) probe_address: Address,
    /// `prune` deletes finished deploys older than this from history. Default: 90 days.
    #[serde(with = "humantime_serde")]
    pub(crate) history_retention: Duration,
    /// Remove the stage's network when its last instance is gone and nothing else uses it.
    /// Default: false.
    pub(crate) remove_idle_network: bool,
    /// A PEM bundle of CA certificates HTTPS clients trust besides the bundled and system roots.
    pub(crate) ca_file: Option<PathBuf>,
}

impl Default for SettingsFile {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            subdomain: "stage-{stage}-{project}".into(),
            tag_subdomain: "stage-{stage}-{project}-{tag}".into(),
            network: "tiny-forge".into(),
            state: None,
            probe_address: Address::Ip,
            history_retention: Duration::from_secs(90 * 86_400),
            ca_file: None,
            remove_idle_network: false,
        }
    }
}

/// `[health]`, `[projects.X.health]`, `[projects.X.stages.Y.health]`: each key set here
/// overrides the layer below; the bottom layer is [`HealthPolicy::default`].
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthFile {
    pub(crate) path: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) timeout: Option<Duration>,
    pub(crate) retries: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) start_period: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) start_interval: Option<Duration>,
    /// The check a swarm stage's tasks run themselves (exec form). Default: the image's
    /// `HEALTHCHECK`.
    pub(crate) command: Option<Vec<String>>,
}

impl HealthFile {
    /// Sets every key this layer sets.
    pub(crate) fn apply(&self, p: &mut HealthPolicy) {
        if let Some(v) = &self.path {
            p.path.clone_from(v);
        }
        p.interval = self.interval.unwrap_or(p.interval);
        p.timeout = self.timeout.unwrap_or(p.timeout);
        p.retries = self.retries.unwrap_or(p.retries);
        p.start_period = self.start_period.unwrap_or(p.start_period);
        p.start_interval = self.start_interval.unwrap_or(p.start_interval);
        if self.command.is_some() {
            p.command.clone_from(&self.command);
        }
    }
}

/// `[verify]`, `verify = { … }` of a project or a stage: each key set here overrides the layer
/// below; the bottom layer is [`VerifyPolicy::default`]. Verify is off unless some layer is
/// given; a `window` of `0s` turns it off again.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyFile {
    #[serde(default, with = "humantime_serde")]
    pub(crate) window: Option<Duration>,
    pub(crate) path: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) interval: Option<Duration>,
    pub(crate) failures: Option<u32>,
    /// Where the proxy listens, `ip:port`. Default: wherever the slot's host name resolves.
    pub(crate) connect: Option<String>,
}

impl VerifyFile {
    /// Sets every key this layer sets (`connect` only when it parses; the problem is reported
    /// by the check of the layer).
    pub(crate) fn apply(&self, p: &mut VerifyPolicy) {
        p.window = self.window.unwrap_or(p.window);
        if let Some(v) = &self.path {
            p.path.clone_from(v);
        }
        p.interval = self.interval.unwrap_or(p.interval);
        p.failures = self.failures.unwrap_or(p.failures);
        if let Some(c) = self.connect.as_deref().and_then(|c| c.parse().ok()) {
            p.connect = Some(c);
        }
    }
}

/// `[notify]`, or one `[[notify]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifyFile {
    pub(crate) url: String,
    pub(crate) secret_env: Option<String>,
    pub(crate) secret_file: Option<PathBuf>,
    /// Default: `json`.
    #[serde(default)]
    pub(crate) format: NotifyFormat,
    /// Total time for this target, retries included. Default: 10s.
    #[serde(default = "default_notify_budget", with = "humantime_serde")]
    pub(crate) budget: Duration,
    /// Send the failed container's last log lines (they may hold secrets). Default: false.
    #[serde(default)]
    pub(crate) include_logs: bool,
}

fn default_notify_budget() -> Duration {
    Duration::from_secs(10)
}

/// One table or an array of tables. Written by hand rather than `#[serde(untagged)]`, which
/// would replace the inner table's own error (an unknown key, a bad `format`) with "did not
/// match any variant".
#[derive(Debug)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub(crate) fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(t) => vec![t],
            Self::Many(v) => v,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table or an array of tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
        }
        d.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

/// `[registries."host"]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistryFile {
    pub(crate) username: String,
    pub(crate) password_env: Option<String>,
    pub(crate) password_file: Option<PathBuf>,
}

/// `restart`: Docker's restart policies, spelt as Docker spells them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Restart {
    No,
    Always,
    /// Instances come back after a host reboot (default).
    #[default]
    UnlessStopped,
    OnFailure,
}

impl From<Restart> for RestartPolicy {
    fn from(r: Restart) -> Self {
        match r {
            Restart::No => Self::No,
            Restart::Always => Self::Always,
            Restart::UnlessStopped => Self::UnlessStopped,
            Restart::OnFailure => Self::OnFailure,
        }
    }
}

/// `[projects.X]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProjectFile {
    /// Repository without tag, e.g. `registry.example.com/team/shop`.
    pub(crate) image: String,
    /// The port the app listens on inside the container; required.
    #[serde(deserialize_with = "port")]
    pub(crate) port: u16,
    /// Instances of a stage kept after a deploy; a stage may override it. Default: 3.
    #[serde(default = "default_max_instances")]
    pub(crate) max_instances: u32,
    /// Image digests kept per slot for fast rollbacks (the rest of the project's images that no
    /// container uses are deleted); a stage may override it. Default: 3.
    #[serde(default = "default_keep_images")]
    pub(crate) keep_images: u32,
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) env_file: Option<PathBuf>,
    /// Docker restart policy. Default: `unless-stopped`.
    #[serde(default)]
    pub(crate) restart: Restart,
    /// Memory limit, e.g. `512m`. Default: none.
    pub(crate) memory: Option<String>,
    /// CPU limit. Default: none.
    pub(crate) cpus: Option<f64>,
    pub(crate) command: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) volumes: Vec<String>,
    /// Tag instances older than this are pruned (see `prune`). Default: never.
    #[serde(default, with = "humantime_serde")]
    pub(crate) ttl: Option<Duration>,
    pub(crate) health: Option<HealthFile>,
    /// Watch the new instance after the cut-over; a stage may override it key by key.
    pub(crate) verify: Option<VerifyFile>,
    /// Runs once per deploy, from the deploy's image, before the new instance is created
    /// (migrations); a stage may override it.
    pub(crate) release: Option<OneOffFile>,
    /// Runs on the first deploy of a slot (e.g. create its database); a stage may override it.
    pub(crate) on_create: Option<OneOffFile>,
    /// Runs when `remove`, a TTL or eviction takes a slot away; a stage may override it.
    pub(crate) on_remove: Option<OneOffFile>,
    /// Who may open the slot's URL; a stage may override it. Default: anyone.
    pub(crate) access: Option<AccessFile>,
    /// What runs the instances; a stage may override it. Default: `{ kind = "docker" }`.
    pub(crate) engine: Option<crate::engine::EngineFile>,
    #[serde(default)]
    pub(crate) stages: BTreeMap<String, StageFile>,
}

/// `release`, `on_create`, `on_remove`: a one-off container from the deploy's image.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OneOffFile {
    /// Exec form: the program and its arguments.
    pub(crate) command: Vec<String>,
    /// How long it may run. Default: 5m.
    #[serde(default = "default_one_off_timeout", with = "humantime_serde")]
    pub(crate) timeout: Duration,
}

fn default_one_off_timeout() -> Duration {
    Duration::from_secs(300)
}

/// `access = { … }`: one of the two, per proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessFile {
    /// NPM: the access list the proxy host carries.
    pub(crate) npm_access_list_id: Option<u64>,
    /// Caddy: a `basic_auth` handler in the route.
    pub(crate) basic_auth: Option<BasicAuthFile>,
}

/// `access.basic_auth`: a user and the bcrypt hash of its password, never the password.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BasicAuthFile {
    pub(crate) user: String,
    pub(crate) password_hash_env: Option<String>,
    pub(crate) password_hash_file: Option<PathBuf>,
}

fn default_max_instances() -> u32 {
    3
}

fn default_keep_images() -> u32 {
    3
}

/// `[projects.X.stages.Y]`. A key left out takes the project's value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageFile {
    /// Deployed when no tag is given. Default: `latest`.
    #[serde(default = "default_tag")]
    pub(crate) default_tag: String,
    pub(crate) max_instances: Option<u32>,
    pub(crate) keep_images: Option<u32>,
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) env_file: Option<PathBuf>,
    pub(crate) memory: Option<String>,
    pub(crate) cpus: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) ttl: Option<Duration>,
    pub(crate) health: Option<HealthFile>,
    /// Watch the new instance after the cut-over; a stage may override it key by key.
    pub(crate) verify: Option<VerifyFile>,
    /// Runs once per deploy, from the deploy's image, before the new instance is created
    /// (migrations); a stage may override it.
    pub(crate) release: Option<OneOffFile>,
    /// Runs on the first deploy of a slot (e.g. create its database); a stage may override it.
    pub(crate) on_create: Option<OneOffFile>,
    /// Runs when `remove`, a TTL or eviction takes a slot away; a stage may override it.
    pub(crate) on_remove: Option<OneOffFile>,
    /// Who may open the slot's URL; a stage may override it. Default: anyone.
    pub(crate) access: Option<AccessFile>,
    /// What runs the instances; a stage may override it. Default: `{ kind = "docker" }`.
    pub(crate) engine: Option<crate::engine::EngineFile>,
    /// What a registry push (webhook or poll) deploys to this stage. Default: nothing.
    #[serde(default)]
    pub(crate) on_push: Vec<PushRuleFile>,
}

fn default_tag() -> String {
    "latest".into()
}

/// A TCP port, 1 to 65535. Serde's own `u16` message ("expected u16") would not say what a
/// port may be.
fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    struct PortVisitor;
    impl Visitor<'_> for PortVisitor {
        type Value = u16;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a port number between 1 and 65535")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u16, E> {
            u16::try_from(v).ok().filter(|p| *p != 0).ok_or_else(|| not_a_port(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u16, E> {
            u16::try_from(v).ok().filter(|p| *p != 0).ok_or_else(|| not_a_port(v))
        }
    }
    fn not_a_port<E: de::Error>(v: impl fmt::Display) -> E {
        E::custom(format_args!("{v} is not a port; use a number between 1 and 65535"))
    }
    d.deserialize_any(PortVisitor)
}
