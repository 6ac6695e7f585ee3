//! What dispatch writes leave behind: the audit actions and the event types of tasks and
//! officers, in one place, and the payloads the events carry.

use serde::Serialize;

use super::officer::OfficerId;
use super::task::{Task, TaskId};
use crate::audit::{AuditEntry, Outcome, RequestContext};
use crate::users::policy::Actor;

macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }
    };
}

names!(
    /// The audit action of each dispatch write.
    AuditAction {
        TaskCreate => "task.create",
        TaskUpdate => "task.update",
        TaskTransition => "task.transition",
        TaskAssign => "task.assign",
        TaskUnassign => "task.unassign",
        TaskDelete => "task.delete",
        TaskEmergency => "task.emergency",
        OfficerCreate => "officer.create",
        OfficerUpdate => "officer.update",
        OfficerDelete => "officer.delete",
        OfficerLocation => "officer.location",
        OfficerAvailability => "officer.availability",
    }
);

names!(
    /// The type of each event a dispatch write appends to the event log (docs/WEBSOCKET.md).
    EventType {
        TaskCreated => "task.created",
        TaskUpdated => "task.updated",
        TaskStatusChanged => "task.status_changed",
        TaskAssigned => "task.assigned",
        TaskUnassigned => "task.unassigned",
        TaskDeleted => "task.deleted",
        EmergencyAlert => "alert.emergency",
        OfficerLocationUpdated => "officer.location_updated",
        OfficerAvailabilityChanged => "officer.availability_changed",
    }
);

/// The audit row of a task write by `actor`.
pub fn task_audit(actor: Actor, action: AuditAction, task: TaskId, context: RequestContext) -> AuditEntry {
    AuditEntry {
        actor: Some((actor.id, actor.role)),
        action: action.as_str(),
        resource_type: "task",
        resource_id: Some(task.as_uuid()),
        outcome: Outcome::Success,
        context,
    }
}

/// The audit row and the events of one task write, decided by its use case. Each task event
/// carries the task as it stands once the write is done; `alert.emergency` carries the alert.
#[derive(Debug, Clone)]
pub struct Record {
    pub audit: AuditEntry,
    pub events: Vec<EventType>,
}

/// The officer sent to an emergency, and how far away they were.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dispatched {
    pub officer: OfficerId,
    pub distance_m: f64,
}

/// The payload of an event of a task write.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EventPayload<'a> {
    Task(&'a Task),
    Alert { task: &'a Task, officer_id: Option<OfficerId>, distance_m: Option<f64> },
}

impl<'a> EventPayload<'a> {
    /// What `event` carries after a write that left `task` (and sent `dispatched`).
    pub fn of(event: EventType, task: &'a Task, dispatched: Option<Dispatched>) -> Self {
        match event {
            EventType::EmergencyAlert => Self::Alert {
                task,
                officer_id: dispatched.map(|sent| sent.officer),
                distance_m: dispatched.map(|sent| sent.distance_m),
            },
            _ => Self::Task(task),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dotted() {
        let audits: Vec<_> = AuditAction::ALL.iter().map(|action| action.as_str()).collect();
        let events: Vec<_> = EventType::ALL.iter().map(|event| event.as_str()).collect();
        for names in [&audits, &events] {
            let unique: std::collections::HashSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "{names:?}");
            assert!(names.iter().all(|name| name.split_once('.').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())));
        }
    }
}
