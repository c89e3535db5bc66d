//! Every HTTP client tiny-forge uses, one per purpose, all built here (building one installs
//! rustls's `ring` provider, which any reqwest client in the process needs):
//!
//! - [`direct`]: the health prober. Never through a proxy: instances are on our Docker network.
//! - [`outbound`]: proxy APIs (NPM, Caddy) and webhooks. Through the proxy the environment names
//!   ([`ProxyEnv`]: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, except `NO_PROXY` hosts and
//!   loopback), as docker does, since in many CI networks that is the only way out.
//!
//! Registry traffic is the Docker Engine's (it pulls), so it follows the daemon's own proxy
//! settings, not ours. Both clients trust the same roots ([`Trust`]): Mozilla's bundled roots,
//! the system store, `SSL_CERT_FILE`/`SSL_CERT_DIR` and `settings.ca_file`. TLS is rustls with
//! `ring` (no C toolchain beyond what `ring` needs).

mod proxy_env;
mod trust;

use std::path::PathBuf;
use std::time::Duration;

pub use proxy_env::ProxyEnv;
pub use trust::Trust;

/// Why a client could not be built. Proxy URLs appear with their credentials masked.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A CA file or directory the user named cannot be read.
    #[error("cannot read CA certificates from `{}` ({origin}); fix the path or unset {origin}", path.display())]
    CaUnreadable {
        /// `SSL_CERT_FILE`, `SSL_CERT_DIR` or `settings.ca_file`.
        origin: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: rustls_native_certs::Error,
    },
    /// A CA file the user named holds no PEM certificate.
    #[error(
        "`{}` ({origin}) holds no certificate; it must be PEM (`-----BEGIN CERTIFICATE-----` blocks)",
        path.display()
    )]
    CaEmpty {
        /// `SSL_CERT_FILE` or `settings.ca_file`.
        origin: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A certificate in a CA file the user named cannot serve as a trust anchor.
    #[error("a certificate in `{}` ({origin}) is not a usable CA certificate", path.display())]
    CaInvalid {
        /// `SSL_CERT_FILE`, `SSL_CERT_DIR` or `settings.ca_file`.
        origin: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
    /// A proxy variable's value is not an `http://` or `https://` URL with a host.
    #[error("{var} is not a usable proxy URL: `{shown}`; set it to http://[user:password@]host:port or unset it")]
    ProxyUrl {
        /// The variable.
        var: &'static str,
        /// Its value, credentials masked.
        shown: String,
    },
    /// reqwest refused the configuration.
    #[error("cannot set up the HTTP client")]
    Build(#[source] reqwest::Error),
}

fn builder(trust: &Trust) -> Result<reqwest::ClientBuilder, HttpError> {
    // Installing twice is harmless: the second call reports the provider already set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let roots = trust
        .certificates()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HttpError::Build(e.without_url()))?;
    Ok(reqwest::Client::builder()
        .user_agent(concat!("tiny-forge/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        // Only these roots: reqwest's default would ask the platform verifier, which fails
        // outright where the system has no store (issue 16).
        .tls_certs_only(roots))
}

/// The health prober's client: never through a proxy. Requests set their own timeouts; this one
/// bounds connecting.
///
/// # Errors
/// [`HttpError::Build`] when the TLS backend cannot initialise.
pub fn direct(trust: &Trust) -> Result<reqwest::Client, HttpError> {
    builder(trust)?.no_proxy().build().map_err(HttpError::Build)
}

/// The verify step's client for `host`: never through a proxy of the environment, and every
/// connection to `host` goes to `connect` (the proxy's public address) while the request keeps
/// `host` as its Host header and TLS server name. A URL without a port takes `connect`'s.
///
/// # Errors
/// [`HttpError::Build`] as [`direct`].
pub fn routed(trust: &Trust, host: &str, connect: std::net::SocketAddr) -> Result<reqwest::Client, HttpError> {
    builder(trust)?.no_proxy().resolve(host, connect).build().map_err(HttpError::Build)
}

/// The client for proxy APIs and webhooks: through `proxies` (read it with
/// [`ProxyEnv::from_env`]) except for `NO_PROXY` hosts and loopback; only `proxies` counts,
/// reqwest reads no variable of its own.
///
/// # Errors
/// [`HttpError::ProxyUrl`] for a proxy variable that is not a usable URL (curl would refuse it
/// too; reqwest alone would silently go direct); [`HttpError::Build`] as [`direct`].
pub fn outbound(trust: &Trust, proxies: &ProxyEnv) -> Result<reqwest::Client, HttpError> {
    let no_proxy = reqwest::NoProxy::from_string(&proxies.bypass());
    // `no_proxy()` turns reqwest's own reading of the environment off; `proxy()` adds ours.
    let mut b = builder(trust)?.no_proxy();
    if let Some(var) = proxies.https() {
        b = b.proxy(proxy(var, reqwest::Proxy::https, no_proxy.clone())?);
    }
    if let Some(var) = proxies.http() {
        b = b.proxy(proxy(var, reqwest::Proxy::http, no_proxy)?);
    }
    b.build().map_err(HttpError::Build)
}

fn proxy(
    var: &proxy_env::ProxyVar,
    make: fn(reqwest::Url) -> reqwest::Result<reqwest::Proxy>,
    no_proxy: Option<reqwest::NoProxy>,
) -> Result<reqwest::Proxy, HttpError> {
    let url = ProxyEnv::url(var)?;
    let proxy =
        make(url).map_err(|_| HttpError::ProxyUrl { var: var.name, shown: crate::fmt::redact_url(&var.value) })?;
    Ok(proxy.no_proxy(no_proxy))
}

/// Why a connection failed, in a few words that say what to fix: `connection refused`, a TLS
/// verdict (an untrusted certificate says how to trust its CA), a DNS failure, … The innermost
/// cause of `e`; never its URL.
#[must_use]
pub fn connect_failure(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut innermost: &(dyn std::error::Error + 'static) = &e;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(cause) = next {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return tls_failure(tls);
        }
        innermost = cause;
        next = cause.source();
        // An I/O error shows its inner error's text but skips it as a source: look inside.
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return "connection refused".into();
            }
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
            }
        }
    }
    innermost.to_string()
}

