//! Statistics in PostgreSQL: every figure and its version read in one repeatable-read snapshot,
//! so that a figure is exactly the data of its version (see `gad_domain::stats`).

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::error::StoreError;
use gad_domain::stats::{Overview, StatsStore, TaskFigures, UserStats, Versioned, Window};
use gad_domain::users::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::{corrupt_row, query_error};
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;

#[derive(Clone)]
pub struct PgStatsStore {
    pool: PgPool,
}

impl PgStatsStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl std::fmt::Debug for PgStatsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStatsStore").finish_non_exhaustive()
    }
}

/// The newest event that can change a figure, and whether such an event is committed but not
/// yet numbered (both answered by partial indexes).
const VERSION: &str = "SELECT coalesce(max(seq), 0) AS newest, \
            EXISTS (SELECT 1 FROM event_log WHERE seq IS NULL AND event_type <> 'officer.location_updated') AS pending \
     FROM event_log WHERE event_type <> 'officer.location_updated'";

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    newest: i64,
    #[diesel(sql_type = Bool)]
    pending: bool,
}

/// Tasks of one status, priority and kind: at most 175 rows, summed up in Rust.
#[derive(QueryableByName)]
struct TaskGroup {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    priority: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    tasks: i64,
    /// Completed with both actual times: their net durations, summed.
    #[diesel(sql_type = BigInt)]
    timed: i64,
    #[diesel(sql_type = Double)]
    completion_seconds: f64,
    /// Completed with a scheduled end, and how many of those ended by it.
    #[diesel(sql_type = BigInt)]
    due: i64,
    #[diesel(sql_type = BigInt)]
    on_time: i64,
}

