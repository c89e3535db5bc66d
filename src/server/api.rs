//! The HTTP side: the routes and their handlers. Handlers are thin: authenticate and authorise
//! (the token extractor in `state.rs`), validate names against the config, then either
//! read the state file or hand a [`Command`] to the executor. Every error is an `ApiError`,
//! whose kind alone decides its status and exit code (`error.rs`).
//!
//! | route | scope | |
//! |---|---|---|
//! | `GET /healthz` | none | `ok`, and the config revision it runs |
//! | `GET /metrics` | none | Prometheus text; no label holds a secret |
//! | `POST /v1/deploys`, `/v1/rollbacks`, `/v1/removals` | deploy, rollback, remove | `202` + job |
//! | `GET /v1/jobs/{id}?wait=SECS` | read, or the token that submitted it | a job, after it leaves `waiting` or `wait` ends |
//! | `GET /v1/deploys?project&stage&limit` | read | history, newest first |
//! | `GET /v1/deploys/{id}` | read | one deploy with its log |
//! | `GET /v1/deploys/{id}/events` | read, or the token whose job ran it | SSE (see [`super::wire`]) |
//! | `GET /v1/instances?project&stage` | read | `list` items |
//! | `GET /v1/approvals`, `POST /v1/approvals/{id}` | read, deploy | pushes held by `approval = true` (`approvals.rs`) |
//! | `POST /hooks/{name}[/{secret}]` | the receiver's secret | registry webhooks |
//! | `GET /`, `/ui/…` | a session opened with a token, same scopes | the web page (`ui/`) |
//!
//! Authentication comes before the failed-auth cap; see `state.rs`.
//!
//! While the server drains (after the first SIGTERM) it refuses new work with 503 and goes on
//! answering job reads and event streams, until its running deploys end.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use tokio::sync::oneshot;

use super::auth::{Action, Caller};
use super::error::ApiError;
use super::executor::{Command, Work, WorkKind};
use super::state::{Api, readable};
use super::wire::{self, CommandBody, JobState};
use crate::domain::{DeployId, ProjectName, StageName, Tag};
use crate::lock::LockWait;
use crate::store::{Filter, Store as _};

impl Api {
    /// The router, with the body cap and the request timeout on every route (the hooks read
    /// their body under the same cap themselves; see `hooks.rs`).
    pub fn router(self) -> axum::Router {
        let limit = tower_http::limit::RequestBodyLimitLayer::new(self.settings.max_body_bytes);
        let v1 = axum::Router::new()
            .route("/v1/deploys", post(deploy).get(history))
            .route("/v1/rollbacks", post(rollback))
            .route("/v1/removals", post(remove))
            .route("/v1/jobs/{id}", get(job))
            .route("/v1/deploys/{id}", get(one_deploy))
            .route("/v1/deploys/{id}/events", get(super::sse::events))
            .route("/v1/instances", get(instances))
            .route("/v1/approvals", get(super::approvals::list))
            .route("/v1/approvals/{id}", post(super::approvals::approve))
            .layer(limit);
        let timeout = tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            self.settings.request_timeout,
        );
        axum::Router::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .route("/hooks/{name}", post(super::hooks::receive))
            .route("/hooks/{name}/{secret}", post(super::hooks::receive_with_path))
            .merge(v1)
            .merge(super::ui::routes(&self.settings))
            .layer(timeout)
            .with_state(self)
    }
}

fn names(api: &Api, project: &str, stage: &str) -> Result<(ProjectName, StageName), ApiError> {
    let bad = |e: crate::domain::NameError| ApiError::bad_request(e.to_string());
    let p = ProjectName::new(project).map_err(bad)?;
    let s = StageName::new(stage).map_err(bad)?;
    // Known to the config as the file says now? (Its secrets are read later, by the executor.)
    api.live
        .refresh()
        .config
        .resolve_with(&p, &s, crate::config::Resolution::ConfigOnly)
        .map_err(|e| ApiError::not_found(crate::fmt::one_line(&e)))?;
    Ok((p, s))
}

/// 403: `caller`'s scope does not allow `action` on `project`/`stage`.
fn out_of_scope(caller: &Caller, action: Action, project: &str, stage: &str) -> ApiError {
    ApiError::forbidden(format!("token `{}` may not {} {project}/{stage}", caller.name, action.as_str()))
}

