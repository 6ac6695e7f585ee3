//! Tasks: the work dispatched to officers, its lifecycle and its assignments.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::geo::GeoPoint;
use super::input::{Code, LocationDescription, LongText, Reason, Schedule, TaskPatch, Title};
use super::officer::OfficerId;
use super::record::{Dispatched, Record};
use super::state::{Effect, TaskAction, TaskStatus};
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

/// The descriptive fields of a task, valid by construction.
#[derive(Debug, Clone)]
pub struct TaskFields {
    pub title: Title,
    pub description: Option<LongText>,
    pub kind: TaskKind,
    pub priority: Priority,
    pub schedule: Schedule,
    pub location: Option<GeoPoint>,
    pub location_description: Option<LocationDescription>,
    pub delegate_id: UserId,
    pub notes: Option<LongText>,
}

impl TaskFields {
    /// The fields of a stored task (valid when they were written).
    pub fn of(task: &Task) -> Self {
        Self {
            title: Title::stored(task.title.clone()),
            description: LongText::stored(task.description.clone()),
            kind: task.kind,
            priority: task.priority,
            schedule: Schedule::stored(task.scheduled_start, task.scheduled_end),
            location: task.location,
            location_description: LocationDescription::stored(task.location_description.clone()),
            delegate_id: task.delegate_id,
            notes: LongText::stored(task.notes.clone()),
        }
    }

    /// These fields with `patch` applied; the schedule must still end after it starts.
    pub fn patched(self, patch: TaskPatch) -> Result<Self, TaskError> {
        let start = patch.scheduled_start.unwrap_or(self.schedule.start());
        let end = patch.scheduled_end.unwrap_or(self.schedule.end());
        let schedule = Schedule::new(start, end)
            .map_err(|InvalidValue(message)| TaskError::Invalid { field: "scheduled_end", message })?;
        Ok(Self {
            title: patch.title.unwrap_or(self.title),
            description: patch.description.unwrap_or(self.description),
            kind: patch.kind.unwrap_or(self.kind),
            priority: patch.priority.unwrap_or(self.priority),
            schedule,
            location: patch.location.unwrap_or(self.location),
            location_description: patch.location_description.unwrap_or(self.location_description),
            delegate_id: patch.delegate_id.unwrap_or(self.delegate_id),
            notes: patch.notes.unwrap_or(self.notes),
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: TaskId,
    /// Generated when absent.
    pub code: Option<Code>,
    pub fields: TaskFields,
    pub created_by: UserId,
    pub officer_ids: Vec<OfficerId>,
}

/// A transition as the store writes it: the effect, and its history row.
#[derive(Debug, Clone)]
pub struct TransitionWrite {
    pub action: TaskAction,
    pub effect: Effect,
    pub reason: Option<Reason>,
    pub actor: UserId,
    pub at: OffsetDateTime,
}

/// What one write does to a task that the store has locked.
#[derive(Debug, Clone)]
pub enum TaskWrite {
    /// Replace the descriptive fields.
    Fields(TaskFields),
    Transition(TransitionWrite),
    /// Add officers; `occupy` puts them on task (the task is running).
    Assign {
        officers: Vec<OfficerId>,
        occupy: bool,
    },
    /// Remove the officer and free them unless other running work holds them.
    Unassign(OfficerId),
    /// Soft-delete the task, cancelling it first when it is running.
    Delete {
        cancel: Option<TransitionWrite>,
    },
}

/// A write decided by a use case on the locked task, with its audit row and events.
#[derive(Debug, Clone)]
pub struct TaskChange {
    pub write: TaskWrite,
    pub record: Record,
}

/// Decides the change from the task as the transaction locked it; refusing rolls back.
pub type Decide = Box<dyn FnOnce(&Task) -> Result<TaskChange, TaskError> + Send>;

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
    /// A field that is valid alone but not with the task's others.
    #[error("{field} {message}")]
    Invalid { field: &'static str, message: &'static str },
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

/// Tasks. Error contract: every write appends its audit row and its events in the same
/// transaction and announces them after the commit; a failed write leaves nothing behind. The
/// store persists what the use cases decide and decides nothing itself; constraint violations
/// become `OfficerBusy`, `DuplicateCode`, `UnknownDelegate` and `UnknownOfficer`.
#[async_trait]
pub trait TaskStore: Send + Sync {
    async fn insert(&self, task: NewTask, record: Record) -> Result<Task, TaskError>;
    async fn find(&self, id: TaskId) -> Result<Option<Task>, StoreError>;
    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError>;
    /// Locks the task for one transaction, asks `decide` what to write given the locked row,
    /// writes it (a transition with exactly one history row and the officers' moves) and its
    /// record. Returns the task as written (as last seen, for a deletion); `NotFound` when there
    /// is no such task.
    async fn change(&self, id: TaskId, decide: Decide) -> Result<Task, TaskError>;
    async fn history(&self, id: TaskId) -> Result<Vec<StatusChange>, StoreError>;
    /// Creates the emergency task and, in the same transaction, takes the nearest available
    /// officer (skipping any that a concurrent dispatch is taking), assigns them and marks them
    /// on task. Without anyone available the task is still created, unassigned; the record's
    /// events go out either way.
    async fn dispatch_emergency(&self, task: NewTask, record: Record) -> Result<(Task, Option<Dispatched>), TaskError>;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_priorities_parse_strictly() {
        assert_eq!("critical".parse::<Priority>(), Ok(Priority::Critical));
        assert!(Priority::Low < Priority::Critical, "ordered by urgency");
        assert!("chores".parse::<TaskKind>().is_err());
    }
}
