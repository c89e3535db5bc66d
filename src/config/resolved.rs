//! What resolution produces: the concrete settings of a proxy, a webhook, a registry and one
//! project's stage. Plain data; built only by [`super::Config`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::{Address, ProjectName, StageName, Tag};
pub use crate::engine::{RegistryAuth, RestartPolicy};
use crate::health::{HealthPolicy, VerifyPolicy};
use crate::naming::{self, SubdomainPattern};
pub use crate::notify::NotifyFormat;
use crate::secret::SecretSource;

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
    /// Whether a failed container's last log lines go to this target (`include_logs`; they may
    /// hold secrets, so the default is no).
    pub include_logs: bool,
}

/// How much of a stage [`super::Config::resolve_with`] reads besides the config file.
///
/// A stage's secrets (its registry password, and the env files, which usually hold the app's
/// own) are read only for the commands that start a container with them. Commands that only look
/// at or clean up what is running (`prune`, `list --probe`) resolve with
/// [`Resolution::ConfigOnly`], so that a secret missing for one stage cannot stop them for
/// every stage: `prune` from cron runs without a deploy's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Everything a deploy needs: env files are read and merged, the registry password is read
    /// now. A missing or unreadable one fails resolution (exit 2) before anything is touched.
    /// For `deploy`, `rollback` and `remove`.
    Full,
    /// Only the config file: no env file and no secret is read. `env` is empty and
    /// `registry_auth` is `None`; every other field is as [`Resolution::Full`] gives it. Never
    /// hand such a stage to a deploy.
    ConfigOnly,
}

/// Everything a deploy of one project's stage needs, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedStage {
    /// The project.
    pub project: ProjectName,
    /// The stage.
    pub stage: StageName,
    /// Repository without tag.
    pub image: crate::image_ref::ImageRef,
    /// Port the app listens on.
    pub port: u16,
    /// Tag deployed when none is given; its slot uses `settings.subdomain`.
    pub default_tag: Tag,
    /// Most instances of this stage kept after a deploy.
    pub max_instances: u32,
    /// Image digests kept per live slot (the newest ones it ran), so that a rollback needs no
    /// pull; other images of the project's repository that no container uses are deleted.
    pub keep_images: u32,
    /// Remove the stage's network when nothing uses it any more (`settings.remove_idle_network`).
    pub remove_idle_network: bool,
    /// Runs before each new instance is created (`release`).
    pub release: Option<OneOff>,
    /// Runs on the first deploy of a slot.
    pub on_create: Option<OneOff>,
    /// Runs when a slot is taken away (remove, TTL, eviction).
    pub on_remove: Option<OneOff>,
    /// Who may open the slot's URL.
    pub access: crate::proxy::HostAccess,
    /// Tag instances older than this may be pruned.
    pub ttl: Option<Duration>,
    /// Environment, merged (see [`super::Config::resolve`]), sorted by key (always empty with
    /// [`Resolution::ConfigOnly`]).
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
    /// How the new instance is watched after the cut-over; `None`: not at all (the default).
    pub verify: Option<VerifyPolicy>,
    /// How the prober reaches the container.
    pub probe_address: Address,
    /// Docker network.
    pub network: String,
    /// Domain under which host names live.
    pub domain: String,
    /// Credentials for the image's registry from the config, if any (always `None` with
    /// [`Resolution::ConfigOnly`]).
    pub registry_auth: Option<RegistryAuth>,
    /// What runs its instances.
    pub engine: crate::engine::Engine,
    /// What was read to resolve it. A deploy needs [`Resolution::Full`].
    pub resolution: Resolution,
    pub(super) subdomain: SubdomainPattern,
    pub(super) tag_subdomain: SubdomainPattern,
}

/// A one-off container's command and time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOff {
    /// Exec form.
    pub command: Vec<String>,
    /// How long it may run before it is killed (and counts as failed).
    pub timeout: Duration,
}

impl ResolvedStage {
    /// The env of `tag`'s instance and one-offs: the stage's env with `{host}`, `{url}`,
    /// `{slot}` and `{tag}` substituted, then `TF_PROJECT`, `TF_STAGE`, `TF_TAG`, `TF_SLOT`,
    /// `TF_HOST` and `TF_URL`. `{slot}` is `project-stage-tag` folded like a DNS label (fit for a
    /// database name), `url` the slot's public URL.
    #[must_use]
    pub fn env_for(&self, tag: &Tag, url: &str) -> Vec<(String, String)> {
        let host = self.host_name(tag);
        let slot = naming::slot_name(self.project.as_str(), self.stage.as_str(), tag.as_str());
        let fill = |v: &str| {
            v.replace("{host}", &host).replace("{url}", url).replace("{slot}", &slot).replace("{tag}", tag.as_str())
        };
        let mut env: BTreeMap<String, String> = self.env.iter().map(|(k, v)| (k.clone(), fill(v))).collect();
        for (k, v) in [
            ("TF_PROJECT", self.project.to_string()),
            ("TF_STAGE", self.stage.to_string()),
            ("TF_TAG", tag.to_string()),
            ("TF_SLOT", slot.clone()),
            ("TF_HOST", host.clone()),
            ("TF_URL", url.to_owned()),
        ] {
            env.insert(k.to_owned(), v);
        }
        env.into_iter().collect()
    }

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
        self.image.tagged(tag.as_str())
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
