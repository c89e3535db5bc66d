//! [`Proxy`] over Caddy's admin API. Each slot is one route in an HTTP server of Caddy's config,
//! tagged `@id: "tiny-forge-<host name>"`, so that it can be read, switched and deleted by id:
//!
//! ```json
//! {"@id": "tiny-forge-stage-dev-shop.example.com",
//!  "match": [{"host": ["stage-dev-shop.example.com"]}],
//!  "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "172.18.0.2:8080"}]}],
//!  "terminal": true}
//! ```
//!
//! A route with our `@id` is ours (adopted when no instance owns it); a route of anyone else's
//! that matches the same host name is refused and never touched.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Deleted, Proxy, ProxyError, Upstream};
use crate::config::ForwardTo;

/// The Caddy backend.
#[derive(Debug)]
pub struct CaddyProxy {
    admin_url: String,
    server: String,
    timeout: std::time::Duration,
    forward: ForwardTo,
    client: reqwest::Client,
}

/// The `@id` of a host name's route.
fn route_id(domain: &str) -> String {
    format!("tiny-forge-{}", domain.to_ascii_lowercase())
}

impl CaddyProxy {
    /// A client for the admin endpoint `admin_url`, managing routes of the HTTP server `server`.
    #[must_use]
    pub fn new(
        admin_url: String,
        server: String,
        timeout: std::time::Duration,
        forward: ForwardTo,
        client: reqwest::Client,
    ) -> Self {
        Self { admin_url, server, timeout, forward, client }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Value), ProxyError> {
        let mut req = self.client.request(method, format!("{}{path}", self.admin_url)).timeout(self.timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        let unreachable = |e: reqwest::Error| ProxyError::Unreachable {
            url: super::redact(&self.admin_url),
            message: if e.is_timeout() { "no answer in time".into() } else { super::transport(e) },
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(unreachable)?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text.trim().to_owned()))))
    }

    fn dial(&self, domain: &str, upstream: &Upstream) -> Result<String, ProxyError> {
        match (self.forward, upstream.ip) {
            (ForwardTo::Name, _) => Ok(format!("{}:{}", upstream.name, upstream.port)),
            (ForwardTo::Ip, Some(ip)) => Ok(std::net::SocketAddr::new(ip, upstream.port).to_string()),
            (ForwardTo::Ip, None) => Err(ProxyError::Upstream {
                host: domain.to_owned(),
                message: format!("container {} has no IP address to forward to", upstream.name),
            }),
        }
    }

    fn refused(op: &'static str, domain: &str, status: u16, body: &Value) -> ProxyError {
        let message = body["error"].as_str().map_or_else(|| body.to_string(), str::to_owned);
        ProxyError::Refused { op, host: domain.to_owned(), status, message }
    }

    fn routes_path(&self) -> String {
        format!("/config/apps/http/servers/{}/routes", self.server)
    }
}

fn matches_host(route: &Value, domain: &str) -> bool {
    route["match"].as_array().is_some_and(|ms| {
        ms.iter().any(|m| {
            m["host"]
                .as_array()
                .is_some_and(|hs| hs.iter().any(|h| h.as_str().is_some_and(|h| h.eq_ignore_ascii_case(domain))))
        })
    })
}

