//! The event log (outbox): rows written in the transaction of the change they announce, numbered
//! just after their commit (global, gap-free, in commit order; see the event-numbering migration).

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::pg::data_types::PgInterval;
use diesel::sql_types::{Array, BigInt, Bool, Interval, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use gad_domain::audit::AuditEntry;
use gad_domain::error::StoreError;
use gad_domain::events::{CommitNotifications, Event, EventLog, ReplayStart};
use gad_domain::users::UserId;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::errors::query_error;
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;

/// One event to append.
pub(crate) struct NewEvent<'a> {
    pub(crate) event_type: &'static str,
    pub(crate) task_id: Option<Uuid>,
    pub(crate) officer_id: Option<Uuid>,
    /// Users who follow it on `tasks:mine`.
    pub(crate) audience: &'a [Uuid],
    /// Who caused it, and the request.
    pub(crate) entry: &'a AuditEntry,
    pub(crate) payload: serde_json::Value,
}

/// Takes the connection shared, so that it can be pipelined with other statements.
pub(crate) async fn append(mut conn: &AsyncPgConnection, event: NewEvent<'_>) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO event_log (id, event_type, task_id, officer_id, audience, actor_id, request_id, payload) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<Text, _>(event.event_type)
    .bind::<Nullable<SqlUuid>, _>(event.task_id)
    .bind::<Nullable<SqlUuid>, _>(event.officer_id)
    .bind::<Array<SqlUuid>, _>(event.audience)
    .bind::<Nullable<SqlUuid>, _>(event.entry.actor.map(|(id, _)| id.as_uuid()))
    .bind::<Nullable<Text>, _>(event.entry.context.request_id.as_deref())
    .bind::<Jsonb, _>(event.payload)
    .prepared()
    .execute(&mut conn)
    .await
    .map(drop)
}

/// Asks for the events of a committed change to be numbered, and hands the outcome back. The
/// writer does not wait: its response needs no number, and one numbering round (one WAL flush)
/// then covers every commit that arrived meanwhile.
pub(crate) fn after_commit<T, E>(numbering: &EventNumbering, outcome: Result<T, E>) -> Result<T, E> {
    if outcome.is_ok() {
        numbering.wake.notify_one();
    }
    outcome
}

/// Numbers every committed event that has none; how many it numbered.
pub(crate) async fn number(conn: &mut AsyncPgConnection) -> diesel::QueryResult<i32> {
    #[derive(diesel::QueryableByName)]
    struct Numbered {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        numbered: i32,
    }
    diesel::sql_query("SELECT gad_event_log_number() AS numbered")
        .prepared()
        .get_result::<Numbered>(conn)
        .await
        .map(|row| row.numbered)
}

/// The least time between two numbering rounds of a stream of commits. Each round is a
/// transaction with a WAL flush of its own and wakes the relay for a read; a few milliseconds of
/// commits gathered into one round spare the database most of them. A commit after a quiet spell
/// is still numbered at once; one in a stream waits at most this long.
const ROUND_GAP: Duration = Duration::from_millis(5);

/// Gives committed events their numbers (see the event-numbering migration): woken after every
/// commit of this instance, and on a timer for events whose writer stopped between its commit
/// and the wake-up, or that another instance committed while its own numbering was stuck.
#[derive(Clone)]
pub struct EventNumbering {
    pool: PgPool,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for EventNumbering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventNumbering").finish_non_exhaustive()
    }
}

impl EventNumbering {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, wake: Arc::new(Notify::new()) }
    }

    /// Numbers what is pending; returns how many events it numbered.
    pub async fn sweep(&self) -> Result<i32, StoreError> {
        let mut conn = connection(&self.pool).await?;
        number(&mut conn).await.map_err(query_error)
    }

    /// Numbers after every wake-up, and every `period` regardless; runs until dropped. A round
    /// that numbered something is followed by [`ROUND_GAP`] before the next.
    pub async fn run(self, period: Duration) {
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(period) => {}
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(_) => tokio::time::sleep(ROUND_GAP).await,
                Err(error) => tracing::warn!(%error, "numbering events failed; retrying on the next commit or tick"),
            }
        }
    }
}

