//! The proxy seam: publish a slot's host name to a container, move it to another container,
//! take it down. Backends: [`NoProxy`] (the URL is the container's own address), [`NpmProxy`]
//! (Nginx Proxy Manager) and [`CaddyProxy`] (Caddy's admin API), chosen through [`AnyProxy`].
//!
//! A backend implements small primitives ([`Proxy::find`], [`Proxy::create`],
//! [`Proxy::update`], [`Proxy::delete`], …). The one contract the deploy relies on is written
//! once, on top of them, in [`ensure`](fn@ensure) and [`remove`] (DESIGN §8): a host is looked
//! up *by name*, never by a stored id; ours and this slot's is changed, anyone else's is refused
//! and left untouched, and every change is read back.

mod caddy;
mod ensure;
mod npm;

use std::fmt;
use std::net::IpAddr;

pub use caddy::{CaddyFile, CaddyProxy, CaddySettings};
pub use ensure::{Ensured, Progress, Removed, ensure, ensure_tracked, points_at, remove};
pub use npm::{MARKER as NPM_MARKER, NpmFile, NpmProxy, NpmSettings};

/// `[proxy]`, as the file has it: `kind` chooses the backend, and each backend reads and checks
/// its own keys (a key of another backend's is refused, by name). No `[proxy]`: no proxy.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProxyFile {
    /// No proxy: the URL is the container's own address (default).
    #[default]
    None,
    /// Nginx Proxy Manager.
    Npm(NpmFile),
    /// Caddy's admin API.
    Caddy(CaddyFile),
}

/// How the proxy step publishes an instance: a backend's settings, resolved.
#[derive(Debug, Clone)]
pub enum ProxySettings {
    /// No proxy: the URL is the container's own address.
    None,
    /// Nginx Proxy Manager.
    Npm(NpmSettings),
    /// Caddy's admin API.
    Caddy(CaddySettings),
}

impl ProxyFile {
    /// The backend's word in the file, for messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Npm(_) => "npm",
            Self::Caddy(_) => "caddy",
        }
    }

    /// How the proxy reaches an instance; `None` without a proxy.
    #[must_use]
    pub fn forward(&self) -> Option<crate::domain::Address> {
        match self {
            Self::None => None,
            Self::Npm(f) => Some(f.forward()),
            Self::Caddy(f) => Some(f.forward()),
        }
    }

    /// The backend's settings, checked; every problem goes to `problems` with its key path.
    /// `base` is the config file's directory (for secret files).
    pub fn resolve(&self, base: &std::path::Path, problems: &mut Vec<String>) -> Option<ProxySettings> {
        match self {
            Self::None => Some(ProxySettings::None),
            Self::Npm(f) => f.resolve(base, problems).map(ProxySettings::Npm),
            Self::Caddy(f) => f.resolve(problems).map(ProxySettings::Caddy),
        }
    }

    /// Whether this backend can enforce a stage's `access` (`key` is its key path): an NPM
    /// access list, or Caddy's basic auth. A problem line when it cannot.
    #[must_use]
    pub fn access_problem(&self, key: &str, access_list: bool, basic_auth: bool) -> Option<String> {
        match (self, access_list, basic_auth) {
            (Self::None, ..) => Some(format!(
                "{key}.access: needs a proxy to enforce it; set [proxy] kind = \"npm\" or \"caddy\", or drop access"
            )),
            (Self::Caddy(_), true, false) => Some(format!(
                "{key}.access.npm_access_list_id is for NPM; with Caddy use access = {{ basic_auth = {{ … }} }}"
            )),
            (Self::Npm(_), false, true) => Some(format!(
                "{key}.access.basic_auth is for Caddy; with NPM use access = {{ npm_access_list_id = N }}"
            )),
            _ => None,
        }
    }
}

/// A backend's API URL (`proxy.url`), checked: required, and `http://` or `https://`.
fn api_url(kind: &str, url: Option<&str>, problems: &mut Vec<String>) -> Option<String> {
    match url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Some(u.trim_end_matches('/').to_owned()),
        Some(_) => {
            problems.push(format!("proxy.url: must start with http:// or https:// ({kind})"));
            None
        }
        None => {
            problems.push(format!("proxy.url: required for kind = \"{kind}\""));
            None
        }
    }
}

/// The default per-request timeout of a proxy's API.
fn default_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(10)
}

/// For `#[serde(default)]` of flags that are on unless said otherwise.
fn yes() -> bool {
    true
}

