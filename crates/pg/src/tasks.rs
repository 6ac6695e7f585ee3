//! Tasks in PostgreSQL. The adapter persists what the use cases decide: every write runs in one
//! transaction with its audit row and events (`PgTaskStore::write`), and the event numbering is
//! woken once it committed. The database itself refuses a second in-progress task for an
//! officer (see the dispatch migration); violated constraints are recognised by name.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::TryFutureExt;
use futures_util::future::{BoxFuture, try_join, try_join_all};
use gad_domain::audit::AuditEntry;
use gad_domain::error::StoreError;
use gad_domain::tasks::geo::GeoPoint;
use gad_domain::tasks::officer::OfficerId;
use gad_domain::tasks::record::{Dispatched, EventPayload, EventType, Record};
use gad_domain::tasks::state::OfficerMove;
use gad_domain::tasks::task::{
    Decide, Map, MapOfficer, MapTask, NewTask, StatusChange, Task, TaskError, TaskFields, TaskId, TaskQuery, TaskSort,
    TaskStore, TaskWrite, TransitionWrite,
};
use gad_domain::users::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit;
use crate::errors::{corrupt_row, query_error, violated_foreign_key, violated_unique_constraint};
use crate::events::{self, EventNumbering, NewEvent};
use crate::officers;
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;
use crate::transaction;

#[derive(Clone)]
pub struct PgTaskStore {
    pool: PgPool,
    numbering: EventNumbering,
}

impl PgTaskStore {
    pub fn new(pool: PgPool, numbering: EventNumbering) -> Self {
        Self { pool, numbering }
    }

