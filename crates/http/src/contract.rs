//! The OpenAPI document made exact: every parameter and request field described as the handlers
//! validate it, and every status an operation can answer listed with the error envelope.
//!
//! The rules come from the same constants and enumerations that validation uses (the domain's
//! `ALL` lists, `EmailAddress::MAX_LEN`, `USER_DAYS`, the page limits), so the document cannot
//! drift from them. Statuses that the middleware stack adds to every route (rate limits, the
//! body deadline, media types, unavailable dependencies) are added here once, from what each
//! operation is: authenticated or not, with a body or not, with a path id or not.

use gad_domain::consent::ConsentType;
use gad_domain::stats::USER_DAYS;
use gad_domain::tasks::officer::Availability;
use gad_domain::tasks::state::{TaskAction, TaskStatus};
use gad_domain::tasks::task::{Priority, TaskKind};
use gad_domain::users::{EmailAddress, Role};
use serde_json::{Map, Value, json};

use crate::idempotency::MAX_KEY_LEN;
use crate::pagination::MAX_LIMIT;
use crate::routes::tasks::MAX_SEARCH_CHARS;

/// Control characters (Unicode `Cc`), which no text field may hold.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
/// Control characters other than tab, line feed and carriage return (refused in free text).
const CONTROL_BUT_BREAKS: &str = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f";
/// White space as Rust's `str::trim` removes it (Unicode `White_Space`), spelled out because
/// regular-expression engines differ on `\s`.
const SPACE: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Makes `document` exact; see the module's comment.
pub(crate) fn refine(document: &mut Value) {
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for operation in item.values_mut() {
                refine_operation(path, operation);
            }
        }
    }
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (name, schema) in schemas.iter_mut() {
            let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { continue };
            for (property, described) in properties.iter_mut() {
                if let Some(exact) = field_schema(name, property) {
                    *described = keep_nullability(described, exact);
                }
                split_nullable_format(described);
            }
        }
    }
}

fn refine_operation(path: &str, operation: &mut Value) {
    if let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) {
        for parameter in parameters.iter_mut() {
            let name = parameter.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let location = parameter.get("in").and_then(Value::as_str).unwrap_or_default().to_owned();
            let exact = match location.as_str() {
                "query" => query_schema(path, &name),
                "header" => header_schema(&name),
                _ => None,
            };
            if let Some(exact) = exact {
                parameter["schema"] = exact;
            } else if location == "query" && is_plain_text(&parameter["schema"]) {
                parameter["schema"] = json!({"type": "string", "pattern": NO_NUL});
            }
        }
    }
    let has_body = operation.get("requestBody").is_some();
    let authenticated = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|requirements| requirements.iter().any(|requirement| requirement.get("bearer").is_some()));
    let parameters = operation.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    let has_parameter = |matches: fn(&Value) -> bool| parameters.iter().any(matches);
    let has_path_id = has_parameter(|parameter| parameter["in"] == "path");
    let has_query = has_parameter(|parameter| parameter["in"] == "query");
    let idempotent = has_parameter(|parameter| parameter["name"] == "Idempotency-Key");
    let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { return };
    let api = path.starts_with("/api/v1/") && path != "/api/v1/health";
    let standard: [(bool, u16, &str); 10] = [
        (has_body || has_query, 400, "malformed JSON or query string (`bad_request`)"),
        (authenticated, 401, "missing, invalid, expired or revoked access token (`unauthenticated`)"),
        (has_path_id, 404, "no such object, or a path id that is not a UUID (`not_found`)"),
        (has_body, 408, "the request body did not arrive in time (`request_timeout`)"),
        (idempotent, 409, "a request with the same `Idempotency-Key` is still running (`conflict`)"),
        (has_body, 413, "the request body is larger than the limit (`payload_too_large`)"),
        (has_body, 415, "the request body is not `application/json` (`unsupported_media_type`)"),
        (
            true,
            422,
            "a parameter or field is invalid, or a single-valued query parameter is repeated (`validation_failed`)",
        ),
        (api, 429, "rate limited (`rate_limited`), with `Retry-After` and `RateLimit-*`"),
        (api, 503, "a dependency is unavailable (`unavailable`), with `Retry-After`"),
    ];
    for (applies, status, description) in standard {
        let key = status.to_string();
        if applies && !responses.contains_key(&key) {
            responses.insert(key, error_response(description, matches!(status, 429 | 503)));
        }
    }
    for (status, response) in responses.iter_mut() {
        if matches!(status.as_str(), "429" | "503")
            && let Some(response) = response.as_object_mut()
        {
            let headers = response.entry("headers").or_insert_with(|| Value::Object(Map::new()));
            headers["Retry-After"] = retry_after();
        }
    }
}

