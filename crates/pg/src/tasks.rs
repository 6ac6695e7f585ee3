//! Tasks in PostgreSQL: every write in one transaction with its audit row and event; a
//! transition also writes its history row and moves the officers' availability. The database
//! itself refuses a second in-progress task for an officer (see the dispatch migration).

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::AuditEntry;
use gad_domain::error::StoreError;
use gad_domain::tasks::geo::GeoPoint;
use gad_domain::tasks::officer::OfficerId;
use gad_domain::tasks::state::{TaskAction, TaskStatus};
use gad_domain::tasks::task::{
    Map, MapOfficer, MapTask, NewTask, StatusChange, Task, TaskError, TaskFields, TaskId, TaskQuery, TaskSort,
    TaskStore,
};
use gad_domain::users::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit;
use crate::errors::{corrupt_row, query_error, violated_unique_constraint};
use crate::events::{self, EventNumbering, NewEvent};
use crate::officers;
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;

#[derive(Clone)]
pub struct PgTaskStore {
    pool: PgPool,
    numbering: EventNumbering,
}

impl PgTaskStore {
    pub fn new(pool: PgPool, numbering: EventNumbering) -> Self {
        Self { pool, numbering }
    }
}

impl std::fmt::Debug for PgTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTaskStore").finish_non_exhaustive()
    }
}

/// Every task column, the position in degrees, and the assigned officers (ids and users) in
/// the same statement: a listing never needs a query per task.
const COLUMNS: &str = "t.id, t.code, t.title, t.description, t.kind::text AS kind, t.priority::text AS priority, \
     t.status::text AS status, t.scheduled_start, t.scheduled_end, t.actual_start, t.actual_end, t.paused_at, \
     t.total_paused_seconds, ST_Y(t.location::geometry) AS lat, ST_X(t.location::geometry) AS lng, \
     t.location_description, t.delegate_id, t.created_by, t.notes, t.version, t.created_at, t.updated_at, \
     ARRAY(SELECT a.officer_id FROM task_assignments a WHERE a.task_id = t.id ORDER BY a.assigned_at, a.officer_id) \
         AS officer_ids, \
     ARRAY(SELECT o.user_id FROM task_assignments a JOIN officers o ON o.id = a.officer_id WHERE a.task_id = t.id) \
         AS officer_user_ids";

#[derive(QueryableByName)]
struct TaskRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Nullable<Text>)]
    description: Option<String>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    priority: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Timestamptz)]
    scheduled_start: OffsetDateTime,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    scheduled_end: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    actual_start: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    actual_end: Option<OffsetDateTime>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    paused_at: Option<OffsetDateTime>,
    #[diesel(sql_type = BigInt)]
    total_paused_seconds: i64,
    #[diesel(sql_type = Nullable<Double>)]
    lat: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    lng: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    location_description: Option<String>,
    #[diesel(sql_type = SqlUuid)]
    delegate_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    created_by: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    notes: Option<String>,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    updated_at: OffsetDateTime,
    #[diesel(sql_type = Array<SqlUuid>)]
    officer_ids: Vec<Uuid>,
    #[diesel(sql_type = Array<SqlUuid>)]
    officer_user_ids: Vec<Uuid>,
}

