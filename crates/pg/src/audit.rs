//! Audit rows, written inside the transaction of the change they record.

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::{AuditEntry, AuditEvent, AuditLog, AuditQuery};
use gad_domain::error::StoreError;
use gad_domain::users::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::enums::{OutcomeColumn, RoleColumn};
use crate::errors::query_error;
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;
use crate::schema::audit_events;

/// Absent values are written as NULL rather than DEFAULT (the same thing for these columns), so
/// that the statement's text never varies and stays prepared.
#[derive(Insertable)]
#[diesel(table_name = audit_events, treat_none_as_null = true)]
struct AuditRow<'a> {
    id: Uuid,
    actor_id: Option<Uuid>,
    actor_role: Option<RoleColumn>,
    action: &'a str,
    resource_type: &'a str,
    resource_id: Option<Uuid>,
    outcome: OutcomeColumn,
    request_id: Option<&'a str>,
    ip: Option<ipnet::IpNet>,
    user_agent: Option<&'a str>,
    details: &'a serde_json::Value,
}

/// The user agent is kept to the column's 512 characters.
fn bounded(user_agent: &str) -> &str {
    user_agent.char_indices().nth(512).map_or(user_agent, |(end, _)| &user_agent[..end])
}

/// Takes the connection shared, so that it can be pipelined with other statements.
pub(crate) async fn append(conn: &AsyncPgConnection, entry: &AuditEntry) -> QueryResult<()> {
    append_with_details(conn, entry, &serde_json::Value::Object(serde_json::Map::new())).await
}

/// An audit row with details (which must never identify a person).
pub(crate) async fn append_with_details(
    mut conn: &AsyncPgConnection,
    entry: &AuditEntry,
    details: &serde_json::Value,
) -> QueryResult<()> {
    let row = AuditRow {
        id: Uuid::now_v7(),
        actor_id: entry.actor.map(|(id, _)| id.as_uuid()),
        actor_role: entry.actor.map(|(_, role)| RoleColumn(role)),
        action: entry.action,
        resource_type: entry.resource_type,
        resource_id: entry.resource_id,
        outcome: OutcomeColumn(entry.outcome),
        request_id: entry.context.request_id.as_deref(),
        ip: entry.context.ip.map(ipnet::IpNet::from),
        user_agent: entry.context.user_agent.as_deref().map(bounded),
        details,
    };
    // Diesel does not keep an insert prepared by itself; this one's text is fixed (`AuditRow`).
    diesel::insert_into(audit_events::table).values(&row).prepared().execute(&mut conn).await.map(drop)
}

/// The audit log, read back for administrators.
#[derive(Clone)]
pub struct PgAuditLog {
    pool: PgPool,
}

impl PgAuditLog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl std::fmt::Debug for PgAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAuditLog").finish_non_exhaustive()
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(Pg))]
struct AuditEventRow {
    id: Uuid,
    at: OffsetDateTime,
    actor_id: Option<Uuid>,
    actor_role: Option<RoleColumn>,
    action: String,
    resource_type: String,
    resource_id: Option<Uuid>,
    outcome: OutcomeColumn,
    request_id: Option<String>,
    ip: Option<ipnet::IpNet>,
    user_agent: Option<String>,
}

impl From<AuditEventRow> for AuditEvent {
    fn from(row: AuditEventRow) -> Self {
        Self {
            id: row.id,
            at: row.at,
            actor_id: row.actor_id.map(UserId::from_uuid),
            actor_role: row.actor_role.map(|role| role.0),
            action: row.action,
            resource_type: row.resource_type,
            resource_id: row.resource_id,
            outcome: row.outcome.0,
            request_id: row.request_id,
            ip: row.ip.map(|net| net.addr()),
            user_agent: row.user_agent,
        }
    }
}

#[async_trait]
impl AuditLog for PgAuditLog {
    async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let mut statement = audit_events::table.into_boxed::<Pg>();
        if let Some(actor) = query.actor_id {
            statement = statement.filter(audit_events::actor_id.eq(actor.as_uuid()));
        }
        if let Some(resource_type) = &query.resource_type {
            statement = statement.filter(audit_events::resource_type.eq(resource_type.clone()));
        }
        if let Some(resource_id) = query.resource_id {
            statement = statement.filter(audit_events::resource_id.eq(resource_id));
        }
        if let Some(action) = &query.action {
            statement = statement.filter(audit_events::action.eq(action.clone()));
        }
        if let Some(from) = query.from {
            statement = statement.filter(audit_events::at.ge(from));
        }
        if let Some(to) = query.to {
            statement = statement.filter(audit_events::at.lt(to));
        }
        if let Some(before) = query.before {
            statement = statement.filter(audit_events::id.lt(before));
        }
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let mut conn = connection(&self.pool).await?;
        statement
            .select(AuditEventRow::as_select())
            .order(audit_events::id.desc())
            .limit(limit)
            .load::<AuditEventRow>(&mut conn)
            .await
            .map(|rows| rows.into_iter().map(AuditEvent::from).collect())
            .map_err(query_error)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use gad_domain::audit::{Outcome, RequestContext};
    use gad_test_support::TestDatabase;

    use super::*;
    use crate::fixtures::{assert_prepared_once, one_session};

    /// Every write appends an audit row: its statement must be parsed once per connection, not
    /// prepared and closed again on every write (a round trip more each time).
    #[tokio::test]
    async fn the_audit_insert_stays_prepared_on_its_connection() {
        let database = TestDatabase::migrated().await;
        let pool = one_session(&database);
        let entry = AuditEntry {
            actor: None,
            action: "task.create",
            resource_type: "task",
            resource_id: Some(Uuid::now_v7()),
            outcome: Outcome::Success,
            context: RequestContext { request_id: Some("prepared-test".into()), ip: None, user_agent: None },
        };
        let conn = connection(&pool).await.unwrap();
        for _ in 0..3 {
            append(&conn, &entry).await.unwrap();
        }
        drop(conn);
        assert_prepared_once(&pool, &["INSERT INTO \"audit_events\""]).await;
    }
}
