//! `/api/v1/tasks` (SPEC §4): tasks, their transitions, history and assignments.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use gad_domain::tasks::officer::OfficerId;
use gad_domain::tasks::state::{TaskAction, TaskStatus};
use gad_domain::tasks::task::{
    NewTask, Priority, StatusChange, Task, TaskError, TaskFields, TaskId, TaskKind, TaskQuery, audit, may_apply,
    may_cancel_tasks, may_manage_tasks, parse_code, parse_text, parse_title, read_task,
};
use gad_domain::users::{InvalidValue, Role, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::extract::json_body;
use crate::idempotency::idempotent;
use crate::pagination::PageRequest;
use crate::routes::officers::OfficerView;
use crate::state::Services;
use crate::validation::{Fields, parse_number, present, query_pairs};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct PointView {
    lat: f64,
    lng: f64,
}

/// A task (SPEC §4). The same shape is the payload of `task.*` events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskView {
    id: Uuid,
    code: String,
    title: String,
    description: Option<String>,
    #[schema(value_type = String, example = "patrol")]
    kind: TaskKind,
    #[schema(value_type = String, example = "medium")]
    priority: Priority,
    #[schema(value_type = String, example = "scheduled")]
    status: TaskStatus,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    scheduled_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    scheduled_end: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    actual_start: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    actual_end: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    paused_at: Option<OffsetDateTime>,
    total_paused_seconds: i64,
    location: Option<PointView>,
    location_description: Option<String>,
    delegate_id: Uuid,
    created_by: Uuid,
    officer_ids: Vec<Uuid>,
    notes: Option<String>,
    /// Also the `ETag`.
    version: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
}

