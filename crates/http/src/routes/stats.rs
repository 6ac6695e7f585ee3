//! `GET /api/v1/stats/overview` and `GET /api/v1/stats/users/{id}` (SPEC §4): figures served
//! from the version-keyed cache, `X-Cache` telling whether they were.

use std::collections::BTreeMap;

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, get, web};
use gad_domain::error::StoreError;
use gad_domain::stats::{Overview, TaskFigures, USER_DAYS, UserStats, Versioned, Window, may_read_overview};
use gad_domain::tasks::officer::Availability;
use gad_domain::tasks::state::TaskStatus;
use gad_domain::tasks::task::{Priority, TaskKind};
use gad_domain::users::{InvalidValue, UserId, read_user};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::cache::versioned_json;
use crate::error::{ApiError, ErrorBody};
use crate::state::Services;
use crate::validation::{Fields, query_pairs};

/// Counts by status, priority and kind (every value present), and how the completed tasks went.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskFiguresView {
    total: i64,
    #[schema(value_type = BTreeMap<String, i64>,
             example = json!({"scheduled": 4, "in_progress": 1, "paused": 0, "completed": 7, "cancelled": 1}))]
    by_status: BTreeMap<TaskStatus, i64>,
    #[schema(value_type = BTreeMap<String, i64>)]
    by_priority: BTreeMap<Priority, i64>,
    #[schema(value_type = BTreeMap<String, i64>)]
    by_kind: BTreeMap<TaskKind, i64>,
    completed: i64,
    /// Mean net duration (actual end − actual start − time paused) of completed tasks, seconds.
    mean_completion_seconds: Option<f64>,
    /// Share (0..=1) of completed tasks with a scheduled end that ended by it.
    on_time_rate: Option<f64>,
}

impl From<TaskFigures> for TaskFiguresView {
    fn from(figures: TaskFigures) -> Self {
        Self {
            total: figures.total,
            by_status: figures.by_status,
            by_priority: figures.by_priority,
            by_kind: figures.by_kind,
            completed: figures.completed,
            mean_completion_seconds: figures.mean_completion_seconds,
            on_time_rate: figures.on_time_rate,
        }
    }
}

/// Tasks created in `[from, to)` (open bounds are null) and the officers as they are now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OverviewView {
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    to: Option<OffsetDateTime>,
    tasks: TaskFiguresView,
    #[schema(value_type = BTreeMap<String, i64>,
             example = json!({"available": 12, "on_task": 5, "off_duty": 20, "unavailable": 1}))]
    officers_by_availability: BTreeMap<Availability, i64>,
}

impl From<Overview> for OverviewView {
    fn from(overview: Overview) -> Self {
        Self {
            from: overview.from,
            to: overview.to,
            tasks: overview.tasks.into(),
            officers_by_availability: overview.officers_by_availability,
        }
    }
}

/// The tasks of the last `days` days that concern one user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserStatsView {
    user_id: Uuid,
    days: u16,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    to: OffsetDateTime,
    /// Tasks assigned to the user's officer profile.
    assigned: TaskFiguresView,
    /// Tasks the user created.
    created: i64,
    /// Tasks delegated to the user.
    delegated: i64,
}

impl From<UserStats> for UserStatsView {
    fn from(stats: UserStats) -> Self {
        Self {
            user_id: stats.user_id.as_uuid(),
            days: stats.days,
            from: stats.from,
            to: stats.to,
            assigned: stats.assigned.into(),
            created: stats.created,
            delegated: stats.delegated,
        }
    }
}

/// The figures as `V`'s JSON: from the cache under the data's current version, or computed and
/// stored; `X-Cache` says which.
async fn figures<T, V, Fut>(
    services: &Services,
    key: impl Fn(i64) -> String,
    compute: impl FnOnce() -> Fut,
) -> Result<HttpResponse, ApiError>
where
    V: From<T> + Serialize,
    Fut: Future<Output = Result<Versioned<T>, StoreError>>,
{
    let version = services.stats.version().await?;
    let cached = versioned_json(&*services.response_cache, version, key, async || {
        compute().await.map(|versioned| Versioned { version: versioned.version, value: V::from(versioned.value) })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header(("X-Cache", if cached.hit { "hit" } else { "miss" }))
        .body(cached.body))
}

/// Counts by status, priority and kind of the tasks created in `[from, to)`, mean completion
/// time, on-time rate and officers by availability (supervisors and admins).
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(
        ("from" = Option<String>, Query, description = "RFC 3339, inclusive; open when absent"),
        ("to" = Option<String>, Query, description = "RFC 3339, exclusive; open when absent"),
    ),
    responses(
        (status = 200, description = "the figures; `X-Cache: hit|miss`", body = OverviewView,
         headers(("X-Cache" = String, description = "hit or miss"))),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "operators and officers do not see the overview", body = ErrorBody),
        (status = 422, description = "a bad time, or `from` not before `to`", body = ErrorBody),
    )
)]
#[get("/api/v1/stats/overview")]
pub(crate) async fn get_overview(
    req: HttpRequest,
    principal: Principal,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    if !may_read_overview(principal.actor()) {
        return Err(ApiError::forbidden());
    }
    let mut problems = Fields::default();
    let mut window = Window::default();
    for (key, value) in query_pairs(&req)? {
        match key.as_str() {
            "from" => window.from = problems.time("from", &value),
            "to" => window.to = problems.time("to", &value),
            _ => {}
        }
    }
    if let (Some(from), Some(to)) = (window.from, window.to)
        && from >= to
    {
        problems.push("to", "must be after from");
    }
    problems.finish()?;
    let bound =
        |time: Option<OffsetDateTime>| time.map_or_else(String::new, |time| time.unix_timestamp_nanos().to_string());
    let (from, to) = (bound(window.from), bound(window.to));
    figures::<_, OverviewView, _>(
        &services,
        |version| format!("stats:overview:{version}:{from}:{to}"),
        || services.stats.overview(window),
    )
    .await
}

/// The tasks of the last `days` days (1..=365, default 30) that concern a user: assigned to
/// them, created by them, delegated to them. The user themselves, supervisors and admins.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "user id"),
        ("days" = Option<u16>, Query, description = "1..=365, default 30"),
    ),
    responses(
        (status = 200, description = "the figures; `X-Cache: hit|miss`", body = UserStatsView,
         headers(("X-Cache" = String, description = "hit or miss"))),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "the caller's role may not read another user's figures", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 422, description = "days out of range", body = ErrorBody),
    )
)]
#[get("/api/v1/stats/users/{id}")]
pub(crate) async fn get_user_stats(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Fields::default();
    let mut days = Some(30);
    for (key, value) in query_pairs(&req)? {
        if key == "days" {
            days = problems.check(
                "days",
                value
                    .parse::<u16>()
                    .ok()
                    .filter(|days| USER_DAYS.contains(days))
                    .ok_or(InvalidValue("must be a whole number of days from 1 to 365")),
            );
        }
    }
    let days = problems.finish_with(|| days)?;
    let user = read_user(&*services.users, principal.actor(), UserId::from_uuid(*id)).await?;
    figures::<_, UserStatsView, _>(
        &services,
        |version| format!("stats:user:{}:{days}:{version}", user.id),
        || services.stats.user(user.id, days),
    )
    .await
}
