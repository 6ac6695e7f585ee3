//! Officers on a task: assign and unassign.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, post, web};
use gad_domain::tasks::officer::OfficerId;
use gad_domain::tasks::task::TaskId;
use gad_domain::tasks::use_cases::{assign_officers, unassign_officer};
use uuid::Uuid;

use super::dto::{AssignRequest, TaskView};
use super::with_etag;
use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::state::Services;

/// Assign officers (operators and above).
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "task id")),
    request_body = AssignRequest,
    responses(
        (status = 200, description = "the task with its officers", body = TaskView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "officers do not assign", body = ErrorBody),
        (status = 404, description = "no such task, or not visible to the caller", body = ErrorBody),
        (status = 409, description = "`officer_busy`, or the task is finished", body = ErrorBody),
        (status = 422, description = "unknown officers", body = ErrorBody),
    )
)]
#[post("/api/v1/tasks/{id}/assignments")]
pub(crate) async fn post_assignments(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    body: Json<AssignRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let (id, officers) = (TaskId::from_uuid(*id), body.into_inner().officers());
    let task = assign_officers(&*services.tasks, principal.actor(), id, officers, request_context(&req)).await?;
    Ok(with_etag(StatusCode::OK, &task))
}

/// Remove an officer from a task (operators and above).
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "task id"), ("officer_id" = Uuid, Path, description = "officer id")),
    responses(
        (status = 200, description = "the task with its remaining officers", body = TaskView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "officers do not assign", body = ErrorBody),
        (status = 404, description = "no such task or assignment", body = ErrorBody),
    )
)]
#[delete("/api/v1/tasks/{id}/assignments/{officer_id}")]
pub(crate) async fn delete_assignment(
    req: HttpRequest,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let (id, officer) = path.into_inner();
    let (id, officer) = (TaskId::from_uuid(id), OfficerId::from_uuid(officer));
    let task = unassign_officer(&*services.tasks, principal.actor(), id, officer, request_context(&req)).await?;
    Ok(with_etag(StatusCode::OK, &task))
}
