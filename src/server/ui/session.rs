//! Signing in to the web page: a form takes an API token, and a session cookie stands for it.
//!
//! - The cookie (`tf_session`) holds a fresh random id (32 bytes from the OS, base64url), never
//!   the token; the state file keeps only the id's SHA-256, the token's row id and when the
//!   session ends ([`SESSION_TTL`] after sign-in). A lookup joins the token, so revoking the
//!   token (`tiny-forge token revoke`) ends its sessions; the revocation also deletes them.
//! - Every sign-in makes a new id (whatever cookie the browser sent is not reused: no session
//!   fixation), and `POST /ui/logout` deletes the session and the cookie.
//! - The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/ui`, and `Secure` when the browser
//!   reached the server over https: `serve` speaks TLS, or the request came from one of
//!   `[server] trusted_proxies` with `X-Forwarded-Proto: https`.
//! - A token that does not verify counts against the same failed-auth cap as the API (`state.rs`):
//!   401, or 429 once the client is over it.
//! - A session's scope is its token's: the pages filter with the same checks as the API.

use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;

use super::{Empty, Posted, UiError};
use crate::server::auth::{self, Caller};
use crate::server::error::ApiError;
use crate::server::state::{Api, refuse};
use crate::store::now_ms;

/// The session cookie's name.
pub(super) const COOKIE: &str = "tf_session";

/// How long a session lasts after sign-in.
pub(super) const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The signed-in viewer of a page: the caller its session's token stands for.
#[derive(Debug, Clone)]
pub(super) struct Viewer {
    pub(super) caller: Caller,
}

/// The session id a request's `Cookie` header carries, if any.
pub(super) fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Did the browser reach us over https? `serve` speaks TLS, or a trusted proxy says so.
pub(super) fn https(api: &Api, parts: &Parts) -> bool {
    if api.settings.tls.is_some() {
        return true;
    }
    let Some(peer) = parts.extensions.get::<ConnectInfo<crate::server::tls::Peer>>().map(|c| c.0.0.ip()) else {
        return false;
    };
    let peer = match peer {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 @ std::net::IpAddr::V4(_) => v4,
    };
    api.settings.trusted_proxies.iter().any(|n| n.contains(&peer))
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// The session's viewer, or a redirect to the sign-in page.
impl FromRequestParts<Api> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let Some(id) = presented(&parts.headers) else { return Err(UiError::SignIn) };
        let record = api.store().session_token(&auth::hash(id), now_ms()).map_err(UiError::internal)?;
        match record {
            Some(t) => Ok(Self { caller: Caller::of_record(&t) }),
            None => Err(UiError::SignIn),
        }
    }
}

/// A new random session id (32 bytes from the OS, base64url).
fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::unavailable(format!("cannot read random bytes: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The `Set-Cookie` value of a session `id` (an empty id with `Max-Age=0` deletes it).
pub(super) fn cookie(id: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/ui; Max-Age={}; HttpOnly; SameSite=Strict{secure}", max_age.as_secs())
}

/// The sign-in form's fields; its `Debug` never shows the token.
#[derive(serde::Deserialize)]
pub(super) struct LoginForm {
    token: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm").field("token", &"****").finish()
    }
}

/// `GET /ui/login`.
pub(super) async fn login_page() -> Response {
    super::pages::login(None).into_response()
}

/// `POST /ui/login`: checks the token (counted as the API counts failures), opens a new session.
pub(super) async fn login(State(api): State<Api>, posted: Posted<LoginForm>) -> Result<Response, UiError> {
    let presented_token = posted.form.token.trim();
    let caller = if presented_token.is_empty() {
        None
    } else {
        let live = api.store().live_tokens().map_err(UiError::internal)?;
        auth::verify(presented_token, &live)
    };
    let Some(caller) = caller else {
        let e = refuse(&api, posted.client, ApiError::unauthorized("this token is unknown or revoked"));
        return Ok((e.kind().status(), super::pages::login(Some(e.message()))).into_response());
    };
    let id = new_id().map_err(UiError::Api)?;
    let ttl_ms = i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
    {
        let store = api.store();
        store
            .create_session(&auth::hash(&id), caller.id, now_ms().saturating_add(ttl_ms))
            .map_err(UiError::internal)?;
        if let Err(e) = store.touch_token(caller.id) {
            api.shared.log(&format!("cannot record the use of token `{}`: {}", caller.name, crate::fmt::one_line(&e)));
        }
        // A session id the browser brought along is ended, never adopted.
        if let Some(old) = presented(&posted.headers) {
            store.delete_session(&auth::hash(old)).map_err(UiError::internal)?;
        }
    }
    let mut resp = Redirect::to("/ui").into_response();
    set_cookie(&mut resp, &cookie(&id, SESSION_TTL, posted.https));
    Ok(resp)
}

/// `POST /ui/logout`: ends the session (if any) and deletes the cookie.
pub(super) async fn logout(State(api): State<Api>, posted: Posted<Empty>) -> Result<Response, UiError> {
    if let Some(id) = presented(&posted.headers) {
        api.store().delete_session(&auth::hash(id)).map_err(UiError::internal)?;
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    set_cookie(&mut resp, &cookie("", Duration::ZERO, posted.https));
    Ok(resp)
}

fn set_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
}

/// 303 to the sign-in page.
pub(super) fn to_login() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/login")]).into_response()
}
