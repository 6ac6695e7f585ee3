//! Error handlers for actix's own extractors, so that malformed input gets the one envelope:
//! broken JSON → 400, well-formed JSON of the wrong shape → 422 with the field, oversized → 413,
//! not JSON → 415, unparsable query → 422, unparsable path segment → 404; and `Json`, the body
//! extractor that takes only a JSON object.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{LocalBoxFuture, TryFutureExt};
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

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

/// A JSON request body that must be an object, as every request schema says. Serde reads a
/// struct from an array of its fields in order as well (`[null, null]` would be a valid partial
/// update), which no client means and the document does not describe: that is a 422 here.
/// Otherwise `web::Json`: its limit and errors (`json_config`) apply.
#[derive(Debug)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T> Json<T> {
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        Box::pin(web::Json::<Object<T>>::from_request(req, payload).map_ok(|json| Json(json.into_inner().0)))
    }
}

/// `T` read from a JSON object only.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData))
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
pub(crate) fn json_body<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    if media_type(req) != "application/json" {
        return Err(ApiError::unsupported_media_type());
    }
    serde_json::from_slice(body).map(|Object(value)| value).map_err(|error| json_body_error(&error))
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

    #[derive(Debug, Deserialize, PartialEq)]
    struct Patch {
        rank: Option<String>,
        unit: Option<String>,
    }

    #[test]
    fn a_body_is_an_object_never_an_array_of_fields() {
        let read = |body: &str| serde_json::from_str::<Object<Patch>>(body).map(|Object(patch)| patch);
        assert_eq!(read(r#"{"rank": "sergeant"}"#).ok(), Some(Patch { rank: Some("sergeant".into()), unit: None }));
        let error = read("[null, null]").expect_err("an array is not a body");
        assert!(error.is_data(), "{error}");
        assert!(error.to_string().contains("expected a JSON object"), "{error}");
        assert_eq!(
            actix_web::ResponseError::status_code(&json_body_error(&error)),
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
        );
    }

    #[test]
    fn falls_back_to_the_body_when_no_field_is_named() {
        let detail = field_error_from_serde("invalid type: string \"x\", expected u32 at line 1 column 3");
        assert_eq!(detail.field, "body");
    }
}
