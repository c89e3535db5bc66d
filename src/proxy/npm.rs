//! [`Proxy`] over Nginx Proxy Manager's REST API, written from NPM v2.15.1's recorded behaviour
//! (see `tests/fixtures/npm-exchanges.json` and the test double beside the tests):
//!
//! - Login is `POST /api/tokens`; the token is kept for the process and refreshed
//!   (`GET /api/tokens`) before it expires. NPM never answers 401: an expired token gets 400
//!   `Token has expired`, on which we log in again and retry once.
//! - NPM answers 201/200 even when nginx rejects the generated config; only a later read shows
//!   `meta.nginx_online: false`, which [`HostView::problem`] carries to the read-back.
//! - Hosts we create carry our mark in `meta` (NPM keeps a client's own keys there):
//!   `"tiny_forge_managed": true`, the state file's id and the slot. Whose a host is gets decided
//!   in [`super::ensure`](fn@super::ensure).
//! - Domain names are sent lower-case: NPM compares them without case but stores them as sent.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde_json::{Value, json};

use super::{Deleted, HostAccess, HostView, Marker, Owner, Proxy, ProxyError, ProxyLook, Target, Upstream};
use crate::domain::Address;
use crate::look::Look;
use crate::secret::Secret;

/// `[proxy]` with `kind = "npm"`, as the file has it (every key of NPM's, and only NPM's).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools, reason = "mirrors NPM's own host flags one to one")]
pub struct NpmFile {
    /// NPM's base URL, e.g. `http://127.0.0.1:81`. Required.
    url: Option<String>,
    /// The login. Required.
    email: Option<String>,
    /// Where the password comes from: one of these is required.
    password_env: Option<String>,
    password_file: Option<std::path::PathBuf>,
    /// Per-request timeout of NPM's API. Default: 10s.
    #[serde(default = "super::default_timeout", with = "humantime_serde")]
    timeout: Duration,
    /// What NPM forwards to. Default: the container's name (NPM usually shares the network).
    forward: Option<Address>,
    /// A certificate for every host. Default: none (plain HTTP).
    certificate_id: Option<u64>,
    /// Default: whether `certificate_id` is set.
    ssl_forced: Option<bool>,
    /// Default: whether `certificate_id` is set.
    http2_support: Option<bool>,
    #[serde(default)]
    hsts_enabled: bool,
    #[serde(default)]
    hsts_subdomains: bool,
    #[serde(default = "super::yes")]
    block_exploits: bool,
    #[serde(default = "super::yes")]
    allow_websocket_upgrade: bool,
    #[serde(default)]
    caching_enabled: bool,
    #[serde(default)]
    advanced_config: String,
}

impl NpmFile {
    /// What NPM forwards to.
    pub(super) fn forward(&self) -> Address {
        self.forward.unwrap_or(Address::Name)
    }

    /// The settings, checked; every problem goes to `problems` with its key. `base` is the
    /// config file's directory (for `password_file`).
    pub(super) fn resolve(&self, base: &std::path::Path, problems: &mut Vec<String>) -> Option<NpmSettings> {
        let url = super::api_url("npm", self.url.as_deref(), problems);
        if self.email.is_none() {
            problems.push("proxy.email: required for kind = \"npm\" (the NPM login)".into());
        }
        let password = match crate::secret::SecretSource::from_keys(
            "proxy.password",
            self.password_env.as_ref(),
            self.password_file.as_ref(),
            base,
        ) {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                problems.push("proxy.password_env or proxy.password_file: required for kind = \"npm\"".into());
                None
            }
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let with_certificate = self.certificate_id.is_some();
        Some(NpmSettings {
            url: url?,
            email: self.email.clone()?,
            password: password?,
            timeout: self.timeout,
            forward: self.forward(),
            certificate_id: self.certificate_id,
            ssl_forced: self.ssl_forced.unwrap_or(with_certificate),
            http2_support: self.http2_support.unwrap_or(with_certificate),
            hsts_enabled: self.hsts_enabled,
            hsts_subdomains: self.hsts_subdomains,
            block_exploits: self.block_exploits,
            allow_websocket_upgrade: self.allow_websocket_upgrade,
            caching_enabled: self.caching_enabled,
            advanced_config: self.advanced_config.clone(),
        })
    }
}