#[derive(QueryableByName)]
struct AvailabilityCount {
    #[diesel(sql_type = Text)]
    availability: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct UserCounts {
    #[diesel(sql_type = BigInt)]
    created: i64,
    #[diesel(sql_type = BigInt)]
    delegated: i64,
}

async fn version(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Option<i64>> {
    let version: Version = diesel::sql_query(VERSION).prepared().get_result(conn).await?;
    Ok((!version.pending).then_some(version.newest))
}

/// Figures over the live tasks created in the window, only those assigned to `assigned_to`'s
/// officer profile when given.
async fn task_figures(
    conn: &mut AsyncPgConnection,
    window: Window,
    assigned_to: Option<Uuid>,
) -> diesel::QueryResult<TaskFigures> {
    let groups: Vec<TaskGroup> = diesel::sql_query(
        "SELECT t.status::text AS status, t.priority::text AS priority, t.kind::text AS kind, count(*) AS tasks, \
                count(*) FILTER (WHERE t.status = 'completed' AND t.actual_start IS NOT NULL \
                                   AND t.actual_end IS NOT NULL) AS timed, \
                coalesce(sum(extract(epoch FROM t.actual_end - t.actual_start)::float8 - t.total_paused_seconds) \
                    FILTER (WHERE t.status = 'completed' AND t.actual_start IS NOT NULL \
                              AND t.actual_end IS NOT NULL), 0)::float8 AS completion_seconds, \
                count(*) FILTER (WHERE t.status = 'completed' AND t.scheduled_end IS NOT NULL \
                                   AND t.actual_end IS NOT NULL) AS due, \
                count(*) FILTER (WHERE t.status = 'completed' AND t.actual_end <= t.scheduled_end) AS on_time \
         FROM tasks t \
         WHERE t.deleted_at IS NULL \
           AND ($1::timestamptz IS NULL OR t.created_at >= $1) \
           AND ($2::timestamptz IS NULL OR t.created_at < $2) \
           AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM task_assignments a JOIN officers o ON o.id = a.officer_id \
                                            WHERE a.task_id = t.id AND o.user_id = $3)) \
         GROUP BY t.status, t.priority, t.kind",
    )
    .bind::<Nullable<Timestamptz>, _>(window.from)
    .bind::<Nullable<Timestamptz>, _>(window.to)
    .bind::<Nullable<SqlUuid>, _>(assigned_to)
    .prepared()
    .load(conn)
    .await?;
    sum_up(&groups).map_err(|error| corrupt_row(&error))
}

fn sum_up(groups: &[TaskGroup]) -> Result<TaskFigures, StoreError> {
    let mut figures = TaskFigures::zero();
    let (mut timed, mut seconds, mut due, mut on_time) = (0, 0.0, 0, 0);
    for group in groups {
        let status = group.status.parse().map_err(StoreError::unexpected)?;
        figures.total += group.tasks;
        *figures.by_status.entry(status).or_default() += group.tasks;
        *figures.by_priority.entry(group.priority.parse().map_err(StoreError::unexpected)?).or_default() += group.tasks;
        *figures.by_kind.entry(group.kind.parse().map_err(StoreError::unexpected)?).or_default() += group.tasks;
        if status == gad_domain::tasks::state::TaskStatus::Completed {
            figures.completed += group.tasks;
        }
        timed += group.timed;
        seconds += group.completion_seconds;
        due += group.due;
        on_time += group.on_time;
    }
    figures.mean_completion_seconds = (timed > 0).then(|| seconds / timed as f64);
    figures.on_time_rate = (due > 0).then(|| on_time as f64 / due as f64);
    Ok(figures)
}

#[async_trait]
impl StatsStore for PgStatsStore {
    async fn version(&self) -> Result<Option<i64>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        match version(&mut conn).await.map_err(query_error)? {
            Some(version) => Ok(Some(version)),
            // A change committed a moment ago still awaits its number: number it now rather than
            // leave this read (and the one after it) without the cache.
            None => {
                crate::events::number(&mut conn).await.map_err(query_error)?;
                version(&mut conn).await.map_err(query_error)
            }
        }
    }

    async fn overview(&self, window: Window) -> Result<Versioned<Overview>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        conn.build_transaction()
            .read_only()
            .repeatable_read()
            .run(async |conn| {
                let version = version(conn).await?;
                let tasks = task_figures(conn, window, None).await?;
                let officers: Vec<AvailabilityCount> = diesel::sql_query(
                    "SELECT availability::text AS availability, count(*) AS count FROM officers \
                     WHERE deleted_at IS NULL GROUP BY availability",
                )
                .prepared()
                .load(conn)
                .await?;
                Ok((version, tasks, officers))
            })
            .await
            .map_err(query_error)
            .and_then(|(version, tasks, officers)| {
                let mut officers_by_availability: std::collections::BTreeMap<_, _> =
                    gad_domain::tasks::officer::Availability::ALL.into_iter().map(|value| (value, 0)).collect();
                for row in officers {
                    officers_by_availability
                        .insert(row.availability.parse().map_err(StoreError::unexpected)?, row.count);
                }
                let value = Overview { from: window.from, to: window.to, tasks, officers_by_availability };
                Ok(Versioned { version, value })
            })
    }

    async fn user(&self, user: UserId, days: u16) -> Result<Versioned<UserStats>, StoreError> {
        let to = OffsetDateTime::now_utc();
        let from = to - time::Duration::days(i64::from(days));
        let window = Window { from: Some(from), to: Some(to) };
        let mut conn = connection(&self.pool).await?;
        let (version, assigned, counts) = conn
            .build_transaction()
            .read_only()
            .repeatable_read()
            .run(async |conn| {
                let version = version(conn).await?;
                let assigned = task_figures(conn, window, Some(user.as_uuid())).await?;
                let counts: UserCounts = diesel::sql_query(
                    "SELECT count(*) FILTER (WHERE created_by = $1) AS created, \
                            count(*) FILTER (WHERE delegate_id = $1) AS delegated \
                     FROM tasks WHERE deleted_at IS NULL AND created_at >= $2 AND created_at < $3 \
                       AND (created_by = $1 OR delegate_id = $1)",
                )
                .bind::<SqlUuid, _>(user.as_uuid())
                .bind::<Timestamptz, _>(from)
                .bind::<Timestamptz, _>(to)
                .prepared()
                .get_result(conn)
                .await?;
                Ok((version, assigned, counts))
            })
            .await
            .map_err(query_error)?;
        let value =
            UserStats { user_id: user, days, from, to, assigned, created: counts.created, delegated: counts.delegated };
        Ok(Versioned { version, value })
    }
}
