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