fn error_response(description: &str, retry_after: bool) -> Value {
    let mut response = json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    });
    if retry_after {
        response["headers"] = json!({"Retry-After": self::retry_after()});
    }
    response
}

fn retry_after() -> Value {
    json!({"description": "seconds to wait before retrying", "required": true, "schema": {"type": "integer", "minimum": 1}})
}

/// A nullable field stays nullable (JSON `null` is accepted as "absent" or "clear").
fn keep_nullability(described: &Value, mut exact: Value) -> Value {
    if exact.is_boolean() {
        return exact;
    }
    let nullable = match described.get("type") {
        Some(Value::Array(types)) => types.iter().any(|kind| kind == "null"),
        _ => described.get("oneOf").is_some_and(|one_of| one_of.to_string().contains("\"null\"")),
    };
    if !nullable {
        return exact;
    }
    if let Some(kind) = exact.get("type").cloned()
        && kind.is_string()
    {
        exact["type"] = json!([kind, "null"]);
    }
    if let Some(values) = exact.get_mut("enum").and_then(Value::as_array_mut) {
        values.push(Value::Null);
    }
    exact
}

/// `{"type": [T, "null"], "format": F, …}` written as `{"oneOf": [{"type": T, "format": F, …},
/// {"type": "null"}]}`: the same values, but schemathesis' coverage phase ignores a `format` beside
/// a list of types and sends `""` as a valid date-time or UUID.
fn split_nullable_format(schema: &mut Value) {
    let nullable_kind = match schema.get("type") {
        Some(Value::Array(types)) if schema.get("format").is_some() && types.len() == 2 => {
            types.iter().find(|kind| *kind != "null").filter(|_| types.contains(&json!("null"))).cloned()
        }
        _ => None,
    };
    let (Some(kind), Some(object)) = (nullable_kind, schema.as_object_mut()) else { return };
    let description = object.remove("description");
    let mut value = Value::Object(std::mem::take(object));
    value["type"] = kind;
    *schema = json!({"oneOf": [value, {"type": "null"}]});
    if let Some(description) = description {
        schema["description"] = description;
    }
}

fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    json!({"type": "string", "enum": values.into_iter().collect::<Vec<_>>()})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn date_time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// One line of text, trimmed: 1.. characters and no control character once trimmed, at most
/// `max` as sent.
fn text_line(max: usize) -> Value {
    let edge = format!("[^{SPACE}{CONTROL}]");
    json!({"type": "string", "maxLength": max, "pattern": format!("^[{SPACE}]*{edge}([^{CONTROL}]*{edge})?[{SPACE}]*$")})
}

/// Like `text_line`, but empty (or only white space) is allowed and means none.
fn optional_line(max: usize) -> Value {
    let edge = format!("[^{SPACE}{CONTROL}]");
    json!({"type": "string", "maxLength": max, "pattern": format!("^[{SPACE}]*({edge}([^{CONTROL}]*{edge})?)?[{SPACE}]*$")})
}

/// Free text, trimmed: line breaks and tabs are text, other control characters are refused
/// once trimmed; at most `max` characters as sent; empty means none.
fn free_text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max, "pattern": format!("^[{SPACE}]*[^{CONTROL_BUT_BREAKS}]*[{SPACE}]*$")})
}

