//! The HTTP side: routes, the token extractor, and one mapping from errors to status codes.
//! Handlers are thin: authenticate and authorise (extractor), validate names against the
//! config, then either read the state file or hand a [`Command`] to the executor.
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
//! | `GET /v1/approvals`, `POST /v1/approvals/{id}` | read, deploy | pushes held by `approval = true` ([`super::approvals`]) |
//! | `POST /hooks/{name}[/{secret}]` | the receiver's secret | registry webhooks |
//!
//! Authentication first, then the cap: a credential that verifies is never refused, whatever
//! its client did before (checking one is one SHA-256 and a constant-time compare per live
//! token, or one HMAC). Failures are counted per client ([`super::client`]); a client over
//! `[server] auth_failures` in `auth_window` has its failures answered 429 instead of 401.
//!
//! While the server drains (after the first SIGTERM) it refuses new work with 503 and goes on
//! answering job reads and event streams, until its running deploys end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use super::auth::{Action, Caller, FailedAuths};
use super::executor::{Command, Shared, Work, WorkKind};
use super::live::LiveConfig;
use super::receivers::Authenticator;
use super::wire::{CommandBody, ErrorBody, JobState};
use crate::config::{ReceiverKind, ServerSettings};
use crate::domain::{DeployId, ProjectName, StageName, Tag};
use crate::lock::LockWait;
use crate::store::{Filter, SqliteStore, Store as _};

/// A receiver, ready: its secret read.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// `[[receivers]] name`.
    pub name: String,
    /// Its format.
    pub kind: ReceiverKind,
    /// How its requests authenticate.
    pub auth: Authenticator,
    /// The registry host its events are about, when configured.
    pub registry: Option<String>,
}

/// Where the server stands in its life. Ordered: each phase only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Taking work.
    Serving,
    /// The first SIGTERM: no new work (503); running deploys go on within `grace`, and their
    /// jobs and event streams are still answered.
    Draining,
    /// Every deploy has ended: event streams end, connections close.
    Closing,
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    pub(super) shared: Arc<Shared>,
    /// The config, as the file says now.
    pub(super) live: Arc<LiveConfig>,
    /// The API's own connection to the state file (reads, tokens, webhook deliveries).
    pub(super) store: Arc<Mutex<SqliteStore>>,
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) failures: Arc<Mutex<FailedAuths>>,
    /// `[server]` as read at start-up.
    pub(super) settings: ServerSettings,
    pub(super) phase: watch::Receiver<Phase>,
}

impl Api {
    /// The API over `store` (its own connection), sending work on `commands`; `[server]` is
    /// `live`'s as it is now.
    #[must_use]
    pub fn new(
        shared: Arc<Shared>,
        live: Arc<LiveConfig>,
        store: SqliteStore,
        commands: mpsc::UnboundedSender<Command>,
        phase: watch::Receiver<Phase>,
    ) -> Self {
        let settings = live.current().config.server().clone();
        Self {
            failures: Arc::new(Mutex::new(FailedAuths::new(settings.auth_failures, settings.auth_window))),
            shared,
            live,
            store: Arc::new(Mutex::new(store)),
            commands,
            settings,
            phase,
        }
    }

    /// Is the server still taking new work?
    pub(super) fn serving(&self) -> bool {
        *self.phase.borrow() == Phase::Serving
    }

    pub(super) fn store(&self) -> std::sync::MutexGuard<'_, SqliteStore> {
        self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The router, with the body cap and the request timeout on every route (the hooks read
    /// their body under the same cap themselves; see [`super::hooks`]).
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
            .layer(timeout)
            .with_state(self)
    }
}

