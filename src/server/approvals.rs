//! `GET /v1/approvals` and `POST /v1/approvals/{id}`: pushes held by an `approval = true` rule.
//!
//! - An approval names the held push's id and, in its body, the digest the approver looked at
//!   (`{"digest": "sha256:…"}`). A push whose payload gave no digest is resolved in the
//!   registry before it is held (`"unresolved"` only when the registry could not say). A push
//!   that replaced the held one has another id, and a digest that differs is refused (409);
//!   a tag that moved on by the time the approved push runs deploys nothing (stale): what
//!   runs is what was approved.
//! - Approving needs `deploy` on the held push's slot; a push outside the token's scope is
//!   answered 404, like every other endpoint, so a token learns nothing about other stages.
//! - The approver goes into the deploy's actor (`webhook:REG:ID approved by token:NAME`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::auth::{Action, Caller};
use super::error::ApiError;
use super::executor::Command;
use super::queue::{ApproveError, UNRESOLVED};
use super::state::{Api, readable};

pub(super) async fn held(api: &Api) -> Result<Vec<super::queue::Held>, ApiError> {
    let (tx, rx) = oneshot::channel();
    api.commands.send(Command::Approvals(tx)).map_err(|_| ApiError::executor_gone())?;
    rx.await.map_err(|_| ApiError::executor_gone())
}

pub(super) async fn list(State(api): State<Api>, caller: Caller) -> Result<Response, ApiError> {
    let shown: Vec<Value> = held(&api)
        .await?
        .into_iter()
        .filter(|h| readable(&caller, h.candidate.slot.project.as_str(), h.candidate.slot.stage.as_str()))
        .map(|h| {
            json!({"id": h.id, "slot": h.candidate.slot.to_string(), "image": h.candidate.image,
                "tag": h.candidate.tag, "digest": h.candidate.digest.as_deref().unwrap_or(UNRESOLVED),
                "actor": h.candidate.actor})
        })
        .collect();
    Ok(Json(shown).into_response())
}

/// The body of `POST /v1/approvals/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApproveBody {
    /// The digest the approver saw in `GET /v1/approvals`.
    digest: String,
}

pub(super) async fn approve(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<u64>,
    body: Option<Json<ApproveBody>>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no push {id} waits for approval"));
    let h = held(&api).await?.into_iter().find(|h| h.id == id).ok_or_else(not_found)?;
    let (p, s) = (h.candidate.slot.project.as_str(), h.candidate.slot.stage.as_str());
    if !caller.allows(Action::Deploy, p, s) {
        // Not 403: that would tell any token which stages have pushes waiting.
        return Err(not_found());
    }
    if !api.serving() {
        return Err(ApiError::draining());
    }
    let Some(Json(body)) = body else {
        return Err(ApiError::bad_request(format!(
            "name the digest you approve: {{\"digest\": \"{}\"}}",
            h.candidate.digest.as_deref().unwrap_or(UNRESOLVED)
        )));
    };
    let slot = release(&api, &caller, id, body.digest).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"approved": id, "slot": slot.to_string()}))).into_response())
}

/// Releases held push `id` of `digest` on `caller`'s word (its scope already checked): the one
/// path of an approval, from the API and the web page.
pub(super) async fn release(
    api: &Api,
    caller: &Caller,
    id: u64,
    digest: String,
) -> Result<crate::domain::Slot, ApiError> {
    let (tx, rx) = oneshot::channel();
    let cmd = Command::Approve { id, digest, approver: caller.actor(), reply: tx };
    api.commands.send(cmd).map_err(|_| ApiError::executor_gone())?;
    match rx.await.map_err(|_| ApiError::executor_gone())? {
        Ok(slot) => Ok(slot),
        Err(e @ ApproveError::NotHeld(_)) => Err(ApiError::not_found(e.to_string())),
        Err(e @ ApproveError::OtherDigest { .. }) => Err(ApiError::conflict(e.to_string())),
    }
}