fn lock_wait(w: Option<&str>) -> Result<LockWait, ApiError> {
    match w {
        None => Ok(LockWait::Forever),
        Some("no") => Ok(LockWait::NoWait),
        Some(d) => humantime::parse_duration(d)
            .map(LockWait::AtMost)
            .map_err(|e| ApiError::bad_request(format!("wait `{d}`: {e}"))),
    }
}

/// `Idempotency-Key`: a client that retries a submission it got no answer to sends the same
/// key, and gets the job its first attempt made (if that attempt reached this server).
fn idempotency_key(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 128)
        .map(str::to_owned)
}

fn submit(
    api: &Api,
    caller: &Caller,
    kind: WorkKind,
    body: &CommandBody,
    key: Option<String>,
) -> Result<Response, ApiError> {
    enqueue(api, caller, kind, body, key).map(|view| accepted(&view))
}

/// Checks `caller`'s scope, the names and the config, and hands the work to the executor: the
/// one path of every deploy, rollback and removal asked for over HTTP (the API and the web
/// page). The job, new or (same idempotency key) the first attempt's.
pub(super) fn enqueue(
    api: &Api,
    caller: &Caller,
    kind: WorkKind,
    body: &CommandBody,
    key: Option<String>,
) -> Result<super::wire::JobView, ApiError> {
    let action = match kind {
        WorkKind::Deploy => Action::Deploy,
        WorkKind::Rollback => Action::Rollback,
        WorkKind::Remove => Action::Remove,
    };
    // Scope before config: a token learns nothing about stages it may not touch.
    if !caller.allows(action, &body.project, &body.stage) {
        return Err(out_of_scope(caller, action, &body.project, &body.stage));
    }
    let (project, stage) = names(api, &body.project, &body.stage)?;
    let tag = body.tag.as_deref().map(Tag::new).transpose().map_err(|e| ApiError::bad_request(e.to_string()))?;
    if kind == WorkKind::Remove && tag.is_none() {
        return Err(ApiError::bad_request("remove needs a tag"));
    }
    let wait = lock_wait(body.wait.as_deref())?;
    if !api.serving() {
        return Err(ApiError::draining());
    }
    let shown_tag = tag.as_ref().map_or_else(|| "(default)".to_owned(), ToString::to_string);
    let slot = format!("{project}/{stage}:{shown_tag}");
    let (view, new) = api.shared.jobs.create_once(kind.as_str(), slot, Some(caller.id), key);
    if !new {
        return Ok(view);
    }
    let work = Work {
        job: view.id,
        kind,
        project,
        stage,
        tag,
        to: body.to.map(DeployId),
        wait,
        force: body.force,
        no_verify: body.no_verify,
        actor: caller.actor(),
    };
    if api.commands.send(Command::Run(work)).is_err() {
        api.shared.jobs.failed(
            view.id,
            "the server is shutting down; nothing was done".into(),
            crate::ops::ExitCode::Usage.code(),
        );
        return Err(ApiError::draining());
    }
    Ok(view)
}

/// 202 with the job and where to poll it ([`with_grace`] adds the server's `grace`).
fn accepted(view: &super::wire::JobView) -> Response {
    (StatusCode::ACCEPTED, [(header::LOCATION, format!("/v1/jobs/{}", view.id))], Json(view.clone())).into_response()
}

async fn deploy(
    State(api): State<Api>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Json(body): Json<CommandBody>,
) -> Result<Response, ApiError> {
    with_grace(&api, submit(&api, &caller, WorkKind::Deploy, &body, idempotency_key(&headers)))
}

async fn rollback(
    State(api): State<Api>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Json(body): Json<CommandBody>,
) -> Result<Response, ApiError> {
    with_grace(&api, submit(&api, &caller, WorkKind::Rollback, &body, idempotency_key(&headers)))
}

async fn remove(
    State(api): State<Api>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Json(body): Json<CommandBody>,
) -> Result<Response, ApiError> {
    with_grace(&api, submit(&api, &caller, WorkKind::Remove, &body, idempotency_key(&headers)))
}

