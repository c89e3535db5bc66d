//! [`Proxy`] over Caddy's admin API. Each slot is one route in an HTTP server of Caddy's config,
//! tagged `@id: "tiny-forge-<host name>"` and marked by a `vars` handler that names the state
//! file and the slot:
//!
//! ```json
//! {"@id": "tiny-forge-stage-dev-shop.example.com",
//!  "match": [{"host": ["stage-dev-shop.example.com"]}],
//!  "handle": [{"handler": "vars", "tiny_forge_state": "3f…", "tiny_forge_slot": "shop/dev/latest"},
//!             {"handler": "reverse_proxy", "upstreams": [{"dial": "172.18.0.2:8080"}]}],
//!  "terminal": true}
//! ```
//!
//! Routes are tried in order, so ours go before the first route that would catch the host name
//! anyway: one without a host matcher (a hand-written catch-all) or one whose host matcher
//! covers the name (`*.example.com`). The read-back reports a route of ours that such a route
//! shadows. A server without a `routes` key gets one. Caddy answers 404 (older versions 500
//! "unknown object ID") for an `@id` it does not know.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Deleted, HostAccess, HostView, Marker, Owner, Proxy, ProxyError, ProxyLook, Target, Upstream};
use crate::domain::Address;
use crate::look::Look;
use crate::secret::Secret;

/// The `vars` key naming the state file that made the route.
const STATE_KEY: &str = "tiny_forge_state";
/// The `vars` key naming the slot the route serves.
const SLOT_KEY: &str = "tiny_forge_slot";
/// Prefix of the `@id` of every route tiny-forge makes.
const ID_PREFIX: &str = "tiny-forge-";

/// How often a call is tried when connecting to the admin API fails (nothing was sent).
const CONNECT_ATTEMPTS: u32 = 4;

/// `[proxy]` with `kind = "caddy"`, as the file has it (every key of Caddy's, and only Caddy's).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaddyFile {
    /// Caddy's admin endpoint, e.g. `http://127.0.0.1:2019`. Required.
    url: Option<String>,
    /// Per-request timeout of the admin API. Default: 10s.
    #[serde(default = "super::default_timeout", with = "humantime_serde")]
    timeout: std::time::Duration,
    /// What Caddy forwards to. Default: the container's IP address (Caddy usually runs on the
    /// host, where container names do not resolve).
    forward: Option<Address>,
    /// The HTTP server in Caddy's config whose routes we manage. Default: `srv0`.
    #[serde(default = "default_server")]
    server: String,
}

fn default_server() -> String {
    "srv0".into()
}

impl CaddyFile {
    /// What Caddy forwards to.
    pub(super) fn forward(&self) -> Address {
        self.forward.unwrap_or(Address::Ip)
    }

    /// The settings, checked; every problem goes to `problems` with its key.
    pub(super) fn resolve(&self, problems: &mut Vec<String>) -> Option<CaddySettings> {
        Some(CaddySettings {
            admin_url: super::api_url("caddy", self.url.as_deref(), problems)?,
            server: self.server.clone(),
            timeout: self.timeout,
            forward: self.forward(),
        })
    }
}

/// Caddy's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaddySettings {
    /// Admin endpoint, e.g. `http://127.0.0.1:2019`.
    pub admin_url: String,
    /// The HTTP server in Caddy's config whose routes we manage (default `srv0`).
    pub server: String,
    /// Per-request timeout.
    pub timeout: std::time::Duration,
    /// What Caddy forwards to.
    pub forward: Address,
}

/// The Caddy backend.
#[derive(Debug)]
pub struct CaddyProxy {
    admin_url: String,
    server: String,
    timeout: std::time::Duration,
    forward: Address,
    client: reqwest::Client,
}

/// The `@id` of a host name's route.
fn route_id(domain: &str) -> String {
    format!("{ID_PREFIX}{}", domain.to_ascii_lowercase())
}

/// Does Caddy's host pattern `pattern` match `domain`? (`*` stands for one label.)
fn host_pattern_matches(pattern: &str, domain: &str) -> bool {
    let (p, d) = (pattern.to_ascii_lowercase(), domain.to_ascii_lowercase());
    let (pl, dl): (Vec<&str>, Vec<&str>) = (p.split('.').collect(), d.split('.').collect());
    pl.len() == dl.len() && pl.iter().zip(&dl).all(|(p, d)| *p == "*" || p == d)
}