/// Every error answer: a status and an [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, error: impl Into<String>, exit_code: u8) -> Self {
        Self { status, body: ErrorBody { error: error.into(), exit_code } }
    }

    pub(super) fn usage(status: StatusCode, error: impl Into<String>) -> Self {
        Self::new(status, error, crate::ops::ExitCode::Usage.code())
    }

    /// 503: the server drains and takes no new work; a client may retry after its restart.
    pub(super) fn draining() -> Self {
        Self::usage(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down; nothing was done, retry after it restarts",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// The client a request is counted under by the failed-auth cap ([`super::client`]).
pub(super) fn client(api: &Api, parts: &Parts) -> std::net::IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<super::tls::Peer>>()
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    super::client::key(super::client::client_addr(peer, &parts.headers, &api.settings.trusted_proxies))
}

/// A failed authentication of `client`: counted, and answered 401, or 429 when `client` has
/// failed too often in this window. Never asked about a credential that verified.
pub(super) fn refuse(api: &Api, client: std::net::IpAddr, unauthorized: ApiError) -> ApiError {
    api.shared.metrics.auth_failure();
    let now = tokio::time::Instant::now();
    let mut failures = api.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if failures.blocked(client, now) {
        return ApiError::usage(StatusCode::TOO_MANY_REQUESTS, "too many failed authentications; try later");
    }
    failures.failed(client, now);
    unauthorized
}

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let caller = match presented {
            Some(token) => {
                let store = api.store();
                let live = store
                    .live_tokens()
                    .map_err(|e| ApiError::usage(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                let caller = super::auth::verify(token, &live);
                if let Some(c) = &caller
                    && let Err(e) = store.touch_token(c.id)
                {
                    // Only `token list`'s "last used" is stale: the request goes on.
                    api.shared.log(&format!(
                        "cannot record the use of token `{}`: {}",
                        c.name,
                        crate::fmt::one_line(&e)
                    ));
                }
                caller
            }
            None => None,
        };
        caller.ok_or_else(|| {
            let unauthorized = ApiError::usage(
                StatusCode::UNAUTHORIZED,
                "missing or unknown token; pass TINY_FORGE_TOKEN (`tiny-forge token create` on the server's host)",
            );
            refuse(api, client(api, parts), unauthorized)
        })
    }
}

fn names(api: &Api, project: &str, stage: &str) -> Result<(ProjectName, StageName), ApiError> {
    let bad = |e: crate::domain::NameError| ApiError::usage(StatusCode::BAD_REQUEST, e.to_string());
    let p = ProjectName::new(project).map_err(bad)?;
    let s = StageName::new(stage).map_err(bad)?;
    // Known to the config as the file says now? (Its secrets are read later, by the executor.)
    api.live
        .refresh()
        .config
        .resolve_with(&p, &s, crate::config::Resolution::ConfigOnly)
        .map_err(|e| ApiError::usage(StatusCode::NOT_FOUND, crate::fmt::one_line(&e)))?;
    Ok((p, s))
}

pub(super) fn forbidden(caller: &Caller, action: Action, project: &str, stage: &str) -> ApiError {
    ApiError::usage(
        StatusCode::FORBIDDEN,
        format!("token `{}` may not {} {project}/{stage}", caller.name, action.as_str()),
    )
}

fn lock_wait(w: Option<&str>) -> Result<LockWait, ApiError> {
    match w {
        None => Ok(LockWait::Forever),
        Some("no") => Ok(LockWait::NoWait),
        Some(d) => humantime::parse_duration(d)
            .map(LockWait::AtMost)
            .map_err(|e| ApiError::usage(StatusCode::BAD_REQUEST, format!("wait `{d}`: {e}"))),
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
    let action = match kind {
        WorkKind::Deploy => Action::Deploy,
        WorkKind::Rollback => Action::Rollback,
        WorkKind::Remove => Action::Remove,
    };
    // Scope before config: a token learns nothing about stages it may not touch.
    if !caller.allows(action, &body.project, &body.stage) {
        return Err(forbidden(caller, action, &body.project, &body.stage));
    }
    let (project, stage) = names(api, &body.project, &body.stage)?;
    let tag = body
        .tag
        .as_deref()
        .map(Tag::new)
        .transpose()
        .map_err(|e| ApiError::usage(StatusCode::BAD_REQUEST, e.to_string()))?;
    if kind == WorkKind::Remove && tag.is_none() {
        return Err(ApiError::usage(StatusCode::BAD_REQUEST, "remove needs a tag"));
    }
    let wait = lock_wait(body.wait.as_deref())?;
    if !api.serving() {
        return Err(ApiError::draining());
    }
    let shown_tag = tag.as_ref().map_or_else(|| "(default)".to_owned(), ToString::to_string);
    let slot = format!("{project}/{stage}:{shown_tag}");
    let (view, new) = api.shared.jobs.create_once(kind.as_str(), slot, Some(caller.id), key);
    if !new {
        return Ok(accepted(&view));
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
    Ok(accepted(&view))
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
fn slot_parts(slot: &str) -> (&str, &str) {
    let (project, rest) = slot.split_once('/').unwrap_or((slot, ""));
    (project, rest.split(':').next().unwrap_or(""))
}

async fn job(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<u64>,
    Query(q): Query<WaitQuery>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::usage(StatusCode::NOT_FOUND, format!("job {id} not found"));
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

/// Rows of what `caller` may read only.
pub(super) fn readable(caller: &Caller, project: &str, stage: &str) -> bool {
    caller.allows(Action::Read, project, stage)
}

async fn history(State(api): State<Api>, caller: Caller, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    if !caller.can_read() {
        return Err(ApiError::usage(StatusCode::FORBIDDEN, format!("token `{}` may not read", caller.name)));
    }
    let filter = Filter { project: q.project, stage: q.stage, tag: None };
    let limit = q.limit.unwrap_or(20).min(1000);
    let deploys = api
        .store()
        .deploys(&filter, 10_000)
        .map_err(|e| ApiError::usage(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let shown: Vec<_> = deploys.into_iter().filter(|d| readable(&caller, &d.project, &d.stage)).take(limit).collect();
    Ok(Json(shown).into_response())
}

async fn one_deploy(State(api): State<Api>, caller: Caller, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let not_found =
        || ApiError::usage(StatusCode::NOT_FOUND, format!("deploy {id} not found; see `tiny-forge history`"));
    let store = api.store();
    let d = store
        .deploy(DeployId(id))
        .map_err(|e| ApiError::usage(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(not_found)?;
    if !readable(&caller, &d.project, &d.stage) {
        return Err(not_found());
    }
    let logs =
        store.logs(DeployId(id), 0).map_err(|e| ApiError::usage(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut v = serde_json::to_value(&d).unwrap_or(Value::Null);
    v["exit_code"] = json!(crate::ops::ExitCode::of_record(&d).map(crate::ops::ExitCode::code));
    v["logs"] = serde_json::to_value(logs).unwrap_or(Value::Null);
    Ok(Json(v).into_response())
}

async fn instances(State(api): State<Api>, caller: Caller, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    if !caller.can_read() {
        return Err(ApiError::usage(StatusCode::FORBIDDEN, format!("token `{}` may not read", caller.name)));
    }
    let (tx, rx) = oneshot::channel();
    let filter = Filter { project: q.project, stage: q.stage, tag: None };
    api.commands
        .send(Command::List(filter, tx))
        .map_err(|_| ApiError::usage(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down"))?;
    let items = rx
        .await
        .map_err(|_| ApiError::usage(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down"))?
        .map_err(|e| ApiError::usage(StatusCode::INTERNAL_SERVER_ERROR, e))?;
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
