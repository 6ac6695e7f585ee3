//! The event log as its readers see it, the real-time topics, and who may follow which.
//!
//! Every change that others may care about is written to the event log (the outbox) in the
//! transaction of the change, numbered by a global, gap-free `seq` in commit order. Readers
//! (the WebSocket relay, replay) tail it through the [`EventLog`] port; the topics decide which
//! connection sees which event, with the same policy functions as the REST API.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;
use crate::tasks::task::{Task, TaskId, may_read_task};
use crate::users::policy::Actor;
use crate::users::{Role, TokenIdentity, UserId};

/// One committed event-log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Global, gap-free, in commit order.
    pub seq: i64,
    pub id: Uuid,
    /// `task.created`, `officer.location_updated`, `alert.emergency`, …
    pub event_type: String,
    pub task_id: Option<Uuid>,
    pub officer_id: Option<Uuid>,
    /// The users who follow it on `tasks:mine` (the assigned officers' accounts, after the change).
    pub audience: Vec<UserId>,
    /// The resource, as JSON text (kept as text: it is forwarded, never interpreted).
    pub payload: String,
    pub created_at: OffsetDateTime,
}

impl Event {
    fn family(&self) -> Family {
        match self.event_type.split_once('.').map_or(self.event_type.as_str(), |(family, _)| family) {
            "task" => Family::Task,
            "officer" => Family::Officer,
            "alert" => Family::Alert,
            _ => Family::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Task,
    Officer,
    Alert,
    Other,
}

/// Where an event-log reader may start replaying from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayStart {
    /// Every event after `since` is still kept.
    Available,
    /// Some event after `since` has been purged or is older than the retention.
    TooOld,
}

/// Reading the event log. Error contract: an unreachable database is
/// [`StoreError::Unavailable`]; readers retry and never invent events meanwhile.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// The highest committed `seq` (0 when the log is empty).
    async fn head(&self) -> Result<i64, StoreError>;

    /// Committed events with `after < seq <= until`, ascending, at most `limit` of them.
    async fn read(&self, after: i64, until: i64, limit: i64) -> Result<Vec<Event>, StoreError>;

    /// Whether every event after `since` is still in the log and younger than `retention`.
    async fn replay_start(&self, since: i64, retention: time::Duration) -> Result<ReplayStart, StoreError>;

    /// A dedicated listener for the commit notifications of the log.
    async fn listen(&self) -> Result<Box<dyn CommitNotifications>, StoreError>;
}

/// Wake-ups sent at each commit that wrote events. They only say "look again": the log, not
/// the notification, is the truth.
#[async_trait]
pub trait CommitNotifications: Send {
    /// Resolves at the next notification; an error means the listener is gone for good.
    async fn next(&mut self) -> Result<(), StoreError>;
}

/// Commit announcements between instances (Redis pub/sub): "events up to `seq` are committed",
/// tagged with the announcing instance's origin id so that nobody acts on its own. They carry no
/// events: every instance reads the events themselves from the log, in order, exactly once.
/// Error contract: a lost connection is [`StoreError::Unavailable`]; instances then rely on
/// PostgreSQL notifications and polling alone until it returns.
#[async_trait]
pub trait CommitAnnouncements: Send + Sync {
    async fn announce(&self, seq: i64) -> Result<(), StoreError>;

    /// Listens until the subscription fails, calling `heard` with the `seq` of every
    /// announcement from another instance; returns why it stopped.
    async fn listen(&self, heard: &(dyn Fn(i64) + Send + Sync)) -> StoreError;
}

/// What a client may follow over the real-time connection (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every task event (operators and above).
    Tasks,
    /// Events of the tasks assigned to the caller.
    TasksMine,
    /// The events of one task the caller may read.
    Task(TaskId),
    /// Officer positions and availability (operators and above).
    Officers,
    /// Emergency alerts (operators and above).
    Alerts,
}

/// Why a topic cannot be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("unknown topic")]
    Unknown,
    #[error("this topic is not available to the caller")]
    Forbidden,
}

impl Topic {
    /// `tasks`, `tasks:mine`, `task:<uuid>`, `officers` or `alerts`.
    pub fn parse(raw: &str) -> Result<Self, TopicError> {
        match raw {
            "tasks" => Ok(Self::Tasks),
            "tasks:mine" => Ok(Self::TasksMine),
            "officers" => Ok(Self::Officers),
            "alerts" => Ok(Self::Alerts),
            _ => raw
                .strip_prefix("task:")
                .and_then(|id| Uuid::try_parse(id).ok())
                .map(|id| Self::Task(TaskId::from_uuid(id)))
                .ok_or(TopicError::Unknown),
        }
    }

    /// Whether `actor` may follow this topic. `task` is the task of `task:<id>` when it exists
    /// (the caller looks it up); the others ignore it.
    pub fn check_access(self, actor: Actor, task: Option<&Task>) -> Result<(), TopicError> {
        let allowed = match self {
            Self::Tasks | Self::Officers | Self::Alerts => is_staff(actor.role),
            Self::TasksMine => true,
            // A task the caller may not read is as forbidden as one that does not exist.
            Self::Task(_) => task.is_some_and(|task| may_read_task(actor, task)),
        };
        if allowed { Ok(()) } else { Err(TopicError::Forbidden) }
    }

    /// Whether an event belongs to this topic for this follower.
    pub fn matches(self, actor: Actor, event: &Event) -> bool {
        match self {
            Self::Tasks => event.family() == Family::Task,
            Self::Officers => event.family() == Family::Officer,
            Self::Alerts => event.family() == Family::Alert,
            Self::TasksMine => event.task_id.is_some() && event.audience.contains(&actor.id),
            Self::Task(id) => event.task_id == Some(id.as_uuid()) && may_follow_task(actor, event),
        }
    }

