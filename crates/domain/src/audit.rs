//! The audit trail: who did what to which resource, when, from where, and how it ended.

use serde::Serialize;
use uuid::Uuid;

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
