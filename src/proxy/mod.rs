//! The proxy seam: publish a slot's host name to a container, switch it to another container,
//! take it down. Backends: [`NoProxy`] (the URL is the container's own address), [`NpmProxy`]
//! (Nginx Proxy Manager) and [`CaddyProxy`] (Caddy's admin API), chosen through [`AnyProxy`].

mod caddy;
mod npm;

use std::net::IpAddr;

pub use caddy::CaddyProxy;
pub use npm::{MARKER as NPM_MARKER, NpmProxy};

/// `url` without credentials (`http://user:pw@host` → `http://host`), for messages: a proxy URL
/// may hold a password, and nothing prints one.
#[must_use]
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_owned()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(invalid URL)".into(),
    }
}

/// A transport error on one line, without the URL (which may hold credentials).
pub(crate) fn transport(e: reqwest::Error) -> String {
    crate::report::one_line(&e.without_url())
}

/// Where a proxy host forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Container name (resolvable on the Docker network).
    pub name: String,
    /// Container address on the network.
    pub ip: Option<IpAddr>,
    /// Port the app listens on.
    pub port: u16,
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
    /// The proxy's API cannot be reached or did not answer in time.
    #[error("proxy at {url} unreachable: {message}")]
    Unreachable {
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
    /// A host with this name exists and is not tiny-forge's.
    #[error(
        "proxy host {host} (id {id}) already exists and was not created by tiny-forge; delete it or change settings.subdomain"
    )]
    Foreign {
        /// Host name.
        host: String,
        /// Its id.
        id: String,
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
    /// The proxy accepted the host but its server refused the configuration.
    #[error("proxy host {host} is offline: {message}")]
    Offline {
        /// Host name.
        host: String,
        /// The server's error.
        message: String,
    },
}

/// A reverse proxy. The saga calls `create` or `switch`, records what it must undo, then
/// `verify`: a proxy that accepted a change but does not serve it (NPM's `nginx_online: false`)
/// fails the step, and the recorded undo cleans up.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub trait Proxy {
    /// Publishes `domain` to `upstream` for a slot with no host yet; returns the host's id
    /// (`None` for a backend that keeps no hosts). An orphaned host of ours with this name is
    /// adopted; anyone else's is refused with [`ProxyError::Foreign`].
    ///
    /// # Errors
    /// [`ProxyError`] when the proxy refuses or is unreachable.
    async fn create(&self, domain: &str, upstream: &Upstream) -> Result<Option<String>, ProxyError>;

    /// Points the existing host `host_id` at `upstream` (blue/green switch).
    ///
    /// # Errors
    /// [`ProxyError`] when the proxy refuses or is unreachable.
    async fn switch(&self, host_id: &str, domain: &str, upstream: &Upstream) -> Result<(), ProxyError>;

    /// Confirms that the host serves `upstream`; returns the public URL.
    ///
    /// # Errors
    /// [`ProxyError::Offline`] when the proxy does not serve it.
    async fn verify(&self, host_id: Option<&str>, domain: &str, upstream: &Upstream) -> Result<String, ProxyError>;

    /// Deletes the host; already gone counts as done.
    ///
    /// # Errors
    /// [`ProxyError`] when the proxy refuses or is unreachable.
    async fn delete(&self, host_id: &str, domain: &str) -> Result<Deleted, ProxyError>;

    /// Every host that carries tiny-forge's mark, as (host id, host name), for `prune`.
    ///
    /// # Errors
    /// [`ProxyError`] when the proxy refuses or is unreachable.
    async fn list_managed(&self) -> Result<Vec<(String, String)>, ProxyError>;

    /// Logs in and describes what it sees (for `tiny-forge check`).
    ///
    /// # Errors
    /// [`ProxyError`] when it cannot.
    async fn check(&self) -> Result<String, ProxyError>;
}

/// No proxy: the URL is the container's address on the Docker network.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProxy;

impl Proxy for NoProxy {
    async fn create(&self, _: &str, _: &Upstream) -> Result<Option<String>, ProxyError> {
        Ok(None)
    }

    async fn switch(&self, _: &str, _: &str, _: &Upstream) -> Result<(), ProxyError> {
        Ok(())
    }

    async fn verify(&self, _: Option<&str>, _: &str, upstream: &Upstream) -> Result<String, ProxyError> {
        Ok(match upstream.ip {
            Some(IpAddr::V6(ip)) => format!("http://[{ip}]:{}", upstream.port),
            Some(ip) => format!("http://{ip}:{}", upstream.port),
            None => format!("http://{}:{}", upstream.name, upstream.port),
        })
    }

    async fn delete(&self, _: &str, _: &str) -> Result<Deleted, ProxyError> {
        Ok(Deleted::AlreadyGone)
    }

    async fn list_managed(&self) -> Result<Vec<(String, String)>, ProxyError> {
        Ok(Vec::new())
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
    async fn create(&self, domain: &str, upstream: &Upstream) -> Result<Option<String>, ProxyError> {
        delegate!(self, p => p.create(domain, upstream).await)
    }

    async fn switch(&self, host_id: &str, domain: &str, upstream: &Upstream) -> Result<(), ProxyError> {
        delegate!(self, p => p.switch(host_id, domain, upstream).await)
    }

    async fn verify(&self, host_id: Option<&str>, domain: &str, upstream: &Upstream) -> Result<String, ProxyError> {
        delegate!(self, p => p.verify(host_id, domain, upstream).await)
    }

    async fn delete(&self, host_id: &str, domain: &str) -> Result<Deleted, ProxyError> {
        delegate!(self, p => p.delete(host_id, domain).await)
    }

    async fn list_managed(&self) -> Result<Vec<(String, String)>, ProxyError> {
        delegate!(self, p => p.list_managed().await)
    }

    async fn check(&self) -> Result<String, ProxyError> {
        delegate!(self, p => p.check().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_cut_from_urls_shown_in_messages() {
        assert_eq!(redact("http://admin:hunter2@127.0.0.1:81"), "http://127.0.0.1:81");
        assert_eq!(redact("http://127.0.0.1:81"), "http://127.0.0.1:81");
        assert_eq!(redact("https://u:pw@npm.example.com/x"), "https://npm.example.com/x");
    }
}