    /// The one shape of every task write: `work` in one transaction (rolled back whole when it
    /// fails), then the event numbering woken once the events it appended are committed.
    async fn write<T: Send>(
        &self,
        work: impl for<'c> FnOnce(&'c AsyncPgConnection) -> BoxFuture<'c, Result<T, Failure>> + Send,
    ) -> Result<T, TaskError> {
        let conn = connection(&self.pool).await?;
        let outcome = transaction::transaction(conn, work).await.map_err(task_error);
        events::after_commit(&self.numbering, outcome)
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

/// The domain's refusal for each constraint a task write can violate, by constraint name.
fn task_error(failure: Failure) -> TaskError {
    match failure {
        Failure::Task(error) => error,
        Failure::Query(error) => match violated_unique_constraint(&error).or_else(|| violated_foreign_key(&error)) {
            Some("task_assignments_one_in_progress_per_officer") => TaskError::OfficerBusy,
            Some("tasks_code_key") => TaskError::DuplicateCode,
            Some("tasks_delegate_id_fkey") => TaskError::UnknownDelegate,
            _ => TaskError::Store(query_error(error)),
        },
    }
}

/// The task as it now stands; `locked` also locks its row for the rest of the transaction.
async fn load(mut conn: &AsyncPgConnection, id: TaskId, locked: bool) -> QueryResult<Option<Task>> {
    let lock = if locked { " FOR UPDATE OF t" } else { "" };
    let row: Option<TaskRow> =
        diesel::sql_query(format!("SELECT {COLUMNS} FROM tasks t WHERE t.id = $1 AND t.deleted_at IS NULL{lock}"))
            .bind::<SqlUuid, _>(id.as_uuid())
            .prepared()
            .get_result(&mut conn)
            .await
            .optional()?;
    row.map(TaskRow::into_task).transpose().map_err(|error| corrupt_row(&error))
}

/// The record of a write that left `task`: its audit row, then each event, reaching the task's
/// officers and the `former` ones (an officer just unassigned learns it).
async fn append_record(
    conn: &AsyncPgConnection,
    task: &Task,
    record: &Record,
    former: Option<Uuid>,
    dispatched: Option<Dispatched>,
) -> Result<(), Failure> {
    // The audit row and the events depend on nothing of each other: sent together, they cost one
    // round trip instead of one each (the server still runs them in order).
    try_join(
        audit::append(conn, &record.audit).map_err(Failure::from),
        append_events(conn, task, record, former, dispatched),
    )
    .await?;
    Ok(())
}

/// The events of a write that left `task`, sent together.
async fn append_events(
    conn: &AsyncPgConnection,
    task: &Task,
    record: &Record,
    former: Option<Uuid>,
    dispatched: Option<Dispatched>,
) -> Result<(), Failure> {
    let audience: Vec<Uuid> = task.officer_user_ids.iter().map(|user| user.as_uuid()).chain(former).collect();
    let mut rows = Vec::with_capacity(record.events.len());
    for event in &record.events {
        let payload = serde_json::to_value(EventPayload::of(*event, task, dispatched))
            .map_err(|error| diesel::result::Error::SerializationError(Box::new(error)))?;
        let officer_id = match event {
            EventType::EmergencyAlert => dispatched.map(|sent| sent.officer.as_uuid()),
            _ => None,
        };
        rows.push(NewEvent {
            event_type: event.as_str(),
            task_id: Some(task.id.as_uuid()),
            officer_id,
            audience: &audience,
            entry: &record.audit,
            payload,
        });
    }
    try_join_all(rows.into_iter().map(|row| events::append(conn, row))).await?;
    Ok(())
}

/// Assigns officers that exist, in two statements whatever their number; an unknown one fails
/// the whole assignment.
async fn add_officers(
    mut conn: &AsyncPgConnection,
    task: TaskId,
    officers: &[OfficerId],
    by: Option<UserId>,
) -> Result<(), Failure> {
    if officers.is_empty() {
        return Ok(());
    }
    let wanted: Vec<Uuid> = officers.iter().map(|officer| officer.as_uuid()).collect();
    let live: Vec<Uuid> = crate::schema::officers::table
        .filter(crate::schema::officers::id.eq_any(&wanted))
        .filter(crate::schema::officers::deleted_at.is_null())
        .select(crate::schema::officers::id)
        .load(&mut conn)
        .await?;
    if let Some(unknown) = officers.iter().find(|officer| !live.contains(&officer.as_uuid())) {
        return Err(TaskError::UnknownOfficer(*unknown).into());
    }
    diesel::sql_query(
        "INSERT INTO task_assignments (task_id, officer_id, assigned_by) \
         SELECT $1, officer, $3 FROM unnest($2::uuid[]) AS officer ON CONFLICT DO NOTHING",
    )
    .bind::<SqlUuid, _>(task.as_uuid())
    .bind::<Array<SqlUuid>, _>(&wanted)
    .bind::<Nullable<SqlUuid>, _>(by.map(UserId::as_uuid))
    .prepared()
    .execute(&mut conn)
    .await?;
    Ok(())
}

/// Moves officers as a write decided; each one that changed is announced. Released officers
/// become available again unless another running task still holds them.
async fn move_officers(
    conn: &AsyncPgConnection,
    officers: &[OfficerId],
    to: OfficerMove,
    entry: &AuditEntry,
) -> QueryResult<()> {
    let update = match to {
        OfficerMove::Stay => return Ok(()),
        OfficerMove::Occupy => {
            "UPDATE officers o SET availability = 'on_task' WHERE o.id = ANY($1) AND o.availability <> 'on_task'"
        }
        OfficerMove::Release => {
            "UPDATE officers o SET availability = 'available' WHERE o.id = ANY($1) AND o.availability = 'on_task' \
               AND NOT EXISTS (SELECT 1 FROM task_assignments a JOIN tasks t ON t.id = a.task_id \
                               WHERE a.officer_id = o.id AND t.deleted_at IS NULL AND t.status IN ('in_progress', 'paused'))"
        }
    };
    let officers: Vec<Uuid> = officers.iter().map(|officer| officer.as_uuid()).collect();
    officers::move_availability(conn, update, &officers, entry).await
}

/// Writes a transition of a task whose officers are `officers`: the status and its times,
/// exactly one history row, and the officers' move.
async fn write_transition(
    conn: &AsyncPgConnection,
    id: TaskId,
    transition: &TransitionWrite,
    officers: &[OfficerId],
    entry: &AuditEntry,
) -> Result<(), Failure> {
    let effect = &transition.effect;
    let (mut for_status, mut for_history) = (conn, conn);
    let status = diesel::sql_query(
        "UPDATE tasks SET status = $2::task_status, actual_start = COALESCE($3, actual_start), \
             actual_end = COALESCE($4, actual_end), paused_at = $5, total_paused_seconds = total_paused_seconds + $6 \
         WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id.as_uuid())
    .bind::<Text, _>(effect.to.as_str())
    .bind::<Nullable<Timestamptz>, _>(effect.actual_start)
    .bind::<Nullable<Timestamptz>, _>(effect.actual_end)
    .bind::<Nullable<Timestamptz>, _>(effect.paused_at)
    .bind::<BigInt, _>(effect.paused_seconds)
    .prepared()
    .execute(&mut for_status);
    let history = diesel::sql_query(
        "INSERT INTO task_status_history (task_id, from_status, to_status, action, actor_id, reason, at) \
         VALUES ($1, $2::task_status, $3::task_status, $4::task_action, $5, $6, $7)",
    )
    .bind::<SqlUuid, _>(id.as_uuid())
    .bind::<Text, _>(effect.from.as_str())
    .bind::<Text, _>(effect.to.as_str())
    .bind::<Text, _>(transition.action.as_str())
    .bind::<Nullable<SqlUuid>, _>(Some(transition.actor.as_uuid()))
    .bind::<Nullable<Text>, _>(transition.reason.as_ref().map(|reason| reason.as_str()))
    .bind::<Timestamptz, _>(transition.at)
    .prepared()
    .execute(&mut for_history);
    // Independent of each other, the status and its history row leave together; the officers'
    // move reads the new status, so it follows.
    try_join(status, history).await?;
    move_officers(conn, officers, effect.officers, entry).await?;
    Ok(())
}

/// Removes an assignment and frees the officer unless other running work holds them; the user
/// behind the officer, who still hears of the change.
async fn remove_officer(
    mut conn: &AsyncPgConnection,
    id: TaskId,
    officer: OfficerId,
    entry: &AuditEntry,
) -> Result<Uuid, Failure> {
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
    .get_result(&mut conn)
    .await
    .optional()?;
    let removed = removed.ok_or(TaskError::NotFound)?;
    move_officers(conn, &[officer], OfficerMove::Release, entry).await?;
    Ok(removed.user_id)
}

/// Writes what a use case decided on the locked `task`; returns the task as written (as last
/// seen, for a deletion).
async fn write_change(mut conn: &AsyncPgConnection, task: Task, decide: Decide) -> Result<Task, Failure> {
    let change = decide(&task)?;
    let (id, entry) = (task.id, &change.record.audit);
    let mut former = None;
    match &change.write {
        TaskWrite::Fields(fields) => {
            let statement = diesel::sql_query(format!(
                "UPDATE tasks SET (title, description, kind, priority, scheduled_start, scheduled_end, location, \
                                   location_description, delegate_id, notes) = ({FIELD_VALUES}) WHERE id = $12"
            ));
            bind_fields(statement, fields).bind::<SqlUuid, _>(id.as_uuid()).prepared().execute(&mut conn).await?;
        }
        TaskWrite::Transition(transition) => write_transition(conn, id, transition, &task.officer_ids, entry).await?,
        TaskWrite::Assign { officers, occupy } => {
            add_officers(conn, id, officers, entry.actor.map(|(actor, _)| actor)).await?;
            if *occupy {
                move_officers(conn, officers, OfficerMove::Occupy, entry).await?;
            }
        }
        TaskWrite::Unassign(officer) => former = Some(remove_officer(conn, id, *officer, entry).await?),
        TaskWrite::Delete { cancel } => {
            if let Some(cancel) = cancel {
                write_transition(conn, id, cancel, &task.officer_ids, entry).await?;
            }
        }
    }
    let written = load(conn, id, false).await?.ok_or(TaskError::NotFound)?;
    append_record(conn, &written, &change.record, former, None).await?;
    if let TaskWrite::Delete { .. } = change.write {
        diesel::sql_query("UPDATE tasks SET deleted_at = now() WHERE id = $1")
            .bind::<SqlUuid, _>(id.as_uuid())
            .prepared()
            .execute(&mut conn)
            .await?;
    }
    Ok(written)
}

/// Inserts a new task (with a generated code unless it has one) and its first officers; returns
/// it as stored. Without officers the insert itself returns the row: no read-back.
async fn insert_task(mut conn: &AsyncPgConnection, task: &NewTask) -> Result<Task, Failure> {
    let statement = diesel::sql_query(format!(
        "INSERT INTO tasks AS t (title, description, kind, priority, scheduled_start, scheduled_end, location, \
                                 location_description, delegate_id, notes, id, code, created_by) \
         VALUES ({FIELD_VALUES}, $12, COALESCE($13, 'T-' || lpad(nextval('task_code_seq')::text, 6, '0')), $14) \
         RETURNING {COLUMNS}"
    ));
    let inserted: TaskRow = bind_fields(statement, &task.fields)
        .bind::<SqlUuid, _>(task.id.as_uuid())
        .bind::<Nullable<Text>, _>(task.code.as_ref().map(|code| code.as_str()))
        .bind::<SqlUuid, _>(task.created_by.as_uuid())
        .prepared()
        .get_result(&mut conn)
        .await?;
    if task.officer_ids.is_empty() {
        return Ok(inserted.into_task().map_err(|error| corrupt_row(&error))?);
    }
    add_officers(conn, task.id, &task.officer_ids, Some(task.created_by)).await?;
    Ok(load(conn, task.id, false).await?.ok_or(TaskError::NotFound)?)
}

/// The nearest available officer to `point`, locked; `SKIP LOCKED`: two emergencies at once
/// never take the same officer.
async fn nearest_available(mut conn: &AsyncPgConnection, point: GeoPoint) -> QueryResult<Option<Dispatched>> {
    #[derive(QueryableByName)]
    struct Nearest {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = Double)]
        distance_m: f64,
    }
    let nearest: Option<Nearest> = diesel::sql_query(
        "SELECT o.id, ST_Distance(o.location, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography) AS distance_m \
         FROM officers o WHERE o.deleted_at IS NULL AND o.location IS NOT NULL AND o.availability = 'available' \
         ORDER BY o.location <-> ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography \
         LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind::<Double, _>(point.lat())
    .bind::<Double, _>(point.lng())
    .prepared()
    .get_result(&mut conn)
    .await
    .optional()?;
    Ok(nearest.map(|nearest| Dispatched { officer: OfficerId::from_uuid(nearest.id), distance_m: nearest.distance_m }))
}

fn bind_fields<'a>(statement: diesel::query_builder::SqlQuery, fields: &'a TaskFields) -> BoxedQuery<'a> {
    statement
        .into_boxed()
        .bind::<Text, _>(fields.title.as_str())
        .bind::<Nullable<Text>, _>(fields.description.as_ref().map(|text| text.as_str()))
        .bind::<Text, _>(fields.kind.as_str())
        .bind::<Text, _>(fields.priority.as_str())
        .bind::<Timestamptz, _>(fields.schedule.start())
        .bind::<Nullable<Timestamptz>, _>(fields.schedule.end())
        .bind::<Nullable<Double>, _>(fields.location.map(GeoPoint::lat))
        .bind::<Nullable<Double>, _>(fields.location.map(GeoPoint::lng))
        .bind::<Nullable<Text>, _>(fields.location_description.as_ref().map(|text| text.as_str()))
        .bind::<SqlUuid, _>(fields.delegate_id.as_uuid())
        .bind::<Nullable<Text>, _>(fields.notes.as_ref().map(|text| text.as_str()))
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
    async fn insert(&self, task: NewTask, record: Record) -> Result<Task, TaskError> {
        self.write(move |conn| {
            Box::pin(async move {
                // The audit row needs nothing of the insert: it travels with it.
                let (created, ()) =
                    try_join(insert_task(conn, &task), audit::append(conn, &record.audit).map_err(Failure::from))
                        .await?;
                append_events(conn, &created, &record, None, None).await?;
                Ok(created)
            })
        })
        .await
    }

    async fn find(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        let conn = connection(&self.pool).await?;
        load(&conn, id, false).await.map_err(query_error)
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

    async fn change(&self, id: TaskId, decide: Decide) -> Result<Task, TaskError> {
        self.write(move |conn| {
            Box::pin(async move {
                let task = load(conn, id, true).await?.ok_or(TaskError::NotFound)?;
                write_change(conn, task, decide).await
            })
        })
        .await
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

    async fn dispatch_emergency(&self, task: NewTask, record: Record) -> Result<(Task, Option<Dispatched>), TaskError> {
        let point = task.fields.location.ok_or(TaskError::Invalid { field: "location", message: "is required" })?;
        self.write(move |conn| {
            Box::pin(async move {
                let dispatched = nearest_available(conn, point).await?;
                let mut created = insert_task(conn, &task).await?;
                if let Some(sent) = dispatched {
                    add_officers(conn, task.id, &[sent.officer], Some(task.created_by)).await?;
                    move_officers(conn, &[sent.officer], OfficerMove::Occupy, &record.audit).await?;
                    created = load(conn, task.id, false).await?.ok_or(TaskError::NotFound)?;
                }
                append_record(conn, &created, &record, None, dispatched).await?;
                Ok((created, dispatched))
            })
        })
        .await
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
}