/// A transport error on one line, without the URL (which may hold credentials).
pub(crate) fn transport(e: reqwest::Error) -> String {
    crate::fmt::one_line(&e.without_url())
}

/// What a transport failure means for a request to the API at `url` bounded by `timeout`:
/// not connected (nothing was sent), no answer in time, or an answer lost on the way (the
/// request may have been carried out either way).
pub(crate) fn transport_error(url: &str, timeout: std::time::Duration, e: reqwest::Error) -> ProxyError {
    let url = crate::fmt::redact_url(url);
    if e.is_connect() {
        ProxyError::Unreachable { url, message: crate::http::connect_failure(e) }
    } else if e.is_timeout() {
        ProxyError::NoAnswer { url, after: timeout }
    } else {
        ProxyError::AnswerLost { url, message: transport(e) }
    }
}

/// What a look at one proxy host found: there, not there, or could not look.
pub type ProxyLook<T> = crate::look::Look<T, ProxyError>;

/// Where a host should forward to: an instance's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Container name (resolvable on the Docker network).
    pub name: String,
    /// Container address on the network.
    pub ip: Option<IpAddr>,
    /// Port the app listens on.
    pub port: u16,
}

/// What a host forwards to, as the proxy holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Who may open a host, as the proxy enforces it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HostAccess {
    /// Anyone.
    #[default]
    Public,
    /// NPM: the host carries this access list.
    AccessList(u64),
    /// Caddy: HTTP basic auth for `user`, with this bcrypt hash.
    BasicAuth {
        /// The user.
        user: String,
        /// The bcrypt hash of the password (never the password).
        hash: crate::secret::Secret,
    },
    /// Protected, but its secret could not be read: such a host is never written (a protected
    /// preview must not be opened by mistake). The key that names it.
    Unreadable(String),
}

/// tiny-forge's mark on a proxy host: which state file made it, for which slot. Carried by the
/// host itself (NPM: keys in `meta`; Caddy: a `vars` handler), so that "is this ours, and
/// whose?" is answered by the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The state file's id ([`crate::Store::state_id`]).
    pub state: String,
    /// The slot key, `project/stage/tag`.
    pub slot: String,
}

/// Who a host belongs to, as read from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// tiny-forge's mark, with the state file and slot.
    Marked(Marker),
    /// The mark of a tiny-forge from before state identity (no state file, no slot). Adopted by
    /// the slot whose host name it is, and re-marked on the next change.
    Legacy,
    /// No mark: someone else's.
    Unmarked,
}

/// A host as the proxy holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    /// The proxy's id for it.
    pub id: String,
    /// Its host name (lower case).
    pub domain: String,
    /// Whose it is.
    pub owner: Owner,
    /// Where it forwards (`None`: it forwards somewhere we cannot read).
    pub target: Option<Target>,
    /// Why it would not serve, when the proxy says so (NPM's `nginx_online: false`; a Caddy
    /// route that an earlier route shadows).
    pub problem: Option<String>,
    /// Who may open it.
    pub access: HostAccess,
}

impl HostView {
    /// Is it ours (this state file's) and `slot`'s?
    #[must_use]
    pub fn belongs_to(&self, state: &str, slot: &str) -> bool {
        match &self.owner {
            Owner::Marked(m) => m.state == state && m.slot == slot,
            Owner::Legacy => true,
            Owner::Unmarked => false,
        }
    }
}

/// The outcome of deleting a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// It existed and is gone.
    Deleted,
    /// It was already gone (counts as done).
    AlreadyGone,
}

