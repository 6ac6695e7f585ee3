//! Makes every error response use the envelope, including responses that no handler built:
//! actix's default 404/405 and any inner middleware's error status. Query strings carrying an
//! encoded NUL are refused with 422 before any handler sees them.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use crate::error::{ApiError, FieldError};

pub(crate) async fn error_envelope(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if carries_nul(req.query_string()) {
        let refusal = ApiError::validation(vec![FieldError {
            field: "query".into(),
            message: "must not contain NUL characters".into(),
        }]);
        return Ok(req.into_response(refusal.error_response()));
    }
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || carries_envelope(&response) {
        return Ok(response);
    }
    let error = ApiError::from_status(status);
    let original = response.response();
    let mut replacement = error.error_response();
    for (name, value) in original.headers() {
        if !replacement.headers().contains_key(name) {
            replacement.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(response.into_response(replacement))
}

/// Whether a query string carries an encoded NUL, which no parameter may hold (PostgreSQL
/// cannot store it): refused here once rather than in every handler.
fn carries_nul(query: &str) -> bool {
    query.as_bytes().windows(3).any(|window| window == b"%00")
}

/// Errors raised as `ApiError`, and JSON bodies a handler built on purpose (readiness), are
/// already in the envelope; actix's own error responses are empty or plain text.
fn carries_envelope(response: &ServiceResponse<BoxBody>) -> bool {
    let raised_by_us = response.response().error().is_some_and(|error| error.as_error::<ApiError>().is_some());
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    raised_by_us || (response.response().error().is_none() && is_json)
}
