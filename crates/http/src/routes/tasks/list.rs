//! The task listing: filters, order and keyset pages.

use actix_web::{HttpRequest, get, web};
use gad_domain::tasks::officer::OfficerId;
use gad_domain::tasks::state::TaskStatus;
use gad_domain::tasks::task::{TaskId, TaskQuery};
use gad_domain::tasks::use_cases::list_tasks as list;
use gad_domain::users::{InvalidValue, UserId};
use serde::Deserialize;
use uuid::Uuid;

use super::dto::TaskPage;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::pagination::PageRequest;
use crate::state::Services;
use crate::validation::{Fields, one_or_more, parse_number, query_with_lists};

/// The longest `q`, in characters once trimmed.
pub(crate) const MAX_SEARCH_CHARS: usize = 200;

/// The query parameters of the listing as sent. The document lists this struct and the handler
/// reads it, so the two cannot differ; the values stay text so that one 422 names every bad one.
/// Only `status` may repeat (the envelope middleware refuses any other repeated parameter).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TaskListParams {
    /// repeatable
    #[serde(default, deserialize_with = "one_or_more")]
    status: Vec<String>,
    priority: Option<String>,
    kind: Option<String>,
    #[param(value_type = Option<Uuid>)]
    officer_id: Option<String>,
    #[param(value_type = Option<Uuid>)]
    delegate_id: Option<String>,
    /// RFC 3339, inclusive
    created_from: Option<String>,
    /// RFC 3339, exclusive
    created_to: Option<String>,
    /// part of the code or title
    q: Option<String>,
    #[param(value_type = Option<f64>)]
    near_lat: Option<String>,
    #[param(value_type = Option<f64>)]
    near_lng: Option<String>,
    /// with near_lat and near_lng
    #[param(value_type = Option<f64>)]
    radius_m: Option<String>,
    /// -created_at (default), priority, scheduled_start
    sort: Option<String>,
    /// 1..=200, default 50
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    cursor: Option<String>,
}

impl TaskListParams {
    /// The listing these parameters ask for, or one 422 naming every bad parameter.
    fn into_query(self) -> Result<(TaskQuery, PageRequest), ApiError> {
        let mut problems = Fields::default();
        let uuid = |raw: &str| Uuid::parse_str(raw).map_err(|_| InvalidValue("must be a UUID"));
        let number = |problems: &mut Fields, field: &str, raw: Option<String>| {
            raw.and_then(|raw| problems.check(field, parse_number(&raw)))
        };
        let mut query = TaskQuery {
            statuses: self
                .status
                .iter()
                .filter_map(|status| problems.check("status", status.parse::<TaskStatus>()))
                .collect(),
            priority: self.priority.and_then(|raw| problems.check("priority", raw.parse())),
            kind: self.kind.and_then(|raw| problems.check("kind", raw.parse())),
            officer_id: self
                .officer_id
                .and_then(|raw| problems.check("officer_id", uuid(&raw)))
                .map(OfficerId::from_uuid),
            delegate_id: self
                .delegate_id
                .and_then(|raw| problems.check("delegate_id", uuid(&raw)))
                .map(UserId::from_uuid),
            created_from: self.created_from.and_then(|raw| problems.time("created_from", &raw)),
            created_to: self.created_to.and_then(|raw| problems.time("created_to", &raw)),
            q: self.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty()),
            sort: self.sort.and_then(|raw| problems.check("sort", raw.parse())).unwrap_or_default(),
            ..TaskQuery::default()
        };
        let near = (
            number(&mut problems, "near_lat", self.near_lat),
            number(&mut problems, "near_lng", self.near_lng),
            number(&mut problems, "radius_m", self.radius_m),
        );
        query.near = match near {
            (None, None, None) => None,
            (Some(lat), Some(lng), Some(radius)) if radius > 0.0 => {
                problems.point("near_", lat, lng).map(|point| (point, radius))
            }
            _ => {
                problems.push("near_lat", "near_lat, near_lng and a positive radius_m go together");
                None
            }
        };
        if query.q.as_ref().is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS) {
            problems.push("q", format!("must be at most {MAX_SEARCH_CHARS} characters"));
        }
        let limit = self.limit.and_then(|raw| {
            problems.check("limit", raw.parse::<i64>().map_err(|_| InvalidValue("must be a whole number")))
        });
        let page = PageRequest::parse(limit, self.cursor.as_deref());
        if let Err(details) = &page {
            problems.0.extend(details.iter().cloned());
        }
        problems.finish()?;
        Ok((query, page?))
    }
}

/// List tasks, newest first unless `sort` says otherwise. Officers see only the tasks assigned
/// to them.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(TaskListParams),
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
    let params: TaskListParams = query_with_lists(&req)?;
    let (mut query, page) = params.into_query()?;
    query.after = page.after.map(TaskId::from_uuid);
    query.limit = page.limit + 1;
    let tasks = list(&*services.tasks, principal.actor(), query).await?;
    let (items, next_cursor) = page.page(tasks, |task| task.id.as_uuid());
    Ok(web::Json(TaskPage { items, next_cursor }))
}
