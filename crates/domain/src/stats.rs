//! Statistics (SPEC §4): what the operations centre has done, for supervisors (the overview) and
//! for each user. Figures are computed by the store in one snapshot together with the *version*
//! of the data they describe: the number of the newest event that can change them. Any task
//! write or availability change appends such an event in its own transaction, so a cached figure
//! keyed by its version is never served after the data moved on, on any instance. Events are
//! numbered just after their commit; a read that meets one not yet numbered numbers it, and
//! when that still leaves no version, figures are computed without the cache.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::tasks::officer::Availability;
use crate::tasks::state::TaskStatus;
use crate::tasks::task::{Priority, TaskKind};
use crate::users::UserId;

/// Tasks created in `[from, to)`; an absent bound is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

/// How many tasks, by status, priority and kind (every value present, zero included), and how
/// well the completed ones went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskFigures {
    pub total: i64,
    pub by_status: BTreeMap<TaskStatus, i64>,
    pub by_priority: BTreeMap<Priority, i64>,
    pub by_kind: BTreeMap<TaskKind, i64>,
    pub completed: i64,
    /// Mean of actual end − actual start − time paused, over completed tasks; null without any.
    pub mean_completion_seconds: Option<f64>,
    /// Share (0..=1) of completed tasks with a scheduled end that ended by it; null without any.
    pub on_time_rate: Option<f64>,
}

impl TaskFigures {
    /// Figures with every status, priority and kind at zero, to be filled in.
    pub fn zero() -> Self {
        Self {
            total: 0,
            by_status: TaskStatus::ALL.into_iter().map(|status| (status, 0)).collect(),
            by_priority: Priority::ALL.iter().map(|priority| (*priority, 0)).collect(),
            by_kind: TaskKind::ALL.iter().map(|kind| (*kind, 0)).collect(),
            completed: 0,
            mean_completion_seconds: None,
            on_time_rate: None,
        }
    }
}

/// `GET /api/v1/stats/overview`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    #[serde(with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
    pub tasks: TaskFigures,
    /// Officers now, whatever the window.
    pub officers_by_availability: BTreeMap<Availability, i64>,
}

/// `GET /api/v1/stats/users/{id}`: the tasks of the last `days` days that concern the user.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserStats {
    pub user_id: UserId,
    pub days: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// Tasks assigned to the user's officer profile (all zero without a profile).
    pub assigned: TaskFigures,
    /// Tasks the user created.
    pub created: i64,
    /// Tasks delegated to the user.
    pub delegated: i64,
}

/// Figures together with the version of the data they were computed from (none: not cacheable).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub version: Option<i64>,
    pub value: T,
}

/// Per-user statistics cover 1..=365 days.
pub const USER_DAYS: std::ops::RangeInclusive<u16> = 1..=365;

/// How long a cached figure lives at most. Versions make entries exact for task and availability
/// changes; the lifetime bounds what versions do not see (a per-user window sliding with the
/// clock, officers created or deleted) and the memory the cache holds.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

#[async_trait]
pub trait StatsStore: Send + Sync {
    /// The current version, if there is one: cheap, asked before every cache lookup. Events
    /// committed but not yet numbered are numbered first.
    async fn version(&self) -> Result<Option<i64>, StoreError>;
    async fn overview(&self, window: Window) -> Result<Versioned<Overview>, StoreError>;
    async fn user(&self, user: UserId, days: u16) -> Result<Versioned<UserStats>, StoreError>;
}

/// Rendered responses by key, shared by the instances when Redis is configured. A cache that
/// cannot be reached behaves as empty: statistics are then computed, never refused.
#[async_trait]
pub trait ResponseCache: Send + Sync {
    async fn get(&self, key: &str) -> Option<Vec<u8>>;
    async fn put(&self, key: &str, value: &[u8], ttl: Duration);
}

/// The overview is for supervisors and admins (SPEC §3); a user's own figures follow
/// [`crate::users::policy::may_read_user`].
pub fn may_read_overview(actor: crate::users::policy::Actor) -> bool {
    matches!(actor.role, crate::users::Role::Admin | crate::users::Role::Supervisor)
}
