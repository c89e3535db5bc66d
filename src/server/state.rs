//! What every handler shares: the [`Api`] state, and the request-side helpers the handlers of
//! [`super::api`], `hooks.rs`, `sse.rs` and `approvals.rs` all use: the token extractor (a
//! `Caller` from a request), which client a request counts against, and the failed-auth cap.
//!
//! Authentication first, then the cap: a credential that verifies is never refused, whatever
//! its client did before (checking one is one SHA-256 and a constant-time compare per live
//! token, or one HMAC). Failures are counted per client ([`super::client`]); a client over
//! `[server] auth_failures` in `auth_window` has its failures answered 429 instead of 401.

use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use tokio::sync::{mpsc, watch};

use super::auth::{Action, Caller, FailedAuths};
use super::error::ApiError;
use super::executor::{Command, Shared};
use super::live::LiveConfig;
use super::phase::Phase;
use crate::config::ServerSettings;
use crate::store::SqliteStore;

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
        return ApiError::too_many("too many failed authentications; try later");
    }
    failures.failed(client, now);
    unauthorized
}

/// Rows of what `caller` may read only.
pub(super) fn readable(caller: &Caller, project: &str, stage: &str) -> bool {
    caller.allows(Action::Read, project, stage)
}

/// The token extractor: a `Bearer` token that verifies against the state file's live tokens,
/// else 401 (or 429 for a client over the failed-auth cap).
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
                let live = store.live_tokens().map_err(ApiError::internal)?;
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
            let unauthorized = ApiError::unauthorized(
                "missing or unknown token; pass TINY_FORGE_TOKEN (`tiny-forge token create` on the server's host)",
            );
            refuse(api, client(api, parts), unauthorized)
        })
    }
}
