//! The audit trail: who did what to which resource, when, from where, and how it ended.

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;
use crate::users::policy::{Actor, may_read_audit};
use crate::users::{Role, UserId};

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

/// Where a request came from; attached to every audit row.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// One row of the audit log, written in the same transaction as the change it records.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: Option<(UserId, Role)>,
    /// Dotted, e.g. `auth.login`, `user.update`.
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: Option<Uuid>,
    pub outcome: Outcome,
    pub context: RequestContext,
}

/// A stored audit row, as the audit log shows it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: OffsetDateTime,
    pub actor_id: Option<UserId>,
    pub actor_role: Option<Role>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<Uuid>,
    pub outcome: Outcome,
    pub request_id: Option<String>,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// Filters of the audit log; newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor_id: Option<UserId>,
    pub resource_type: Option<String>,
    pub resource_id: Option<Uuid>,
    pub action: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// Only rows older than this one (the page cursor).
    pub before: Option<Uuid>,
    pub limit: usize,
}

/// Reads the audit log. Error contract: outages are [`StoreError::Unavailable`].
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ListAuditError {
    #[error("only administrators read the audit log")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn list_audit_events(
    log: &dyn AuditLog,
    actor: Actor,
    query: &AuditQuery,
) -> Result<Vec<AuditEvent>, ListAuditError> {
    if !may_read_audit(actor) {
        return Err(ListAuditError::Forbidden);
    }
    Ok(log.list(query).await?)
}