impl TaskRow {
    fn into_task(self) -> Result<Task, StoreError> {
        let location = match (self.lat, self.lng) {
            (Some(lat), Some(lng)) => {
                Some(GeoPoint::new(lat, lng).map_err(|(_, error)| StoreError::unexpected(error))?)
            }
            _ => None,
        };
        Ok(Task {
            id: TaskId::from_uuid(self.id),
            code: self.code,
            title: self.title,
            description: self.description,
            kind: self.kind.parse().map_err(StoreError::unexpected)?,
            priority: self.priority.parse().map_err(StoreError::unexpected)?,
            status: self.status.parse().map_err(StoreError::unexpected)?,
            scheduled_start: self.scheduled_start,
            scheduled_end: self.scheduled_end,
            actual_start: self.actual_start,
            actual_end: self.actual_end,
            paused_at: self.paused_at,
            total_paused_seconds: self.total_paused_seconds,
            location,
            location_description: self.location_description,
            delegate_id: UserId::from_uuid(self.delegate_id),
            created_by: UserId::from_uuid(self.created_by),
            officer_ids: self.officer_ids.into_iter().map(OfficerId::from_uuid).collect(),
            officer_user_ids: self.officer_user_ids.into_iter().map(UserId::from_uuid).collect(),
            notes: self.notes,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Why a task transaction was rolled back.
enum Failure {
    Task(TaskError),
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for Failure {
    fn from(error: diesel::result::Error) -> Self {
        Self::Query(error)
    }
}

impl From<TaskError> for Failure {
    fn from(error: TaskError) -> Self {
        Self::Task(error)
    }
}

fn task_error(failure: Failure) -> TaskError {
    match failure {
        Failure::Task(error) => error,
        Failure::Query(error) => match violated_unique_constraint(&error) {
            Some("task_assignments_one_in_progress_per_officer") => TaskError::OfficerBusy,
            Some("tasks_code_key") => TaskError::DuplicateCode,
            _ if error.to_string().contains("tasks_delegate_id_fkey") => TaskError::UnknownDelegate,
            _ => TaskError::Store(query_error(error)),
        },
    }
}

async fn load(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Task>> {
    let row: Option<TaskRow> =
        diesel::sql_query(format!("SELECT {COLUMNS} FROM tasks t WHERE t.id = $1 AND t.deleted_at IS NULL"))
            .bind::<SqlUuid, _>(id)
            .prepared()
            .get_result(conn)
            .await
            .optional()?;
    row.map(TaskRow::into_task).transpose().map_err(|error| corrupt_row(&error))
}

/// The task as it now stands, its audit row, and its event for everyone following it.
async fn record(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    event_type: &'static str,
    entry: &AuditEntry,
) -> Result<Task, Failure> {
    record_for(conn, id, event_type, entry, &[]).await
}

/// Like `record`, the event also reaching `former` users (an officer just unassigned learns it).
async fn record_for(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    event_type: &'static str,
    entry: &AuditEntry,
    former: &[Uuid],
) -> Result<Task, Failure> {
    audit::append(conn, entry).await?;
    announce(conn, id, event_type, entry, former).await
}

/// The task's event alone (the audit row is the caller's): the task as it is now, for its
/// officers and `former` users.
async fn announce(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    event_type: &'static str,
    entry: &AuditEntry,
    former: &[Uuid],
) -> Result<Task, Failure> {
    let task = load(conn, id).await?.ok_or(TaskError::NotFound)?;
    append_task_event(conn, &task, event_type, entry, former).await?;
    Ok(task)
}

/// Appends `event_type` carrying `task`, for its officers and `former` users.
async fn append_task_event(
    conn: &mut AsyncPgConnection,
    task: &Task,
    event_type: &'static str,
    entry: &AuditEntry,
    former: &[Uuid],
) -> Result<(), Failure> {
    let audience: Vec<Uuid> =
        task.officer_user_ids.iter().map(|user| user.as_uuid()).chain(former.iter().copied()).collect();
    let payload =
        serde_json::to_value(task).map_err(|error| diesel::result::Error::SerializationError(Box::new(error)))?;
    let task_id = Some(task.id.as_uuid());
    events::append(conn, NewEvent { event_type, task_id, officer_id: None, audience: &audience, entry, payload })
        .await?;
    Ok(())
}

/// Assigns officers that exist, in two statements whatever their number; an unknown one fails
/// the whole assignment.
async fn add_officers(
    conn: &mut AsyncPgConnection,
    task: Uuid,
    officers: &[OfficerId],
    by: Option<Uuid>,
) -> Result<(), Failure> {
    if officers.is_empty() {
        return Ok(());
    }
    let wanted: Vec<Uuid> = officers.iter().map(|officer| officer.as_uuid()).collect();
    let live: Vec<Uuid> = crate::schema::officers::table
        .filter(crate::schema::officers::id.eq_any(&wanted))
        .filter(crate::schema::officers::deleted_at.is_null())
        .select(crate::schema::officers::id)
        .load(conn)
        .await?;
    if let Some(unknown) = officers.iter().find(|officer| !live.contains(&officer.as_uuid())) {
        return Err(TaskError::UnknownOfficer(*unknown).into());
    }
    diesel::sql_query(
        "INSERT INTO task_assignments (task_id, officer_id, assigned_by) \
         SELECT $1, officer, $3 FROM unnest($2::uuid[]) AS officer ON CONFLICT DO NOTHING",
    )
    .bind::<SqlUuid, _>(task)
    .bind::<Array<SqlUuid>, _>(&wanted)
    .bind::<Nullable<SqlUuid>, _>(by)
    .prepared()
    .execute(conn)
    .await?;
    Ok(())
}

/// Officers of finished work become available again unless another task still holds them; each
/// one that changed is announced.
async fn release_officers(conn: &mut AsyncPgConnection, officers: &[Uuid], entry: &AuditEntry) -> QueryResult<()> {
    let update = "UPDATE officers o SET availability = 'available' WHERE o.id = ANY($1) AND o.availability = 'on_task' \
           AND NOT EXISTS (SELECT 1 FROM task_assignments a JOIN tasks t ON t.id = a.task_id \
                           WHERE a.officer_id = o.id AND t.deleted_at IS NULL AND t.status IN ('in_progress', 'paused'))";
    officers::move_availability(conn, update, officers, entry).await
}

/// Officers of started (or dispatched) work are on task; each one that changed is announced.
async fn occupy_officers(conn: &mut AsyncPgConnection, officers: &[Uuid], entry: &AuditEntry) -> QueryResult<()> {
    let update = "UPDATE officers o SET availability = 'on_task' WHERE o.id = ANY($1) AND o.availability <> 'on_task'";
    officers::move_availability(conn, update, officers, entry).await
}

fn bind_fields<'a>(statement: diesel::query_builder::SqlQuery, fields: &'a TaskFields) -> BoxedQuery<'a> {
    statement
        .into_boxed()
        .bind::<Text, _>(fields.title.as_str())
        .bind::<Nullable<Text>, _>(fields.description.as_deref())
        .bind::<Text, _>(fields.kind.as_str())
        .bind::<Text, _>(fields.priority.as_str())
        .bind::<Timestamptz, _>(fields.scheduled_start)
        .bind::<Nullable<Timestamptz>, _>(fields.scheduled_end)
        .bind::<Nullable<Double>, _>(fields.location.map(GeoPoint::lat))
        .bind::<Nullable<Double>, _>(fields.location.map(GeoPoint::lng))
        .bind::<Nullable<Text>, _>(fields.location_description.as_deref())
        .bind::<SqlUuid, _>(fields.delegate_id.as_uuid())
        .bind::<Nullable<Text>, _>(fields.notes.as_deref())
}

/// A statement built from the filters present: each `?` of an appended fragment becomes the
/// next numbered parameter, bound by the fragment's own closure in the same order.
struct Filtered<'a> {
    query: BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery>,
    parameters: usize,
}

impl<'a> Filtered<'a> {
    fn new(select: String) -> Self {
        Self { query: diesel::sql_query(select).into_boxed(), parameters: 0 }
    }

    /// Appends ` AND <predicate>`.
    fn and(self, predicate: &str, bind: impl FnOnce(BoxedQuery<'a>) -> BoxedQuery<'a>) -> Self {
        self.then(&format!(" AND {predicate}"), bind)
    }

    fn then(mut self, fragment: &str, bind: impl FnOnce(BoxedQuery<'a>) -> BoxedQuery<'a>) -> Self {
        let mut numbered = String::with_capacity(fragment.len() + 8);
        for (index, piece) in fragment.split('?').enumerate() {
            if index > 0 {
                self.parameters += 1;
                numbered.push_str(&format!("${}", self.parameters));
            }
            numbered.push_str(piece);
        }
        Self { query: bind(self.query.sql(numbered)), parameters: self.parameters }
    }

    fn prepared(self) -> crate::prepared::Prepared<BoxedQuery<'a>> {
        self.query.prepared()
    }
}

type BoxedQuery<'a> = BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery>;

/// `$1..$11` of `bind_fields`, as stored.
const FIELD_VALUES: &str = "$1, $2, $3::task_kind, $4::task_priority, $5, $6, \
     CASE WHEN $7::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint($8, $7), 4326)::geography END, $9, $10, $11";

#[async_trait]
impl TaskStore for PgTaskStore {
    async fn insert(&self, task: NewTask, entry: AuditEntry) -> Result<Task, TaskError> {
        let mut conn = connection(&self.pool).await?;
        let outcome = conn
            .transaction(async |conn| {
                let statement = diesel::sql_query(format!(
                    "INSERT INTO tasks (title, description, kind, priority, scheduled_start, scheduled_end, location, \
                                    location_description, delegate_id, notes, id, code, created_by) \
                 VALUES ({FIELD_VALUES}, $12, COALESCE($13, 'T-' || lpad(nextval('task_code_seq')::text, 6, '0')), $14)"
                ));
                bind_fields(statement, &task.fields)
                    .bind::<SqlUuid, _>(task.id.as_uuid())
                    .bind::<Nullable<Text>, _>(task.code.as_deref())
                    .bind::<SqlUuid, _>(task.created_by.as_uuid())
                    .prepared()
                    .execute(conn)
                    .await?;
                add_officers(conn, task.id.as_uuid(), &task.officer_ids, Some(task.created_by.as_uuid())).await?;
                record(conn, task.id.as_uuid(), "task.created", &entry).await
            })
            .await
            .map_err(task_error);
        events::after_commit(&self.numbering, outcome)
    }

    async fn find(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        load(&mut conn, id.as_uuid()).await.map_err(query_error)
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        // Only the filters present become predicates, so that each combination is a statement of
        // its own, kept prepared with a plan that fits it.
        let mut statement = Filtered::new(format!("SELECT {COLUMNS} FROM tasks t WHERE t.deleted_at IS NULL"));
        if !query.statuses.is_empty() {
            let statuses: Vec<&str> = query.statuses.iter().map(|status| status.as_str()).collect();
            statement = statement.and("t.status::text = ANY(?)", |q| q.bind::<Array<Text>, _>(statuses));
        }
        if let Some(priority) = query.priority {
            statement = statement.and("t.priority = ?::task_priority", |q| q.bind::<Text, _>(priority.as_str()));
        }
        if let Some(kind) = query.kind {
            statement = statement.and("t.kind = ?::task_kind", |q| q.bind::<Text, _>(kind.as_str()));
        }
        if let Some(officer) = query.officer_id {
            statement = statement
                .and("EXISTS (SELECT 1 FROM task_assignments a WHERE a.task_id = t.id AND a.officer_id = ?)", |q| {
                    q.bind::<SqlUuid, _>(officer.as_uuid())
                });
        }
        if let Some(delegate) = query.delegate_id {
            statement = statement.and("t.delegate_id = ?", |q| q.bind::<SqlUuid, _>(delegate.as_uuid()));
        }
        if let Some(user) = query.assigned_to_user {
            statement = statement.and(
                "EXISTS (SELECT 1 FROM task_assignments a JOIN officers o ON o.id = a.officer_id \
                         WHERE a.task_id = t.id AND o.user_id = ?)",
                |q| q.bind::<SqlUuid, _>(user.as_uuid()),
            );
        }
        if let Some(from) = query.created_from {
            statement = statement.and("t.created_at >= ?", |q| q.bind::<Timestamptz, _>(from));
        }
        if let Some(to) = query.created_to {
            statement = statement.and("t.created_at < ?", |q| q.bind::<Timestamptz, _>(to));
        }
        if let Some(q) = &query.q {
            let pattern = crate::users::like_pattern(q);
            statement = statement.and("(t.title ILIKE ? OR t.code ILIKE ?)", |statement| {
                statement.bind::<Text, _>(pattern.clone()).bind::<Text, _>(pattern)
            });
        }
        if let Some((point, radius)) = query.near {
            statement = statement
                .and("ST_DWithin(t.location, ST_SetSRID(ST_MakePoint(?, ?), 4326)::geography, ?)", |q| {
                    q.bind::<Double, _>(point.lng()).bind::<Double, _>(point.lat()).bind::<Double, _>(radius)
                });
        }
        // Keyset pagination: the cursor task's own sort key bounds the next page, so pages stay
        // stable while tasks are inserted.
        let (order, after) = match query.sort {
            TaskSort::Newest => ("t.id DESC", "t.id < ?"),
            TaskSort::Priority => (
                "t.priority DESC, t.id DESC",
                "(t.priority, t.id) < (SELECT c.priority, c.id FROM tasks c WHERE c.id = ?)",
            ),
            TaskSort::ScheduledStart => (
                "t.scheduled_start, t.id",
                "(t.scheduled_start, t.id) > (SELECT c.scheduled_start, c.id FROM tasks c WHERE c.id = ?)",
            ),
        };
        if let Some(cursor) = query.after {
            statement = statement.and(after, |q| q.bind::<SqlUuid, _>(cursor.as_uuid()));
        }
        // The limit is written into the statement: bound, it would leave PostgreSQL guessing the
        // page size and re-planning on every execution instead of keeping one plan per size.
        let statement = statement.then(&format!(" ORDER BY {order} LIMIT {}", query.limit), |q| q);
        let mut conn = connection(&self.pool).await?;
        let rows: Vec<TaskRow> = statement.prepared().load(&mut conn).await.map_err(query_error)?;
        rows.into_iter().map(TaskRow::into_task).collect()
    }

    async fn update(
        &self,
        id: TaskId,
        expected_version: Option<i64>,
        fields: TaskFields,
        entry: AuditEntry,
    ) -> Result<Task, TaskError> {
        let mut conn = connection(&self.pool).await?;
        let outcome = conn
            .transaction(async |conn| {
                let statement = diesel::sql_query(format!(
                    "UPDATE tasks SET (title, description, kind, priority, scheduled_start, scheduled_end, location, \
                                   location_description, delegate_id, notes) = ({FIELD_VALUES}) \
                 WHERE id = $12 AND deleted_at IS NULL AND ($13::bigint IS NULL OR version = $13)"
                ));
                let changed = bind_fields(statement, &fields)
                    .bind::<SqlUuid, _>(id.as_uuid())
                    .bind::<Nullable<BigInt>, _>(expected_version)
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    let exists = load(conn, id.as_uuid()).await?.is_some();
                    return Err(if exists { TaskError::VersionMismatch } else { TaskError::NotFound }.into());
                }
                record(conn, id.as_uuid(), "task.updated", &entry).await
            })
            .await
            .map_err(task_error);
        events::after_commit(&self.numbering, outcome)
    }

    async fn delete(&self, id: TaskId, entry: AuditEntry) -> Result<(), TaskError> {
        let mut conn = connection(&self.pool).await?;
        let outcome = conn
            .transaction(async |conn| {
                let status = locked_status(conn, id).await?.ok_or(TaskError::NotFound)?;
                // A running task is cancelled first, so that its officers are free again.
                if matches!(status, TaskStatus::InProgress | TaskStatus::Paused) {
                    apply_transition(conn, id, status, TaskAction::Cancel, Some("deleted"), &entry).await?;
                    announce(conn, id.as_uuid(), "task.status_changed", &entry, &[]).await?;
                }
                // The event carries the task as it was last seen.
                let task = load(conn, id.as_uuid()).await?.ok_or(TaskError::NotFound)?;
                diesel::sql_query("UPDATE tasks SET deleted_at = now() WHERE id = $1")
                    .bind::<SqlUuid, _>(id.as_uuid())
                    .prepared()
                    .execute(conn)
                    .await?;
                audit::append(conn, &entry).await?;
                append_task_event(conn, &task, "task.deleted", &entry, &[]).await?;
                Ok(())
            })
            .await
            .map_err(task_error);
        events::after_commit(&self.numbering, outcome)
    }

    async fn transition(
        &self,
        id: TaskId,
        action: TaskAction,
        reason: Option<String>,
        entry: AuditEntry,
    ) -> Result<Task, TaskError> {
        let mut conn = connection(&self.pool).await?;
        let outcome = conn
            .transaction(async |conn| {
                let from = locked_status(conn, id).await?.ok_or(TaskError::NotFound)?;
                apply_transition(conn, id, from, action, reason.as_deref(), &entry).await?;
                record(conn, id.as_uuid(), "task.status_changed", &entry).await
            })
            .await
            .map_err(task_error);
        events::after_commit(&self.numbering, outcome)
    }

    async fn history(&self, id: TaskId) -> Result<Vec<StatusChange>, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            from_status: String,
            #[diesel(sql_type = Text)]
            to_status: String,
            #[diesel(sql_type = Text)]
            action: String,
            #[diesel(sql_type = Nullable<SqlUuid>)]
            actor_id: Option<Uuid>,
            #[diesel(sql_type = Nullable<Text>)]
            reason: Option<String>,
            #[diesel(sql_type = Timestamptz)]
            at: OffsetDateTime,
        }
        let mut conn = connection(&self.pool).await?;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT from_status::text AS from_status, to_status::text AS to_status, action::text AS action, actor_id, reason, at \
             FROM task_status_history WHERE task_id = $1 ORDER BY id",
        )
        .bind::<SqlUuid, _>(id.as_uuid())
        .prepared()
        .load(&mut conn)
        .await
        .map_err(query_error)?;
        rows.into_iter()
            .map(|row| {
                Ok(StatusChange {
                    from_status: row.from_status.parse().map_err(StoreError::unexpected)?,
                    to_status: row.to_status.parse().map_err(StoreError::unexpected)?,
                    action: row.action.parse().map_err(StoreError::unexpected)?,
                    actor_id: row.actor_id.map(UserId::from_uuid),
                    reason: row.reason,
                    at: row.at,
                })
            })
            .collect()
    }

