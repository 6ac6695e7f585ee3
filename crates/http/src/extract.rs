//! Error handlers for actix's own extractors, so that malformed input gets the one envelope:
//! broken JSON → 400, well-formed JSON of the wrong shape → 422 with the field, oversized → 413,
//! not JSON → 415, unparsable query → 422, unparsable path segment → 404.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};

use crate::error::{ApiError, FieldError};

pub(crate) fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |error, _req: &HttpRequest| json_error(&error, limit).into())
}

pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _req| query_error(&error).into())
}

pub(crate) fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_error: PathError, _req| ApiError::not_found().into())
}

fn json_error(error: &JsonPayloadError, limit: usize) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::payload_too_large(limit)
        }
        JsonPayloadError::ContentType => ApiError::unsupported_media_type(),
        JsonPayloadError::Deserialize(error) => json_body_error(error),
        _ => ApiError::bad_request("the request body could not be read"),
    }
}

/// A JSON body read by hand (handlers that accept more than one media type): broken JSON → 400,
/// the wrong shape → 422 naming the field.
pub(crate) fn json_body_error(error: &serde_json::Error) -> ApiError {
    if error.is_data() {
        ApiError::validation(vec![field_error_from_serde(&error.to_string())])
    } else {
        ApiError::bad_request(format!("malformed JSON: {error}"))
    }
}

/// The media type of a request body, lower-cased, without parameters.
pub(crate) fn media_type(req: &HttpRequest) -> String {
    let content_type =
        req.headers().get(actix_web::http::header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// A JSON body read from raw bytes (when the bytes themselves matter, e.g. to hash them),
/// with the same answers as the JSON extractor: 415, 400, 422.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    if media_type(req) != "application/json" {
        return Err(ApiError::unsupported_media_type());
    }
    serde_json::from_slice(body).map_err(|error| json_body_error(&error))
}

/// A form body that does not have the expected fields.
pub(crate) fn form_body_error(error: &serde_urlencoded::de::Error) -> ApiError {
    ApiError::validation(vec![field_error_from_serde(&error.to_string())])
}

fn query_error(error: &QueryPayloadError) -> ApiError {
    match error {
        QueryPayloadError::Deserialize(error) => ApiError::validation(vec![field_error_from_serde(&error.to_string())]),
        _ => ApiError::bad_request("the query string could not be read"),
    }
}

/// Serde names the offending field in its messages (``missing field `title` ``); lift it out
/// into the `field` of the detail so that clients can highlight it.
fn field_error_from_serde(message: &str) -> FieldError {
    let message = message.split(" at line ").next().unwrap_or(message).to_owned();
    let field = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|marker| {
            let rest = message.split_once(marker)?.1;
            rest.split_once('`').map(|(name, _)| name.to_owned())
        })
        .unwrap_or_else(|| "body".to_owned());
    FieldError { field, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_field_and_drops_positions() {
        let detail = field_error_from_serde("missing field `title` at line 1 column 2");
        assert_eq!(detail.field, "title");
        assert_eq!(detail.message, "missing field `title`");
    }

    #[test]
    fn falls_back_to_the_body_when_no_field_is_named() {
        let detail = field_error_from_serde("invalid type: string \"x\", expected u32 at line 1 column 3");
        assert_eq!(detail.field, "body");
    }
}
