//! The Telegram bot's ports (SPEC §6): chat links and their one-time codes, the bookkeeping that
//! makes every update count once, the bot's conversations, and the notification queue fed by
//! the event log. What the bot does with them lives in `gad-telegram`; how they are stored, in
//! the adapters.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::error::StoreError;
use crate::users::UserId;
use crate::users::policy::Actor;

/// How long a link code may wait for its `/start`.
pub const LINK_CODE_LIFETIME: time::Duration = time::Duration::minutes(10);

/// How long a guided conversation (`/crear`) may sit idle before it is forgotten.
pub const CONVERSATION_LIFETIME: time::Duration = time::Duration::minutes(15);

/// Whether `code` fits Telegram's start parameter (1–64 of `A-Z a-z 0-9 _ -`).
pub fn is_start_parameter(code: &str) -> bool {
    (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What became of a `/start <code>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// The chat now belongs to this user (any earlier link of the chat or the user is replaced).
    Linked(UserId),
    Used,
    Expired,
    Unknown,
}

/// The user behind a linked chat, as the bot acts for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkedUser {
    pub actor: Actor,
    /// Their officer profile, when they have one.
    pub officer_id: Option<Uuid>,
}

/// Chat links. Codes are handed over in clear and stored hashed by the store; every write
/// appends its audit row in the same transaction.
#[async_trait]
pub trait TelegramLinks: Send + Sync {
    /// Stores a fresh code for the entry's actor, valid for `lifetime` from now (the database's
    /// clock, which also judges expiry); returns when it expires.
    async fn issue_code(
        &self,
        code: &str,
        lifetime: time::Duration,
        audit: AuditEntry,
    ) -> Result<OffsetDateTime, StoreError>;

    /// Spends `code` (once, whoever asks concurrently) and links `chat_id` to its user.
    async fn redeem(&self, code: &str, chat_id: i64, username: Option<&str>) -> Result<Redemption, StoreError>;

    /// Removes the user's link, codes and conversations; whether a link existed.
    async fn unlink(&self, user: UserId, audit: AuditEntry) -> Result<bool, StoreError>;

    /// The active user linked to `chat_id`.
    async fn linked_user(&self, chat_id: i64) -> Result<Option<LinkedUser>, StoreError>;
}

/// The state of a conversation, as the bot serialised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConversation {
    pub user_id: UserId,
    pub state: String,
    /// Idle for longer than the lifetime asked for.
    pub expired: bool,
}

/// A Bot API update as the inbox stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUpdate {
    pub update_id: i64,
    /// The chat it came from, which orders its processing.
    pub chat_id: Option<i64>,
    /// The update's JSON as received; `None` once erased.
    pub payload: Option<String>,
}

/// The durable inbox of Bot API updates: an update is acknowledged to Telegram once stored, and
/// each `update_id` is stored once and processed once across instances and restarts. Who
/// processes an update is decided by a lease: the receiving instance holds one from the insert;
/// an unfinished update whose lease ran out is taken over by any instance.
#[async_trait]
pub trait UpdateInbox: Send + Sync {
    /// Stores `update` leased to `owner` for `lease`, in one statement; false when its
    /// `update_id` was stored before (a duplicate to acknowledge and ignore).
    async fn store(&self, update: &StoredUpdate, owner: Uuid, lease: Duration) -> Result<bool, StoreError>;

    /// Takes `update_id` for processing by `owner` for `lease` and counts the attempt: how many
    /// attempts there have been, or `None` when it is finished or another instance holds it.
    async fn take(&self, update_id: i64, owner: Uuid, lease: Duration) -> Result<Option<i32>, StoreError>;

    /// Leases to `owner` up to `limit` unfinished updates whose lease ran out, oldest first.
    async fn take_over(&self, limit: i64, owner: Uuid, lease: Duration) -> Result<Vec<StoredUpdate>, StoreError>;

    /// Marks the update processed; its payload and chat are forgotten, its `update_id` is kept
    /// to recognise redeliveries.
    async fn finish(&self, update_id: i64) -> Result<(), StoreError>;

    /// A failed attempt: the update is left for the sweep to take over in `after`.
    async fn retry_later(&self, update_id: i64, owner: Uuid, after: Duration) -> Result<(), StoreError>;
}

/// Bookkeeping of the bot: conversations that survive restarts.
#[async_trait]
pub trait BotBookkeeping: Send + Sync {
    async fn conversation(
        &self,
        chat_id: i64,
        lifetime: time::Duration,
    ) -> Result<Option<StoredConversation>, StoreError>;

    async fn save_conversation(&self, chat_id: i64, user: UserId, state: &str) -> Result<(), StoreError>;

    async fn end_conversation(&self, chat_id: i64) -> Result<bool, StoreError>;
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    Assigned,
    Unassigned,
    Emergency,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::Unassigned => "unassigned",
            Self::Emergency => "emergency",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Assigned, Self::Unassigned, Self::Emergency].into_iter().find(|kind| kind.as_str() == raw)
    }
}

/// A queued notification claimed for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: i64,
    pub kind: NotificationKind,
    pub user_id: UserId,
    /// The chat linked now (sending looks it up again: an unlinked user gets nothing).
    pub chat_id: Option<i64>,
    /// Whether the user grants `telegram_notifications` now.
    pub consented: bool,
    /// The task as the event carried it (JSON text).
    pub task: String,
    /// When the change was committed.
    pub committed_at: OffsetDateTime,
    pub attempts: i32,
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Sent,
    /// Not sent on purpose (no consent, no link any more).
    Skipped(&'static str),
    /// Try again after a while: a rate limit (no error, not counted as an attempt) or a failure
    /// with attempts left.
    Retry {
        after: Duration,
        error: Option<String>,
    },
    /// Given up: recorded with the last error.
    Failed(String),
}

/// The notification queue. `enqueue_from_log` is the event-log consumer: it turns the next
/// events into queued notifications and advances the persisted position in one transaction,
/// so that, whatever the number of instances, each event is turned once.
#[async_trait]
pub trait NotificationQueue: Send + Sync {
    /// Consumes up to `limit` events; how many it consumed.
    async fn enqueue_from_log(&self, limit: i64) -> Result<usize, StoreError>;

    /// Claims up to `limit` due notifications for `lease` (others skip them meanwhile).
    async fn claim(&self, limit: i64, lease: Duration) -> Result<Vec<Notification>, StoreError>;

    async fn settle(&self, id: i64, delivery: Delivery) -> Result<(), StoreError>;

    /// Notifications waiting to be sent.
    async fn depth(&self) -> Result<i64, StoreError>;
}

/// The lock that lets exactly one instance poll the Bot API (Telegram answers a second poller
/// with 409).
#[async_trait]
pub trait PollerLock: Send + Sync {
    /// The lock, if no other instance holds it; held until the guard is dropped.
    async fn try_acquire(&self) -> Result<Option<Box<dyn PollerGuard>>, StoreError>;
}

#[async_trait]
pub trait PollerGuard: Send {
    /// Whether the lock is still held (its session may have been lost).
    async fn still_held(&mut self) -> bool;
}
