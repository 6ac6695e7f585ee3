//! A task itself: create, read, edit, delete.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use gad_domain::tasks::task::TaskId;
use gad_domain::tasks::use_cases::{create_task as create, delete_task as delete, read_task, update_task};
use uuid::Uuid;

use super::dto::{CreateTaskRequest, PatchTaskRequest, TaskView};
use super::{location, staff_body, with_etag};
use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::idempotency::idempotent;
use crate::state::Services;

/// Create a task (operators and above); `ETag` and `Location` name it.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the stored response of an earlier request with the same key and body (24 h)")),
    request_body = CreateTaskRequest,
    responses(
        (status = 201, description = "created", body = TaskView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "officers do not create tasks", body = ErrorBody),
        (status = 409, description = "`duplicate` code, `officer_busy`, or the same Idempotency-Key still running", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
        (status = 422, description = "invalid fields, unknown officers or delegate, or an Idempotency-Key reused with another body", body = ErrorBody),
    )
)]
#[post("/api/v1/tasks")]
pub(crate) async fn create_task(
    req: HttpRequest,
    principal: Principal,
    body: web::Bytes,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let request: CreateTaskRequest = staff_body(&req, &principal, &body)?;
    let created = async {
        let input = request.into_input()?;
        let task = create(&*services.tasks, principal.actor(), input, request_context(&req)).await?;
        let mut response = with_etag(StatusCode::CREATED, &task);
        let (name, value) = location(&task);
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
        Ok(response)
    };
    idempotent(&req, &principal, &services, "POST /api/v1/tasks", &body, created).await
}

/// Read a task (officers: only tasks assigned to them; others are 404). `ETag` is its version.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "task id")),
    responses(
        (status = 200, description = "the task", body = TaskView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 404, description = "no such task, or not visible to the caller", body = ErrorBody),
    )
)]
#[get("/api/v1/tasks/{id}")]
pub(crate) async fn get_task(
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let task = read_task(&*services.tasks, principal.actor(), TaskId::from_uuid(*id)).await?;
    Ok(with_etag(StatusCode::OK, &task))
}

/// The version an `If-Match` header asks for; `*` or absent asks for none.
fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().map_err(|_| ApiError::bad_request("If-Match is not readable"))?.trim();
    if raw == "*" {
        return Ok(None);
    }
    raw.trim_start_matches("W/").trim_matches('"').parse().map(Some).map_err(|_| {
        ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", "If-Match names no version of this task")
    })
}

/// Edit descriptive fields (operators and above), honouring `If-Match` (412 on mismatch).
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "task id")),
    request_body = PatchTaskRequest,
    responses(
        (status = 200, description = "the updated task", body = TaskView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "officers do not edit tasks", body = ErrorBody),
        (status = 404, description = "no such task, or not visible to the caller", body = ErrorBody),
        (status = 412, description = "`precondition_failed`: the task changed", body = ErrorBody),
        (status = 422, description = "invalid fields, or `status`", body = ErrorBody),
    )
)]
#[patch("/api/v1/tasks/{id}")]
pub(crate) async fn patch_task(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    body: Json<PatchTaskRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(&req)?;
    let patch = body.into_inner().into_patch()?;
    let (id, context) = (TaskId::from_uuid(*id), request_context(&req));
    let task = update_task(&*services.tasks, principal.actor(), id, expected, patch, context).await?;
    Ok(with_etag(StatusCode::OK, &task))
}

/// Delete a task (admins and supervisors): 204, then 404. A running task is cancelled first, in the same transaction.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "task id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "only admins and supervisors delete", body = ErrorBody),
        (status = 404, description = "no such task, or not visible to the caller", body = ErrorBody),
    )
)]
#[delete("/api/v1/tasks/{id}")]
pub(crate) async fn delete_task(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let (id, context) = (TaskId::from_uuid(*id), request_context(&req));
    delete(&*services.tasks, principal.actor(), id, context, &*services.clock).await?;
    Ok(HttpResponse::NoContent().finish())
}
