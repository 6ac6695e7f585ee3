//! Makes every error response use the envelope, including responses that no handler built:
//! actix's default 404/405 and any inner middleware's error status. Query strings carrying an
//! encoded NUL are refused with 422 before any handler sees them.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};

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
    if let Some(name) = repeated_parameter(req.query_string()) {
        let refusal =
            ApiError::validation(vec![FieldError { field: name, message: "must be given at most once".into() }]);
        return Ok(req.into_response(refusal.error_response()));
    }
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    // A 404 for a method that the path's own template does not serve (no route took it, or a
    // broader template did and found no such id) is a 405.
    let request = response.request();
    let allowed = (status == StatusCode::NOT_FOUND)
        .then(|| request.app_data::<web::Data<ServedMethods>>()?.allowed(request.path()))
        .flatten()
        .filter(|allowed| !allowed.iter().any(|method| method == request.method().as_str()));
    if let Some(allowed) = allowed {
        let mut refusal = ApiError::method_not_allowed().error_response();
        if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
            refusal.headers_mut().insert(header::ALLOW, value);
        }
        return Ok(response.into_response(refusal));
    }
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

/// The methods served on each path of the API, read from the OpenAPI document (which is
/// collected from the served routes), so that an unserved method on a known path is a 405 with
/// `Allow` (RFC 9110 §15.5.6) rather than a 404.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServedMethods(Vec<(Vec<Segment>, Vec<String>)>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter,
}

impl ServedMethods {
    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    pub(crate) fn from_document(document: &serde_json::Value) -> Self {
        let Some(paths) = document.get("paths").and_then(serde_json::Value::as_object) else {
            return Self::default();
        };
        let templates = paths.iter().map(|(template, item)| {
            let segments =
                template
                    .split('/')
                    .map(|segment| {
                        if segment.starts_with('{') { Segment::Parameter } else { Segment::Literal(segment.to_owned()) }
                    })
                    .collect();
            let methods = Self::METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| method.to_ascii_uppercase())
                .collect();
            (segments, methods)
        });
        Self(templates.collect())
    }

    /// The methods served on `path` by its most specific templates (most literal segments:
    /// `/officers/nearest` before `/officers/{id}`), or `None` for a path nothing serves.
    fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let segments: Vec<&str> = path.split('/').collect();
        let matching = self.0.iter().filter(|(template, _)| {
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(expected, given)| match expected {
                    Segment::Literal(literal) => literal == given,
                    Segment::Parameter => !given.is_empty(),
                })
        });
        let literals = |template: &[Segment]| template.iter().filter(|s| **s != Segment::Parameter).count();
        let best = matching.clone().map(|(template, _)| literals(template)).max()?;
        let mut methods: Vec<String> = matching
            .filter(|(template, _)| literals(template) == best)
            .flat_map(|(_, methods)| methods.iter().cloned())
            .collect();
        methods.sort_unstable();
        methods.dedup();
        Some(methods)
    }
}

/// Query parameters that may be repeated (`GET /api/v1/tasks?status=…&status=…`); every other
/// one names a single value.
const REPEATABLE_PARAMETERS: &[&str] = &["status"];

/// A single-valued query parameter given more than once (`limit=500&limit=1`): refused rather
/// than silently taking one of the values. A malformed query string is left to the handlers.
fn repeated_parameter(query: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let mut seen = std::collections::HashSet::new();
    pairs
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !REPEATABLE_PARAMETERS.contains(&name.as_str()))
        .find(|name| !seen.insert(name.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_served_path_names_the_allowed_methods() {
        let document = serde_json::json!({"paths": {
            "/api/v1/officers/nearest": {"get": {}},
            "/api/v1/officers/{id}": {"get": {}, "patch": {}, "delete": {}},
            "/api/v1/officers": {"get": {}, "post": {}},
        }});
        let served = ServedMethods::from_document(&document);
        assert_eq!(served.allowed("/api/v1/officers/nearest"), Some(vec!["GET".to_owned()]));
        assert_eq!(served.allowed("/api/v1/officers/42"), Some(vec!["DELETE".into(), "GET".into(), "PATCH".into()]));
        assert_eq!(served.allowed("/api/v1/officers"), Some(vec!["GET".into(), "POST".into()]));
        assert_eq!(served.allowed("/api/v1/officers/42/badge"), None);
        assert_eq!(served.allowed("/api/v1/officers/"), None);
    }

    #[test]
    fn single_valued_parameters_may_not_repeat() {
        assert_eq!(repeated_parameter("limit=500&limit=1").as_deref(), Some("limit"));
        assert_eq!(repeated_parameter("q=a&limit=1&q=b").as_deref(), Some("q"));
        assert_eq!(repeated_parameter("status=paused&status=scheduled&limit=5"), None);
        assert_eq!(repeated_parameter(""), None);
    }
}