/// The host patterns of a route's matchers; `None` when some matcher set has no host matcher
/// (so the route can match any host).
fn host_patterns(route: &Value) -> Option<Vec<String>> {
    let sets = route["match"].as_array().filter(|s| !s.is_empty())?;
    let mut out = Vec::new();
    for set in sets {
        let hosts = set["host"].as_array()?;
        out.extend(hosts.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    Some(out)
}

/// Would `route` catch requests for `domain` (it has no host matcher, or one that covers it)?
fn catches(route: &Value, domain: &str) -> bool {
    host_patterns(route).is_none_or(|ps| ps.iter().any(|p| host_pattern_matches(p, domain)))
}

/// Is `route` the route of `domain` (our `@id`, or a host matcher naming it exactly)?
fn is_route_of(route: &Value, domain: &str) -> bool {
    route["@id"].as_str() == Some(route_id(domain).as_str())
        || host_patterns(route).is_some_and(|ps| ps.iter().any(|p| p.eq_ignore_ascii_case(domain)))
}

fn parse_dial(dial: &str) -> Option<Target> {
    let (host, port) = dial.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(Target { host: host.to_owned(), port: port.parse().ok()? })
}

fn dial(target: &Target) -> String {
    if target.host.contains(':') { format!("[{}]:{}", target.host, target.port) } else { target.to_string() }
}

/// A route in our words; `routes` are the server's routes, `i` its index among them.
fn view(routes: &[Value], i: usize, domain: &str) -> HostView {
    let route = &routes[i];
    let handlers = route["handle"].as_array().map(Vec::as_slice).unwrap_or_default();
    let vars = handlers.iter().find(|h| h["handler"] == "vars");
    let id = route["@id"].as_str().unwrap_or("(no @id)").to_owned();
    let owner = match vars.map(|v| (v[STATE_KEY].as_str(), v[SLOT_KEY].as_str())) {
        Some((Some(state), Some(slot))) => Owner::Marked(Marker { state: state.to_owned(), slot: slot.to_owned() }),
        _ if id.starts_with(ID_PREFIX) => Owner::Legacy,
        _ => Owner::Unmarked,
    };
    let target = handlers
        .iter()
        .find(|h| h["handler"] == "reverse_proxy")
        .and_then(|h| h["upstreams"][0]["dial"].as_str())
        .and_then(parse_dial);
    let problem = routes[..i]
        .iter()
        .position(|r| catches(r, domain))
        .map(|j| format!("route {j} of the server, before it, catches {domain} first: {}", routes[j]["match"]));
    let access = handlers
        .iter()
        .find(|h| h["handler"] == "authentication")
        .and_then(|h| h["providers"]["http_basic"]["accounts"][0].as_object().cloned())
        .map_or(HostAccess::Public, |a| HostAccess::BasicAuth {
            user: a.get("username").and_then(Value::as_str).unwrap_or_default().to_owned(),
            hash: Secret::new(a.get("password").and_then(Value::as_str).unwrap_or_default().to_owned()),
        });
    HostView { id, domain: domain.to_ascii_lowercase(), owner, target, problem, access }
}

impl CaddyProxy {
    /// A client for `settings`.
    #[must_use]
    pub fn from_settings(settings: &CaddySettings, client: reqwest::Client) -> Self {
        Self::new(settings.admin_url.clone(), settings.server.clone(), settings.timeout, settings.forward, client)
    }

    /// A client for the admin endpoint `admin_url`, managing routes of the HTTP server `server`.
    #[must_use]
    pub fn new(
        admin_url: String,
        server: String,
        timeout: std::time::Duration,
        forward: Address,
        client: reqwest::Client,
    ) -> Self {
        Self { admin_url, server, timeout, forward, client }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Value), ProxyError> {
        let failed = |e| super::transport_error(&self.admin_url, self.timeout, e);
        let mut attempt = 0;
        let resp = loop {
            // A fresh connection per call: Caddy's admin server closes its idle connections when a
            // config change reloads it, and a request sent on such a pooled connection is lost
            // ("connection closed before message completed"; seen in the contract suite).
            let mut req = self
                .client
                .request(method.clone(), format!("{}{path}", self.admin_url))
                .header(reqwest::header::CONNECTION, "close")
                .timeout(self.timeout);
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(resp) => break resp,
                // Nothing was sent. Caddy restarts its admin server on every config change, so
                // a connection in that moment is refused or reset (seen in CI, right after our
                // own change): try again, a few times.
                Err(e) if e.is_connect() && attempt < CONNECT_ATTEMPTS - 1 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => return Err(failed(e)),
            }
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(failed)?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text.trim().to_owned()))))
    }

    fn refused(op: &'static str, domain: &str, status: u16, body: &Value) -> ProxyError {
        let message = body["error"].as_str().map_or_else(|| body.to_string(), str::to_owned);
        ProxyError::Refused { op, host: domain.to_owned(), status, message }
    }

    fn routes_path(&self) -> String {
        format!("/config/apps/http/servers/{}/routes", self.server)
    }

    /// The server's routes (`None`: the server has no `routes` key yet).
    async fn routes(&self) -> Result<Option<Vec<Value>>, ProxyError> {
        let (status, routes) = self.send(Method::GET, &self.routes_path(), None).await?;
        match (status, routes) {
            (200, Value::Array(list)) => Ok(Some(list)),
            (200, Value::Null) => self.server_exists().await.map(|()| None),
            (200, other) => Err(ProxyError::Protocol {
                op: "read routes",
                host: self.server.clone(),
                message: format!("not a list: {other}"),
            }),
            (status, body) => Err(ProxyError::Refused {
                op: "read routes",
                host: self.server.clone(),
                status,
                message: format!("Caddy has no HTTP server `{}` ({body}); set proxy.server", self.server),
            }),
        }
    }

    /// Caddy answers `null` for a missing key at any depth: tell "no routes yet" from "no server".
    async fn server_exists(&self) -> Result<(), ProxyError> {
        let (status, server) =
            self.send(Method::GET, &format!("/config/apps/http/servers/{}", self.server), None).await?;
        if status == 200 && server.is_object() {
            return Ok(());
        }
        Err(ProxyError::Refused {
            op: "read routes",
            host: self.server.clone(),
            status,
            message: format!("Caddy has no HTTP server `{}`; set proxy.server", self.server),
        })
    }

    fn route(domain: &str, marker: &Marker, target: &Target, access: &HostAccess) -> Result<Value, ProxyError> {
        let mut handle = vec![json!({"handler": "vars", STATE_KEY: marker.state, SLOT_KEY: marker.slot})];
        match access {
            HostAccess::Public => {}
            HostAccess::BasicAuth { user, hash } => handle.push(json!({
                "handler": "authentication",
                "providers": {"http_basic": {
                    "accounts": [{"username": user, "password": hash.expose()}],
                    "hash": {"algorithm": "bcrypt"},
                }},
            })),
            HostAccess::AccessList(_) | HostAccess::Unreadable(_) => {
                return Err(ProxyError::Upstream {
                    host: domain.to_owned(),
                    message: "access.npm_access_list_id is for NPM; with Caddy use access = { basic_auth = { … } }"
                        .into(),
                });
            }
        }
        handle.push(json!({"handler": "reverse_proxy", "upstreams": [{"dial": dial(target)}]}));
        Ok(json!({
            "@id": route_id(domain),
            "match": [{"host": [domain.to_ascii_lowercase()]}],
            "handle": handle,
            "terminal": true,
        }))
    }

    /// Puts `route` where it matches first: before the first route that would catch `domain`.
    async fn insert(&self, routes: Option<&[Value]>, domain: &str, route: &Value) -> Result<(), ProxyError> {
        let (status, body) = match routes {
            None => self.send(Method::PUT, &self.routes_path(), Some(&json!([route]))).await?,
            Some(rs) => match rs.iter().position(|r| catches(r, domain)) {
                Some(i) => self.send(Method::PUT, &format!("{}/{i}", self.routes_path()), Some(route)).await?,
                None => self.send(Method::POST, &self.routes_path(), Some(route)).await?,
            },
        };
        if status != 200 {
            return Err(Self::refused("create", domain, status, &body));
        }
        Ok(())
    }
}