/// A failed proxy operation; the message carries what the proxy said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The proxy's API cannot be reached.
    #[error("proxy at {url} unreachable: {message}")]
    Unreachable {
        /// The API base URL.
        url: String,
        /// What the connection said.
        message: String,
    },
    /// The request was sent and no answer came in time: the change may or may not have been
    /// made, and may still be made later.
    #[error("proxy at {url}: no answer within {}; check proxy.url or raise proxy.timeout", humantime::format_duration(*.after))]
    NoAnswer {
        /// The API base URL.
        url: String,
        /// How long we waited.
        after: std::time::Duration,
    },
    /// The request was sent and its answer broke off: the change may or may not have been made.
    #[error("proxy at {url}: the answer was lost ({message}); the change may or may not have been made")]
    AnswerLost {
        /// The API base URL.
        url: String,
        /// What the connection said.
        message: String,
    },
    /// Login was refused.
    #[error("proxy login refused: {message}; check proxy.email and the password")]
    Auth {
        /// What the proxy said.
        message: String,
    },
    /// The proxy refused the request.
    #[error("proxy {op} of {host} refused ({status}): {message}")]
    Refused {
        /// What was being done.
        op: &'static str,
        /// Host name or id.
        host: String,
        /// HTTP status.
        status: u16,
        /// The proxy's own message.
        message: String,
    },
    /// A host with this name exists and does not carry our mark.
    #[error(
        "proxy host {host} (id {id}) already exists and was not created by tiny-forge; delete it or change settings.subdomain"
    )]
    Foreign {
        /// Host name.
        host: String,
        /// Its id.
        id: String,
    },
    /// A host with this name was made by tiny-forge with another state file.
    #[error(
        "proxy host {host} (id {id}) belongs to another tiny-forge state file (slot {slot}); give each state file its own settings.domain or subdomain patterns"
    )]
    OtherState {
        /// Host name.
        host: String,
        /// Its id.
        id: String,
        /// The slot its mark names.
        slot: String,
    },
    /// Two slots fold to the same host name.
    #[error(
        "proxy host {host} already serves slot {theirs}, and slot {ours} folds to the same name; make the names differ by changing settings.tag_subdomain (e.g. \"{{tag}}--stage-{{stage}}-{{project}}\") or settings.subdomain"
    )]
    OtherSlot {
        /// Host name.
        host: String,
        /// The slot that has it.
        theirs: String,
        /// The slot that asked.
        ours: String,
    },
    /// The proxy answered something we cannot read.
    #[error("proxy {op} of {host}: unexpected answer: {message}")]
    Protocol {
        /// What was being done.
        op: &'static str,
        /// Host name or id.
        host: String,
        /// What was wrong with it.
        message: String,
    },
    /// The upstream cannot be expressed for this proxy (e.g. forward by IP without an IP).
    #[error("cannot publish {host}: {message}")]
    Upstream {
        /// Host name.
        host: String,
        /// Why.
        message: String,
    },
    /// The proxy accepted the change but does not serve it as asked (read back).
    #[error("proxy host {host} is not serving as asked: {message}")]
    Offline {
        /// Host name.
        host: String,
        /// What the read-back showed.
        message: String,
    },
}

impl ProxyError {
    /// The request may have been carried out although no answer came.
    #[must_use]
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::NoAnswer { .. } | Self::AnswerLost { .. })
    }
}

