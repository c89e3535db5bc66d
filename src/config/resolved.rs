//! What resolution produces: the concrete settings of a proxy, a webhook, a registry and one
//! project's stage. Plain data; built only by [`super::Config`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::{ProjectName, StageName, Tag};
pub use crate::engine::{RegistryAuth, RestartPolicy};
use crate::health::HealthPolicy;
use crate::naming::{self, SubdomainPattern};
use crate::secret::SecretSource;

/// How the proxy step publishes an instance.
#[derive(Debug, Clone)]
pub enum ProxySettings {
    /// No proxy: the URL is the container's own address.
    None,
    /// Nginx Proxy Manager.
    Npm(NpmSettings),
    /// Caddy's admin API.
    Caddy {
        /// Admin endpoint, e.g. `http://127.0.0.1:2019`.
        admin_url: String,
        /// The HTTP server in Caddy's config whose routes we manage (default `srv0`).
        server: String,
        /// Per-request timeout.
        timeout: Duration,
        /// What Caddy forwards to.
        forward: ForwardTo,
    },
}

/// What a proxy forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardTo {
    /// The container's name (the proxy shares the Docker network).
    Name,
    /// The container's IP address on the network.
    Ip,
}

/// `[proxy]` with `kind = "npm"`.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools, reason = "mirrors NPM's own host flags one to one")]
pub struct NpmSettings {
    /// Base URL, e.g. `http://127.0.0.1:81`.
    pub url: String,
    /// Login identity.
    pub email: String,
    /// Where the password comes from (read when the proxy is first used).
    pub password: SecretSource,
    /// Per-request timeout.
    pub timeout: Duration,
    /// What NPM forwards to.
    pub forward: ForwardTo,
    /// Certificate for every host (a wildcard for the domain); none when unset.
    pub certificate_id: Option<u64>,
    /// Host flags sent on create.
    pub ssl_forced: bool,
    /// See NPM.
    pub http2_support: bool,
    /// See NPM.
    pub hsts_enabled: bool,
    /// See NPM.
    pub hsts_subdomains: bool,
    /// See NPM.
    pub block_exploits: bool,
    /// See NPM.
    pub allow_websocket_upgrade: bool,
    /// See NPM.
    pub caching_enabled: bool,
    /// Extra nginx config for every host.
    pub advanced_config: String,
}

/// One webhook target.
#[derive(Debug, Clone)]
pub struct NotifyTarget {
    /// Where to POST.
    pub url: String,
    /// HMAC secret source, if any.
    pub secret: Option<SecretSource>,
    /// Payload shape.
    pub format: NotifyFormat,
    /// Total time for this target, retries included.
    pub budget: Duration,
}

/// Payload shape of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// tiny-forge's own JSON.
    Json,
    /// Slack incoming webhook.
    Slack,
    /// Discord webhook.
    Discord,
}

/// How the health check reaches a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAddress {
    /// Its IP address on the network (tiny-forge runs on the host).
    Ip,
    /// Its container name (tiny-forge runs in a container on the same network).
    Name,
}

/// Everything a deploy of one project's stage needs, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedStage {
    /// The project.
    pub project: ProjectName,
    /// The stage.
    pub stage: StageName,
    /// Repository without tag.
    pub image: String,
    /// Port the app listens on.
    pub port: u16,
    /// Tag deployed when none is given; its slot uses `settings.subdomain`.
    pub default_tag: Tag,
    /// Most instances of this stage kept after a deploy.
    pub max_instances: u32,
    /// Tag instances older than this may be pruned.
    pub ttl: Option<Duration>,
    /// Environment, merged (see module doc), sorted by key.
    pub env: Vec<(String, String)>,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// CPU limit in nano-CPUs.
    pub nano_cpus: Option<i64>,
    /// Command override.
    pub command: Option<Vec<String>>,
    /// Extra labels (never `dev.tiny-forge.*`).
    pub labels: BTreeMap<String, String>,
    /// Volume binds, Docker syntax.
    pub volumes: Vec<String>,
    /// The health policy.
    pub health: HealthPolicy,
    /// How the prober reaches the container.
    pub probe_address: ProbeAddress,
    /// Docker network.
    pub network: String,
    /// Domain under which host names live.
    pub domain: String,
    /// Credentials for the image's registry from the config, if any.
    pub registry_auth: Option<RegistryAuth>,
    pub(super) subdomain: SubdomainPattern,
    pub(super) tag_subdomain: SubdomainPattern,
}

impl ResolvedStage {
    /// The full host name of `tag`'s slot: the default tag uses `settings.subdomain`, any other
    /// tag `settings.tag_subdomain`.
    #[must_use]
    pub fn host_name(&self, tag: &Tag) -> String {
        let pattern = if *tag == self.default_tag { &self.subdomain } else { &self.tag_subdomain };
        // Validation rendered both patterns with a worst-case tag, so this cannot fail.
        let sub = pattern
            .render(self.project.as_str(), self.stage.as_str(), tag.as_str())
            .unwrap_or_else(|_| format!("{}-{}", self.project, self.stage));
        naming::host_name(&sub, &self.domain)
    }

    /// `image:tag`.
    #[must_use]
    pub fn image_ref(&self, tag: &Tag) -> String {
        format!("{}:{}", self.image, tag)
    }

    /// Could `host` be the host name of one of this stage's slots?
    #[must_use]
    pub fn owns_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if host == self.host_name(&self.default_tag) {
            return true;
        }
        let rendered = self
            .tag_subdomain
            .as_str()
            .replace("{project}", self.project.as_str())
            .replace("{stage}", self.stage.as_str());
        let full = naming::host_name(&rendered, &self.domain);
        match full.split_once("{tag}") {
            Some((prefix, suffix)) => {
                host.len() > prefix.len() + suffix.len() && host.starts_with(prefix) && host.ends_with(suffix)
            }
            None => false,
        }
    }
}
