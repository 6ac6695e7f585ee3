//! The task use cases, one per operation. Each owns its authorization, the audit action and the
//! events it leaves; writes to an existing task decide on the row the store's transaction
//! locked, so that no check is made on a version of the task that a concurrent write replaced.
//!
//! Refusals follow one order: a task the actor may not see is `NotFound`, then a write the actor
//! may not make is `Forbidden`, then the task's state decides (`VersionMismatch`,
//! `InvalidTransition`, `Conflict`).

use time::OffsetDateTime;

use super::input::{EmergencyInput, Reason, Schedule, TaskInput, TaskPatch, Text, Title};
use super::officer::OfficerId;
use super::record::{AuditAction, Dispatched, EventType, Record, task_audit};
use super::state::TaskAction;
use super::task::{
    NewTask, Priority, StatusChange, Task, TaskChange, TaskError, TaskFields, TaskId, TaskKind, TaskQuery, TaskStore,
    TaskWrite, TransitionWrite, may_apply, may_cancel_tasks, may_manage_tasks, may_read_task,
};
use crate::audit::RequestContext;
use crate::clock::Clock;
use crate::users::Role;
use crate::users::policy::Actor;

/// The task, if it exists and the actor may see it.
pub async fn read_task(store: &dyn TaskStore, actor: Actor, id: TaskId) -> Result<Task, TaskError> {
    store.find(id).await?.filter(|task| may_read_task(actor, task)).ok_or(TaskError::NotFound)
}

/// A page of the tasks the actor may see: officers only those assigned to them.
pub async fn list_tasks(store: &dyn TaskStore, actor: Actor, mut query: TaskQuery) -> Result<Vec<Task>, TaskError> {
    if actor.role == Role::Officer {
        query.assigned_to_user = Some(actor.id);
    }
    Ok(store.list(&query).await?)
}

/// Every transition of a task the actor may see, oldest first.
pub async fn task_history(store: &dyn TaskStore, actor: Actor, id: TaskId) -> Result<Vec<StatusChange>, TaskError> {
    read_task(store, actor, id).await?;
    Ok(store.history(id).await?)
}

/// Creates a task (operators and above); the creator is its delegate unless another is named.
pub async fn create_task(
    store: &dyn TaskStore,
    actor: Actor,
    input: TaskInput,
    context: RequestContext,
) -> Result<Task, TaskError> {
    if !may_manage_tasks(actor) {
        return Err(TaskError::Forbidden);
    }
    let id = TaskId::generate();
    let task = NewTask {
        id,
        code: input.code,
        fields: TaskFields {
            title: input.title,
            description: input.description,
            kind: input.kind,
            priority: input.priority.unwrap_or(Priority::Medium),
            schedule: input.schedule,
            location: input.location,
            location_description: input.location_description,
            delegate_id: input.delegate_id.unwrap_or(actor.id),
            notes: input.notes,
        },
        created_by: actor.id,
        officer_ids: input.officer_ids,
    };
    let record =
        Record { audit: task_audit(actor, AuditAction::TaskCreate, id, context), events: vec![EventType::TaskCreated] };
    store.insert(task, record).await
}

/// Dispatches an emergency (operators and above): a `critical` `emergency` task at the point,
/// starting now, with the nearest available officer; `alert.emergency` goes out either way.
pub async fn dispatch_emergency(
    store: &dyn TaskStore,
    actor: Actor,
    input: EmergencyInput,
    context: RequestContext,
    clock: &dyn Clock,
) -> Result<(Task, Option<Dispatched>), TaskError> {
    if !may_manage_tasks(actor) {
        return Err(TaskError::Forbidden);
    }
    let id = TaskId::generate();
    let task = NewTask {
        id,
        code: None,
        fields: TaskFields {
            title: input.title.unwrap_or_else(Title::emergency),
            description: input.description,
            kind: TaskKind::Emergency,
            priority: Priority::Critical,
            schedule: Schedule::starting(clock.now()),
            location: Some(input.point),
            location_description: None,
            delegate_id: actor.id,
            notes: None,
        },
        created_by: actor.id,
        officer_ids: Vec::new(),
    };
    let record = Record {
        audit: task_audit(actor, AuditAction::TaskEmergency, id, context),
        events: vec![EventType::TaskCreated, EventType::EmergencyAlert],
    };
    store.dispatch_emergency(task, record).await
}

