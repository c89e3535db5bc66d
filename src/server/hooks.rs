//! `POST /hooks/{name}` and `POST /hooks/{name}/{secret}`: authenticate, parse, match the tag
//! rules, hand the candidates to the executor's queue, answer at once.
//!
//! The order is the point: (1) the credential on the raw request — header or path secrets
//! before the body is read, HMACs over the raw bytes before anything parses them; a failure
//! counts against the client's cap (and, over it, is answered 429), a success is never
//! refused; (2) only then the parser; (3) a body this receiver already received is a replay
//! and deploys nothing (the state file remembers bodies by SHA-256, so this holds across
//! restarts). The body is read under `server.max_body_bytes` here rather than by the router's
//! limit layer, so that an *authenticated* distribution sender still gets a 2xx for a body it
//! must not resend (distribution retries a non-2xx forever and blocks every later event).
//! Nothing from a request — path, headers, body — is logged.
//!
//! The receivers and tag rules are the config file's as it is now ([`super::live`]).

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::error::ApiError;
use super::executor::Command;
use super::live::Receiver;
use super::receivers::{self, Authenticator, PushEvent};
use super::state::{Api, client, refuse};
use crate::config::ReceiverKind;
use crate::domain::Trigger;

fn answer(status: StatusCode, what: &str) -> Response {
    (status, axum::Json(json!({ "result": what }))).into_response()
}

pub(super) async fn receive(
    State(api): State<Api>,
    Path(name): Path<String>,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    handle(&api, &name, None, req).await
}

pub(super) async fn receive_with_path(
    State(api): State<Api>,
    Path((name, secret)): Path<(String, String)>,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    handle(&api, &name, Some(secret), req).await
}

fn distribution_like(kind: ReceiverKind) -> bool {
    matches!(kind, ReceiverKind::Distribution | ReceiverKind::Gitlab)
}

async fn handle(api: &Api, name: &str, path_secret: Option<String>, req: Request<Body>) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let who = client(api, &parts);
    let loaded = api.live.refresh();
    let Some(r) = loaded.receivers.iter().find(|r| r.name == name) else {
        // An unknown name counts as a failure: it may be a guess at a secret path.
        return Err(refuse(api, who, ApiError::not_found("no such receiver")));
    };
    let headers = parts.headers;
    let unauthorized = || {
        api.shared.metrics.webhook(&r.name, "unauthorized");
        refuse(api, who, ApiError::unauthorized("unauthorized"))
    };
    // Credentials that do not need the body are checked before it is read.
    let header_or_path = matches!(r.auth, Authenticator::Header(_) | Authenticator::Path(_));
    if header_or_path && !r.auth.verify(&headers, path_secret.as_deref(), b"") {
        return Err(unauthorized());
    }
    let bytes = match to_bytes(body, api.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(_) if header_or_path && distribution_like(r.kind) => {
            api.shared.metrics.webhook(&r.name, "ignored");
            return Ok(answer(StatusCode::OK, "ignored: body over server.max_body_bytes"));
        }
        Err(_) => {
            api.shared.metrics.webhook(&r.name, "too_large");
            return Err(ApiError::too_large("body too large"));
        }
    };
    if !header_or_path && !r.auth.verify(&headers, path_secret.as_deref(), &bytes) {
        return Err(unauthorized());
    }
    if !api.serving() {
        // Not taken: the sender retries (distribution does), after the restart.
        api.shared.metrics.webhook(&r.name, "unavailable");
        return Err(ApiError::draining());
    }
    accept(api, r, loaded.config.push_rules(), &headers, &bytes)
}

/// A sender's delivery id as it may appear in an actor: only `[A-Za-z0-9._-]`, at most 64
/// characters (it is not covered by any signature: the sender chooses it), else `-`.
fn delivery_label(d: Option<&str>) -> &str {
    d.filter(|d| !d.is_empty() && d.len() <= 64 && d.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)))
        .unwrap_or("-")
}

/// After authentication: parse, dedupe, match, queue; 2xx unless the state file cannot say
/// whether the body is a replay (503: the sender retries).
fn accept(
    api: &Api,
    r: &Receiver,
    rules: &[crate::config::PushRule],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let Ok(events) = receivers::parse(r.kind, headers, body) else {
        api.shared.metrics.webhook(&r.name, "ignored");
        return Ok(answer(StatusCode::OK, "ignored: not a payload this receiver understands"));
    };
    let events: Vec<PushEvent> = events
        .into_iter()
        .map(|mut ev| {
            if let Some(host) = &r.registry {
                ev.registry.clone_from(host);
            }
            ev
        })
        .collect();
    let mut candidates = Vec::new();
    for ev in &events {
        let actor = format!("webhook:{}:{}", r.name, delivery_label(ev.delivery.as_deref()));
        candidates.extend(receivers::candidates(ev, rules, &actor, Trigger::Webhook));
    }
    if candidates.is_empty() {
        api.shared.metrics.webhook(&r.name, "ignored");
        return Ok(answer(StatusCode::ACCEPTED, "ignored: no tag rule matches"));
    }
    // A body seen before is a replay. Except when no event carries a digest (Quay sends the same
    // body for every push of a tag): then the tag is resolved again, and only a moved tag deploys.
    if events.iter().any(|e| e.digest.is_some()) {
        let hash = hex(&Sha256::digest(body));
        let first = api.store().first_delivery(&r.name, &hash).map_err(|e| {
            api.shared.log(&format!("webhook `{}`: cannot check for a replay: {}", r.name, crate::fmt::one_line(&e)));
            ApiError::unavailable("cannot record the delivery; retry")
        })?;
        if !first {
            api.shared.metrics.webhook(&r.name, "replayed");
            return Ok(answer(StatusCode::OK, "replayed: this body was received before"));
        }
    }
    if api.commands.send(Command::Push { receiver: r.name.clone(), candidates }).is_err() {
        return Err(ApiError::draining());
    }
    api.shared.metrics.webhook(&r.name, "accepted");
    Ok(answer(StatusCode::ACCEPTED, "queued"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_id_that_could_smuggle_text_into_history_is_not_recorded() {
        assert_eq!(
            delivery_label(Some("a0eaf6a5-3001-5126-8e31-5c59b975bcb5")),
            "a0eaf6a5-3001-5126-8e31-5c59b975bcb5"
        );
        assert_eq!(delivery_label(Some("x approved by token:admin")), "-");
        assert_eq!(delivery_label(Some(&"a".repeat(65))), "-");
        assert_eq!(delivery_label(None), "-");
    }
}
