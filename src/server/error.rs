//! Every error answer of the API, in one type: an [`ApiError`] is a kind and a message, and
//! [`ApiErrorKind`] is the one place that decides a kind's HTTP status and exit code.
//!
//! The body is an [`ErrorBody`], `{"error": "…", "exit_code": N}`: the remote CLI exits with
//! `exit_code`, so the table below is part of the wire contract ([`super::wire`]).
//!
//! | kind | status | exit code |
//! |---|---|---|
//! | [`BadRequest`](ApiErrorKind::BadRequest) | 400 | 2 (usage) |
//! | [`Unauthorized`](ApiErrorKind::Unauthorized) | 401 | 2 |
//! | [`Forbidden`](ApiErrorKind::Forbidden) | 403 | 2 |
//! | [`NotFound`](ApiErrorKind::NotFound) | 404 | 2 |
//! | [`Conflict`](ApiErrorKind::Conflict) | 409 | 2 |
//! | [`TooLarge`](ApiErrorKind::TooLarge) | 413 | 2 |
//! | [`TooMany`](ApiErrorKind::TooMany) | 429 | 2 |
//! | [`Internal`](ApiErrorKind::Internal) | 500 | 2 |
//! | [`Unavailable`](ApiErrorKind::Unavailable) | 503 | 2 |
//!
//! Every kind is exit code 2 today: an error answer means the request started nothing, which
//! is what 2 says on a local run. Work that did start reports its own code through its job.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::wire::ErrorBody;
use crate::ops::ExitCode;

/// What went wrong, as far as the status and the exit code are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// A name, tag, `wait` or body the request got wrong.
    BadRequest,
    /// No credential, or one that does not verify.
    Unauthorized,
    /// The token verified but its scope does not cover the request.
    Forbidden,
    /// No such job, deploy, stage, receiver or held push (or one the token may not see).
    NotFound,
    /// The request contradicts the current state (an approval of another digest).
    Conflict,
    /// A body over `server.max_body_bytes`.
    TooLarge,
    /// The client has failed to authenticate too often in this window.
    TooMany,
    /// The state file could not be read or the executor could not list.
    Internal,
    /// The server drains or shuts down, or cannot record what it must: retry later.
    Unavailable,
}

impl ApiErrorKind {
    /// The HTTP status of an answer of this kind.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooMany => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The exit code a client reports for an answer of this kind (see the module doc).
    #[must_use]
    pub const fn exit_code(self) -> ExitCode {
        match self {
            Self::BadRequest
            | Self::Unauthorized
            | Self::Forbidden
            | Self::NotFound
            | Self::Conflict
            | Self::TooLarge
            | Self::TooMany
            | Self::Internal
            | Self::Unavailable => ExitCode::Usage,
        }
    }
}

/// Every error answer: a kind (status and exit code) and a message on one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    kind: ApiErrorKind,
    message: String,
}

impl ApiError {
    /// An error of `kind` saying `message`.
    #[must_use]
    pub fn new(kind: ApiErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> ApiErrorKind {
        self.kind
    }

    /// The message, as the body's `error` says it.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 400.
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::BadRequest, message)
    }

    /// 401.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::Unauthorized, message)
    }

    /// 403.
    #[must_use]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::Forbidden, message)
    }

    /// 404.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::NotFound, message)
    }

    /// 409.
    #[must_use]
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::Conflict, message)
    }

    /// 413.
    #[must_use]
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::TooLarge, message)
    }

    /// 429.
    #[must_use]
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::TooMany, message)
    }

    /// 500, saying what `cause` says (a state-file error, the executor's listing error).
    #[must_use]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(ApiErrorKind::Internal, cause.to_string())
    }

    /// 503.
    #[must_use]
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ApiErrorKind::Unavailable, message)
    }

    /// 503: the server drains and takes no new work; a client may retry after its restart.
    #[must_use]
    pub fn draining() -> Self {
        Self::unavailable("the server is shutting down; nothing was done, retry after it restarts")
    }

    /// 503: the executor no longer answers (the server is shutting down).
    #[must_use]
    pub fn executor_gone() -> Self {
        Self::unavailable("the server is shutting down")
    }

    /// The body this error is answered with.
    #[must_use]
    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.message.clone(), exit_code: self.kind.exit_code().code() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        (status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire contract: status and body of every kind.
    #[tokio::test]
    async fn every_kind_answers_its_status_and_a_body_with_exit_code_2() {
        let table = [
            (ApiError::bad_request("b"), 400),
            (ApiError::unauthorized("b"), 401),
            (ApiError::forbidden("b"), 403),
            (ApiError::not_found("b"), 404),
            (ApiError::conflict("b"), 409),
            (ApiError::too_large("b"), 413),
            (ApiError::too_many("b"), 429),
            (ApiError::internal("b"), 500),
            (ApiError::unavailable("b"), 503),
        ];
        for (e, status) in table {
            let kind = e.kind();
            let resp = e.into_response();
            assert_eq!(resp.status().as_u16(), status, "{kind:?}");
            let bytes = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
            assert_eq!(&bytes[..], br#"{"error":"b","exit_code":2}"#, "{kind:?}");
        }
    }

    #[test]
    fn the_shutdown_answers_keep_their_words() {
        let e = ApiError::draining();
        assert_eq!(
            (e.kind(), e.message()),
            (ApiErrorKind::Unavailable, "the server is shutting down; nothing was done, retry after it restarts")
        );
        let e = ApiError::executor_gone();
        assert_eq!((e.kind(), e.message()), (ApiErrorKind::Unavailable, "the server is shutting down"));
    }
}