/// Edits the descriptive fields (operators and above) if the task is still at
/// `expected_version` (when given).
pub async fn update_task(
    store: &dyn TaskStore,
    actor: Actor,
    id: TaskId,
    expected_version: Option<i64>,
    patch: TaskPatch,
    context: RequestContext,
) -> Result<Task, TaskError> {
    store.change(id, Box::new(move |task: &Task| decide_update(task, actor, expected_version, patch, context))).await
}

/// Applies an action of the state machine: staff or an assigned officer; cancelling takes an
/// admin or a supervisor.
pub async fn transition_task(
    store: &dyn TaskStore,
    actor: Actor,
    id: TaskId,
    action: TaskAction,
    reason: Option<Reason>,
    context: RequestContext,
    clock: &dyn Clock,
) -> Result<Task, TaskError> {
    let now = clock.now();
    store.change(id, Box::new(move |task: &Task| decide_transition(task, actor, action, reason, context, now))).await
}

/// Assigns officers (operators and above); a finished task takes no more.
pub async fn assign_officers(
    store: &dyn TaskStore,
    actor: Actor,
    id: TaskId,
    officers: Vec<OfficerId>,
    context: RequestContext,
) -> Result<Task, TaskError> {
    store.change(id, Box::new(move |task: &Task| decide_assign(task, actor, officers, context))).await
}

/// Removes an officer from a task (operators and above).
pub async fn unassign_officer(
    store: &dyn TaskStore,
    actor: Actor,
    id: TaskId,
    officer: OfficerId,
    context: RequestContext,
) -> Result<Task, TaskError> {
    store.change(id, Box::new(move |task: &Task| decide_unassign(task, actor, officer, context))).await
}

/// Deletes a task (admins and supervisors); a running task is cancelled first, in the same
/// transaction, so that its officers are free again.
pub async fn delete_task(
    store: &dyn TaskStore,
    actor: Actor,
    id: TaskId,
    context: RequestContext,
    clock: &dyn Clock,
) -> Result<(), TaskError> {
    let now = clock.now();
    store.change(id, Box::new(move |task: &Task| decide_delete(task, actor, context, now))).await.map(drop)
}

/// `NotFound` for a task the actor may not see, `Forbidden` for a write they may not make.
fn authorize(task: &Task, actor: Actor, allowed: impl FnOnce() -> bool) -> Result<(), TaskError> {
    if !may_read_task(actor, task) {
        return Err(TaskError::NotFound);
    }
    if !allowed() {
        return Err(TaskError::Forbidden);
    }
    Ok(())
}

fn change(
    write: TaskWrite,
    actor: Actor,
    action: AuditAction,
    task: &Task,
    context: RequestContext,
    events: Vec<EventType>,
) -> TaskChange {
    TaskChange { write, record: Record { audit: task_audit(actor, action, task.id, context), events } }
}

fn decide_update(
    task: &Task,
    actor: Actor,
    expected_version: Option<i64>,
    patch: TaskPatch,
    context: RequestContext,
) -> Result<TaskChange, TaskError> {
    authorize(task, actor, || may_manage_tasks(actor))?;
    if expected_version.is_some_and(|expected| expected != task.version) {
        return Err(TaskError::VersionMismatch);
    }
    let fields = TaskFields::of(task).patched(patch)?;
    Ok(change(TaskWrite::Fields(fields), actor, AuditAction::TaskUpdate, task, context, vec![EventType::TaskUpdated]))
}

/// The transition of `task` by `actor` at `now`, as it will be written.
fn transition(
    task: &Task,
    actor: Actor,
    action: TaskAction,
    reason: Option<Reason>,
    now: OffsetDateTime,
) -> Result<TransitionWrite, TaskError> {
    let effect = task
        .status
        .effect(action, task.paused_at, now)
        .map_err(|refusal| TaskError::InvalidTransition { from: refusal.from, allowed: refusal.allowed })?;
    Ok(TransitionWrite { action, effect, reason, actor: actor.id, at: now })
}

fn decide_transition(
    task: &Task,
    actor: Actor,
    action: TaskAction,
    reason: Option<Reason>,
    context: RequestContext,
    now: OffsetDateTime,
) -> Result<TaskChange, TaskError> {
    authorize(task, actor, || may_apply(actor, task, action))?;
    let write = TaskWrite::Transition(transition(task, actor, action, reason, now)?);
    Ok(change(write, actor, AuditAction::TaskTransition, task, context, vec![EventType::TaskStatusChanged]))
}

