//! [`Containers::wait_exit`](crate::engine::Containers::wait_exit): when a container first exits
//! since it was created, and with which code. The subtle part of the adapter: a restart policy
//! may already have undone the exit, and the container's state then has lost its code, so the
//! code comes from the engine's `die` events, replayed from the container's creation; where
//! events are refused (a socket proxy) or their stream ends, the state is watched instead.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt as _;

use super::{DockerRuntime, engine_error, is_not_found};
use crate::engine::{Containers as _, RuntimeError};
use crate::look::Look;

/// How long `wait_exit` waits for the replay of a restarted container's first `die`.
const REPLAY_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The code a container exited with, when it is not running: stopped, or being restarted by
/// its restart policy (this engine keeps `Running` true while restarting).
pub(super) fn exit_code(state: Option<&bollard::models::ContainerState>) -> Option<i64> {
    let exited = !state.and_then(|s| s.running).unwrap_or(false) || state.and_then(|s| s.restarting).unwrap_or(false);
    if exited { state.and_then(|s| s.exit_code) } else { None }
}

/// What `wait_exit` answers for a container that is gone before it exited.
fn removed_while_waiting(id: &str) -> RuntimeError {
    // A 404, as the engine's own answer for a container that is not there.
    RuntimeError::Engine {
        op: "wait for container",
        subject: id.to_owned(),
        status: 404,
        message: "it was removed".into(),
    }
}

pub(super) async fn wait_exit(rt: &DockerRuntime, id: &str) -> Result<i64, RuntimeError> {
    // Stopped or restarting: its state has the code. Running: from the engine's `die`
    // events, replayed from the container's creation, since a restart policy may already
    // have undone an exit and its state lost the code (the wait API too); the first `die`
    // keeps it.
    let c = match rt.docker.inspect_container(id, None).await {
        Ok(c) => c,
        Err(e) if is_not_found(&e) => {
            return Err(removed_while_waiting(id));
        }
        Err(e) => return Err(engine_error("inspect container", id, e)),
    };
    if let Some(code) = exit_code(c.state.as_ref()) {
        return Ok(code);
    }
    let full_id = c.id.clone().unwrap_or_else(|| id.to_owned());
    let filters = HashMap::from([
        ("container".to_owned(), vec![full_id]),
        ("event".to_owned(), vec!["die".to_owned(), "destroy".to_owned()]),
    ]);
    let mut options = EventsOptionsBuilder::default().filters(&filters);
    // In Unix seconds: older engines take no RFC 3339 here.
    let created = c.created.as_deref().and_then(|t| humantime::parse_rfc3339_weak(t).ok());
    if let Some(secs) = created.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
        options = options.since(&secs.as_secs().to_string());
    }
    let events = rt.docker.events(Some(options.build()));
    let first_exit = async {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            // No events (a socket proxy may refuse them): watch its state instead.
            let Ok(event) = event else { return None };
            match event.action.as_deref() {
                Some("die") => {
                    let code = event
                        .actor
                        .and_then(|a| a.attributes)
                        .and_then(|a| a.get("exitCode").and_then(|c| c.parse().ok()));
                    // Every engine we know names the code; without it, it is unknown.
                    return Some(Ok(code.unwrap_or(-1)));
                }
                Some("destroy") => return Some(Err(removed_while_waiting(id))),
                _ => {}
            }
        }
        None
    };
    let restarted = c.restart_count.is_some_and(|n| n > 0);
    if restarted {
        // It exited already: its `die` is in the replay, unless the engine's event buffer
        // lost it on a busy host; then the code is unknown.
        return match tokio::time::timeout(REPLAY_GRACE, first_exit).await {
            Ok(Some(answer)) => answer,
            Ok(None) => poll_exit(rt, id).await,
            Err(_) => Ok(-1),
        };
    }
    match first_exit.await {
        Some(answer) => answer,
        // The stream ended or failed (a socket proxy's idle timeout, events refused).
        None => poll_exit(rt, id).await,
    }
}

/// [`ContainerRuntime::wait_exit`] by looking at the container every 50 ms: a restart
/// between two looks loses the code (-1).
async fn poll_exit(rt: &DockerRuntime, id: &str) -> Result<i64, RuntimeError> {
    let mut first_restarts = None;
    loop {
        let info = match rt.inspect(id, "").await {
            Look::Found(info) => info,
            Look::Absent => return Err(removed_while_waiting(id)),
            Look::Unknown(e) => return Err(e),
        };
        if let Some(code) = info.exit_code {
            return Ok(code);
        }
        if info.restarts > *first_restarts.get_or_insert(info.restarts) {
            return Ok(-1);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