    /// Whether `actor` loses the right to follow this topic because of `event` (an officer
    /// unassigned from the task they follow).
    pub fn revoked_by(self, actor: Actor, event: &Event) -> bool {
        matches!(self, Self::Task(id) if event.task_id == Some(id.as_uuid()) && !may_follow_task(actor, event))
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tasks => f.write_str("tasks"),
            Self::TasksMine => f.write_str("tasks:mine"),
            Self::Task(id) => write!(f, "task:{id}"),
            Self::Officers => f.write_str("officers"),
            Self::Alerts => f.write_str("alerts"),
        }
    }
}

/// Staff read every task; officers only while the task is assigned to them (the event's
/// audience is the assignment after the change, so an unassigned officer stops receiving).
fn may_follow_task(actor: Actor, event: &Event) -> bool {
    is_staff(actor.role) || event.audience.contains(&actor.id)
}

fn is_staff(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Supervisor | Role::Operator)
}

/// Who a socket belongs to, decided before the upgrade: the caller, the access token the socket
/// stands for (revoking it closes the socket), and when that token expires (the socket closes
/// then too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwner {
    pub actor: Actor,
    pub identity: TokenIdentity,
    pub expires_at: OffsetDateTime,
}

/// A single-use ticket for opening a WebSocket from a browser, which cannot set headers. It
/// stands for the access token that requested it: the socket lives and dies with that token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketGrant {
    pub user_id: UserId,
    pub role: Role,
    pub jti: Uuid,
    pub session_id: Uuid,
    /// The access token's `iat`.
    pub issued_at: OffsetDateTime,
    /// The access token's `exp`: the socket closes then.
    pub token_expires_at: OffsetDateTime,
}

/// Where tickets are kept, hashed (SHA-256). Error contract: outages are
/// [`StoreError::Unavailable`].
#[async_trait]
pub trait TicketStore: Send + Sync {
    async fn insert(&self, hash: [u8; 32], grant: &TicketGrant, expires_at: OffsetDateTime) -> Result<(), StoreError>;

    /// Spends the ticket: its grant if it exists, is unused and unexpired; `None` otherwise. Two
    /// concurrent redemptions of one ticket never both succeed.
    async fn redeem(&self, hash: [u8; 32]) -> Result<Option<TicketGrant>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, task: Option<Uuid>, audience: Vec<UserId>) -> Event {
        Event {
            seq: 1,
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            task_id: task,
            officer_id: None,
            audience,
            payload: "{}".into(),
            created_at: OffsetDateTime::now_utc(),
        }
    }

    fn actor(role: Role) -> Actor {
        Actor { id: UserId::generate(), role }
    }

    #[test]
    fn topics_parse_and_display_round_trip() {
        let id = Uuid::now_v7();
        for raw in ["tasks", "tasks:mine", "officers", "alerts", &format!("task:{id}")] {
            assert_eq!(Topic::parse(raw).map(|topic| topic.to_string()).as_deref(), Ok(raw));
        }
        for garbage in ["", "task:", "task:nope", "Tasks", "officers:mine", "alerts "] {
            assert_eq!(Topic::parse(garbage), Err(TopicError::Unknown), "{garbage:?}");
        }
    }

    #[test]
    fn staff_topics_are_refused_to_officers() {
        for topic in [Topic::Tasks, Topic::Officers, Topic::Alerts] {
            for role in [Role::Admin, Role::Supervisor, Role::Operator] {
                assert_eq!(topic.check_access(actor(role), None), Ok(()));
            }
            assert_eq!(topic.check_access(actor(Role::Officer), None), Err(TopicError::Forbidden));
        }
        assert_eq!(Topic::TasksMine.check_access(actor(Role::Officer), None), Ok(()));
        let missing = Topic::Task(TaskId::from_uuid(Uuid::now_v7()));
        assert_eq!(missing.check_access(actor(Role::Admin), None), Err(TopicError::Forbidden));
    }

    #[test]
    fn events_reach_the_matching_topics_only() {
        let officer = actor(Role::Officer);
        let task = Uuid::now_v7();
        let assigned = event("task.assigned", Some(task), vec![officer.id]);
        let other = event("task.updated", Some(Uuid::now_v7()), vec![]);
        let moved = event("officer.location_updated", None, vec![]);
        let alert = event("alert.emergency", Some(task), vec![officer.id]);
        let staff = actor(Role::Operator);

        assert!(Topic::Tasks.matches(staff, &assigned));
        assert!(!Topic::Tasks.matches(staff, &moved));
        assert!(Topic::Officers.matches(staff, &moved));
        assert!(Topic::Alerts.matches(staff, &alert));
        assert!(!Topic::Alerts.matches(staff, &assigned));
        assert!(Topic::TasksMine.matches(officer, &assigned));
        assert!(Topic::TasksMine.matches(officer, &alert), "the assigned officer hears of the emergency");
        assert!(!Topic::TasksMine.matches(officer, &other));
        let followed = Topic::Task(TaskId::from_uuid(task));
        assert!(followed.matches(officer, &assigned));
        assert!(!followed.matches(officer, &other));

        let unassigned = event("task.unassigned", Some(task), vec![]);
        assert!(!followed.matches(officer, &unassigned));
        assert!(followed.revoked_by(officer, &unassigned));
        assert!(!followed.revoked_by(staff, &unassigned));
        assert!(!followed.revoked_by(officer, &other));
    }
}
