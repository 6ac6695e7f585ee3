//! Tasks: the work dispatched to officers, its lifecycle and its assignments.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::geo::GeoPoint;
use super::officer::OfficerId;
use super::state::{TaskAction, TaskStatus};
use crate::audit::{AuditEntry, Outcome, RequestContext};
use crate::error::StoreError;
use crate::users::policy::Actor;
use crate::users::{InvalidValue, Role, UserId};

crate::ids::id_type!(
    /// Identifies a task.
    TaskId
);

macro_rules! labelled_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $label:literal),+ $(,)? }, $message:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|value| value.as_str() == s).ok_or(InvalidValue($message))
            }
        }
    };
}

labelled_enum!(TaskKind {
    Patrol => "patrol",
    Investigation => "investigation",
    Surveillance => "surveillance",
    Intervention => "intervention",
    Administrative => "administrative",
    Training => "training",
    Emergency => "emergency",
}, "must be one of patrol, investigation, surveillance, intervention, administrative, training, emergency");

labelled_enum!(
    /// Ordered from least to most pressing.
    Priority {
        Low => "low",
        Medium => "medium",
        High => "high",
        Urgent => "urgent",
        Critical => "critical",
    },
    "must be one of low, medium, high, urgent, critical"
);

/// A task title: at most 200 characters as sent, at least 3 once trimmed, on one line.
/// (Maximum lengths count what was sent, so that a schema's `maxLength` states them exactly.)
pub fn parse_title(raw: &str) -> Result<String, InvalidValue> {
    let value = raw.trim();
    if value.chars().any(char::is_control) {
        return Err(InvalidValue("must not contain control characters"));
    }
    if raw.chars().count() > 200 {
        return Err(InvalidValue("must be at most 200 characters"));
    }
    if value.chars().count() < 3 {
        return Err(InvalidValue("must be at least 3 characters"));
    }
    Ok(value.to_owned())
}

/// A task code: 1..=32 letters, digits and `-`; unique regardless of case.
pub fn parse_code(raw: &str) -> Result<String, InvalidValue> {
    let value = raw.trim();
    if value.is_empty() || value.len() > 32 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(InvalidValue("must be 1 to 32 letters, digits or -"));
    }
    Ok(value.to_owned())
}

/// Free text with a length limit (as sent); empty means none. Line breaks and tabs are text;
/// other control characters (NUL above all, which PostgreSQL cannot store) are refused.
pub fn parse_text(raw: &str, max: usize) -> Result<Option<String>, InvalidValue> {
    let value = raw.trim();
    if raw.chars().count() > max {
        return Err(InvalidValue("is too long"));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(InvalidValue("must not contain control characters other than line breaks and tabs"));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// A task; its serialised form is the one of the API and of the event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: TaskId,
    pub code: String,
    pub title: String,
    pub description: Option<String>,
    pub kind: TaskKind,
    pub priority: Priority,
    pub status: TaskStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub scheduled_end: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub actual_start: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub actual_end: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paused_at: Option<OffsetDateTime>,
    pub total_paused_seconds: i64,
    pub location: Option<GeoPoint>,
    pub location_description: Option<String>,
    pub delegate_id: UserId,
    pub created_by: UserId,
    pub officer_ids: Vec<OfficerId>,
    /// The users behind the assigned officers: who follows the task on `tasks:mine`.
    #[serde(skip)]
    pub officer_user_ids: Vec<UserId>,
    pub notes: Option<String>,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The descriptive fields of a task.
#[derive(Debug, Clone)]
pub struct TaskFields {
    pub title: String,
    pub description: Option<String>,
    pub kind: TaskKind,
    pub priority: Priority,
    pub scheduled_start: OffsetDateTime,
    pub scheduled_end: Option<OffsetDateTime>,
    pub location: Option<GeoPoint>,
    pub location_description: Option<String>,
    pub delegate_id: UserId,
    pub notes: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: TaskId,
    /// Generated when absent.
    pub code: Option<String>,
    pub fields: TaskFields,
    pub created_by: UserId,
    pub officer_ids: Vec<OfficerId>,
}

/// A history row: exactly one per transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub from_status: TaskStatus,
    pub to_status: TaskStatus,
    pub action: TaskAction,
    pub actor_id: Option<UserId>,
    pub reason: Option<String>,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    pub statuses: Vec<TaskStatus>,
    pub priority: Option<Priority>,
    pub kind: Option<TaskKind>,
    pub officer_id: Option<OfficerId>,
    pub delegate_id: Option<UserId>,
    /// Only tasks assigned to this user's officer profile (what officers see).
    pub assigned_to_user: Option<UserId>,
    /// Created at or after.
    pub created_from: Option<OffsetDateTime>,
    /// Created before.
    pub created_to: Option<OffsetDateTime>,
    /// Part of the code or title, case-insensitive.
    pub q: Option<String>,
    /// Within `.1` metres of `.0`.
    pub near: Option<(GeoPoint, f64)>,
    pub sort: TaskSort,
    /// Only tasks after this one in the sort order (the page cursor).
    pub after: Option<TaskId>,
    pub limit: usize,
}

/// The orders of a task listing; ties are broken by id, so pages never overlap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskSort {
    /// Newest first (`-created_at`).
    #[default]
    Newest,
    /// Most pressing first, then newest.
    Priority,
    /// Earliest scheduled start first.
    ScheduledStart,
}