/// `allowed` characters (a character class body) once trimmed, `length` of them (`{m,n}`).
fn trimmed_token(allowed: &str, length: &str) -> Value {
    json!({"type": "string", "pattern": format!("^[{SPACE}]*[{allowed}]{length}[{SPACE}]*$")})
}

/// A number within an inclusive range.
fn number(minimum: f64, maximum: f64) -> Value {
    json!({"type": "number", "minimum": minimum, "maximum": maximum})
}

fn positive_number() -> Value {
    json!({"type": "number", "exclusiveMinimum": 0})
}

fn boolean_text() -> Value {
    json!({"type": "string", "enum": ["true", "false"]})
}

fn page_limit(maximum: usize) -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": maximum})
}

/// A cursor as this API hands them out: 16 bytes in unpadded base64url.
fn cursor() -> Value {
    json!({"type": "string", "pattern": "^([A-Za-z0-9_-]{21}[AQgw])?$"})
}

/// The envelope middleware refuses a NUL in any query parameter (422).
const NO_NUL: &str = "^[^\\x00]*$";

/// Text that its handler compares as given (`unit`, `action`): no rule but the one on NUL.
fn is_plain_text(schema: &Value) -> bool {
    let text = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds.iter().all(|kind| kind == "string" || kind == "null"),
        kind => kind.is_some_and(|kind| kind == "string"),
    };
    let rules = ["pattern", "enum", "format", "minLength", "maxLength"];
    text && rules.iter().all(|rule| schema.get(rule).is_none())
}

/// The schema of query parameter `name` of `path`, as its handler validates it; `None` for
/// plain text (see `is_plain_text`).
fn query_schema(path: &str, name: &str) -> Option<Value> {
    let statuses = || TaskStatus::ALL.iter().map(|status| status.as_str());
    Some(match (path, name) {
        ("/api/v1/tasks", "status") => json!({"type": "array", "items": one_of(statuses())}),
        ("/api/v1/tasks", "sort") => one_of(["-created_at", "priority", "scheduled_start"]),
        // Only NUL is refused (the envelope); at most `MAX_SEARCH_CHARS` once trimmed.
        ("/api/v1/tasks", "q") => json!({
            "type": "string",
            "pattern": format!("^[{SPACE}]*[^\\x00]{{0,{MAX_SEARCH_CHARS}}}[{SPACE}]*$"),
        }),
        // Compared as given; only NUL is refused, as in every query parameter.
        ("/api/v1/users", "q") => json!({"type": "string", "maxLength": 100, "pattern": NO_NUL}),
        ("/api/v1/officers/nearest", "limit") => page_limit(100),
        ("/api/v1/officers/nearest", "available_only") | ("/api/v1/users", "is_active") => boolean_text(),
        ("/api/v1/geo/map", "radius_m") => number(100.0, 100_000.0),
        ("/api/v1/tasks", "radius_m") | ("/api/v1/officers/nearest", "max_distance_m") => positive_number(),
        (_, "limit") => page_limit(MAX_LIMIT),
        (_, "cursor") => cursor(),
        (_, "availability") => one_of(Availability::ALL.iter().map(|availability| availability.as_str())),
        (_, "role") => one_of(Role::ALL.iter().map(|role| role.as_str())),
        (_, "priority") => one_of(Priority::ALL.iter().map(|priority| priority.as_str())),
        (_, "kind") => one_of(TaskKind::ALL.iter().map(|kind| kind.as_str())),
        (_, "days") => json!({"type": "integer", "minimum": USER_DAYS.start(), "maximum": USER_DAYS.end()}),
        (_, "from" | "to" | "created_from" | "created_to") => date_time(),
        (_, "officer_id" | "delegate_id" | "actor_id" | "resource_id") => uuid(),
        (_, "lat" | "near_lat" | "center_lat") => number(-90.0, 90.0),
        (_, "lng" | "near_lng" | "center_lng") => number(-180.0, 180.0),
        _ => return None,
    })
}

