//! The web page (issue 25): server-rendered HTML for the people who are not at a terminal,
//! served by `serve` from the same binary. No build step, no CDN, nothing fetched from
//! elsewhere: the templates are compiled in (maud), and so are the stylesheet and the one small
//! script (`assets/`), which only does what needs it: live updates over Server-Sent Events.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | 303 to `/ui` |
//! | `GET /ui/login`, `POST /ui/login`, `POST /ui/logout` | sign-in with a token (`session.rs`) |
//! | `GET /ui?project&stage` | previews: instances, leftovers, held pushes (`pages.rs`) |
//! | `GET /ui/changes` | SSE: `change` when a deploy the viewer may read starts or ends |
//! | `GET /ui/deploys?project&stage&before` | history, newest first, 50 a page |
//! | `GET /ui/deploys/{id}`, `/ui/deploys/{id}/events?after` | a deploy, its steps and log, live |
//! | `GET /ui/jobs/{id}` | a job the page started: on to its deploy once it has one |
//! | `POST /ui/redeploy`, `/ui/rollback`, `GET`/`POST /ui/remove`, `POST /ui/approvals/{id}` | actions (`actions.rs`) |
//! | `GET /ui/assets/{ui.css,ui.js}` | the stylesheet and the script |
//!
//! Rules: every page and action takes its viewer from the session ([`session::Viewer`]) and
//! obeys the token's scope with the API's own checks (`Caller::allows`, `state::readable`);
//! actions go through the API's own paths (`api::enqueue`, `approvals::release`), so they run
//! on the executor and record `token:NAME` as their actor. Every state-changing request is a
//! `POST` whose `Origin` (or, without one, `Referer`) must name this host ([`Posted`]), on top
//! of the `SameSite=Strict` cookie. Pages carry a strict Content-Security-Policy.

mod actions;
mod pages;
mod session;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::error::ApiError;
use super::state::Api;
use crate::config::ServerSettings;

/// The stylesheet, compiled in.
const CSS: &str = include_str!("assets/ui.css");
/// The script, compiled in.
const JS: &str = include_str!("assets/ui.js");

/// The web page's routes, under the API's body cap.
pub(super) fn routes(settings: &ServerSettings) -> axum::Router<Api> {
    let limit = tower_http::limit::RequestBodyLimitLayer::new(settings.max_body_bytes);
    axum::Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui", get(pages::previews))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/changes", get(pages::changes))
        .route("/ui/deploys", get(pages::deploys))
        .route("/ui/deploys/{id}", get(pages::deploy))
        .route("/ui/deploys/{id}/events", get(pages::deploy_events))
        .route("/ui/jobs/{id}", get(pages::job))
        .route("/ui/redeploy", post(actions::redeploy))
        .route("/ui/rollback", post(actions::rollback))
        .route("/ui/remove", get(actions::confirm_remove).post(actions::remove))
        .route("/ui/approvals/{id}", post(actions::approve))
        .route("/ui/assets/ui.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/ui/assets/ui.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .layer(axum::middleware::from_fn(refuse_cross_site))
        .layer(axum::middleware::map_response(headers))
        .layer(limit)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=3600")], body).into_response()
}

/// What every answer of the web page carries: nothing from elsewhere may load, no frame may
/// hold it, no sniffing; pages are not cached (they show live state and are per session).
async fn headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// Why a page or an action was not answered as asked.
#[derive(Debug)]
pub(super) enum UiError {
    /// No live session: on to the sign-in page.
    SignIn,
    /// A state-changing request that did not come from this site's own pages.
    CrossSite,
    /// What the API would have answered (its status, its message).
    Api(ApiError),
}

impl UiError {
    fn internal(e: impl std::fmt::Display) -> Self {
        Self::Api(ApiError::internal(e))
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => session::to_login(),
            Self::CrossSite => (
                StatusCode::FORBIDDEN,
                pages::problem("Refused", "This request did not come from this site's own pages; nothing was done."),
            )
                .into_response(),
            Self::Api(e) => (e.kind().status(), pages::problem("Not done", e.message())).into_response(),
        }
    }
}

/// The host and port of an `Origin` or `Referer` value (`scheme://authority[/…]`).
fn authority(v: &str) -> Option<&str> {
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"))?;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// The CSRF check of every state-changing request: the browser's `Origin` (or, when it sends
/// none, its `Referer`) must name the host the request was sent to, and a `Sec-Fetch-Site`
/// header, when present, must not say `cross-site`. A request with neither header is refused:
/// every browser that can run the page sends one of them on a form `POST`.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if get(header::HeaderName::from_static("sec-fetch-site")).is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
        return false;
    }
    let Some(host) = get(header::HOST) else { return false };
    let source = get(header::ORIGIN).or_else(|| get(header::REFERER));
    source.and_then(authority).is_some_and(|a| a.eq_ignore_ascii_case(host.trim()))
}

/// Refuses every state-changing request that fails [`same_origin`], before anything else looks
/// at it (a cross-site request usually comes without the session cookie too: `SameSite=Strict`;
/// it is refused as cross-site all the same, not sent to the sign-in page). [`Posted`] checks
/// again, so no handler depends on this layer being in place.
async fn refuse_cross_site(req: Request, next: axum::middleware::Next) -> Response {
    let safe = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    if !safe && !same_origin(req.headers()) {
        return UiError::CrossSite.into_response();
    }
    next.run(req).await
}

/// An empty form (logout).
#[derive(Debug, serde::Deserialize)]
pub(super) struct Empty {}

/// A state-changing request: its form, once the CSRF check ([`same_origin`]) passed, with what
/// the handlers need of its head (the cookie, the client it counts against, https).
#[derive(Debug)]
pub(super) struct Posted<T> {
    pub(super) form: T,
    pub(super) headers: HeaderMap,
    pub(super) client: std::net::IpAddr,
    pub(super) https: bool,
}

impl<T: serde::de::DeserializeOwned + Send> FromRequest<Api> for Posted<T> {
    type Rejection = UiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        if !same_origin(&parts.headers) {
            return Err(UiError::CrossSite);
        }
        let client = super::state::client(api, &parts);
        let https = session::https(api, &parts);
        let headers = parts.headers.clone();
        let req = Request::from_parts(parts, body);
        let form = axum::Form::<T>::from_request(req, api)
            .await
            .map_err(|e| UiError::Api(ApiError::bad_request(format!("the form: {}", e.body_text()))))?;
        Ok(Self { form: form.0, headers, client, https })
    }
}

#[cfg(test)]
mod tests;