fn tls_failure(tls: &rustls::Error) -> String {
    match tls {
        rustls::Error::InvalidCertificate(_) => {
            format!("TLS: {tls}; trust the server's CA with settings.ca_file or SSL_CERT_FILE, or fix its certificate")
        }
        _ => format!("TLS: {tls}"),
    }
}

/// A [`direct`] client trusting the roots of [`Trust::load`] without a `ca_file`: for tests
/// and tools that have no config.
///
/// # Errors
/// As [`Trust::load`] and [`direct`].
pub fn client() -> Result<reqwest::Client, HttpError> {
    direct(&Trust::load(None)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A throwaway certificate authority.
    pub(crate) struct TestCa {
        cert: rcgen::Certificate,
    }

    impl TestCa {
        pub(crate) fn new(name: &str) -> Self {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, format!("tiny-forge test CA {name}"));
            let key = rcgen::KeyPair::generate().unwrap();
            Self { cert: params.self_signed(&key).unwrap() }
        }

        pub(crate) fn pem(&self) -> String {
            self.cert.pem()
        }
    }

    #[test]
    fn the_outbound_client_never_shows_proxy_credentials() {
        let trust = Trust::load(None).unwrap();
        let proxies = ProxyEnv::from_lookup(|name| {
            (name == "HTTPS_PROXY" || name == "HTTP_PROXY").then(|| "http://alice:s3cret@proxy.corp:3128".to_owned())
        });
        let client = outbound(&trust, &proxies).unwrap();
        let shown = format!("{client:?}");
        assert!(shown.contains("proxy.corp:3128"), "the proxies are in the Debug output: {shown}");
        assert!(!shown.contains("s3cret") && !shown.contains("alice"), "{shown}");
    }

    /// Answers every connection with `answer` and sends each request's first line to `lines`.
    fn serve(answer: &'static [u8]) -> (std::net::SocketAddr, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut line = String::new();
                std::io::BufReader::new(&mut s).read_line(&mut line).unwrap();
                let _ = tx.send(line.trim().to_owned());
                s.write_all(answer).unwrap();
            }
        });
        (addr, lines)
    }

    #[tokio::test]
    async fn loopback_is_reached_directly_even_with_a_proxy_set() {
        let (app, _) = serve(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        let (proxy, seen) = serve(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let proxies = ProxyEnv::from_lookup(|name| (name == "ALL_PROXY").then(|| format!("http://{proxy}")));
        let client = outbound(&Trust::load(None).unwrap(), &proxies).unwrap();

        let direct = client.get(format!("http://{app}/")).send().await.unwrap();
        assert_eq!(direct.status().as_u16(), 204, "loopback: straight to the app");
        let elsewhere = client.get("http://192.0.2.1:9/x").send().await.unwrap();
        assert_eq!(elsewhere.status().as_u16(), 502, "anything else: to the proxy");
        assert_eq!(seen.try_iter().collect::<Vec<_>>(), ["GET http://192.0.2.1:9/x HTTP/1.1"]);
    }

    /// A TLS server on loopback whose certificate no one trusts; answers nothing.
    async fn untrusted_tls_server() -> std::net::SocketAddr {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _handshake = acceptor.accept(tcp).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_named_as_such_with_what_to_do_and_a_closed_port_as_refused() {
        let client = direct(&Trust::load(None).unwrap()).unwrap();
        let addr = untrusted_tls_server().await;
        let e = client.get(format!("https://{addr}/hook?token=s3cret")).send().await.unwrap_err();
        assert!(e.is_connect(), "{e:?}");
        let said = connect_failure(e);
        assert!(said.starts_with("TLS: invalid peer certificate"), "{said}");
        assert!(said.contains("settings.ca_file"), "{said}");
        assert!(!said.contains("s3cret"), "{said}");

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let e = client.get(format!("http://{closed}/")).send().await.unwrap_err();
        assert_eq!(connect_failure(e), "connection refused");
    }

    #[test]
    fn a_bad_proxy_variable_is_an_error_naming_it() {
        let trust = Trust::load(None).unwrap();
        let proxies =
            ProxyEnv::from_lookup(|name| (name == "https_proxy").then(|| "ftp://alice:s3cret@proxy:21".to_owned()));
        let err = outbound(&trust, &proxies).unwrap_err().to_string();
        assert_eq!(
            err,
            "https_proxy is not a usable proxy URL: `ftp://proxy`; set it to http://[user:password@]host:port or unset it"
        );
    }
}