    async fn assign(&self, id: TaskId, officers: Vec<OfficerId>, entry: AuditEntry) -> Result<Task, TaskError> {
        let mut conn = connection(&self.pool).await?;
        let outcome = conn
            .transaction(async |conn| {
                let task = load(conn, id.as_uuid()).await?.ok_or(TaskError::NotFound)?;
                if task.status.is_final() {
                    return Err(TaskError::Conflict("a finished task takes no more officers").into());
                }
                add_officers(conn, id.as_uuid(), &officers, entry.actor.map(|(actor, _)| actor.as_uuid())).await?;
                if task.status == TaskStatus::InProgress {
                    let ids: Vec<Uuid> = officers.iter().map(|officer| officer.as_uuid()).collect();
                    occupy_officers(conn, &ids, &entry).await?;
                }
                record(conn, id.as_uuid(), "task.assigned", &entry).await
            })
            .await
            .map_err(task_error);
        events::after_commit(&self.numbering, outcome)
    }

    async fn dispatch_emergency(
        &self,
        task: NewTask,
        entry: AuditEntry,
    ) -> Result<(Task, Option<(OfficerId, f64)>), TaskError> {
        #[derive(QueryableByName)]
        struct Nearest {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
            #[diesel(sql_type = Double)]
            distance_m: f64,
        }
        let point = task.fields.location.ok_or(TaskError::Conflict("an emergency needs a location"))?;
        let mut conn = connection(&self.pool).await?;
        let outcome = conn.transaction(async |conn| {
            // SKIP LOCKED: two emergencies at once never take the same officer.
            let nearest: Option<Nearest> = diesel::sql_query(
                "SELECT o.id, ST_Distance(o.location, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography) AS distance_m \
                 FROM officers o WHERE o.deleted_at IS NULL AND o.location IS NOT NULL AND o.availability = 'available' \
                 ORDER BY o.location <-> ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography \
                 LIMIT 1 FOR UPDATE SKIP LOCKED",
            )
            .bind::<Double, _>(point.lat())
            .bind::<Double, _>(point.lng())
            .prepared()
            .get_result(conn)
            .await
            .optional()?;
            let statement = diesel::sql_query(format!(
                "INSERT INTO tasks (title, description, kind, priority, scheduled_start, scheduled_end, location, \
                                    location_description, delegate_id, notes, id, code, created_by) \
                 VALUES ({FIELD_VALUES}, $12, 'T-' || lpad(nextval('task_code_seq')::text, 6, '0'), $13)"
            ));
            bind_fields(statement, &task.fields)
                .bind::<SqlUuid, _>(task.id.as_uuid())
                .bind::<SqlUuid, _>(task.created_by.as_uuid())
                .prepared()
                .execute(conn)
                .await?;
            if let Some(nearest) = &nearest {
                let officer = [OfficerId::from_uuid(nearest.id)];
                add_officers(conn, task.id.as_uuid(), &officer, Some(task.created_by.as_uuid())).await?;
                occupy_officers(conn, &[nearest.id], &entry).await?;
            }
            let created = record(conn, task.id.as_uuid(), "task.created", &entry).await?;
            let alert = serde_json::json!({
                "task": created,
                "officer_id": nearest.as_ref().map(|nearest| nearest.id),
                "distance_m": nearest.as_ref().map(|nearest| nearest.distance_m),
            });
            let audience: Vec<Uuid> = created.officer_user_ids.iter().map(|user| user.as_uuid()).collect();
            events::append(
                conn,
                NewEvent { event_type: "alert.emergency", task_id: Some(task.id.as_uuid()), officer_id: nearest.as_ref().map(|n| n.id), audience: &audience, entry: &entry, payload: alert },
            )
            .await?;
            Ok((created, nearest.map(|nearest| (OfficerId::from_uuid(nearest.id), nearest.distance_m))))
        })
        .await
        .map_err(task_error);
        events::after_commit(&self.numbering, outcome)
    }