/// NPM's settings, resolved.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools, reason = "mirrors NPM's own host flags one to one")]
pub struct NpmSettings {
    /// Base URL, e.g. `http://127.0.0.1:81`.
    pub url: String,
    /// Login identity.
    pub email: String,
    /// Where the password comes from (read when the proxy is built).
    pub password: crate::secret::SecretSource,
    /// Per-request timeout.
    pub timeout: Duration,
    /// What NPM forwards to.
    pub forward: Address,
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

/// The `meta` key that marks a host as tiny-forge's.
pub const MARKER: &str = "tiny_forge_managed";
/// The `meta` key naming the state file that made the host.
const STATE_KEY: &str = "tiny_forge_state";
/// The `meta` key naming the slot the host serves (`project/stage/tag`).
const SLOT_KEY: &str = "tiny_forge_slot";

/// NPM's JWT; its `Debug` never shows the value.
#[derive(Clone)]
struct Token {
    value: String,
    expires: SystemTime,
    /// Refresh when less than this is left.
    margin: Duration,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("value", &"****").field("expires", &self.expires).finish_non_exhaustive()
    }
}

/// The NPM backend.
#[derive(Debug)]
pub struct NpmProxy {
    settings: NpmSettings,
    password: Secret,
    client: reqwest::Client,
    token: RefCell<Option<Token>>,
}

/// A raw answer: status and JSON body (`Null` when not JSON).
type Answer = (u16, Value);

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().map_or_else(|| body.to_string(), str::to_owned)
}

fn is_expired(answer: &Answer) -> bool {
    answer.0 == 400 && answer.1["error"]["message"] == "Token has expired"
}

impl NpmProxy {
    /// A client for `settings`, with the password already read.
    #[must_use]
    pub fn new(settings: NpmSettings, password: Secret, client: reqwest::Client) -> Self {
        Self { settings, password, client, token: RefCell::new(None) }
    }

    fn unreachable(&self, e: reqwest::Error) -> ProxyError {
        super::transport_error(&self.settings.url, self.settings.timeout, e)
    }

