//! The event log (outbox): rows written in the transaction of the change they announce. The
//! insert trigger numbers them (global, gap-free, in commit order; see the migration).

use diesel::sql_types::{Array, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::AuditEntry;
use uuid::Uuid;

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

pub(crate) async fn append(conn: &mut AsyncPgConnection, event: NewEvent<'_>) -> diesel::QueryResult<()> {
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
    .execute(conn)
    .await
    .map(drop)
}

/// Numbers the committed events that have no number yet (see the event-numbering migration):
/// called by writers right after their commit. A failure is only logged, never the writer's:
/// its change is committed, and the next numbering (any writer's, or the periodic sweep) takes
/// its events along.
pub(crate) async fn after_commit<T, E>(conn: &mut AsyncPgConnection, outcome: Result<T, E>) -> Result<T, E> {
    if outcome.is_ok()
        && let Err(error) = number(conn).await
    {
        tracing::warn!(%error, "events committed but not yet numbered; the sweep will number them");
    }
    outcome
}

async fn number(conn: &mut AsyncPgConnection) -> diesel::QueryResult<i32> {
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

/// Numbers events whose writer stopped between its commit and its numbering; run periodically
/// by the app.
#[derive(Clone)]
pub struct EventNumbering {
    pool: crate::PgPool,
}

impl std::fmt::Debug for EventNumbering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventNumbering").finish_non_exhaustive()
    }
}

impl EventNumbering {
    pub fn new(pool: crate::PgPool) -> Self {
        Self { pool }
    }

    /// How many events it numbered.
    pub async fn sweep(&self) -> Result<i32, gad_domain::error::StoreError> {
        let mut conn = crate::pool::connection(&self.pool).await?;
        number(&mut conn).await.map_err(crate::errors::query_error)
    }
}
