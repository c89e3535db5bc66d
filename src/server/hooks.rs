//! `POST /hooks/{name}` and `POST /hooks/{name}/{secret}`: authenticate, parse, match the tag
//! rules, hand the candidates to the executor's queue, answer at once.
//!
//! The order is the point: (1) the failed-auth cap, (2) the credential on the raw request —
//! header or path secrets before the body is read, HMACs over the raw bytes before anything
//! parses them, (3) only then the parser. The body is read under `server.max_body_bytes` here
//! rather than by the router's limit layer, so that an *authenticated* distribution sender
//! still gets a 2xx for a body it must not resend (distribution retries a non-2xx forever and
//! blocks every later event). Nothing from a request — path, headers, body — is logged.

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{Api, ApiError, Receiver, auth_failed, check_limit};
use super::executor::Command;
use super::receivers::{self, Authenticator};
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
    let ip = req
        .extensions()
        .get::<ConnectInfo<super::tls::Peer>>()
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    check_limit(api, ip)?;
    let unknown = || ApiError::new(StatusCode::NOT_FOUND, "no such receiver", api.shared.codes.usage);
    let Some(r) = api.receivers.iter().find(|r| r.name == name).cloned() else {
        // An unknown name counts as a failure: it may be a guess at a secret path.
        auth_failed(api, ip);
        return Err(unknown());
    };
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let refuse = || {
        auth_failed(api, ip);
        api.shared.metrics.webhook(&r.name, "unauthorized");
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", api.shared.codes.usage)
    };
    // Credentials that do not need the body are checked before it is read.
    let header_or_path = matches!(r.auth, Authenticator::Header(_) | Authenticator::Path(_));
    if header_or_path && !r.auth.verify(&headers, path_secret.as_deref(), b"") {
        return Err(refuse());
    }
    let bytes = match to_bytes(body, api.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(_) if header_or_path && distribution_like(r.kind) => {
            api.shared.metrics.webhook(&r.name, "ignored");
            return Ok(answer(StatusCode::OK, "ignored: body over server.max_body_bytes"));
        }
        Err(_) => {
            api.shared.metrics.webhook(&r.name, "too_large");
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body too large", api.shared.codes.usage));
        }
    };
    if !header_or_path && !r.auth.verify(&headers, path_secret.as_deref(), &bytes) {
        return Err(refuse());
    }
    Ok(accept(api, &r, &headers, &bytes))
}

/// After authentication: parse, match, queue; always 2xx (a sender whose request was genuine
/// gains nothing from a retry).
fn accept(api: &Api, r: &Receiver, headers: &HeaderMap, body: &[u8]) -> Response {
    let Ok(events) = receivers::parse(r.kind, headers, body) else {
        api.shared.metrics.webhook(&r.name, "ignored");
        return answer(StatusCode::OK, "ignored: not a payload this receiver understands");
    };
    let rules = api.config.push_rules();
    let mut matched = 0;
    for mut ev in events {
        if let Some(host) = &r.registry {
            ev.registry.clone_from(host);
        }
        let delivery = ev.delivery.as_ref().map(|d| format!("{}:{d}", r.name));
        let actor = format!("webhook:{}:{}", r.name, ev.delivery.as_deref().unwrap_or("-"));
        let candidates = receivers::candidates(&ev, rules, &actor, Trigger::Webhook);
        matched += candidates.len();
        if candidates.is_empty() {
            continue;
        }
        let _ = api.commands.send(Command::Push { delivery, receiver: r.name.clone(), candidates });
    }
    api.shared.metrics.webhook(&r.name, if matched > 0 { "accepted" } else { "ignored" });
    answer(StatusCode::ACCEPTED, if matched > 0 { "queued" } else { "ignored: no tag rule matches" })
}
