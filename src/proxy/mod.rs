//! The proxy seam: publish a slot's host name to a container, switch it to another container,
//! take it down. Backends: [`NoProxy`] (the URL is the container's own address); NPM and Caddy
//! plug in beside it through [`AnyProxy`].

use std::net::IpAddr;

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

/// A published host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The backend's id for the host, when the backend keeps hosts (`None` for [`NoProxy`]).
    pub host_id: Option<String>,
    /// Where users reach the instance.
    pub url: String,
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
    /// The proxy accepted the host but its server refused the configuration.
    #[error("proxy host {host} is offline: {message}")]
    Offline {
        /// Host name.
        host: String,
        /// The server's error.
        message: String,
    },
}

/// A reverse proxy.
#[allow(async_fn_in_trait, reason = "the deploy runs on one thread; we never need Send futures")]
pub trait Proxy {
    /// Publishes `domain` to `upstream`; the slot has no host yet. An orphaned host of ours with
    /// this name may be adopted.
    ///
    /// # Errors
    /// [`ProxyError`] when the proxy refuses or is unreachable.
    async fn create(&self, domain: &str, upstream: &Upstream) -> Result<Published, ProxyError>;

    /// Points the existing host `host_id` at `upstream` (blue/green switch).
    ///
    /// # Errors
    /// [`ProxyError`] when the proxy refuses or is unreachable.
    async fn switch(&self, host_id: Option<&str>, domain: &str, upstream: &Upstream) -> Result<Published, ProxyError>;

    /// Deletes the host; already gone counts as done.
    ///
    /// # Errors
    /// [`ProxyError`] when the proxy refuses or is unreachable.
    async fn delete(&self, host_id: &str, domain: &str) -> Result<Deleted, ProxyError>;
}

/// No proxy: the URL is the container's address on the Docker network.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProxy;

impl NoProxy {
    fn url(upstream: &Upstream) -> String {
        match upstream.ip {
            Some(IpAddr::V6(ip)) => format!("http://[{ip}]:{}", upstream.port),
            Some(ip) => format!("http://{ip}:{}", upstream.port),
            None => format!("http://{}:{}", upstream.name, upstream.port),
        }
    }
}

impl Proxy for NoProxy {
    async fn create(&self, _: &str, upstream: &Upstream) -> Result<Published, ProxyError> {
        Ok(Published { host_id: None, url: Self::url(upstream) })
    }

    async fn switch(&self, _: Option<&str>, _: &str, upstream: &Upstream) -> Result<Published, ProxyError> {
        Ok(Published { host_id: None, url: Self::url(upstream) })
    }

    async fn delete(&self, _: &str, _: &str) -> Result<Deleted, ProxyError> {
        Ok(Deleted::AlreadyGone)
    }
}

/// The backend chosen by config.
#[derive(Debug)]
pub enum AnyProxy {
    /// `kind = "none"`.
    None(NoProxy),
}

impl Proxy for AnyProxy {
    async fn create(&self, domain: &str, upstream: &Upstream) -> Result<Published, ProxyError> {
        match self {
            Self::None(p) => p.create(domain, upstream).await,
        }
    }

    async fn switch(&self, host_id: Option<&str>, domain: &str, upstream: &Upstream) -> Result<Published, ProxyError> {
        match self {
            Self::None(p) => p.switch(host_id, domain, upstream).await,
        }
    }

    async fn delete(&self, host_id: &str, domain: &str) -> Result<Deleted, ProxyError> {
        match self {
            Self::None(p) => p.delete(host_id, domain).await,
        }
    }
}
