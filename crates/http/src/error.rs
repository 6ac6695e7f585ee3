//! The one error envelope of the API (SPEC §2):
//! `{"error": {"code", "message", "details": [{"field", "message"}], "request_id"}}`.
//!
//! 5xx bodies are opaque; their cause is logged once, here, where the error becomes a response.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use gad_domain::error::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::middleware::current_request_id;

/// Seconds a client should wait before retrying when a dependency is down.
const UNAVAILABLE_RETRY_AFTER_S: u64 = 5;

/// An error as the API reports it. Boxed: errors travel in every `Result` of every handler,
/// and the happy path should not pay for their size.
#[derive(Debug)]
pub struct ApiError(Box<Parts>);

#[derive(Debug)]
struct Parts {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<FieldError>,
    retry_after: Option<u64>,
    /// Extra response headers (`RateLimit-*`).
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The cause of a 5xx, logged and never sent.
    cause: Option<String>,
}

/// One invalid input field.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name as sent (a dotted path for nested fields).
    pub field: String,
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    /// Machine-readable code, e.g. `validation_failed`, `not_found`, `unavailable`.
    #[schema(example = "validation_failed")]
    pub code: String,
    pub message: String,
    pub details: Vec<FieldError>,
    /// The `X-Request-Id` of the request, for support.
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Parts {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            headers: Vec::new(),
            cause: None,
        }))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "the resource does not exist")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this method is not allowed on this resource")
    }

    /// The request (its body) did not arrive in time.
    pub fn request_timeout() -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request did not arrive in time")
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds the limit of {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request bodies must be application/json",
        )
    }

    pub fn validation(details: Vec<FieldError>) -> Self {
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "the request is not valid");
        error.0.details = details;
        error
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// A unique value (`field`) already belongs to another record.
    pub fn duplicate(field: &str) -> Self {
        Self::new(StatusCode::CONFLICT, "duplicate", format!("another record already has this {field}"))
            .with_details(vec![FieldError { field: field.into(), message: "is already taken".into() }])
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "you may not do this")
    }

    /// Too many failed logins: the account is locked for `retry_after_s` more seconds.
    pub fn account_locked(retry_after_s: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "account_locked",
            "too many failed logins; the account is locked for a while",
        );
        error.0.retry_after = Some(retry_after_s.max(1));
        error
    }

    /// Too many requests; retry after `retry_after_s` seconds.
    pub fn rate_limited(retry_after_s: u64) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests; slow down");
        error.0.retry_after = Some(retry_after_s.max(1));
        error
    }

    pub fn with_headers(mut self, headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        self.0.headers = headers;
        self
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        error.0.retry_after = Some(UNAVAILABLE_RETRY_AFTER_S);
        error
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut error = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred");
        error.0.cause = Some(cause.to_string());
        error
    }

    /// An error for a status that no handler chose (actix's own 404/405, a middleware's 4xx).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::bad_request("the request is malformed"),
            StatusCode::UNAUTHORIZED => Self::unauthenticated("authentication is required"),
            StatusCode::FORBIDDEN => Self::forbidden(),
            StatusCode::NOT_FOUND => Self::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => Self::method_not_allowed(),
            StatusCode::REQUEST_TIMEOUT => Self::request_timeout(),
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(status, "payload_too_large", "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::unsupported_media_type(),
            StatusCode::SERVICE_UNAVAILABLE => Self::unavailable("the service is unavailable"),
            status if status.is_server_error() => Self::internal(format!("unhandled {status}")),
            status => Self::new(status, "bad_request", status.canonical_reason().unwrap_or("request failed")),
        }
    }

    pub fn with_details(mut self, details: Vec<FieldError>) -> Self {
        self.0.details = details;
        self
    }

    pub fn code(&self) -> &'static str {
        self.0.code
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorObject {
                code: self.0.code.to_owned(),
                message: self.0.message.clone(),
                details: self.0.details.clone(),
                request_id: current_request_id(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.0.status.as_u16(), self.0.code, self.0.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.0.cause {
            tracing::error!(error.cause = %cause, error.code = self.0.code, "request failed");
        }
        let mut response = HttpResponse::build(self.0.status);
        if let Some(seconds) = self.0.retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        for (name, value) in &self.0.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        if self.0.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(self.body())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(reason) => {
                tracing::warn!(error.cause = %reason, "dependency unavailable");
                Self::unavailable("a dependency is temporarily unavailable; retry later")
            }
            StoreError::Unexpected(cause) => Self::internal(cause),
        }
    }
}

impl From<gad_domain::users::ReadUserError> for ApiError {
    fn from(error: gad_domain::users::ReadUserError) -> Self {
        match error {
            gad_domain::users::ReadUserError::NotFound => Self::not_found(),
            gad_domain::users::ReadUserError::Forbidden => Self::forbidden(),
            gad_domain::users::ReadUserError::Store(error) => error.into(),
        }
    }
}