impl Proxy for CaddyProxy {
    fn target(&self, domain: &str, upstream: &Upstream) -> Result<Target, ProxyError> {
        match (self.forward, upstream.ip) {
            (Address::Name, _) => Ok(Target { host: upstream.name.clone(), port: upstream.port }),
            (Address::Ip, Some(ip)) => Ok(Target { host: ip.to_string(), port: upstream.port }),
            (Address::Ip, None) => Err(ProxyError::Upstream {
                host: domain.to_owned(),
                message: format!("container {} has no IP address to forward to", upstream.name),
            }),
        }
    }

    fn url(&self, domain: &str, _: &Upstream) -> String {
        format!("http://{}", domain.to_ascii_lowercase())
    }

    async fn find(&self, domain: &str) -> ProxyLook<HostView> {
        let routes = match self.routes().await {
            Ok(r) => r.unwrap_or_default(),
            Err(e) => return Look::Unknown(e),
        };
        Look::from_result(Ok(routes.iter().position(|r| is_route_of(r, domain)).map(|i| view(&routes, i, domain))))
    }

    async fn list_marked(&self) -> Result<Vec<HostView>, ProxyError> {
        let routes = self.routes().await?.unwrap_or_default();
        Ok((0..routes.len())
            .filter_map(|i| {
                let domain = routes[i]["@id"].as_str()?.strip_prefix(ID_PREFIX)?.to_owned();
                Some(view(&routes, i, &domain))
            })
            .collect())
    }

