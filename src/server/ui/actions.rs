//! What the page can do, each through the API's own path: redeploy, rollback and remove become
//! the same job on the same executor as `POST /v1/deploys`, `/v1/rollbacks` and `/v1/removals`
//! (`api::enqueue`: scope, names, config, draining), and an approval is `approvals::release`,
//! with the digest the approver was shown. The actor is the session's token (`token:NAME`).
//! A removal asks first (`GET /ui/remove` shows what goes; only its form's `POST` removes).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::session::Viewer;
use super::{Posted, UiError};
use crate::server::auth::{Action, Caller};
use crate::server::error::ApiError;
use crate::server::executor::WorkKind;
use crate::server::state::Api;
use crate::server::wire::CommandBody;

/// The action buttons of a slot, those `caller` may use only.
pub(super) fn buttons(caller: &Caller, project: &str, stage: &str, tag: &str) -> Markup {
    let hidden = html! {
        input type="hidden" name="project" value=(project);
        input type="hidden" name="stage" value=(stage);
        input type="hidden" name="tag" value=(tag);
    };
    html! {
        span.actions {
            @if caller.allows(Action::Deploy, project, stage) {
                form.inline method="post" action="/ui/redeploy" { (hidden) button type="submit" { "Redeploy" } }
            }
            @if caller.allows(Action::Rollback, project, stage) {
                form.inline method="post" action="/ui/rollback" { (hidden) button type="submit" { "Roll back" } }
            }
            @if caller.allows(Action::Remove, project, stage) {
                a.button href=(format!("/ui/remove?project={project}&stage={stage}&tag={tag}")) { "Remove…" }
            }
        }
    }
}

/// A slot named by a form or a query.
#[derive(Debug, Deserialize)]
pub(super) struct SlotForm {
    project: String,
    stage: String,
    tag: String,
    /// `yes` on the removal's confirmation form.
    #[serde(default)]
    confirm: Option<String>,
}

impl SlotForm {
    fn body(&self) -> CommandBody {
        CommandBody {
            project: self.project.clone(),
            stage: self.stage.clone(),
            tag: Some(self.tag.clone()),
            to: None,
            wait: None,
            force: false,
            no_verify: false,
        }
    }
}

/// Runs `kind` on the slot through the API's path; on to the job's page.
fn run(api: &Api, viewer: &Viewer, kind: WorkKind, body: &CommandBody) -> Result<Response, UiError> {
    let view = crate::server::api::enqueue(api, &viewer.caller, kind, body, None)?;
    Ok(Redirect::to(&format!("/ui/jobs/{}", view.id)).into_response())
}

/// `POST /ui/redeploy`: deploys the slot's tag again (forced, as `deploy --force`: the point of
/// the button is a fresh instance even when nothing changed).
pub(super) async fn redeploy(
    State(api): State<Api>,
    viewer: Viewer,
    posted: Posted<SlotForm>,
) -> Result<Response, UiError> {
    let mut body = posted.form.body();
    body.force = true;
    run(&api, &viewer, WorkKind::Deploy, &body)
}

/// `POST /ui/rollback`: the slot back to its previous deploy.
pub(super) async fn rollback(
    State(api): State<Api>,
    viewer: Viewer,
    posted: Posted<SlotForm>,
) -> Result<Response, UiError> {
    run(&api, &viewer, WorkKind::Rollback, &posted.form.body())
}

/// `GET /ui/remove`: what a removal would take away, and the form that does it.
pub(super) async fn confirm_remove(viewer: Viewer, Query(slot): Query<SlotForm>) -> Result<Response, UiError> {
    if !viewer.caller.allows(Action::Remove, &slot.project, &slot.stage) {
        return Err(UiError::Api(ApiError::forbidden(format!(
            "token `{}` may not remove {}/{}",
            viewer.caller.name, slot.project, slot.stage
        ))));
    }
    let body = html! {
        h1 { "Remove " (slot.project) "/" (slot.stage) ":" (slot.tag) "?" }
        p { "This stops and deletes the instance of tag " b { (slot.tag) } " and its proxy host. Its URL stops answering. "
            "Deploying the tag again brings it back." }
        form method="post" action="/ui/remove" {
            input type="hidden" name="project" value=(slot.project);
            input type="hidden" name="stage" value=(slot.stage);
            input type="hidden" name="tag" value=(slot.tag);
            input type="hidden" name="confirm" value="yes";
            button.danger type="submit" { "Yes, remove it" }
            " "
            a href="/ui" { "No, keep it" }
        }
    };
    Ok(super::pages::page("Remove", &viewer, &body).into_response())
}

/// `POST /ui/remove`: removes the slot, when the confirmation form says so.
pub(super) async fn remove(
    State(api): State<Api>,
    viewer: Viewer,
    posted: Posted<SlotForm>,
) -> Result<Response, UiError> {
    if posted.form.confirm.as_deref() != Some("yes") {
        return Err(UiError::Api(ApiError::bad_request("a removal needs its confirmation; use the Remove… button")));
    }
    run(&api, &viewer, WorkKind::Remove, &posted.form.body())
}

#[derive(Debug, Deserialize)]
pub(super) struct ApproveForm {
    digest: String,
}

/// `POST /ui/approvals/{id}`: approves the held push of the digest the page showed. A push
/// outside the token's `deploy` scope is "not found", as in the API.
pub(super) async fn approve(
    State(api): State<Api>,
    viewer: Viewer,
    Path(id): Path<u64>,
    posted: Posted<ApproveForm>,
) -> Result<Response, UiError> {
    let not_found = || UiError::Api(ApiError::not_found(format!("no push {id} waits for approval")));
    let held = crate::server::approvals::held(&api).await?;
    let h = held.into_iter().find(|h| h.id == id).ok_or_else(not_found)?;
    if !viewer.caller.allows(Action::Deploy, h.candidate.slot.project.as_str(), h.candidate.slot.stage.as_str()) {
        return Err(not_found());
    }
    if !api.serving() {
        return Err(UiError::Api(ApiError::draining()));
    }
    let slot = crate::server::approvals::release(&api, &viewer.caller, id, posted.form.digest).await?;
    let q = format!("/ui?project={}&stage={}", slot.project, slot.stage);
    Ok(Redirect::to(&q).into_response())
}