/// Adds [`super::wire::GRACE_HEADER`] to an accepted submission: how long a client should keep
/// trying to learn the outcome across a restart, beyond the restart itself.
fn with_grace(api: &Api, r: Result<Response, ApiError>) -> Result<Response, ApiError> {
    r.map(|mut resp| {
        if let Ok(v) = axum::http::HeaderValue::from_str(&api.settings.grace.as_secs().to_string()) {
            resp.headers_mut().insert(super::wire::GRACE_HEADER, v);
        }
        resp
    })
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    wait: Option<u64>,
}

/// `project/stage:tag` → (project, stage).
pub(super) fn slot_parts(slot: &str) -> (&str, &str) {
    let (project, rest) = slot.split_once('/').unwrap_or((slot, ""));
    (project, rest.split(':').next().unwrap_or(""))
}

async fn job(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<u64>,
    Query(q): Query<WaitQuery>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("job {id} not found"));
    let view = api.shared.jobs.get(id).ok_or_else(not_found)?;
    let (project, stage) = slot_parts(&view.slot);
    // The token that submitted a job may always read it, whatever its scope says about reads.
    let own = api.shared.jobs.owner(id) == Some(caller.id);
    if !own && !caller.allows(Action::Read, project, stage) {
        return Err(not_found());
    }
    // A long poll, kept inside the request timeout.
    let limit = api.settings.request_timeout.saturating_sub(Duration::from_secs(1));
    let wait = Duration::from_secs(q.wait.unwrap_or(0)).min(limit);
    let mut changes = api.shared.jobs.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let view = api.shared.jobs.get(id).ok_or_else(not_found)?;
        if view.state != JobState::Waiting || tokio::time::Instant::now() >= deadline {
            return Ok(Json(view).into_response());
        }
        if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
            return Ok(Json(view).into_response());
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    project: Option<String>,
    stage: Option<String>,
    limit: Option<usize>,
}

async fn history(State(api): State<Api>, caller: Caller, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    if !caller.can_read() {
        return Err(ApiError::forbidden(format!("token `{}` may not read", caller.name)));
    }
    let filter = Filter { project: q.project, stage: q.stage, tag: None };
    let limit = q.limit.unwrap_or(20).min(1000);
    let deploys = api.store().deploys(&filter, 10_000).map_err(ApiError::internal)?;
    let shown: Vec<_> = deploys.into_iter().filter(|d| readable(&caller, &d.project, &d.stage)).take(limit).collect();
    Ok(Json(shown).into_response())
}

async fn one_deploy(State(api): State<Api>, caller: Caller, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("deploy {id} not found; see `tiny-forge history`"));
    let store = api.store();
    let d = store.deploy(DeployId(id)).map_err(ApiError::internal)?.ok_or_else(not_found)?;
    if !readable(&caller, &d.project, &d.stage) {
        return Err(not_found());
    }
    let logs = store.logs(DeployId(id), 0).map_err(ApiError::internal)?;
    let exit_code = crate::ops::ExitCode::of_record(&d).map(crate::ops::ExitCode::code);
    Ok(Json(wire::DeployDetail { record: d, exit_code, logs }).into_response())
}

async fn instances(State(api): State<Api>, caller: Caller, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    if !caller.can_read() {
        return Err(ApiError::forbidden(format!("token `{}` may not read", caller.name)));
    }
    let (tx, rx) = oneshot::channel();
    let filter = Filter { project: q.project, stage: q.stage, tag: None };
    api.commands.send(Command::List(filter, tx)).map_err(|_| ApiError::executor_gone())?;
    let items = rx.await.map_err(|_| ApiError::executor_gone())?.map_err(ApiError::internal)?;
    let shown: Vec<_> = items.into_iter().filter(|i| readable(&caller, i.project(), i.stage())).collect();
    Ok(Json(shown).into_response())
}

async fn metrics(State(api): State<Api>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], api.shared.metrics.render()).into_response()
}

/// `ok`, the config revision the server runs and, when the file on disk is not valid, why.
async fn healthz(State(api): State<Api>) -> Response {
    let loaded = api.live.current();
    let mut text = format!("ok\nconfig {} {}\n", loaded.revision, api.live.path().display());
    if let Some(e) = api.live.refused() {
        use std::fmt::Write as _;
        let _ = writeln!(text, "config_error {e}");
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}
