//! Audit rows, written inside the transaction of the change they record.

use diesel::Insertable;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::AuditEntry;
use uuid::Uuid;

use crate::enums::{OutcomeColumn, RoleColumn};
use crate::schema::audit_events;

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
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
}

/// The user agent is kept to the column's 512 characters.
fn bounded(user_agent: &str) -> &str {
    user_agent.char_indices().nth(512).map_or(user_agent, |(end, _)| &user_agent[..end])
}

pub(crate) async fn append(conn: &mut AsyncPgConnection, entry: &AuditEntry) -> diesel::QueryResult<()> {
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
    };
    diesel::insert_into(audit_events::table).values(&row).execute(conn).await.map(drop)
}
