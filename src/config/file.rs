//! The file shape: mirrors the TOML one to one. Every struct rejects unknown keys; keys that a
//! project or stage may override are `Option`s, merged in [`super::resolve`]. Defaults are written
//! next to the field that has them and repeated in `examples/tiny-forge.toml`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    pub(crate) settings: SettingsFile,
    #[serde(default)]
    pub(crate) proxy: ProxyFile,
    #[serde(default)]
    pub(crate) health: HealthFile,
    /// `[notify]` (one target) or `[[notify]]` (several).
    #[serde(default)]
    pub(crate) notify: Option<OneOrMany<NotifyFile>>,
    /// Registry credentials by registry host (`[registries."registry.example.com"]`).
    #[serde(default)]
    pub(crate) registries: BTreeMap<String, RegistryFile>,
    #[serde(default)]
    pub(crate) projects: BTreeMap<String, ProjectFile>,
}

/// `[settings]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsFile {
    /// Host names are `{subdomain}.{domain}`. Default: `localhost`.
    #[serde(default = "default_domain")]
    pub(crate) domain: String,
    /// Default: `stage-{stage}-{project}`.
    #[serde(default = "default_subdomain")]
    pub(crate) subdomain: String,
    /// Default: `stage-{stage}-{project}-{tag}`.
    #[serde(default = "default_tag_subdomain")]
    pub(crate) tag_subdomain: String,
    /// Default: `tiny-forge`; created when missing.
    #[serde(default = "default_network")]
    pub(crate) network: String,
    pub(crate) state: Option<PathBuf>,
    /// How the health check reaches a container: `ip` (default: its address on the network, for
    /// tiny-forge on the host) or `name` (when tiny-forge runs in a container on that network).
    #[serde(default)]
    pub(crate) probe_address: Option<String>,
    /// `prune` deletes finished deploys older than this from history. Default: 90 days.
    #[serde(default, with = "humantime_serde")]
    pub(crate) history_retention: Option<Duration>,
    /// A PEM bundle of CA certificates HTTPS clients trust besides the bundled and system roots.
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
}

impl Default for SettingsFile {
    fn default() -> Self {
        Self {
            domain: default_domain(),
            subdomain: default_subdomain(),
            tag_subdomain: default_tag_subdomain(),
            network: default_network(),
            state: None,
            probe_address: None,
            history_retention: None,
            ca_file: None,
        }
    }
}

fn default_domain() -> String {
    "localhost".into()
}
fn default_subdomain() -> String {
    "stage-{stage}-{project}".into()
}
fn default_tag_subdomain() -> String {
    "stage-{stage}-{project}-{tag}".into()
}
fn default_network() -> String {
    "tiny-forge".into()
}

/// `[proxy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProxyFile {
    /// `none` (default), `npm` or `caddy`.
    #[serde(default)]
    pub(crate) kind: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) password_env: Option<String>,
    pub(crate) password_file: Option<PathBuf>,
    /// Per-request timeout of the proxy's API. Default: 10s.
    #[serde(default, with = "humantime_serde")]
    pub(crate) timeout: Option<Duration>,
    /// What the proxy forwards to: `name` (the proxy shares the network; NPM's default) or `ip`
    /// (Caddy's default).
    pub(crate) forward: Option<String>,
    /// Caddy: the HTTP server whose routes we manage. Default: `srv0`.
    pub(crate) server: Option<String>,
    pub(crate) certificate_id: Option<u64>,
    pub(crate) ssl_forced: Option<bool>,
    pub(crate) http2_support: Option<bool>,
    pub(crate) hsts_enabled: Option<bool>,
    pub(crate) hsts_subdomains: Option<bool>,
    pub(crate) block_exploits: Option<bool>,
    pub(crate) allow_websocket_upgrade: Option<bool>,
    pub(crate) caching_enabled: Option<bool>,
    pub(crate) advanced_config: Option<String>,
}

/// `[health]`, `[projects.X.health]`, `[projects.X.stages.Y.health]`.
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
}

/// `[notify]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotifyFile {
    pub(crate) url: String,
    pub(crate) secret_env: Option<String>,
    pub(crate) secret_file: Option<PathBuf>,
    /// `json` (default), `slack` or `discord`.
    pub(crate) format: Option<String>,
    /// Total time for this target, retries included. Default: 10s.
    #[serde(default, with = "humantime_serde")]
    pub(crate) budget: Option<Duration>,
}

/// One table or an array of tables.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// `[registries."host"]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistryFile {
    pub(crate) username: String,
    pub(crate) password_env: Option<String>,
    pub(crate) password_file: Option<PathBuf>,
}

/// `[projects.X]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProjectFile {
    /// Repository without tag, e.g. `registry.example.com/team/shop`.
    pub(crate) image: String,
    /// The port the app listens on inside the container.
    pub(crate) port: i64,
    /// Default: 3.
    pub(crate) max_instances: Option<u32>,
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) env_file: Option<PathBuf>,
    /// Docker restart policy. Default: `unless-stopped`.
    pub(crate) restart: Option<String>,
    /// Memory limit, e.g. `512m`.
    pub(crate) memory: Option<String>,
    pub(crate) cpus: Option<f64>,
    pub(crate) command: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) volumes: Vec<String>,
    /// Tag instances older than this are pruned (see `prune`).
    #[serde(default, with = "humantime_serde")]
    pub(crate) ttl: Option<Duration>,
    pub(crate) health: Option<HealthFile>,
    #[serde(default)]
    pub(crate) stages: BTreeMap<String, StageFile>,
}

/// `[projects.X.stages.Y]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageFile {
    /// Default: `latest`.
    pub(crate) default_tag: Option<String>,
    pub(crate) max_instances: Option<u32>,
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) env_file: Option<PathBuf>,
    pub(crate) memory: Option<String>,
    pub(crate) cpus: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) ttl: Option<Duration>,
    pub(crate) health: Option<HealthFile>,
}
