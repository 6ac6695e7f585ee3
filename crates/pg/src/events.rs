//! The event log (outbox): rows written in the transaction of the change they announce, numbered
//! just after their commit (global, gap-free, in commit order; see the event-numbering migration).

use diesel::sql_types::{Array, Jsonb, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::AuditEntry;
use std::sync::Arc;
use std::time::Duration;

use gad_domain::error::StoreError;
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

/// Asks for the events of a committed change to be numbered, and hands the outcome back. The
/// writer does not wait: its response needs no number, and one numbering round (one WAL flush)
/// then covers every commit that arrived meanwhile.
pub(crate) fn after_commit<T, E>(numbering: &EventNumbering, outcome: Result<T, E>) -> Result<T, E> {
    if outcome.is_ok() {
        numbering.wake.notify_one();
    }
    outcome
}

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
        #[derive(diesel::QueryableByName)]
        struct Numbered {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            numbered: i32,
        }
        let mut conn = connection(&self.pool).await?;
        diesel::sql_query("SELECT gad_event_log_number() AS numbered")
            .prepared()
            .get_result::<Numbered>(&mut conn)
            .await
            .map(|row| row.numbered)
            .map_err(query_error)
    }

    /// Numbers after every wake-up, and every `period` regardless; runs until dropped.
    pub async fn run(self, period: Duration) {
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(period) => {}
            }
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "numbering events failed; retrying on the next commit or tick");
            }
        }
    }
}