    /// One HTTP exchange, no auth logic.
    async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, ProxyError> {
        let mut req =
            self.client.request(method, format!("{}/api{path}", self.settings.url)).timeout(self.settings.timeout);
        if let Some(t) = bearer {
            req = req.header(reqwest::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    fn keep_token(&self, body: &Value) -> Result<String, ProxyError> {
        if body["requires_2fa"] == true {
            return Err(ProxyError::Auth {
                message: format!(
                    "user {} has two-factor authentication; use an NPM user without it",
                    self.settings.email
                ),
            });
        }
        let (Some(value), Some(expires)) = (body["token"].as_str(), body["expires"].as_str()) else {
            return Err(ProxyError::Protocol {
                op: "login",
                host: crate::fmt::redact_url(&self.settings.url),
                message: "no token in the answer".into(),
            });
        };
        let expires =
            humantime::parse_rfc3339_weak(expires).unwrap_or_else(|_| SystemTime::now() + Duration::from_secs(3600));
        let lifetime = expires.duration_since(SystemTime::now()).unwrap_or_default();
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        *self.token.borrow_mut() = Some(Token { value: value.to_owned(), expires, margin });
        Ok(value.to_owned())
    }

    async fn login(&self) -> Result<String, ProxyError> {
        *self.token.borrow_mut() = None;
        let body = json!({"identity": self.settings.email, "secret": self.password.expose()});
        let (status, answer) = self.send(Method::POST, "/tokens", None, Some(&body)).await?;
        match status {
            200 => self.keep_token(&answer),
            400 => Err(ProxyError::Auth { message: message(&answer) }),
            _ => Err(ProxyError::Refused {
                op: "login",
                host: self.settings.email.clone(),
                status,
                message: message(&answer),
            }),
        }
    }

    /// A token good for the next call: the kept one, refreshed near its end, or a new login.
    async fn bearer(&self) -> Result<String, ProxyError> {
        let kept = self.token.borrow().clone();
        match kept {
            Some(t) if SystemTime::now() + t.margin < t.expires => Ok(t.value),
            Some(t) if SystemTime::now() < t.expires => {
                match self.send(Method::GET, "/tokens", Some(&t.value), None).await {
                    Ok((200, body)) => self.keep_token(&body),
                    _ => self.login().await,
                }
            }
            _ => self.login().await,
        }
    }

    /// An authenticated exchange; an expired token means one new login and one retry.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer, ProxyError> {
        let token = self.bearer().await?;
        let answer = self.send(method.clone(), path, Some(&token), body).await?;
        if !is_expired(&answer) {
            return Ok(answer);
        }
        let token = self.login().await?;
        self.send(method, path, Some(&token), body).await
    }

    fn create_body(&self, domain: &str, marker: &Marker, target: &Target, access_list: u64) -> Value {
        let s = &self.settings;
        let mut body = json!({
            "access_list_id": access_list,
            "domain_names": [domain.to_ascii_lowercase()],
            "forward_scheme": "http",
            "forward_host": target.host,
            "forward_port": target.port,
            "block_exploits": s.block_exploits,
            "allow_websocket_upgrade": s.allow_websocket_upgrade,
            "caching_enabled": s.caching_enabled,
            "advanced_config": s.advanced_config,
            "meta": marker_meta(marker),
        });
        if let Some(cert) = s.certificate_id {
            body["certificate_id"] = json!(cert);
            body["ssl_forced"] = json!(s.ssl_forced);
            body["http2_support"] = json!(s.http2_support);
            body["hsts_enabled"] = json!(s.hsts_enabled);
            body["hsts_subdomains"] = json!(s.hsts_subdomains);
        }
        body
    }

    /// Every host NPM lists (it does not paginate).
    async fn list_hosts(&self) -> Result<Vec<Value>, ProxyError> {
        let (status, body) = self.call(Method::GET, "/nginx/proxy-hosts", None).await?;
        match (status, body) {
            (200, Value::Array(list)) => Ok(list),
            (200, other) => Err(ProxyError::Protocol {
                op: "list",
                host: "proxy hosts".into(),
                message: format!("not a list: {other}"),
            }),
            (status, body) => {
                Err(ProxyError::Refused { op: "list", host: "proxy hosts".into(), status, message: message(&body) })
            }
        }
    }
}

/// In a host list as NPM answers it (any JSON, really), the host serving `domain`.
fn matching_host(list: &Value, domain: &str) -> Option<Value> {
    list.as_array()?
        .iter()
        .find(|h| {
            h["domain_names"]
                .as_array()
                .is_some_and(|names| names.iter().any(|n| n.as_str().is_some_and(|n| n.eq_ignore_ascii_case(domain))))
        })
        .cloned()
}

fn host_id(v: &Value) -> Option<String> {
    v["id"].as_u64().map(|id| id.to_string())
}

/// NPM's `access_list_id` for `access` (0: public).
fn access_list(domain: &str, access: &HostAccess) -> Result<u64, ProxyError> {
    match access {
        HostAccess::Public => Ok(0),
        HostAccess::AccessList(id) => Ok(*id),
        HostAccess::BasicAuth { .. } | HostAccess::Unreadable(_) => Err(ProxyError::Upstream {
            host: domain.to_owned(),
            message: "access.basic_auth is for Caddy; with NPM use access = { npm_access_list_id = N }".into(),
        }),
    }
}

/// Our mark as `meta` keys.
fn marker_meta(marker: &Marker) -> Value {
    json!({ MARKER: true, STATE_KEY: marker.state, SLOT_KEY: marker.slot })
}

/// A host as NPM answers it, in our words; `domain` is the name it was found by.
fn view(h: &Value, domain: &str) -> Option<HostView> {
    let meta = &h["meta"];
    let owner = match (meta[MARKER] == true, meta[STATE_KEY].as_str(), meta[SLOT_KEY].as_str()) {
        (true, Some(state), Some(slot)) => Owner::Marked(Marker { state: state.to_owned(), slot: slot.to_owned() }),
        (true, _, _) => Owner::Legacy,
        (false, _, _) => Owner::Unmarked,
    };
    let target = match (h["forward_host"].as_str(), h["forward_port"].as_u64().and_then(|p| u16::try_from(p).ok())) {
        (Some(host), Some(port)) => Some(Target { host: host.to_owned(), port }),
        _ => None,
    };
    let problem = if meta["nginx_online"] == false {
        Some(format!(
            "nginx refused its configuration: {}",
            meta["nginx_err"].as_str().unwrap_or("no detail").trim().replace('\n', " | ")
        ))
    } else if h["enabled"] == false {
        Some("the host is disabled in NPM".to_owned())
    } else {
        None
    };
    let access = match h["access_list_id"].as_u64() {
        Some(id) if id > 0 => HostAccess::AccessList(id),
        _ => HostAccess::Public,
    };
    Some(HostView { id: host_id(h)?, domain: domain.to_ascii_lowercase(), owner, target, problem, access })
}

impl Proxy for NpmProxy {
    fn target(&self, domain: &str, upstream: &Upstream) -> Result<Target, ProxyError> {
        let host = match self.settings.forward {
            Address::Name => upstream.name.clone(),
            Address::Ip => upstream
                .ip
                .ok_or_else(|| ProxyError::Upstream {
                    host: domain.to_owned(),
                    message: format!("container {} has no IP address to forward to", upstream.name),
                })?
                .to_string(),
        };
        Ok(Target { host, port: upstream.port })
    }

    fn url(&self, domain: &str, _: &Upstream) -> String {
        let scheme = if self.settings.certificate_id.is_some() && self.settings.ssl_forced { "https" } else { "http" };
        format!("{scheme}://{}", domain.to_ascii_lowercase())
    }

    async fn find(&self, domain: &str) -> ProxyLook<HostView> {
        match self.list_hosts().await {
            Ok(hosts) => {
                Look::from_result(Ok(matching_host(&Value::Array(hosts), domain).and_then(|h| view(&h, domain))))
            }
            Err(e) => Look::Unknown(e),
        }
    }

    async fn list_marked(&self) -> Result<Vec<HostView>, ProxyError> {
        Ok(self
            .list_hosts()
            .await?
            .iter()
            .filter(|h| h["meta"][MARKER] == true)
            .filter_map(|h| view(h, h["domain_names"][0].as_str()?))
            .collect())
    }

    async fn create(
        &self,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<String, ProxyError> {
        let body = self.create_body(domain, marker, target, access_list(domain, access)?);
        let (status, answer) = self.call(Method::POST, "/nginx/proxy-hosts", Some(&body)).await?;
        if status != 201 {
            return Err(ProxyError::Refused {
                op: "create",
                host: domain.to_owned(),
                status,
                message: message(&answer),
            });
        }
        host_id(&answer).ok_or_else(|| ProxyError::Protocol {
            op: "create",
            host: domain.to_owned(),
            message: "no integer id in the created host".into(),
        })
    }

    async fn update(
        &self,
        id: &str,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<(), ProxyError> {
        // A PUT with `meta` replaces it whole (NPM merges its nginx keys back in).
        let body = json!({
            "forward_host": target.host,
            "forward_port": target.port,
            "access_list_id": access_list(domain, access)?,
            "meta": marker_meta(marker),
        });
        let (status, answer) = self.call(Method::PUT, &format!("/nginx/proxy-hosts/{id}"), Some(&body)).await?;
        match status {
            200 => Ok(()),
            _ => Err(ProxyError::Refused {
                op: "update",
                host: format!("{domain} (id {id})"),
                status,
                message: message(&answer),
            }),
        }
    }

    async fn delete(&self, id: &str, domain: &str) -> Result<Deleted, ProxyError> {
        let (status, answer) = self.call(Method::DELETE, &format!("/nginx/proxy-hosts/{id}"), None).await?;
        match status {
            200 => Ok(Deleted::Deleted),
            404 => Ok(Deleted::AlreadyGone),
            _ => Err(ProxyError::Refused {
                op: "delete",
                host: format!("{domain} (id {id})"),
                status,
                message: message(&answer),
            }),
        }
    }

    async fn check(&self) -> Result<String, ProxyError> {
        self.login().await?;
        let list = self.list_hosts().await?;
        let hosts = list.len();
        let ours = list.iter().filter(|h| h["meta"][MARKER] == true).count();
        Ok(format!(
            "logged in to {} as {}; {hosts} proxy hosts, {ours} of them tiny-forge's",
            crate::fmt::redact_url(&self.settings.url),
            self.settings.email
        ))
    }
}

#[cfg(test)]
mod tests {
    /// Adversarial review L12: the JWT never shows in `Debug`.
    #[test]
    fn a_token_s_debug_never_shows_its_value() {
        let t = super::Token {
            value: "eyJhbGciOiJIUzI1NiJ9.secret".into(),
            expires: std::time::SystemTime::UNIX_EPOCH,
            margin: std::time::Duration::ZERO,
        };
        assert!(!format!("{t:?}").contains("eyJ"));
    }

    use proptest::prelude::*;

    use super::*;
    use crate::config::SecretSource;

    fn proxy() -> NpmProxy {
        let settings = NpmSettings {
            url: "http://127.0.0.1:9".into(),
            email: "a@b.c".into(),
            password: SecretSource::Env("X".into()),
            timeout: Duration::from_secs(1),
            forward: Address::Name,
            certificate_id: None,
            ssl_forced: false,
            http2_support: false,
            hsts_enabled: false,
            hsts_subdomains: false,
            block_exploits: true,
            allow_websocket_upgrade: true,
            caching_enabled: false,
            advanced_config: String::new(),
        };
        NpmProxy::new(settings, Secret::new("pw".into()), crate::http::client().unwrap())
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(
                    "(token|expires|id|domain_names|meta|error|message|requires_2fa|[a-z]{1,8})",
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn a_login_answer_is_read_for_token_and_expiry() {
        let p = proxy();
        let t = p.keep_token(&json!({"token": "abc", "expires": "2099-01-01T00:00:00.000Z"})).unwrap();
        assert_eq!(t, "abc");
        assert!(p.keep_token(&json!({"requires_2fa": true, "challenge_token": "x"})).is_err());
        assert!(p.keep_token(&json!({"nothing": 1})).is_err());
    }

    proptest! {
        #[test]
        fn any_npm_answer_is_read_without_panicking(body in any_json(), domain in "[a-z.]{1,20}") {
            let p = proxy();
            let _ = p.keep_token(&body);
            let _ = message(&body);
            let _ = is_expired(&(400, body.clone()));
            let _ = host_id(&body);
            let _ = matching_host(&body, &domain);
            let _ = view(&body, &domain);
        }
    }
}