impl From<Task> for TaskView {
    fn from(task: Task) -> Self {
        Self {
            id: task.id.as_uuid(),
            code: task.code,
            title: task.title,
            description: task.description,
            kind: task.kind,
            priority: task.priority,
            status: task.status,
            scheduled_start: task.scheduled_start,
            scheduled_end: task.scheduled_end,
            actual_start: task.actual_start,
            actual_end: task.actual_end,
            paused_at: task.paused_at,
            total_paused_seconds: task.total_paused_seconds,
            location: task.location.map(|point| PointView { lat: point.lat(), lng: point.lng() }),
            location_description: task.location_description,
            delegate_id: task.delegate_id.as_uuid(),
            created_by: task.created_by.as_uuid(),
            officer_ids: task.officer_ids.into_iter().map(OfficerId::as_uuid).collect(),
            notes: task.notes,
            version: task.version,
            created_at: task.created_at,
            updated_at: task.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskPage {
    items: Vec<TaskView>,
    next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusChangeView {
    #[schema(value_type = String)]
    from_status: TaskStatus,
    #[schema(value_type = String)]
    to_status: TaskStatus,
    #[schema(value_type = String)]
    action: TaskAction,
    actor_id: Option<Uuid>,
    reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
}

impl From<StatusChange> for StatusChangeView {
    fn from(change: StatusChange) -> Self {
        Self {
            from_status: change.from_status,
            to_status: change.to_status,
            action: change.action,
            actor_id: change.actor_id.map(UserId::as_uuid),
            reason: change.reason,
            at: change.at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryView {
    /// Oldest first; exactly one per transition.
    items: Vec<StatusChangeView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTaskRequest {
    /// Unique; generated (`T-000123`) when absent.
    code: Option<String>,
    title: String,
    description: Option<String>,
    #[schema(example = "patrol")]
    kind: String,
    /// Default `medium`.
    priority: Option<String>,
    /// RFC 3339.
    scheduled_start: String,
    /// RFC 3339, after `scheduled_start`.
    scheduled_end: Option<String>,
    location: Option<PointView>,
    location_description: Option<String>,
    /// Default: the creator.
    delegate_id: Option<Uuid>,
    officer_ids: Option<Vec<Uuid>>,
    notes: Option<String>,
}

/// Descriptive fields only; absent fields stay, `null` clears an optional one. `status` is
/// changed through transitions (422 here).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct PatchTaskRequest {
    title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    kind: Option<String>,
    priority: Option<String>,
    scheduled_start: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    scheduled_end: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<PointView>)]
    location: Option<Option<PointView>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    location_description: Option<Option<String>>,
    delegate_id: Option<Uuid>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    notes: Option<Option<String>>,
    /// Refused: use `POST /tasks/{id}/transitions`.
    #[schema(value_type = Option<String>)]
    status: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmergencyRequest {
    lat: f64,
    lng: f64,
    /// Default `Emergency`.
    title: Option<String>,
    description: Option<String>,
}

/// The emergency task, the officer sent (if anyone was available) and how far away they were.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EmergencyView {
    task: TaskView,
    officer: Option<OfficerView>,
    distance_m: Option<f64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitionRequest {
    #[schema(example = "start")]
    action: String,
    reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignRequest {
    officer_ids: Vec<Uuid>,
}

fn task_error(error: TaskError) -> ApiError {
    match error {
        TaskError::NotFound => ApiError::not_found(),
        TaskError::Forbidden => ApiError::forbidden(),
        TaskError::VersionMismatch => {
            ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition_failed", "the task changed since it was read")
        }
        TaskError::InvalidTransition { from, allowed } => ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!(
                "this action is not allowed while the task is {}; allowed actions: {}",
                from.as_str(),
                if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.iter().map(|action| action.as_str()).collect::<Vec<_>>().join(", ")
                }
            ),
        )
        .with_details(
            allowed
                .into_iter()
                .map(|action| FieldError { field: "action".into(), message: format!("allowed: {}", action.as_str()) })
                .collect(),
        ),
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
        TaskError::Store(error) => error.into(),
    }
}

fn etag(task: &Task) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{}\"", task.version))
}

fn with_etag(status: StatusCode, task: Task) -> HttpResponse {
    HttpResponse::build(status).insert_header(etag(&task)).json(TaskView::from(task))
}

/// Checks the schedule's order once both ends are known.
fn check_schedule(problems: &mut Fields, fields: &TaskFields) {
    if fields.scheduled_end.is_some_and(|end| end <= fields.scheduled_start) {
        problems.0.push(FieldError { field: "scheduled_end".into(), message: "must be after scheduled_start".into() });
    }
}

/// List tasks, newest first unless `sort` says otherwise. Officers see only the tasks assigned
/// to them.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(
        ("status" = Option<Vec<String>>, Query, description = "repeatable"),
        ("priority" = Option<String>, Query),
        ("kind" = Option<String>, Query),
        ("officer_id" = Option<Uuid>, Query),
        ("delegate_id" = Option<Uuid>, Query),
        ("created_from" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("created_to" = Option<String>, Query, description = "RFC 3339, exclusive"),
        ("q" = Option<String>, Query, description = "part of the code or title"),
        ("near_lat" = Option<f64>, Query),
        ("near_lng" = Option<f64>, Query),
        ("radius_m" = Option<f64>, Query, description = "with near_lat and near_lng"),
        ("sort" = Option<String>, Query, description = "-created_at (default), priority, scheduled_start"),
        ("limit" = Option<i64>, Query, description = "1..=200, default 50"),
        ("cursor" = Option<String>, Query),
    ),
    responses(
        (status = 200, description = "a page of tasks", body = TaskPage),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 422, description = "a bad filter, limit or cursor", body = ErrorBody),
    )
)]
#[get("/api/v1/tasks")]
pub(crate) async fn list_tasks(
    req: HttpRequest,
    principal: Principal,
    services: web::Data<Services>,
) -> Result<web::Json<TaskPage>, ApiError> {
    let pairs = query_pairs(&req)?;
    let mut problems = Fields::default();
    let mut query = TaskQuery::default();
    let (mut limit, mut cursor) = (None, None);
    let (mut near_lat, mut near_lng, mut radius) = (None, None, None);
    for (key, value) in &pairs {
        match key.as_str() {
            "status" => query.statuses.extend(problems.check("status", value.parse::<TaskStatus>())),
            "priority" => query.priority = problems.check("priority", value.parse()),
            "kind" => query.kind = problems.check("kind", value.parse()),
            "officer_id" => {
                query.officer_id = problems
                    .check("officer_id", Uuid::parse_str(value).map_err(|_| InvalidValue("must be a UUID")))
                    .map(OfficerId::from_uuid);
            }
            "delegate_id" => {
                query.delegate_id = problems
                    .check("delegate_id", Uuid::parse_str(value).map_err(|_| InvalidValue("must be a UUID")))
                    .map(UserId::from_uuid);
            }
            "limit" => {
                limit =
                    problems.check("limit", value.parse::<i64>().map_err(|_| InvalidValue("must be a whole number")))
            }
            "cursor" => cursor = Some(value.clone()),
            "created_from" => query.created_from = problems.time("created_from", value),
            "created_to" => query.created_to = problems.time("created_to", value),
            "q" => query.q = Some(value.trim().to_owned()).filter(|q| !q.is_empty()),
            "sort" => query.sort = problems.check("sort", value.parse()).unwrap_or_default(),
            "near_lat" => near_lat = problems.check("near_lat", parse_number(value)),
            "near_lng" => near_lng = problems.check("near_lng", parse_number(value)),
            "radius_m" => radius = problems.check("radius_m", parse_number(value)),
            _ => {}
        }
    }
    query.near = match (near_lat, near_lng, radius) {
        (None, None, None) => None,
        (Some(lat), Some(lng), Some(radius)) if radius > 0.0 => {
            problems.point("near_", lat, lng).map(|point| (point, radius))
        }
        _ => {
            problems.push("near_lat", "near_lat, near_lng and a positive radius_m go together");
            None
        }
    };
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        problems.push("q", "must be at most 200 characters");
    }
    let page = PageRequest::parse(limit, cursor.as_deref()).map_err(|details| problems.0.extend(details)).ok();
    problems.finish()?;
    let page = page.ok_or_else(|| ApiError::internal("validated page missing"))?;
    query.after = page.after.map(TaskId::from_uuid);
    query.limit = page.limit + 1;
    if principal.role == Role::Officer {
        query.assigned_to_user = Some(principal.user_id);
    }
    let tasks = services.tasks.list(&query).await?;
    let (tasks, next_cursor) = page.page(tasks, |task| task.id.as_uuid());
    Ok(web::Json(TaskPage { items: tasks.into_iter().map(TaskView::from).collect(), next_cursor }))
}

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
    if !may_manage_tasks(principal.actor()) {
        return Err(ApiError::forbidden());
    }
    let request: CreateTaskRequest = json_body(&req, &body)?;
    let scope = "POST /api/v1/tasks";
    idempotent(&req, &principal, &services, scope, &body, create(&req, &principal, request, &services)).await
}