fn decide_assign(
    task: &Task,
    actor: Actor,
    officers: Vec<OfficerId>,
    context: RequestContext,
) -> Result<TaskChange, TaskError> {
    authorize(task, actor, || may_manage_tasks(actor))?;
    if task.status.is_final() {
        return Err(TaskError::Conflict("a finished task takes no more officers"));
    }
    let occupy = task.status == super::state::TaskStatus::InProgress;
    let write = TaskWrite::Assign { officers, occupy };
    Ok(change(write, actor, AuditAction::TaskAssign, task, context, vec![EventType::TaskAssigned]))
}

fn decide_unassign(
    task: &Task,
    actor: Actor,
    officer: OfficerId,
    context: RequestContext,
) -> Result<TaskChange, TaskError> {
    authorize(task, actor, || may_manage_tasks(actor))?;
    if !task.officer_ids.contains(&officer) {
        return Err(TaskError::NotFound);
    }
    Ok(change(
        TaskWrite::Unassign(officer),
        actor,
        AuditAction::TaskUnassign,
        task,
        context,
        vec![EventType::TaskUnassigned],
    ))
}

fn decide_delete(
    task: &Task,
    actor: Actor,
    context: RequestContext,
    now: OffsetDateTime,
) -> Result<TaskChange, TaskError> {
    authorize(task, actor, || may_cancel_tasks(actor))?;
    let running = !task.status.is_final() && task.status != super::state::TaskStatus::Scheduled;
    let cancel = if running {
        let reason = Text::stored(Some("deleted".to_owned()));
        Some(transition(task, actor, TaskAction::Cancel, reason, now)?)
    } else {
        None
    };
    let events = match cancel {
        Some(_) => vec![EventType::TaskStatusChanged, EventType::TaskDeleted],
        None => vec![EventType::TaskDeleted],
    };
    Ok(change(TaskWrite::Delete { cancel }, actor, AuditAction::TaskDelete, task, context, events))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::tasks::state::{OfficerMove, TaskStatus};
    use crate::users::UserId;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn actor(role: Role) -> Actor {
        Actor { id: UserId::generate(), role }
    }

    /// A task in `status`, assigned to the officer behind `officer_user`.
    fn task(status: TaskStatus, officer_user: UserId) -> Task {
        Task {
            id: TaskId::generate(),
            code: "T-000001".into(),
            title: "Night patrol".into(),
            description: None,
            kind: TaskKind::Patrol,
            priority: Priority::Medium,
            status,
            scheduled_start: NOW,
            scheduled_end: Some(NOW + time::Duration::hours(2)),
            actual_start: None,
            actual_end: None,
            paused_at: (status == TaskStatus::Paused).then_some(NOW - time::Duration::minutes(10)),
            total_paused_seconds: 0,
            location: None,
            location_description: None,
            delegate_id: UserId::generate(),
            created_by: UserId::generate(),
            officer_ids: vec![OfficerId::generate()],
            officer_user_ids: vec![officer_user],
            notes: None,
            version: 3,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn context() -> RequestContext {
        RequestContext::default()
    }

    fn refusal<T: std::fmt::Debug>(outcome: Result<T, TaskError>) -> String {
        format!("{:?}", outcome.expect_err("refused"))
    }

    #[test]
    fn who_may_do_what_on_the_locked_task() {
        let officer = actor(Role::Officer);
        let stranger = actor(Role::Officer);
        let operator = actor(Role::Operator);
        let supervisor = actor(Role::Supervisor);
        let running = task(TaskStatus::InProgress, officer.id);

        // Officers see only their tasks: everything else is "not found".
        let unseen = decide_transition(&running, stranger, TaskAction::Pause, None, context(), NOW);
        assert_eq!(refusal(unseen), "NotFound");
        // An assigned officer works the task but neither edits, assigns, cancels nor deletes it.
        assert!(decide_transition(&running, officer, TaskAction::Pause, None, context(), NOW).is_ok());
        assert_eq!(
            refusal(decide_transition(&running, officer, TaskAction::Cancel, None, context(), NOW)),
            "Forbidden"
        );
        assert_eq!(refusal(decide_update(&running, officer, None, TaskPatch::default(), context())), "Forbidden");
        assert_eq!(refusal(decide_assign(&running, officer, vec![], context())), "Forbidden");
        assert_eq!(refusal(decide_unassign(&running, officer, running.officer_ids[0], context())), "Forbidden");
        assert_eq!(refusal(decide_delete(&running, officer, context(), NOW)), "Forbidden");
        // Operators manage but neither cancel nor delete; supervisors do both.
        assert!(decide_update(&running, operator, None, TaskPatch::default(), context()).is_ok());
        assert_eq!(
            refusal(decide_transition(&running, operator, TaskAction::Cancel, None, context(), NOW)),
            "Forbidden"
        );
        assert_eq!(refusal(decide_delete(&running, operator, context(), NOW)), "Forbidden");
        assert!(decide_transition(&running, supervisor, TaskAction::Cancel, None, context(), NOW).is_ok());
        assert!(decide_delete(&running, supervisor, context(), NOW).is_ok());
    }

    #[test]
    fn each_write_names_its_audit_action_and_events() {
        let operator = actor(Role::Operator);
        let admin = actor(Role::Admin);
        let scheduled = task(TaskStatus::Scheduled, UserId::generate());
        let paused = task(TaskStatus::Paused, UserId::generate());
        let cases = [
            (
                decide_update(&scheduled, operator, Some(3), TaskPatch::default(), context()),
                "task.update",
                vec!["task.updated"],
            ),
            (
                decide_transition(&scheduled, operator, TaskAction::Start, None, context(), NOW),
                "task.transition",
                vec!["task.status_changed"],
            ),
            (
                decide_assign(&scheduled, operator, vec![OfficerId::generate()], context()),
                "task.assign",
                vec!["task.assigned"],
            ),
            (
                decide_unassign(&scheduled, operator, scheduled.officer_ids[0], context()),
                "task.unassign",
                vec!["task.unassigned"],
            ),
            (decide_delete(&scheduled, admin, context(), NOW), "task.delete", vec!["task.deleted"]),
            (decide_delete(&paused, admin, context(), NOW), "task.delete", vec!["task.status_changed", "task.deleted"]),
        ];
        for (decided, audit, events) in cases {
            let decided = decided.expect("allowed");
            assert_eq!(decided.record.audit.action, audit);
            assert_eq!(decided.record.audit.resource_type, "task");
            let names: Vec<_> = decided.record.events.iter().map(|event| event.as_str()).collect();
            assert_eq!(names, events, "{audit}");
        }
    }

    #[test]
    fn writes_carry_the_whole_effect_and_refuse_by_the_tasks_state() {
        let operator = actor(Role::Operator);
        let admin = actor(Role::Admin);
        let paused = task(TaskStatus::Paused, UserId::generate());
        let Ok(TaskChange { write: TaskWrite::Transition(resume), .. }) =
            decide_transition(&paused, operator, TaskAction::Resume, None, context(), NOW)
        else {
            panic!("a resume");
        };
        assert_eq!(
            (resume.effect.to, resume.effect.paused_seconds, resume.effect.officers),
            (TaskStatus::InProgress, 600, OfficerMove::Occupy)
        );
        assert_eq!((resume.actor, resume.at), (operator.id, NOW));

        let Ok(TaskChange { write: TaskWrite::Delete { cancel: Some(cancel) }, .. }) =
            decide_delete(&paused, admin, context(), NOW)
        else {
            panic!("a running task is cancelled before it is deleted");
        };
        assert_eq!((cancel.effect.to, cancel.effect.officers), (TaskStatus::Cancelled, OfficerMove::Release));
        assert_eq!(cancel.reason.map(Text::into_string).as_deref(), Some("deleted"));

        let running = task(TaskStatus::InProgress, UserId::generate());
        let Ok(TaskChange { write: TaskWrite::Assign { occupy, .. }, .. }) =
            decide_assign(&running, operator, vec![], context())
        else {
            panic!("an assignment");
        };
        assert!(occupy, "officers joining running work are on task at once");

        let done = task(TaskStatus::Completed, UserId::generate());
        assert_eq!(
            refusal(decide_assign(&done, operator, vec![], context())),
            r#"Conflict("a finished task takes no more officers")"#
        );
        assert!(
            refusal(decide_transition(&done, operator, TaskAction::Start, None, context(), NOW))
                .starts_with("InvalidTransition")
        );
        assert_eq!(
            refusal(decide_update(&running, operator, Some(2), TaskPatch::default(), context())),
            "VersionMismatch"
        );
        assert_eq!(refusal(decide_unassign(&running, operator, OfficerId::generate(), context())), "NotFound");
        let ends_too_early =
            TaskPatch { scheduled_end: Some(Some(NOW - time::Duration::hours(1))), ..TaskPatch::default() };
        assert!(refusal(decide_update(&running, operator, None, ends_too_early, context())).starts_with("Invalid {"));
    }
}
