//! Parsing request fields into the domain's validated types while collecting every failure, so
//! that one 422 names every bad field.

use gad_domain::tasks::geo::GeoPoint;
use gad_domain::users::InvalidValue;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::map::Entry;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::error::{ApiError, FieldError};

#[derive(Debug, Default)]
pub(crate) struct Fields(pub(crate) Vec<FieldError>);

impl Fields {
    /// The parsed value, or `None` with the failure noted against `field`.
    pub(crate) fn check<T>(&mut self, field: &str, parsed: Result<T, InvalidValue>) -> Option<T> {
        parsed.map_err(|error| self.push(field, error.to_string())).ok()
    }

    /// Like `check`, for a field that may be absent.
    pub(crate) fn optional<T>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        parse: fn(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        raw.and_then(|raw| self.check(field, parse(raw)))
    }

    /// A number that must be present.
    pub(crate) fn required_number(&mut self, field: &str, raw: Option<&str>) -> Option<f64> {
        self.check(field, raw.ok_or(InvalidValue("is required")).and_then(parse_number))
    }

    /// An RFC 3339 time, in UTC (as every time the API shows).
    pub(crate) fn time(&mut self, field: &str, raw: &str) -> Option<OffsetDateTime> {
        self.check(field, parse_time(raw))
    }

    /// A point whose coordinates are reported as `<prefix>lat` and `<prefix>lng`.
    pub(crate) fn point(&mut self, prefix: &str, lat: f64, lng: f64) -> Option<GeoPoint> {
        GeoPoint::new(lat, lng).map_err(|(field, error)| self.push(&format!("{prefix}{field}"), error.to_string())).ok()
    }

    pub(crate) fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }

    /// Every failure so far as one 422, or nothing.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::validation(self.0)) }
    }

    /// Every failure as one 422, or the value built from the parsed fields.
    pub(crate) fn finish_with<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        self.finish()?;
        value().ok_or_else(|| ApiError::internal("validated input was incomplete"))
    }
}

/// An RFC 3339 time, in UTC (as every time the API shows).
pub(crate) fn parse_time(raw: &str) -> Result<OffsetDateTime, InvalidValue> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map(|time| time.to_offset(time::UtcOffset::UTC))
        .map_err(|_| InvalidValue("must be an RFC 3339 time"))
}

/// A `validator` check that runs a domain parser, so that each rule is written once.
pub(crate) fn valid<T>(parsed: Result<T, InvalidValue>) -> Result<(), ValidationError> {
    parsed.map(drop).map_err(|InvalidValue(message)| ValidationError::new("invalid").with_message(message.into()))
}

/// Every failure `validator` found, as one 422; nested fields are named by their dotted path.
pub(crate) fn invalid(errors: &ValidationErrors) -> ApiError {
    let mut details = Vec::new();
    collect(errors, "", &mut details);
    details.sort_by(|left, right| left.field.cmp(&right.field));
    ApiError::validation(details)
}

fn collect(errors: &ValidationErrors, prefix: &str, details: &mut Vec<FieldError>) {
    for (field, kind) in errors.errors() {
        let path = format!("{prefix}{field}");
        match kind {
            ValidationErrorsKind::Field(failures) => details.extend(failures.iter().map(|failure| FieldError {
                field: path.clone(),
                message: failure.message.as_deref().unwrap_or("is invalid").to_owned(),
            })),
            ValidationErrorsKind::Struct(nested) => collect(nested, &format!("{path}."), details),
            ValidationErrorsKind::List(items) => {
                for (index, nested) in items {
                    collect(nested, &format!("{path}[{index}]."), details);
                }
            }
        }
    }
}

/// The 422 of one field, for a value that a check has already passed.
pub(crate) fn at(field: &'static str) -> impl Fn(InvalidValue) -> ApiError {
    move |error| ApiError::validation(vec![FieldError { field: field.into(), message: error.to_string() }])
}

/// Every query parameter of `req` in order, repeated ones included; a malformed query string is
/// a 400.
pub(crate) fn query_pairs(req: &actix_web::HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(req.query_string()).map_err(|_| ApiError::bad_request("the query string is malformed"))
}

/// The query string of `req` read into `T`, whose fields name the parameters. A parameter given
/// more than once arrives as a list (`one_or_more` reads it); only a repeatable one gets this far,
/// as the envelope middleware refuses every other repetition. A malformed query string is a 400.
pub(crate) fn query_with_lists<T: DeserializeOwned>(req: &actix_web::HttpRequest) -> Result<T, ApiError> {
    let mut parameters = Map::new();
    for (name, value) in query_pairs(req)? {
        match parameters.entry(name) {
            Entry::Vacant(entry) => {
                entry.insert(Value::String(value));
            }
            Entry::Occupied(mut entry) => match entry.get_mut() {
                Value::Array(values) => values.push(Value::String(value)),
                first => *first = Value::Array(vec![first.take(), Value::String(value)]),
            },
        }
    }
    serde_json::from_value(Value::Object(parameters))
        .map_err(|error| ApiError::validation(vec![FieldError { field: "query".into(), message: error.to_string() }]))
}

/// A repeatable query parameter: one value or several.
pub(crate) fn one_or_more<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMore {
        One(String),
        More(Vec<String>),
    }
    Ok(match OneOrMore::deserialize(deserializer)? {
        OneOrMore::One(value) => vec![value],
        OneOrMore::More(values) => values,
    })
}

/// A finite decimal number from a query parameter.
pub(crate) fn parse_number(raw: &str) -> Result<f64, InvalidValue> {
    raw.trim().parse::<f64>().ok().filter(|value| value.is_finite()).ok_or(InvalidValue("must be a number"))
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}