async fn create(
    req: &HttpRequest,
    principal: &Principal,
    body: CreateTaskRequest,
    services: &Services,
) -> Result<HttpResponse, ApiError> {
    let actor = principal.actor();
    let mut problems = Fields::default();
    let code = body.code.as_deref().and_then(|raw| problems.check("code", parse_code(raw)));
    let title = problems.check("title", parse_title(&body.title));
    let description =
        body.description.as_deref().and_then(|raw| problems.check("description", parse_text(raw, 10_000)).flatten());
    let kind = problems.check("kind", body.kind.parse());
    let priority = match body.priority.as_deref() {
        Some(raw) => problems.check("priority", raw.parse()),
        None => Some(Priority::Medium),
    };
    let scheduled_start = problems.time("scheduled_start", &body.scheduled_start);
    let scheduled_end = body.scheduled_end.as_deref().and_then(|raw| problems.time("scheduled_end", raw));
    let location = body.location.as_ref().and_then(|point| problems.point("location.", point.lat, point.lng));
    let location_description = body
        .location_description
        .as_deref()
        .and_then(|raw| problems.check("location_description", parse_text(raw, 500)).flatten());
    let notes = body.notes.as_deref().and_then(|raw| problems.check("notes", parse_text(raw, 10_000)).flatten());
    let (Some(title), Some(kind), Some(priority), Some(scheduled_start)) = (title, kind, priority, scheduled_start)
    else {
        return Err(ApiError::validation(problems.0));
    };
    let fields = TaskFields {
        title,
        description,
        kind,
        priority,
        scheduled_start,
        scheduled_end,
        location,
        location_description,
        delegate_id: body.delegate_id.map_or(principal.user_id, UserId::from_uuid),
        notes,
    };
    check_schedule(&mut problems, &fields);
    problems.finish()?;
    let id = TaskId::generate();
    let new = NewTask {
        id,
        code,
        fields,
        created_by: principal.user_id,
        officer_ids: body.officer_ids.unwrap_or_default().into_iter().map(OfficerId::from_uuid).collect(),
    };
    let task =
        services.tasks.insert(new, audit(actor, "task.create", id, request_context(req))).await.map_err(task_error)?;
    let location = format!("/api/v1/tasks/{}", task.id);
    let mut response = with_etag(StatusCode::CREATED, task);
    if let Ok(value) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Dispatch an emergency (operators and above): a `critical` `emergency` task at the point,
/// with the nearest available officer assigned at once (never the same officer to two
/// concurrent emergencies). With nobody available the task is created unassigned; the
/// `alert.emergency` event goes out either way.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the stored response of an earlier request with the same key and body (24 h)")),
    request_body = EmergencyRequest,
    responses(
        (status = 201, description = "dispatched", body = EmergencyView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "officers do not dispatch", body = ErrorBody),
        (status = 422, description = "invalid coordinates or text", body = ErrorBody),
    )
)]
#[post("/api/v1/tasks/emergency")]
pub(crate) async fn post_emergency(
    req: HttpRequest,
    principal: Principal,
    body: web::Bytes,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    if !may_manage_tasks(principal.actor()) {
        return Err(ApiError::forbidden());
    }
    let request: EmergencyRequest = json_body(&req, &body)?;
    let scope = "POST /api/v1/tasks/emergency";
    idempotent(&req, &principal, &services, scope, &body, dispatch(&req, &principal, request, &services)).await
}