impl std::str::FromStr for TaskSort {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "-created_at" => Ok(Self::Newest),
            "priority" => Ok(Self::Priority),
            "scheduled_start" => Ok(Self::ScheduledStart),
            _ => Err(InvalidValue("must be one of -created_at, priority, scheduled_start")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("the task changed since it was read")]
    VersionMismatch,
    #[error("this transition is not allowed from {from:?}")]
    InvalidTransition { from: TaskStatus, allowed: Vec<TaskAction> },
    /// An assigned officer is already in progress on another task.
    #[error("an officer is busy on another task")]
    OfficerBusy,
    #[error("unknown officer {0}")]
    UnknownOfficer(OfficerId),
    /// Completed, cancelled, or (for deletion) still running.
    #[error("{0}")]
    Conflict(&'static str),
    #[error("a task with this code already exists")]
    DuplicateCode,
    /// `delegate_id` names no user.
    #[error("unknown delegate")]
    UnknownDelegate,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the operations map shows around a point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Map {
    pub tasks: Vec<MapTask>,
    pub officers: Vec<MapOfficer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapTask {
    pub id: TaskId,
    pub code: String,
    pub title: String,
    pub priority: Priority,
    pub status: TaskStatus,
    pub point: GeoPoint,
    pub distance_m: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapOfficer {
    pub id: OfficerId,
    pub badge_number: String,
    pub availability: super::officer::Availability,
    pub point: GeoPoint,
    pub distance_m: f64,
}

/// Tasks. Error contract: every write appends its audit row and its event in the same
/// transaction, and a failed write leaves nothing behind; a transition also writes exactly one
/// history row and moves the officers' availability.
#[async_trait]
pub trait TaskStore: Send + Sync {
    async fn insert(&self, task: NewTask, audit: AuditEntry) -> Result<Task, TaskError>;
    async fn find(&self, id: TaskId) -> Result<Option<Task>, StoreError>;
    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError>;
    /// Replaces the descriptive fields if the task is still at `expected_version` (when given).
    async fn update(
        &self,
        id: TaskId,
        expected_version: Option<i64>,
        fields: TaskFields,
        audit: AuditEntry,
    ) -> Result<Task, TaskError>;
    async fn delete(&self, id: TaskId, audit: AuditEntry) -> Result<(), TaskError>;
    async fn transition(
        &self,
        id: TaskId,
        action: TaskAction,
        reason: Option<String>,
        audit: AuditEntry,
    ) -> Result<Task, TaskError>;
    async fn history(&self, id: TaskId) -> Result<Vec<StatusChange>, StoreError>;
    async fn assign(&self, id: TaskId, officers: Vec<OfficerId>, audit: AuditEntry) -> Result<Task, TaskError>;
    async fn unassign(&self, id: TaskId, officer: OfficerId, audit: AuditEntry) -> Result<Task, TaskError>;
    /// Creates the emergency task and, in the same transaction, takes the nearest available
    /// officer (skipping any that a concurrent dispatch is taking), assigns them and marks them
    /// on task, and raises `alert.emergency`. Without anyone available the task is still
    /// created, unassigned, and the alert still goes out.
    async fn dispatch_emergency(
        &self,
        task: NewTask,
        audit: AuditEntry,
    ) -> Result<(Task, Option<(OfficerId, f64)>), TaskError>;
    /// Unfinished tasks and officers with a position within `radius_m` of `center`, nearest first.
    async fn map(&self, center: GeoPoint, radius_m: f64) -> Result<Map, StoreError>;
}

fn is_staff(actor: Actor) -> bool {
    matches!(actor.role, Role::Admin | Role::Supervisor | Role::Operator)
}

/// Create, edit and assign: operators and above.
pub fn may_manage_tasks(actor: Actor) -> bool {
    is_staff(actor)
}

/// Cancel and delete: admins and supervisors.
pub fn may_cancel_tasks(actor: Actor) -> bool {
    matches!(actor.role, Role::Admin | Role::Supervisor)
}

/// Staff read every task; officers only the tasks assigned to them.
pub fn may_read_task(actor: Actor, task: &Task) -> bool {
    is_staff(actor) || task.officer_user_ids.contains(&actor.id)
}

/// Start, pause, resume and complete: staff, or an assigned officer; cancel: admins and supervisors.
pub fn may_apply(actor: Actor, task: &Task, action: TaskAction) -> bool {
    match action {
        TaskAction::Cancel => may_cancel_tasks(actor),
        _ => is_staff(actor) || task.officer_user_ids.contains(&actor.id),
    }
}

pub fn audit(actor: Actor, action: &'static str, task: TaskId, context: RequestContext) -> AuditEntry {
    AuditEntry {
        actor: Some((actor.id, actor.role)),
        action,
        resource_type: "task",
        resource_id: Some(task.as_uuid()),
        outcome: Outcome::Success,
        context,
    }
}

/// The task, if it exists and the actor may see it.
pub async fn read_task(store: &dyn TaskStore, actor: Actor, id: TaskId) -> Result<Task, TaskError> {
    store.find(id).await?.filter(|task| may_read_task(actor, task)).ok_or(TaskError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_strictly() {
        assert!(parse_title("ab").is_err() && parse_title(&"x".repeat(201)).is_err());
        assert_eq!(parse_title("  Night patrol "), Ok("Night patrol".into()));
        assert!(parse_code("T-2026-1").is_ok() && parse_code("bad code").is_err() && parse_code("").is_err());
        assert_eq!(parse_text("", 10), Ok(None));
        assert!(parse_text("too long", 3).is_err());
        assert!(parse_title("Night\0patrol").is_err() && parse_text("a\0b", 10).is_err());
        assert_eq!(parse_text("line one\nline two\tend", 100), Ok(Some("line one\nline two\tend".into())));
        assert_eq!("critical".parse::<Priority>(), Ok(Priority::Critical));
        assert!(Priority::Low < Priority::Critical, "ordered by urgency");
        assert!("chores".parse::<TaskKind>().is_err());
    }
}
