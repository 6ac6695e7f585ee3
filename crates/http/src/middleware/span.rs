//! The request span: method, route pattern, request id and (once authenticated) user id. The raw
//! target is left out on purpose: query strings can carry personal data.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

use super::RequestId;

#[derive(Debug)]
pub(crate) struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().map(|id| id.0.clone()).unwrap_or_default();
        tracing::info_span!(
            "http.request",
            http.method = %request.method(),
            http.route = tracing::field::Empty,
            request_id = %request_id,
            user.id = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if let Ok(response) = outcome
            && let Some(route) = response.request().match_pattern()
        {
            span.record("http.route", route);
        }
    }
}