/// A reverse proxy's primitives. Callers use [`ensure`](fn@ensure) and [`remove`], which hold
/// the ownership rules; an implementation only talks to its API and reads its answers.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub trait Proxy {
    /// Does this backend keep hosts at all? ([`NoProxy`] does not.)
    fn keeps_hosts(&self) -> bool {
        true
    }

    /// What a host for `domain` must forward to, to reach `upstream`.
    ///
    /// # Errors
    /// [`ProxyError::Upstream`] when the upstream cannot be expressed (forward by IP, no IP).
    fn target(&self, domain: &str, upstream: &Upstream) -> Result<Target, ProxyError>;

    /// The public URL of `domain` (or of the upstream itself, for a backend without hosts).
    fn url(&self, domain: &str, upstream: &Upstream) -> String;

    /// The host serving `domain`, looked up by name (without regard to case), whoever owns it:
    /// [`Look::Unknown`](crate::look::Look::Unknown) when the proxy refuses or is unreachable,
    /// which never means that there is no such host.
    async fn find(&self, domain: &str) -> ProxyLook<HostView>;

    /// Every host that carries any tiny-forge mark (any state file), for `prune`.
    ///
    /// # Errors
    /// When the proxy refuses or is unreachable.
    async fn list_marked(&self) -> Result<Vec<HostView>, ProxyError>;

    /// Creates a host for `domain` with `marker`, forwarding to `target`; returns its id. The
    /// caller has looked the name up and found nothing.
    ///
    /// # Errors
    /// When the proxy refuses or is unreachable.
    async fn create(
        &self,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<String, ProxyError>;

    /// Points host `id` at `target`, with `access`, and (re)writes `marker` on it.
    ///
    /// # Errors
    /// When the proxy refuses or is unreachable.
    async fn update(
        &self,
        id: &str,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<(), ProxyError>;

    /// Deletes host `id`; already gone counts as done.
    ///
    /// # Errors
    /// When the proxy refuses or is unreachable.
    async fn delete(&self, id: &str, domain: &str) -> Result<Deleted, ProxyError>;

    /// Logs in and describes what it sees (for `tiny-forge check`).
    ///
    /// # Errors
    /// When it cannot.
    async fn check(&self) -> Result<String, ProxyError>;
}

/// No proxy: the URL is the container's address on the Docker network.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProxy;

impl Proxy for NoProxy {
    fn keeps_hosts(&self) -> bool {
        false
    }

    fn target(&self, _: &str, upstream: &Upstream) -> Result<Target, ProxyError> {
        Ok(Target { host: upstream.name.clone(), port: upstream.port })
    }

    fn url(&self, _: &str, upstream: &Upstream) -> String {
        match upstream.ip {
            Some(IpAddr::V6(ip)) => format!("http://[{ip}]:{}", upstream.port),
            Some(ip) => format!("http://{ip}:{}", upstream.port),
            None => format!("http://{}:{}", upstream.name, upstream.port),
        }
    }

    async fn find(&self, _: &str) -> ProxyLook<HostView> {
        crate::look::Look::Absent
    }

    async fn list_marked(&self) -> Result<Vec<HostView>, ProxyError> {
        Ok(Vec::new())
    }

    async fn create(&self, domain: &str, _: &Marker, _: &Target, _: &HostAccess) -> Result<String, ProxyError> {
        Err(ProxyError::Upstream { host: domain.to_owned(), message: "no proxy is configured".into() })
    }

    async fn update(&self, _: &str, domain: &str, _: &Marker, _: &Target, _: &HostAccess) -> Result<(), ProxyError> {
        Err(ProxyError::Upstream { host: domain.to_owned(), message: "no proxy is configured".into() })
    }

    async fn delete(&self, _: &str, _: &str) -> Result<Deleted, ProxyError> {
        Ok(Deleted::AlreadyGone)
    }

    async fn check(&self) -> Result<String, ProxyError> {
        Ok("none (URLs are the containers' own addresses)".into())
    }
}

/// The backend chosen by config.
#[derive(Debug)]
pub enum AnyProxy {
    /// `kind = "none"`.
    None(NoProxy),
    /// `kind = "npm"`.
    Npm(NpmProxy),
    /// `kind = "caddy"`.
    Caddy(CaddyProxy),
}

impl AnyProxy {
    /// The backend `settings` choose, with its secrets read now (before anything is touched);
    /// `client` is the outbound HTTP client.
    ///
    /// # Errors
    /// A line naming the secret that could not be read.
    pub fn from_settings(settings: &ProxySettings, client: &reqwest::Client) -> Result<Self, String> {
        Ok(match settings {
            ProxySettings::None => Self::None(NoProxy),
            ProxySettings::Npm(s) => {
                let password = s.password.read("proxy.password")?;
                Self::Npm(NpmProxy::new(s.clone(), password, client.clone()))
            }
            ProxySettings::Caddy(s) => Self::Caddy(CaddyProxy::from_settings(s, client.clone())),
        })
    }
}

macro_rules! delegate {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            Self::None($p) => $e,
            Self::Npm($p) => $e,
            Self::Caddy($p) => $e,
        }
    };
}

impl Proxy for AnyProxy {
    fn keeps_hosts(&self) -> bool {
        delegate!(self, p => p.keeps_hosts())
    }

    fn target(&self, domain: &str, upstream: &Upstream) -> Result<Target, ProxyError> {
        delegate!(self, p => p.target(domain, upstream))
    }

    fn url(&self, domain: &str, upstream: &Upstream) -> String {
        delegate!(self, p => p.url(domain, upstream))
    }

    async fn find(&self, domain: &str) -> ProxyLook<HostView> {
        delegate!(self, p => p.find(domain).await)
    }

    async fn list_marked(&self) -> Result<Vec<HostView>, ProxyError> {
        delegate!(self, p => p.list_marked().await)
    }

    async fn create(
        &self,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<String, ProxyError> {
        delegate!(self, p => p.create(domain, marker, target, access).await)
    }

    async fn update(
        &self,
        id: &str,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<(), ProxyError> {
        delegate!(self, p => p.update(id, domain, marker, target, access).await)
    }

    async fn delete(&self, id: &str, domain: &str) -> Result<Deleted, ProxyError> {
        delegate!(self, p => p.delete(id, domain).await)
    }

    async fn check(&self) -> Result<String, ProxyError> {
        delegate!(self, p => p.check().await)
    }
}
