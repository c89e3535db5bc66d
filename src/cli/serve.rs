//! `tiny-forge serve`: builds the adapters as every command does, loads the config as a live
//! one (re-read per job and on SIGHUP; see `tiny_forge::server::live`), binds the listener,
//! then runs the HTTP API and the executor on this one thread (see `tiny_forge::server`).
//!
//! Signals: the first SIGTERM or SIGINT drains (no new work; running deploys get `[server]
//! grace`, then roll back; their jobs and event streams are answered until they end); a second
//! stops those rollbacks where they are (leftovers, for `prune`); a third exits at once with 3.
//! SIGHUP re-reads the config file (an invalid one is logged and the old one kept).

use std::rc::Rc;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use tiny_forge::ops::{Notifications, StateAccess};
use tiny_forge::server::listen::{self, Limits, Listener};
use tiny_forge::server::tls::TlsListener;
use tiny_forge::server::{Api, Executor, LiveConfig, Log, Phase, Shared};
use tokio::sync::{Semaphore, mpsc, watch};

use super::{Ctx, Failure, adapters, exit};

pub(crate) async fn run(ctx: &Ctx, listen: Option<String>) -> Result<u8, Failure> {
    let path = tiny_forge::config::discover(ctx.config.as_deref()).map_err(Failure::usage)?;
    let log: Log = Arc::new(|line: &str| eprintln!("tiny-forge serve: {line}"));
    let live = Arc::new(LiveConfig::load(&path, Arc::clone(&log)).map_err(Failure::usage)?);
    let config = Arc::clone(&live.current().config);
    let backend = adapters::build(ctx, &config, Notifications::Config, StateAccess::ReadWrite).await?;
    let api_store = Ctx::open_store(&ctx.state_path(Some(&config))?)?;
    let settings = config.server().clone();
    let addr = listen.unwrap_or_else(|| settings.listen.clone());
    let tls = match &settings.tls {
        Some((cert, key)) => Some(tiny_forge::server::tls::server_config(cert, key).map_err(Failure::usage)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let tcp = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
        .map_err(Failure::usage)?;
    let local_addr = tcp.local_addr().map_err(|e| Failure::usage(anyhow!(e)))?;
    let shared = Arc::new(Shared::new().with_log(Arc::clone(&log)));
    let (commands, inbox) = mpsc::unbounded_channel();
    let (phase, phases) = watch::channel(Phase::Serving);
    let phase = Rc::new(phase);
    let (abort, aborting) = watch::channel(false);
    let api = Api::new(Arc::clone(&shared), Arc::clone(&live), api_store, commands, phases.clone());
    let grace = settings.grace;
    let executor = Rc::new(Executor::new(backend, Arc::clone(&live), shared));
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let limits = Limits { idle_timeout: settings.idle_timeout };
    if tls.is_none() && !local_addr.ip().is_loopback() {
        // Bearer tokens and webhook secrets would cross the network in clear.
        eprintln!(
            "tiny-forge serve: warning: plain HTTP on {local_addr}, not a loopback address; tokens travel in clear: put it behind a TLS proxy or set [server] tls_cert_file and tls_key_file"
        );
    }
    if !ctx.quiet {
        eprintln!("tiny-forge serve: config {} revision {}", live.path().display(), live.current().revision);
        eprintln!("tiny-forge serve: listening on {scheme}://{local_addr}");
    }
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let listener = match tls {
                Some(config) => match TlsListener::new(tcp, config, Arc::clone(&permits)) {
                    Ok(l) => Listener::Tls(l),
                    Err(e) => return Err(Failure::usage(anyhow!(e).context("cannot listen for TLS"))),
                },
                None => Listener::Plain(tcp),
            };
            let http = tokio::spawn(listen::serve(listener, api.router(), limits, permits, phases.clone()));
            tokio::task::spawn_local(signals(Rc::clone(&phase), abort, Arc::clone(&live), ctx.quiet));
            executor.start_pollers();
            executor.run(inbox, phases, aborting, grace).await;
            // Every deploy has ended: event streams end, connections close (within a deadline).
            phase.send_replace(Phase::Closing);
            let _ = http.await;
            Ok(())
        })
        .await?;
    if !ctx.quiet {
        eprintln!("tiny-forge serve: stopped");
    }
    Ok(exit::OK)
}

async fn signals(phase: Rc<watch::Sender<Phase>>, abort: watch::Sender<bool>, live: Arc<LiveConfig>, quiet: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        // Keep the senders: a dropped one would read as "changed" forever.
        let _keep = (phase, abort);
        return std::future::pending().await;
    };
    let mut stops = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
            _ = hup.recv() => {
                live.refresh();
                continue;
            },
        }
        stops += 1;
        match stops {
            1 => {
                if !quiet {
                    eprintln!("tiny-forge serve: stopping: no new work; running deploys get [server] grace");
                }
                phase.send_if_modified(|p| {
                    let was = *p;
                    *p = (*p).max(Phase::Draining);
                    was != *p
                });
            }
            2 => {
                let _ = abort.send(true);
            }
            _ => std::process::exit(i32::from(exit::INCOMPLETE)),
        }
    }
}