impl Proxy for CaddyProxy {
    async fn create(&self, domain: &str, upstream: &Upstream) -> Result<Option<String>, ProxyError> {
        let id = route_id(domain);
        let dial = self.dial(domain, upstream)?;
        let (status, _) = self.send(Method::GET, &format!("/id/{id}"), None).await?;
        if status == 200 {
            // Ours, but no instance owns it: adopt it.
            self.switch(&id, domain, upstream).await?;
            return Ok(Some(id));
        }
        let (status, routes) = self.send(Method::GET, &self.routes_path(), None).await?;
        if status != 200 {
            return Err(ProxyError::Refused {
                op: "read routes",
                host: domain.to_owned(),
                status,
                message: format!("Caddy has no HTTP server `{}` ({routes}); set proxy.server", self.server),
            });
        }
        if let Some(foreign) = routes.as_array().and_then(|rs| rs.iter().find(|r| matches_host(r, domain))) {
            return Err(ProxyError::Foreign {
                host: domain.to_owned(),
                id: foreign["@id"].as_str().unwrap_or("(no @id)").to_owned(),
            });
        }
        let route = json!({
            "@id": id,
            "match": [{"host": [domain.to_ascii_lowercase()]}],
            "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": dial}]}],
            "terminal": true,
        });
        let (status, body) = self.send(Method::POST, &self.routes_path(), Some(&route)).await?;
        if status != 200 {
            return Err(Self::refused("create", domain, status, &body));
        }
        Ok(Some(id))
    }

    async fn switch(&self, host_id: &str, domain: &str, upstream: &Upstream) -> Result<(), ProxyError> {
        let upstreams = json!([{"dial": self.dial(domain, upstream)?}]);
        let (status, body) =
            self.send(Method::PATCH, &format!("/id/{host_id}/handle/0/upstreams"), Some(&upstreams)).await?;
        if status != 200 {
            return Err(Self::refused("switch", domain, status, &body));
        }
        Ok(())
    }

    async fn verify(&self, host_id: Option<&str>, domain: &str, upstream: &Upstream) -> Result<String, ProxyError> {
        let url = format!("http://{}", domain.to_ascii_lowercase());
        let Some(id) = host_id else { return Ok(url) };
        let (status, route) = self.send(Method::GET, &format!("/id/{id}"), None).await?;
        if status != 200 {
            return Err(Self::refused("read back", domain, status, &route));
        }
        let dial = self.dial(domain, upstream)?;
        if route["handle"][0]["upstreams"][0]["dial"] != dial.as_str() {
            return Err(ProxyError::Offline {
                host: domain.to_owned(),
                message: format!("its route does not dial {dial}: {route}"),
            });
        }
        Ok(url)
    }

    async fn delete(&self, host_id: &str, domain: &str) -> Result<Deleted, ProxyError> {
        let (status, body) = self.send(Method::DELETE, &format!("/id/{host_id}"), None).await?;
        match status {
            200 => Ok(Deleted::Deleted),
            404 => Ok(Deleted::AlreadyGone),
            // Caddy answers 500 "unknown object ID" for an id it does not know.
            500 if body.to_string().contains("unknown object ID") => Ok(Deleted::AlreadyGone),
            _ => Err(Self::refused("delete", domain, status, &body)),
        }
    }

    async fn list_managed(&self) -> Result<Vec<(String, String)>, ProxyError> {
        let (status, routes) = self.send(Method::GET, &self.routes_path(), None).await?;
        if status != 200 {
            return Err(Self::refused("read routes", &self.server, status, &routes));
        }
        Ok(routes
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let id = r["@id"].as_str()?;
                let domain = id.strip_prefix("tiny-forge-")?;
                Some((id.to_owned(), domain.to_owned()))
            })
            .collect())
    }

    async fn check(&self) -> Result<String, ProxyError> {
        let (status, routes) = self.send(Method::GET, &self.routes_path(), None).await?;
        if status != 200 {
            return Err(ProxyError::Refused {
                op: "read routes",
                host: self.server.clone(),
                status,
                message: format!("Caddy has no HTTP server `{}`; set proxy.server", self.server),
            });
        }
        let all = routes.as_array().map_or(0, Vec::len);
        let ours = routes.as_array().map_or(0, |r| {
            r.iter().filter(|r| r["@id"].as_str().is_some_and(|i| i.starts_with("tiny-forge-"))).count()
        });
        Ok(format!(
            "Caddy at {} server `{}`: {all} routes, {ours} of them tiny-forge's",
            super::redact(&self.admin_url),
            self.server
        ))
    }
}