/// Reads the event log for the real-time relay and replay, and listens for its commits.
#[derive(Clone)]
pub struct PgEventLog {
    pool: PgPool,
    /// For the dedicated `LISTEN` connection, which must not come from (or return to) the pool.
    url: String,
}

impl std::fmt::Debug for PgEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventLog").finish_non_exhaustive()
    }
}

impl PgEventLog {
    pub fn new(pool: PgPool, url: &str) -> Self {
        Self { pool, url: url.to_owned() }
    }
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    task_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    officer_id: Option<Uuid>,
    #[diesel(sql_type = Array<SqlUuid>)]
    audience: Vec<Uuid>,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Self {
        Self {
            seq: row.seq,
            id: row.id,
            event_type: row.event_type,
            task_id: row.task_id,
            officer_id: row.officer_id,
            audience: row.audience.into_iter().map(UserId::from_uuid).collect(),
            payload: row.payload,
            created_at: row.created_at,
        }
    }
}

#[derive(QueryableByName)]
struct Seq {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

#[derive(QueryableByName)]
struct Oldest {
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Bool)]
    expired: bool,
}

#[async_trait]
impl EventLog for PgEventLog {
    async fn head(&self) -> Result<i64, StoreError> {
        let mut conn = connection(&self.pool).await?;
        // The head row is only updated by writers, so its committed value is the last commit.
        let head: Seq = diesel::sql_query("SELECT last_seq AS seq FROM event_log_head")
            .prepared()
            .get_result(&mut conn)
            .await
            .map_err(query_error)?;
        Ok(head.seq)
    }

    async fn read(&self, after: i64, until: i64, limit: i64) -> Result<Vec<Event>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let rows: Vec<EventRow> = diesel::sql_query(
            "SELECT seq, id, event_type, task_id, officer_id, audience, payload::text AS payload, created_at \
             FROM event_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        )
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(until)
        .bind::<BigInt, _>(limit)
        .prepared()
        .load(&mut conn)
        .await
        .map_err(query_error)?;
        Ok(rows.into_iter().map(Event::from).collect())
    }

    async fn replay_start(&self, since: i64, retention: time::Duration) -> Result<ReplayStart, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let oldest: Oldest = diesel::sql_query(
            "SELECT min(seq) AS seq, coalesce(bool_or(created_at < now() - $2), false) AS expired \
             FROM (SELECT seq, created_at FROM event_log WHERE seq > $1 ORDER BY seq LIMIT 1) AS first",
        )
        .bind::<BigInt, _>(since)
        .bind::<Interval, _>(PgInterval::from_microseconds(
            retention.whole_microseconds().try_into().unwrap_or(i64::MAX),
        ))
        .prepared()
        .get_result(&mut conn)
        .await
        .map_err(query_error)?;
        Ok(match oldest.seq {
            // The next event the client lacks is still here and young enough.
            Some(seq) if seq == since + 1 && !oldest.expired => ReplayStart::Available,
            // Nothing after `since`: nothing was missed.
            None => ReplayStart::Available,
            // A gap: the events right after `since` were purged, or are too old.
            Some(_) => ReplayStart::TooOld,
        })
    }

    async fn listen(&self) -> Result<Box<dyn CommitNotifications>, StoreError> {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .map_err(|error| StoreError::Unavailable(format!("cannot open the event listener: {error}")))?;
        diesel::sql_query("LISTEN gad_event_log").execute(&mut conn).await.map_err(query_error)?;
        Ok(Box::new(PgCommitNotifications { conn }))
    }
}

struct PgCommitNotifications {
    conn: AsyncPgConnection,
}

#[async_trait]
impl CommitNotifications for PgCommitNotifications {
    async fn next(&mut self) -> Result<(), StoreError> {
        let mut notifications = std::pin::pin!(self.conn.notifications_stream());
        match notifications.next().await {
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => Err(query_error(error)),
            None => Err(StoreError::Unavailable("the event listener connection closed".into())),
        }
    }
}
