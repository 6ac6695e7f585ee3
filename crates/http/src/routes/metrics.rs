//! Prometheus exposition. The private metrics listener (`GAD_METRICS_BIND`) serves it openly.
//! On the API listener a configured metrics token is always required; without a token it is
//! served openly only when there is no separate listener (else 404: look there).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::error::{ApiError, ErrorBody};
use crate::state::MetricsEndpoint;

/// Which listener a request to `/metrics` arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricsExposure {
    PrivateListener,
    ApiListener { separate_listener: bool },
}

/// Prometheus metrics: HTTP traffic by route pattern, pools, dependencies and the process.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "missing or wrong metrics token", body = ErrorBody),
        (status = 404, description = "metrics are served on the separate metrics listener only", body = ErrorBody),
    ),
    security((), ("metrics_token" = []))
)]
#[get("/metrics")]
pub(crate) async fn get_metrics(
    request: HttpRequest,
    endpoint: web::Data<MetricsEndpoint>,
    exposure: web::Data<MetricsExposure>,
) -> Result<HttpResponse, ApiError> {
    let expected = match (**exposure, endpoint.token()) {
        (MetricsExposure::PrivateListener, _) | (MetricsExposure::ApiListener { separate_listener: false }, None) => {
            None
        }
        (MetricsExposure::ApiListener { .. }, Some(token)) => Some(token),
        (MetricsExposure::ApiListener { separate_listener: true }, None) => return Err(ApiError::not_found()),
    };
    if let Some(expected) = expected {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if !presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes())) {
            return Err(ApiError::unauthenticated("a valid metrics token is required"));
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(endpoint.render()))
}

/// Compares secrets without leaking, through timing, how much of a guess was right.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}
