//! `tiny-forge serve`: builds the adapters as every command does, reads each receiver's
//! secret, binds the listener, then runs the HTTP API and the executor on this one thread
//! (see `tiny_forge::server`). Signals: the first SIGTERM or SIGINT shuts down gracefully
//! (stop accepting; running deploys get `[server] grace`, then roll back); a second stops
//! those rollbacks where they are (leftovers, for `prune`); a third exits at once with 3.

use std::rc::Rc;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use tiny_forge::deploy::Deployer;
use tiny_forge::engine::DockerRuntime;
use tiny_forge::health::HttpProbe;
use tiny_forge::proxy::AnyProxy;
use tiny_forge::server::receivers::Authenticator;
use tiny_forge::server::tls::{Peer, TlsListener};
use tiny_forge::server::{Api, Backend, Codes, Executor, Receiver, Shared};
use tiny_forge::store::SqliteStore;
use tokio::sync::{mpsc, watch};

use super::deploy::Adapters;
use super::{Ctx, Failure, exit};

type Tuned<'a> = Deployer<'a, DockerRuntime, AnyProxy, SqliteStore, HttpProbe>;

/// The binary's test hooks, applied to every deploy the server runs (`test-hooks` builds only).
fn tune(d: Tuned<'_>) -> Tuned<'_> {
    #[cfg(feature = "test-hooks")]
    let d = super::deploy::test_pauses().into_iter().fold(d, |d, (step, pause)| d.with_pause_after(step, pause));
    d
}

pub(crate) async fn run(ctx: &Ctx, listen: Option<String>) -> Result<u8, Failure> {
    let config = Arc::new(ctx.load_config()?);
    let mut receivers = Vec::new();
    for r in config.receivers() {
        let secret = r.secret.read(&format!("receivers.{}.secret", r.name)).map_err(|e| Failure::usage(anyhow!(e)))?;
        if secret.expose().trim().is_empty() {
            return Err(Failure::usage(anyhow!(
                "receiver `{}`: its secret is empty; a receiver without a secret would accept anyone",
                r.name
            )));
        }
        receivers.push(Receiver {
            name: r.name.clone(),
            kind: r.kind,
            auth: Authenticator::for_kind(r.kind, secret),
            registry: r.registry.clone(),
        });
    }
    let adapters = Adapters::build(ctx, &config).await?;
    let api_store = Ctx::open_store(&ctx.state_path(Some(&config))?)?;
    let addr = listen.unwrap_or_else(|| config.server().listen.clone());
    let tls = match &config.server().tls {
        Some((cert, key)) => Some(tiny_forge::server::tls::server_config(cert, key).map_err(Failure::usage)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
        .map_err(Failure::usage)?;
    let local_addr = listener.local_addr().map_err(|e| Failure::usage(anyhow!(e)))?;
    let codes = Codes {
        outcome: exit::for_outcome,
        error: exit::for_deploy_error,
        record: exit::for_record,
        ok: exit::OK,
        usage: exit::USAGE,
        incomplete: exit::INCOMPLETE,
    };
    let shared = Arc::new(Shared::new(codes));
    let (commands, inbox) = mpsc::unbounded_channel();
    let (stop, stopping) = watch::channel(false);
    let (abort, aborting) = watch::channel(false);
    let api = Api::new(Arc::clone(&shared), Arc::clone(&config), api_store, commands, receivers, stopping.clone());
    let backend = Backend {
        runtime: adapters.runtime,
        proxy: adapters.proxy,
        store: adapters.store,
        probe: adapters.probe,
        notifier: Box::new(adapters.notifier),
        lock_dir: adapters.lock_dir,
        tune,
    };
    let grace = config.server().grace;
    let executor = Rc::new(Executor::new(backend, Arc::clone(&config), shared));
    if !ctx.quiet {
        eprintln!("tiny-forge serve: listening on {scheme}://{local_addr}");
    }
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let mut until = stopping.clone();
            let stopped = async move {
                let _ = until.wait_for(|s| *s).await;
            };
            let app = api.router().into_make_service_with_connect_info::<Peer>();
            let http = match tls {
                Some(config) => match TlsListener::new(listener, config) {
                    Ok(l) => tokio::spawn(async move { axum::serve(l, app).with_graceful_shutdown(stopped).await }),
                    Err(e) => tokio::spawn(async move { Err(e) }),
                },
                None => tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stopped).await }),
            };
            tokio::task::spawn_local(signals(stop, abort));
            executor.start_pollers();
            executor.run(inbox, stopping, aborting, grace).await;
            let _ = http.await;
        })
        .await;
    if !ctx.quiet {
        eprintln!("tiny-forge serve: stopped");
    }
    Ok(exit::OK)
}

async fn signals(stop: watch::Sender<bool>, abort: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        // Keep the senders: a dropped one would read as "changed" forever.
        let _keep = (stop, abort);
        return std::future::pending().await;
    };
    let mut next = async || {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
    };
    next().await;
    let _ = stop.send(true);
    next().await;
    let _ = abort.send(true);
    next().await;
    std::process::exit(i32::from(exit::INCOMPLETE));
}