async fn dispatch(
    req: &HttpRequest,
    principal: &Principal,
    body: EmergencyRequest,
    services: &Services,
) -> Result<HttpResponse, ApiError> {
    let actor = principal.actor();
    let mut problems = Fields::default();
    let point = problems.point("", body.lat, body.lng);
    let title = match body.title.as_deref() {
        Some(raw) => problems.check("title", parse_title(raw)),
        None => Some("Emergency".to_owned()),
    };
    let description =
        body.description.as_deref().and_then(|raw| problems.check("description", parse_text(raw, 10_000)).flatten());
    problems.finish()?;
    let (Some(point), Some(title)) = (point, title) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let id = TaskId::generate();
    let fields = TaskFields {
        title,
        description,
        kind: TaskKind::Emergency,
        priority: Priority::Critical,
        scheduled_start: OffsetDateTime::now_utc(),
        scheduled_end: None,
        location: Some(point),
        location_description: None,
        delegate_id: principal.user_id,
        notes: None,
    };
    let task = NewTask { id, code: None, fields, created_by: principal.user_id, officer_ids: Vec::new() };
    let entry = audit(actor, "task.emergency", id, request_context(req));
    let (task, sent) = services.tasks.dispatch_emergency(task, entry).await.map_err(task_error)?;
    metrics::counter!("emergencies_total", "outcome" => if sent.is_some() { "assigned" } else { "unassigned" })
        .increment(1);
    let officer = match sent {
        Some((officer, _)) => services.officers.find(officer).await?.map(OfficerView::from),
        None => None,
    };
    let location = format!("/api/v1/tasks/{}", task.id);
    Ok(HttpResponse::Created()
        .insert_header(etag(&task))
        .insert_header((header::LOCATION, location))
        .json(EmergencyView { task: TaskView::from(task), officer, distance_m: sent.map(|(_, distance)| distance) }))
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
    let task = read_task(&*services.tasks, principal.actor(), TaskId::from_uuid(*id)).await.map_err(task_error)?;
    Ok(with_etag(StatusCode::OK, task))
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
    body: web::Json<PatchTaskRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let actor = principal.actor();
    let id = TaskId::from_uuid(*id);
    let current = read_task(&*services.tasks, actor, id).await.map_err(task_error)?;
    if !may_manage_tasks(actor) {
        return Err(ApiError::forbidden());
    }
    let expected = if_match(&req)?;
    let body = body.into_inner();
    let mut problems = Fields::default();
    if body.status.is_some() {
        problems.0.push(FieldError {
            field: "status".into(),
            message: "is changed through POST /tasks/{id}/transitions".into(),
        });
    }
    let mut fields = TaskFields {
        title: current.title,
        description: current.description,
        kind: current.kind,
        priority: current.priority,
        scheduled_start: current.scheduled_start,
        scheduled_end: current.scheduled_end,
        location: current.location,
        location_description: current.location_description,
        delegate_id: current.delegate_id,
        notes: current.notes,
    };
    if let Some(raw) = body.title.as_deref() {
        fields.title = problems.check("title", parse_title(raw)).unwrap_or(fields.title);
    }
    if let Some(value) = body.description {
        fields.description = value.and_then(|raw| problems.check("description", parse_text(&raw, 10_000)).flatten());
    }
    if let Some(raw) = body.kind.as_deref() {
        fields.kind = problems.check("kind", raw.parse()).unwrap_or(fields.kind);
    }
    if let Some(raw) = body.priority.as_deref() {
        fields.priority = problems.check("priority", raw.parse()).unwrap_or(fields.priority);
    }
    if let Some(raw) = body.scheduled_start.as_deref() {
        fields.scheduled_start = problems.time("scheduled_start", raw).unwrap_or(fields.scheduled_start);
    }
    if let Some(value) = body.scheduled_end {
        fields.scheduled_end = value.and_then(|raw| problems.time("scheduled_end", &raw));
    }
    if let Some(value) = body.location {
        fields.location = value.and_then(|point| problems.point("location.", point.lat, point.lng));
    }
    if let Some(value) = body.location_description {
        fields.location_description =
            value.and_then(|raw| problems.check("location_description", parse_text(&raw, 500)).flatten());
    }
    if let Some(delegate) = body.delegate_id {
        fields.delegate_id = UserId::from_uuid(delegate);
    }
    if let Some(value) = body.notes {
        fields.notes = value.and_then(|raw| problems.check("notes", parse_text(&raw, 10_000)).flatten());
    }
    check_schedule(&mut problems, &fields);
    problems.finish()?;
    let task = services
        .tasks
        .update(id, expected, fields, audit(actor, "task.update", id, request_context(&req)))
        .await
        .map_err(task_error)?;
    Ok(with_etag(StatusCode::OK, task))
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
    let actor = principal.actor();
    let id = TaskId::from_uuid(*id);
    read_task(&*services.tasks, actor, id).await.map_err(task_error)?;
    if !may_cancel_tasks(actor) {
        return Err(ApiError::forbidden());
    }
    services.tasks.delete(id, audit(actor, "task.delete", id, request_context(&req))).await.map_err(task_error)?;
    Ok(HttpResponse::NoContent().finish())
}

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
    body: web::Json<TransitionRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Fields::default();
    let action: Option<TaskAction> = problems.check("action", body.action.parse());
    let reason = body.reason.as_deref().and_then(|raw| problems.check("reason", parse_text(raw, 1000)).flatten());
    problems.finish()?;
    let action = action.ok_or_else(|| ApiError::internal("validated action missing"))?;
    let actor = principal.actor();
    let id = TaskId::from_uuid(*id);
    let task = read_task(&*services.tasks, actor, id).await.map_err(task_error)?;
    if !may_apply(actor, &task, action) {
        return Err(ApiError::forbidden());
    }
    let entry = audit(actor, "task.transition", id, request_context(&req));
    let task = services.tasks.transition(id, action, reason, entry).await.map_err(task_error)?;
    Ok(with_etag(StatusCode::OK, task))
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
    let id = TaskId::from_uuid(*id);
    read_task(&*services.tasks, principal.actor(), id).await.map_err(task_error)?;
    let items = services.tasks.history(id).await?.into_iter().map(StatusChangeView::from).collect();
    Ok(web::Json(HistoryView { items }))
}

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
    body: web::Json<AssignRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let actor = principal.actor();
    let id = TaskId::from_uuid(*id);
    read_task(&*services.tasks, actor, id).await.map_err(task_error)?;
    if !may_manage_tasks(actor) {
        return Err(ApiError::forbidden());
    }
    let officers = body.into_inner().officer_ids.into_iter().map(OfficerId::from_uuid).collect();
    let task = services
        .tasks
        .assign(id, officers, audit(actor, "task.assign", id, request_context(&req)))
        .await
        .map_err(task_error)?;
    Ok(with_etag(StatusCode::OK, task))
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
    let actor = principal.actor();
    let (id, officer) = path.into_inner();
    let id = TaskId::from_uuid(id);
    read_task(&*services.tasks, actor, id).await.map_err(task_error)?;
    if !may_manage_tasks(actor) {
        return Err(ApiError::forbidden());
    }
    let entry = audit(actor, "task.unassign", id, request_context(&req));
    let task = services.tasks.unassign(id, OfficerId::from_uuid(officer), entry).await.map_err(task_error)?;
    Ok(with_etag(StatusCode::OK, task))
}
