//! HTTPS for `serve` from certificate files (`[server] tls_cert_file`, `tls_key_file`), with
//! rustls and the same `ring` provider as the HTTP clients. Handshakes run in tasks of their
//! own, each bounded by [`HANDSHAKE`] and each holding a connection permit, so a slow or silent
//! client can neither hold up the others nor open connections without bound.
//! Without these keys the server speaks plain HTTP: put it on loopback, or behind the proxy
//! tiny-forge manages.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a TLS handshake may take.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// The TCP peer of a connection, plain or TLS (where the failed-auth cap starts looking for the
/// client: see `client.rs`). Every request carries it as `ConnectInfo<Peer>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no PEM item of the kind.
    #[error("server.{key} {}: {reason}", .path.display())]
    File {
        /// `tls_cert_file` or `tls_key_file`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, …).
    #[error("server.tls_cert_file and tls_key_file cannot be used together: {0}")]
    Config(#[source] rustls::Error),
}

/// A rustls server config from a PEM certificate chain and key.
///
/// # Errors
/// [`TlsError`] naming the file and what is wrong with it.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let file_err = |k: &'static str, p: &Path, reason: String| TlsError::File { key: k, path: p.to_path_buf(), reason };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err("tls_cert_file", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err("tls_cert_file", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err("tls_cert_file", cert, "no certificate in it".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err("tls_key_file", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(TlsError::Config)?;
    Ok(Arc::new(config))
}

/// A connection after its handshake, with its peer and its connection permit.
type Ready = (TlsStream<TcpStream>, SocketAddr, OwnedSemaphorePermit);

/// A listener that hands out finished TLS connections.
pub struct TlsListener {
    ready: mpsc::Receiver<Ready>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and shakes hands with `config`; failed handshakes are dropped. Each
    /// TCP connection takes one of `permits` before it is accepted and keeps it for its life
    /// (the server's connection cap covers handshakes too). Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// When the listener has no local address.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>, permits: Arc<Semaphore>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if tx.is_closed() {
                    return;
                }
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        let _ = tx.send((tls, peer, permit)).await;
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }

    /// The next connection whose handshake succeeded (`None` once the accept loop ended).
    pub async fn accept(&mut self) -> Option<Ready> {
        self.ready.recv().await
    }

    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}