    async fn create(
        &self,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<String, ProxyError> {
        let route = Self::route(domain, marker, target, access)?;
        let routes = self.routes().await?;
        self.insert(routes.as_deref(), domain, &route).await?;
        Ok(route_id(domain))
    }

    async fn update(
        &self,
        id: &str,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<(), ProxyError> {
        let route = Self::route(domain, marker, target, access)?;
        let routes = self.routes().await?.unwrap_or_default();
        let at = routes.iter().position(|r| r["@id"].as_str() == Some(id));
        let first_catching = routes.iter().position(|r| catches(r, domain));
        if let (Some(at), Some(first)) = (at, first_catching)
            && first < at
        {
            // Shadowed (a catch-all was put before it): move it in front.
            self.delete(id, domain).await?;
            let routes = self.routes().await?;
            return self.insert(routes.as_deref(), domain, &route).await;
        }
        let (status, body) = self.send(Method::PATCH, &format!("/id/{id}"), Some(&route)).await?;
        if status != 200 {
            return Err(Self::refused("update", domain, status, &body));
        }
        Ok(())
    }

    async fn delete(&self, id: &str, domain: &str) -> Result<Deleted, ProxyError> {
        let (status, body) = self.send(Method::DELETE, &format!("/id/{id}"), None).await?;
        match status {
            200 => Ok(Deleted::Deleted),
            404 => Ok(Deleted::AlreadyGone),
            // Older Caddy answers 500 "unknown object ID" for an id it does not know.
            500 if body.to_string().contains("unknown object ID") => Ok(Deleted::AlreadyGone),
            _ => Err(Self::refused("delete", domain, status, &body)),
        }
    }

    async fn check(&self) -> Result<String, ProxyError> {
        let routes = self.routes().await?.unwrap_or_default();
        let ours = routes.iter().filter(|r| r["@id"].as_str().is_some_and(|i| i.starts_with(ID_PREFIX))).count();
        Ok(format!(
            "Caddy at {} server `{}`: {} routes, {ours} of them tiny-forge's",
            crate::fmt::redact_url(&self.admin_url),
            self.server,
            routes.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Caddy restarts its admin server on every config change: a call in that moment finds the
    /// port closed. Nothing was sent, so the call is made again and gets its answer.
    #[tokio::test]
    async fn a_call_while_the_admin_server_restarts_is_made_again() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            std::thread::sleep(std::time::Duration::from_millis(150));
            let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).unwrap();
            let body = r#"[{"@id":"tiny-forge-a.x","match":[{"host":["a.x"]}],"handle":[]}]"#;
            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        });
        let caddy = CaddyProxy::new(
            format!("http://127.0.0.1:{port}"),
            "srv0".into(),
            std::time::Duration::from_secs(5),
            Address::Ip,
            crate::http::client().unwrap(),
        );
        let found = caddy.find("a.x").await.into_result().expect("an answer after the restart");
        assert!(found.is_some());
        server.join().unwrap();
    }

    #[test]
    fn a_route_without_a_host_matcher_catches_every_host() {
        let catch_all = json!({"handle": [{"handler": "static_response"}]});
        let path_only = json!({"match": [{"path": ["/x"]}], "handle": []});
        let wildcard = json!({"match": [{"host": ["*.test.local"]}]});
        let other = json!({"match": [{"host": ["other.test.local"]}]});
        assert!(catches(&catch_all, "a.test.local"));
        assert!(catches(&path_only, "a.test.local"));
        assert!(catches(&wildcard, "a.test.local"));
        assert!(!catches(&wildcard, "a.b.test.local"));
        assert!(!catches(&other, "a.test.local"));
    }

    #[test]
    fn a_shadowed_route_reads_back_with_a_problem() {
        let marker = Marker { state: "s".into(), slot: "p/d/t".into() };
        let routes = vec![
            json!({"handle": [{"handler": "static_response"}]}),
            json!({"@id": route_id("a.x"), "match": [{"host": ["a.x"]}], "handle": [
                {"handler": "vars", STATE_KEY: "s", SLOT_KEY: "p/d/t"},
                {"handler": "reverse_proxy", "upstreams": [{"dial": "10.0.0.2:8080"}]}]}),
        ];
        let v = view(&routes, 1, "a.x");
        assert_eq!(v.owner, Owner::Marked(marker));
        assert_eq!(v.target, Some(Target { host: "10.0.0.2".into(), port: 8080 }));
        assert!(v.problem.is_some_and(|p| p.contains("route 0")));
    }

    #[test]
    fn dials_round_trip_for_names_and_addresses() {
        for t in [
            Target { host: "tf-a-1".into(), port: 80 },
            Target { host: "10.0.0.2".into(), port: 8080 },
            Target { host: "fd00::2".into(), port: 8080 },
        ] {
            assert_eq!(parse_dial(&dial(&t)), Some(t));
        }
    }
}
