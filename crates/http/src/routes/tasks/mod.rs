//! `/api/v1/tasks` (SPEC §4): thin handlers over the task use cases of
//! `gad_domain::tasks::use_cases`. Each reads the request into the domain's input, calls one use
//! case and shapes its answer; the rules live in the domain.

mod assignments;
mod dto;
mod emergency;
mod list;
mod transitions;
mod writes;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use gad_domain::tasks::task::{Task, TaskError, may_manage_tasks};

pub(crate) use assignments::{delete_assignment, post_assignments};
pub(crate) use emergency::post_emergency;
pub(crate) use list::{MAX_SEARCH_CHARS, list_tasks};
pub(crate) use transitions::{get_history, post_transition};
pub(crate) use writes::{create_task, delete_task, get_task, patch_task};

use crate::auth::Principal;
use crate::error::{ApiError, FieldError};
use crate::extract::json_body;

impl From<TaskError> for ApiError {
    fn from(error: TaskError) -> Self {
        match error {
            TaskError::NotFound => ApiError::not_found(),
            TaskError::Forbidden => ApiError::forbidden(),
            TaskError::VersionMismatch => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "the task changed since it was read",
            ),
            TaskError::InvalidTransition { from, allowed } => {
                let names: Vec<&str> = allowed.iter().map(|action| action.as_str()).collect();
                let listed = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
                let message = format!(
                    "this action is not allowed while the task is {}; allowed actions: {listed}",
                    from.as_str()
                );
                let details = names
                    .iter()
                    .map(|name| FieldError { field: "action".into(), message: format!("allowed: {name}") })
                    .collect();
                ApiError::new(StatusCode::CONFLICT, "invalid_transition", message).with_details(details)
            }
            TaskError::OfficerBusy => ApiError::new(
                StatusCode::CONFLICT,
                "officer_busy",
                "an assigned officer is already in progress on another task",
            ),
            TaskError::UnknownOfficer(officer) => ApiError::validation(vec![FieldError {
                field: "officer_ids".into(),
                message: format!("no officer {officer}"),
            }]),
            TaskError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            TaskError::DuplicateCode => ApiError::duplicate("code"),
            TaskError::UnknownDelegate => {
                ApiError::validation(vec![FieldError { field: "delegate_id".into(), message: "names no user".into() }])
            }
            TaskError::Invalid { field, message } => {
                ApiError::validation(vec![FieldError { field: field.into(), message: message.into() }])
            }
            TaskError::Store(error) => error.into(),
        }
    }
}

/// The body of a POST that only staff may send, read only once the caller may: an officer is
/// refused before anything of the body (or its idempotency key) is looked at.
fn staff_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    principal: &Principal,
    body: &[u8],
) -> Result<T, ApiError> {
    if !may_manage_tasks(principal.actor()) {
        return Err(ApiError::forbidden());
    }
    json_body(req, body)
}

/// The task with its version as `ETag`.
fn with_etag(status: StatusCode, task: &Task) -> HttpResponse {
    HttpResponse::build(status).insert_header(etag(task)).json(task)
}

fn etag(task: &Task) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{}\"", task.version))
}

/// Where a new task lives.
fn location(task: &Task) -> (header::HeaderName, String) {
    (header::LOCATION, format!("/api/v1/tasks/{}", task.id))
}
