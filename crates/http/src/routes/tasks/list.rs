//! The task listing: filters, order and keyset pages.

use actix_web::{HttpRequest, get, web};
use gad_domain::tasks::officer::OfficerId;
use gad_domain::tasks::state::TaskStatus;
use gad_domain::tasks::task::{TaskId, TaskQuery};
use gad_domain::tasks::use_cases::list_tasks as list;
use gad_domain::users::{InvalidValue, UserId};
use uuid::Uuid;

use super::dto::TaskPage;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::pagination::PageRequest;
use crate::state::Services;
use crate::validation::{Fields, parse_number, query_pairs};

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
    let page = PageRequest::parse(limit, cursor.as_deref());
    if let Err(details) = &page {
        problems.0.extend(details.iter().cloned());
    }
    problems.finish()?;
    let page = page?;
    query.after = page.after.map(TaskId::from_uuid);
    query.limit = page.limit + 1;
    let tasks = list(&*services.tasks, principal.actor(), query).await?;
    let (items, next_cursor) = page.page(tasks, |task| task.id.as_uuid());
    Ok(web::Json(TaskPage { items, next_cursor }))
}
