//! `ApiError`: the one type that becomes an HTTP error response, in the JSON envelope
//! `{"error": {"code", "message", "details"?}}`. Domain errors map into it here.

use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::breaker::BreakerError;
use crate::browser::BrowserError;
use crate::forms::FormsError;
use crate::session::SessionError;
use crate::token::TokenError;

/// `Retry-After` of a `draining` answer, in seconds: a client should try another worker, or this
/// one again after that long.
pub const DRAINING_RETRY_AFTER_SECS: u64 = 30;

/// An error answer: status, stable machine code, human message, optional details.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429, 423 while cooling, 503 while draining).
    pub retry_after: Option<u64>,
}

/// The JSON body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `session_busy`.
    pub code: String,
    /// A human sentence.
    pub message: String,
    /// Extra structured facts (e.g. why a session closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required as `Authorization: Bearer <key>`",
        )
    }

    pub fn not_found_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not accept that method")
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message)
    }

    /// The worker is draining (SPEC §3.8): it takes no new sessions or tasks; another worker
    /// should, or this one after `undrain`.
    pub fn draining() -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this worker is draining: it takes no new sessions or tasks",
        );
        err.retry_after = Some(DRAINING_RETRY_AFTER_SECS);
        err
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "the worker hit an unexpected error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code.to_string(), message: self.message, details: self.details },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl ApiError {
    pub fn too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is larger than the limit")
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text())
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        use SessionError as E;
        let message = e.to_string();
        match e {
            E::NotFound => Self::new(StatusCode::NOT_FOUND, "session_not_found", message),
            E::Closed { state, reason } => Self::new(StatusCode::GONE, "session_closed", message)
                .with_details(json!({"state": state, "reason": reason})),
            E::Busy => Self::new(StatusCode::CONFLICT, "session_busy", message),
            E::ProfileInUse { session_id } => Self::new(StatusCode::CONFLICT, "profile_in_use", message)
                .with_details(json!({"session_id": session_id})),
            E::Fleet(f) => f.into(),
            E::Capacity { max, retry_after_secs } => {
                let mut err = Self::new(StatusCode::TOO_MANY_REQUESTS, "capacity_exhausted", message)
                    .with_details(json!({"max_sessions": max}));
                err.retry_after = Some(retry_after_secs);
                err
            }
            E::Invalid(_) => Self::validation(message),
            E::InvalidUrl(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_url", message),
            E::InvalidState(_) => Self::new(StatusCode::CONFLICT, "invalid_state", message),
            E::ShuttingDown => Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message),
            E::TooManyClients { max } => Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_clients", message)
                .with_details(json!({"max_clients": max})),
            E::Browser(b) => b.into(),
            E::Profile(p) => p.into(),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
    }
}

impl From<BrowserError> for ApiError {
    fn from(e: BrowserError) -> Self {
        use BrowserError as E;
        let message = e.to_string();
        match e {
            E::Launch(_) => Self::new(StatusCode::BAD_GATEWAY, "browser_start_failed", message),
            E::Disconnected => Self::new(StatusCode::BAD_GATEWAY, "browser_disconnected", message),
            E::Timeout(_) | E::NotInteractive => Self::new(StatusCode::GATEWAY_TIMEOUT, "operation_timeout", message),
            E::Navigation(_) => Self::new(StatusCode::BAD_GATEWAY, "navigation_failed", message),
            E::Cdp(_) => Self::new(StatusCode::BAD_GATEWAY, "browser_error", message),
            E::Provider { .. } => Self::new(StatusCode::BAD_GATEWAY, "adspower_error", message),
            E::Proxy(_) => Self::new(StatusCode::BAD_GATEWAY, "proxy_error", message),
        }
    }
}

impl From<BreakerError> for ApiError {
    fn from(e: BreakerError) -> Self {
        use BreakerError as E;
        let message = e.to_string();
        match e {
            E::NotFound => Self::new(StatusCode::NOT_FOUND, "profile_not_found", message),
            E::Unavailable(u) => {
                let mut err = Self::new(StatusCode::LOCKED, "profile_unavailable", message)
                    .with_details(json!({"state": u.state, "retry_after_secs": u.retry_after_secs}));
                err.retry_after = u.retry_after_secs;
                err
            }
            E::InvalidState(_) => Self::new(StatusCode::CONFLICT, "invalid_state", message),
            E::Store(_) => {
                tracing::error!(error = %message, "profile store failed");
                Self::internal()
            }
            E::Fleet(f) => f.into(),
        }
    }
}

impl From<crate::fleet::FleetError> for ApiError {
    fn from(e: crate::fleet::FleetError) -> Self {
        use crate::fleet::FleetError as E;
        let message = e.to_string();
        match e {
            E::Held { worker_id, session_id, .. } => Self::new(StatusCode::CONFLICT, "profile_in_use", message)
                .with_details(json!({"session_id": session_id, "worker_id": worker_id})),
            E::Unavailable(_) | E::Url(_) => {
                let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, "fleet_unavailable", message);
                err.retry_after = Some(5);
                err
            }
        }
    }
}

impl From<FormsError> for ApiError {
    fn from(e: FormsError) -> Self {
        let message = e.to_string();
        match e {
            FormsError::Browser(b) => b.into(),
            FormsError::Scan(_) => Self::new(StatusCode::BAD_GATEWAY, "scan_failed", message),
            FormsError::UnknownOverride(fields) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_field", message)
                    .with_details(json!({"fields": fields}))
            }
            FormsError::Resume(r) if r.is_client_error() => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_resume", message)
            }
            FormsError::Resume(_) => Self::new(StatusCode::BAD_GATEWAY, "resume_download_failed", message),
            FormsError::EngineUnavailable(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "engine_unavailable", message)
            }
            FormsError::Click(_) => Self::new(StatusCode::BAD_GATEWAY, "click_failed", message),
            FormsError::NoProgress(_) => Self::new(StatusCode::CONFLICT, "no_progress", message),
        }
    }
}

impl From<crate::flow::FlowError> for ApiError {
    fn from(e: crate::flow::FlowError) -> Self {
        match e {
            crate::flow::FlowError::Session(s) => s.into(),
            crate::flow::FlowError::Forms(f) => f.into(),
            crate::flow::FlowError::Stopped(m) => Self::new(StatusCode::CONFLICT, "task_stopped", m),
        }
    }
}

impl From<crate::tasks::TaskError> for ApiError {
    fn from(e: crate::tasks::TaskError) -> Self {
        match e {
            crate::tasks::TaskError::Invalid(m) => Self::validation(m),
            crate::tasks::TaskError::Session(s) => s.into(),
        }
    }
}
