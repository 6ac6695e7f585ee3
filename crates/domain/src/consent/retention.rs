//! Storage limitation (GDPR art. 5(1)(e)): rows are kept only as long as their purpose needs,
//! then purged by `gad purge` and by the periodic job of `gad serve`.

use async_trait::async_trait;
use time::Duration;

use crate::error::StoreError;

/// How long each kind of record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Officers' reported positions (not the current position, which dispatch needs).
    pub location_history: Duration,
    pub audit_events: Duration,
    /// The event log behind WebSocket replay and Telegram notifications.
    pub event_log: Duration,
    /// Which Telegram updates were already processed (exactly-once handling).
    pub processed_telegram_updates: Duration,
    /// How long credentials (refresh tokens and their families, revoked access tokens, WebSocket
    /// tickets, Telegram link codes) and stored idempotent responses outlive their expiry.
    pub expired_credentials: Duration,
}

/// Whether a purge deletes or only counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeMode {
    DryRun,
    Delete,
}

/// Rows past their retention in one table: deleted, or that would be in a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgedRows {
    pub table: &'static str,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeOutcome {
    Done(Vec<PurgedRows>),
    /// Another instance is purging right now; this one leaves it the work.
    Busy,
}

/// Enforces a retention policy. Error contract: outages are [`StoreError::Unavailable`]; a
/// purge interrupted by one keeps what it deleted so far (every batch commits on its own) and
/// the next run continues.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes (or counts) every row past its retention, one instance at a time, in small
    /// batches that never hold locks for long.
    async fn purge(&self, policy: &RetentionPolicy, mode: PurgeMode) -> Result<PurgeOutcome, StoreError>;
}