/// The schema of request header `name`, as its handler validates it.
fn header_schema(name: &str) -> Option<Value> {
    match name {
        // Visible ASCII (tabs and spaces inside), at most `MAX_KEY_LEN` bytes.
        "Idempotency-Key" => Some(json!({
            "type": "string",
            "pattern": format!("^[\\x21-\\x7e]([\\t\\x20-\\x7e]{{0,{}}}[\\x21-\\x7e])?$", MAX_KEY_LEN - 2),
        })),
        _ => None,
    }
}

/// The schema of `property` in component `schema`, as validation treats it.
fn field_schema(schema: &str, property: &str) -> Option<Value> {
    let request = schema.ends_with("Request") || schema == "LoginForm";
    Some(match (schema, property) {
        ("PointView" | "LocationRequest" | "EmergencyRequest", "lat") => number(-90.0, 90.0),
        ("PointView" | "LocationRequest" | "EmergencyRequest", "lng") => number(-180.0, 180.0),
        ("LocationRequest", "accuracy_m") => number(0.0, 100_000.0),
        (_, "availability") => one_of(Availability::ALL.iter().map(|availability| availability.as_str())),
        (_, "role") => one_of(Role::ALL.iter().map(|role| role.as_str())),
        (_, "priority") => one_of(Priority::ALL.iter().map(|priority| priority.as_str())),
        (_, "kind") => one_of(TaskKind::ALL.iter().map(|kind| kind.as_str())),
        (_, "consent_type") => one_of(ConsentType::ALL.iter().map(|consent| consent.as_str())),
        ("TransitionRequest" | "StatusChangeView", "action") => {
            one_of(TaskAction::ALL.iter().map(|action| action.as_str()))
        }
        ("TaskView" | "MapTaskView", "status") | ("StatusChangeView", "from_status" | "to_status") => {
            one_of(TaskStatus::ALL.iter().map(|status| status.as_str()))
        }
        _ if !request => return None,
        (_, "email") => {
            let local = format!("[^{SPACE}{CONTROL}@]");
            let label = format!("[^{SPACE}{CONTROL}@.]");
            json!({
                "type": "string",
                "maxLength": EmailAddress::MAX_LEN,
                "pattern": format!("^[{SPACE}]*{local}{{1,64}}@{label}+(\\.{label}+)+[{SPACE}]*$"),
            })
        }
        ("LoginRequest" | "LoginForm", _) => return None,
        (_, "password") => json!({"type": "string", "minLength": 12, "maxLength": 128}),
        (_, "first_name" | "last_name") => {
            // Python's `[^\W\d_]` (the engine the fuzzers use) is a Unicode letter.
            let edge = r"([^\W\d_]|['.-])";
            let inner = r"([^\W\d_]|[ '.-])";
            json!({"type": "string", "maxLength": 100, "pattern": format!("^[{SPACE}]*{edge}({inner}*{edge})?[{SPACE}]*$")})
        }
        (_, "national_id") => trimmed_token("A-Za-z0-9-", "{5,20}"),
        (_, "phone") => json!({"type": "string", "pattern": format!("^[{SPACE}]*\\+[0-9]{{8,15}}[{SPACE}]*$")}),
        (_, "badge_number" | "code") => trimmed_token("A-Za-z0-9-", "{1,32}"),
        (_, "rank" | "unit" | "specialty") => optional_line(64),
        (_, "title") => {
            let edge = format!("[^{SPACE}{CONTROL}]");
            json!({"type": "string", "maxLength": 200, "pattern": format!("^[{SPACE}]*{edge}[^{CONTROL}]+{edge}[{SPACE}]*$")})
        }
        ("PatchTaskRequest", "status") => json!(false),
        (_, "description" | "notes") => free_text(10_000),
        (_, "location_description") => free_text(500),
        (_, "reason") => free_text(1000),
        (_, "policy_version") => text_line(32),
        (_, "scheduled_start" | "scheduled_end" | "recorded_at") => date_time(),
        _ => return None,
    })
}
