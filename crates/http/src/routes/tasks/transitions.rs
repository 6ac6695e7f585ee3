//! The state machine through the API: transitions and their history.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use gad_domain::tasks::task::TaskId;
use gad_domain::tasks::use_cases::{task_history, transition_task};
use uuid::Uuid;

use super::dto::{HistoryView, StatusChangeView, TaskView, TransitionRequest};
use super::with_etag;
use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::state::Services;

/// Apply a transition of the state machine; 409 `invalid_transition` lists the allowed actions,
/// 409 `officer_busy` when an assigned officer is already in progress elsewhere.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "task id")),
    request_body = TransitionRequest,
    responses(
        (status = 200, description = "the task after the transition", body = TaskView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "the caller may not apply this action", body = ErrorBody),
        (status = 404, description = "no such task, or not visible to the caller", body = ErrorBody),
        (status = 409, description = "`invalid_transition` or `officer_busy`", body = ErrorBody),
        (status = 422, description = "unknown action", body = ErrorBody),
    )
)]
#[post("/api/v1/tasks/{id}/transitions")]
pub(crate) async fn post_transition(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    body: Json<TransitionRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let (action, reason) = body.into_inner().into_parts()?;
    let (id, context) = (TaskId::from_uuid(*id), request_context(&req));
    let task =
        transition_task(&*services.tasks, principal.actor(), id, action, reason, context, &*services.clock).await?;
    Ok(with_etag(StatusCode::OK, &task))
}

/// Every transition of a task, oldest first.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "task id")),
    responses(
        (status = 200, description = "the history", body = HistoryView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 404, description = "no such task, or not visible to the caller", body = ErrorBody),
    )
)]
#[get("/api/v1/tasks/{id}/history")]
pub(crate) async fn get_history(
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<web::Json<HistoryView>, ApiError> {
    let history = task_history(&*services.tasks, principal.actor(), TaskId::from_uuid(*id)).await?;
    Ok(web::Json(HistoryView { items: history.into_iter().map(StatusChangeView::from).collect() }))
}