    async fn map(&self, center: GeoPoint, radius_m: f64) -> Result<Map, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
            #[diesel(sql_type = Text)]
            label: String,
            #[diesel(sql_type = Nullable<Text>)]
            title: Option<String>,
            #[diesel(sql_type = Text)]
            first: String,
            #[diesel(sql_type = Nullable<Text>)]
            second: Option<String>,
            #[diesel(sql_type = Double)]
            lat: f64,
            #[diesel(sql_type = Double)]
            lng: f64,
            #[diesel(sql_type = Double)]
            distance_m: f64,
        }
        let point = "ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography";
        let mut conn = connection(&self.pool).await?;
        let tasks: Vec<Row> = diesel::sql_query(format!(
            "SELECT t.id, t.code AS label, t.title, t.priority::text AS first, t.status::text AS second, \
                    ST_Y(t.location::geometry) AS lat, ST_X(t.location::geometry) AS lng, \
                    ST_Distance(t.location, {point}) AS distance_m \
             FROM tasks t WHERE t.deleted_at IS NULL AND t.status NOT IN ('completed', 'cancelled') \
               AND ST_DWithin(t.location, {point}, $3) ORDER BY distance_m LIMIT 1000"
        ))
        .bind::<Double, _>(center.lat())
        .bind::<Double, _>(center.lng())
        .bind::<Double, _>(radius_m)
        .prepared()
        .load(&mut conn)
        .await
        .map_err(query_error)?;
        let officers: Vec<Row> = diesel::sql_query(format!(
            "SELECT o.id, o.badge_number AS label, NULL::text AS title, o.availability::text AS first, NULL::text AS second, \
                    ST_Y(o.location::geometry) AS lat, ST_X(o.location::geometry) AS lng, \
                    ST_Distance(o.location, {point}) AS distance_m \
             FROM officers o WHERE o.deleted_at IS NULL AND ST_DWithin(o.location, {point}, $3) \
             ORDER BY distance_m LIMIT 1000"
        ))
        .bind::<Double, _>(center.lat())
        .bind::<Double, _>(center.lng())
        .bind::<Double, _>(radius_m)
        .prepared()
        .load(&mut conn)
        .await
        .map_err(query_error)?;
        let point_of = |row: &Row| GeoPoint::new(row.lat, row.lng).map_err(|(_, error)| StoreError::unexpected(error));
        Ok(Map {
            tasks: tasks
                .into_iter()
                .map(|row| {
                    Ok(MapTask {
                        id: TaskId::from_uuid(row.id),
                        point: point_of(&row)?,
                        priority: row.first.parse().map_err(StoreError::unexpected)?,
                        status: row.second.as_deref().unwrap_or_default().parse().map_err(StoreError::unexpected)?,
                        code: row.label,
                        title: row.title.unwrap_or_default(),
                        distance_m: row.distance_m,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            officers: officers
                .into_iter()
                .map(|row| {
                    Ok(MapOfficer {
                        id: OfficerId::from_uuid(row.id),
                        point: point_of(&row)?,
                        availability: row.first.parse().map_err(StoreError::unexpected)?,
                        badge_number: row.label,
                        distance_m: row.distance_m,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
        })
    }

    async fn unassign(&self, id: TaskId, officer: OfficerId, entry: AuditEntry) -> Result<Task, TaskError> {
        let mut conn = connection(&self.pool).await?;
        let outcome = conn
            .transaction(async |conn| {
                load(conn, id.as_uuid()).await?.ok_or(TaskError::NotFound)?;
                #[derive(QueryableByName)]
                struct Removed {
                    #[diesel(sql_type = SqlUuid)]
                    user_id: Uuid,
                }
                let removed: Option<Removed> = diesel::sql_query(
                    "DELETE FROM task_assignments a USING officers o \
                 WHERE a.task_id = $1 AND a.officer_id = $2 AND o.id = a.officer_id RETURNING o.user_id",
                )
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<SqlUuid, _>(officer.as_uuid())
                .prepared()
                .get_result(conn)
                .await
                .optional()?;
                let Some(removed) = removed else {
                    return Err(TaskError::NotFound.into());
                };
                release_officers(conn, &[officer.as_uuid()], &entry).await?;
                record_for(conn, id.as_uuid(), "task.unassigned", &entry, &[removed.user_id]).await
            })
            .await
            .map_err(task_error);
        events::after_commit(&self.numbering, outcome)
    }
}

/// The task's status, its row locked for the rest of the transaction; `None` when there is no
/// such task (or it was deleted).
async fn locked_status(conn: &mut AsyncPgConnection, id: TaskId) -> Result<Option<TaskStatus>, Failure> {
    #[derive(QueryableByName)]
    struct Current {
        #[diesel(sql_type = Text)]
        status: String,
    }
    let current: Option<Current> =
        diesel::sql_query("SELECT status::text AS status FROM tasks WHERE id = $1 AND deleted_at IS NULL FOR UPDATE")
            .bind::<SqlUuid, _>(id.as_uuid())
            .prepared()
            .get_result(conn)
            .await
            .optional()?;
    current
        .map(|current| current.status.parse().map_err(|error| corrupt_row(&StoreError::unexpected(error)).into()))
        .transpose()
}

/// Applies `action` to a task locked at status `from`: the status and its times, exactly one
/// history row, and the assigned officers' availability (with their events). The caller records
/// the task's own event.
async fn apply_transition(
    conn: &mut AsyncPgConnection,
    id: TaskId,
    from: TaskStatus,
    action: TaskAction,
    reason: Option<&str>,
    entry: &AuditEntry,
) -> Result<(), Failure> {
    let to = from.apply(action).ok_or(TaskError::InvalidTransition { from, allowed: from.allowed_actions() })?;
    // Paused time is added when the pause ends (resume, complete or cancel).
    diesel::sql_query(
        "UPDATE tasks SET status = $2::task_status, \
        actual_start = CASE WHEN $3 = 'start' THEN now() ELSE actual_start END, \
        total_paused_seconds = total_paused_seconds + CASE WHEN paused_at IS NOT NULL AND $3 <> 'pause' \
            THEN GREATEST(0, floor(extract(epoch FROM now() - paused_at)))::bigint ELSE 0 END, \
        paused_at = CASE WHEN $3 = 'pause' THEN now() ELSE NULL END, \
        actual_end = CASE WHEN $3 IN ('complete', 'cancel') THEN now() ELSE actual_end END \
     WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id.as_uuid())
    .bind::<Text, _>(to.as_str())
    .bind::<Text, _>(action.as_str())
    .prepared()
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO task_status_history (task_id, from_status, to_status, action, actor_id, reason) \
     VALUES ($1, $2::task_status, $3::task_status, $4::task_action, $5, $6)",
    )
    .bind::<SqlUuid, _>(id.as_uuid())
    .bind::<Text, _>(from.as_str())
    .bind::<Text, _>(to.as_str())
    .bind::<Text, _>(action.as_str())
    .bind::<Nullable<SqlUuid>, _>(entry.actor.map(|(actor, _)| actor.as_uuid()))
    .bind::<Nullable<Text>, _>(reason)
    .prepared()
    .execute(conn)
    .await?;
    let officers: Vec<Uuid> = crate::schema::task_assignments::table
        .filter(crate::schema::task_assignments::task_id.eq(id.as_uuid()))
        .select(crate::schema::task_assignments::officer_id)
        .load(conn)
        .await?;
    match to {
        TaskStatus::InProgress => occupy_officers(conn, &officers, entry).await?,
        TaskStatus::Completed | TaskStatus::Cancelled => release_officers(conn, &officers, entry).await?,
        TaskStatus::Scheduled | TaskStatus::Paused => {}
    }
    Ok(())
}
