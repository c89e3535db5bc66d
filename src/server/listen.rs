//! The accept loop: hyper's HTTP/1 connection builder under our own limits, where
//! `axum::serve` has none (it builds hyper without a timer, which silently drops hyper's
//! header-read timeout).
//!
//! - **Connection cap.** At most `[server] max_connections` connections are served at once (a
//!   semaphore permit per connection, TLS handshakes included); beyond that the listener stops
//!   accepting and new clients wait in the kernel's backlog.
//! - **Header read and idle timeout.** A connection that has not sent a complete request head
//!   within `[server] idle_timeout` of becoming ready for one is closed: a stalled or
//!   slowly-trickled request line, and an idle keep-alive connection alike. (Request bodies
//!   and handlers are bounded by `request_timeout`; an event stream writes a keep-alive every
//!   15 s.)
//! - **Shutdown.** When the server enters [`Phase::Closing`], it stops accepting, asks every
//!   connection to finish what it is doing and close, and after [`SHUTDOWN_DEADLINE`] drops
//!   what is still open: a half-sent request cannot keep the process alive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use super::phase::Phase;
use super::tls::{Peer, TlsListener};

/// How long connections may take to close once the server is closing.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Where connections come from.
pub enum Listener {
    /// Plain HTTP.
    Plain(TcpListener),
    /// HTTPS: connections arrive after their handshake.
    Tls(TlsListener),
}

/// The limits of [`serve`] (the connection cap is its `permits`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `[server] idle_timeout`.
    pub idle_timeout: Duration,
}

/// Serves `router` on `listener` until `phase` reaches [`Phase::Closing`], then closes as the
/// module doc says. `permits` must be the semaphore a [`Listener::Tls`] was made with (the TLS
/// listener takes a permit before each handshake); a plain listener takes them here.
pub async fn serve(
    listener: Listener,
    router: axum::Router,
    limits: Limits,
    permits: Arc<Semaphore>,
    mut phase: watch::Receiver<Phase>,
) {
    let mut listener = listener;
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = closing(&mut phase) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            next = accept(&mut listener, &permits) => match next {
                Some(Accepted::Plain(io, peer, permit)) => {
                    conns.spawn(connection(io, peer, permit, router.clone(), limits, phase.clone()));
                }
                Some(Accepted::Tls(io, peer, permit)) => {
                    conns.spawn(connection(*io, peer, permit, router.clone(), limits, phase.clone()));
                }
                None => {
                    // An accept error (fd exhaustion, …): not a reason to stop serving.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_DEADLINE, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        conns.abort_all();
    }
}

enum Accepted {
    Plain(tokio::net::TcpStream, SocketAddr, OwnedSemaphorePermit),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>, SocketAddr, OwnedSemaphorePermit),
}

async fn accept(listener: &mut Listener, permits: &Arc<Semaphore>) -> Option<Accepted> {
    match listener {
        Listener::Plain(tcp) => {
            let permit = Arc::clone(permits).acquire_owned().await.ok()?;
            let (io, peer) = tcp.accept().await.ok()?;
            Some(Accepted::Plain(io, peer, permit))
        }
        Listener::Tls(tls) => {
            let (io, peer, permit) = tls.accept().await?;
            Some(Accepted::Tls(Box::new(io), peer, permit))
        }
    }
}

/// One connection, until it ends, or closes gracefully once the server is closing.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    router: axum::Router,
    limits: Limits,
    mut phase: watch::Receiver<Phase>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _permit = permit;
    let svc = router.map_request(move |mut req: axum::http::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(Peer(peer)));
        req
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.idle_timeout).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = closing(&mut phase) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once the server is closing (or the phase can no longer change).
async fn closing(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p == Phase::Closing).await.map(|_| ());
}
