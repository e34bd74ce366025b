//! `ServerError`: the one error type of the server, and the one place that turns an error into
//! Firestore's `google.rpc.Status` JSON (`{"error":{"code":..,"message":..,"status":..}}`).
//!
//! Every handler returns `Result<_, ServerError>`; the variant decides the gRPC code and with it
//! the HTTP status, so a client (the sync engine, the Firebase SDK) can react to the status
//! exactly as it would against Cloud Firestore or its emulator.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use counterbook_firestore_wire::{Code, ErrorResponse, NameError, Status};

/// Everything that can go wrong while answering a request or starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request is malformed: bad names, bad field paths, wrong value types. 400.
    #[error("{0}")]
    InvalidArgument(String),
    /// The body is not JSON of the expected shape. 400, worded like the emulator's
    /// "Payload isn't valid for request." with serde's reason appended.
    #[error("Payload isn't valid for request: {0}")]
    MalformedBody(#[source] serde_json::Error),
    /// The body is larger than Firestore's request limit. HTTP 413 with `INVALID_ARGUMENT`,
    /// as the emulator's front end answers a body that large.
    #[error("Request payload size exceeds the limit: {limit_bytes} bytes.")]
    PayloadTooLarge { limit_bytes: usize },
    /// A transaction's commit found that something it read has changed. 409.
    #[error("{0}")]
    Aborted(String),
    /// A document the request needs does not exist (GET, or an `exists: true` precondition). 404.
    #[error("{0}")]
    NotFound(String),
    /// An `exists: false` precondition met an existing document. 409.
    #[error("{0}")]
    AlreadyExists(String),
    /// An `updateTime` precondition did not match, or the query cannot be served. 400.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A Firestore feature this server recognises but does not implement yet. 501.
    #[error("{0}")]
    Unimplemented(String),
    /// No route answers this path. 404.
    #[error("{0}")]
    NoSuchMethod(String),
    /// The server cannot take this request now (too many open listen channels); retry. 503.
    #[error("{0}")]
    Unavailable(String),
    /// A per-user, per-shop or server-wide quota is used up (open listen channels or
    /// transactions, unacknowledged listen output). 429, as Cloud Firestore answers a quota;
    /// the SDKs retry it with backoff.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The request body did not arrive in time. 408 with `DEADLINE_EXCEEDED`, which clients
    /// retry.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// SQLite failed. 503 when the database is busy (retryable), 500 otherwise. The source is
    /// the store's `StoreError` (`store` converts it, so this module stays below the store).
    #[error("{source}")]
    Storage {
        /// Another connection held the lock too long: worth retrying.
        busy: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A reply could not be written as JSON (a value serde cannot encode). 500.
    #[error("internal error: the reply could not be encoded: {0}")]
    EncodeReply(#[source] serde_json::Error),
    /// The blocking task that talks to SQLite panicked or was cancelled. 500.
    #[error("internal error: the storage task did not finish: {0}")]
    StorageTaskFailed(String),
    /// No valid ID token: missing, malformed, badly signed, or expired. 401, as Cloud Firestore
    /// answers a bad credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// The signed-in user may not do this (another shop, or not their role). 403.
    #[error("{0}")]
    PermissionDenied(String),
    /// Authentication cannot start: the accounts tables or the signing key cannot be opened.
    #[error("cannot set up authentication: {0}")]
    AuthSetup(String),
    /// The server was asked to run with authentication but without the project its tokens are
    /// for.
    #[error(
        "without --dev, authentication is on and needs the project id its tokens are for: pass --project PROJECT (or run with --dev: no auth, like the Firestore emulator)"
    )]
    ProjectRequired,
}

impl ServerError {
    /// A resource name that does not parse, as `INVALID_ARGUMENT`: `what` names the kind of
    /// name ("document name"). A reserved id gets the emulator's own sentence alone, since
    /// clients (and the differential suite) see that message.
    pub fn invalid_name(what: &str, error: NameError) -> ServerError {
        match error {
            NameError::ReservedId { .. } => ServerError::InvalidArgument(error.to_string()),
            other => ServerError::InvalidArgument(format!("invalid {what}: {other}")),
        }
    }

    /// The gRPC code this error travels as.
    pub fn code(&self) -> Code {
        match self {
            ServerError::InvalidArgument(_)
            | ServerError::MalformedBody(_)
            | ServerError::PayloadTooLarge { .. } => Code::InvalidArgument,
            ServerError::NotFound(_) | ServerError::NoSuchMethod(_) => Code::NotFound,
            ServerError::AlreadyExists(_) => Code::AlreadyExists,
            ServerError::Aborted(_) => Code::Aborted,
            ServerError::FailedPrecondition(_) => Code::FailedPrecondition,
            ServerError::Unimplemented(_) => Code::Unimplemented,
            ServerError::ResourceExhausted(_) => Code::ResourceExhausted,
            ServerError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            ServerError::Unauthenticated(_) => Code::Unauthenticated,
            ServerError::PermissionDenied(_) => Code::PermissionDenied,
            ServerError::ProjectRequired => Code::FailedPrecondition,
            ServerError::AuthSetup(_) => Code::Internal,
            ServerError::Storage { busy: true, .. } | ServerError::Unavailable(_) => {
                Code::Unavailable
            }
            ServerError::Storage { busy: false, .. }
            | ServerError::StorageTaskFailed(_)
            | ServerError::EncodeReply(_) => Code::Internal,
        }
    }

    /// The `google.rpc.Status` body for this error.
    pub fn to_status(&self) -> Status {
        Status::new(self.code(), self.to_string())
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let code = self.code();
        // Server-side failures are the operator's business: log them with their source chain.
        // Client mistakes are the client's business and only worth a debug line.
        match code {
            Code::Internal | Code::Unavailable => {
                tracing::error!(error = ?self, "request failed on the server side")
            }
            _ => tracing::debug!(error = %self, "request rejected"),
        }
        let status = match self {
            ServerError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::DeadlineExceeded(_) => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        };
        let mut error = self.to_status();
        error.code = status.as_u16();
        let body = ErrorResponse { error };
        (status, Json(body)).into_response()
    }
}
