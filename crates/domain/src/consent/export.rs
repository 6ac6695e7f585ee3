//! Right of access and to data portability (GDPR arts. 15 and 20): every personal datum held
//! about a subject, as one machine-readable JSON document that is written while it is read, so
//! that no part of the system holds the whole of a long history in memory.

use async_trait::async_trait;

use super::erasure::ErasureOutcome;
use crate::audit::{AuditEntry, Outcome, RequestContext};
use crate::error::StoreError;
use crate::users::UserId;
use crate::users::policy::{Actor, may_exercise_privacy_rights};

/// Where an export goes, chunk by chunk, as the store reads it.
#[async_trait]
pub trait ExportSink: Send {
    /// Fails when the reader went away; the store then stops reading.
    async fn write(&mut self, chunk: String) -> Result<(), ReaderGone>;
}

/// The reader of an export stopped reading (the client disconnected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reader of the export went away")]
pub struct ReaderGone;

/// Why an export stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ExportStopped {
    #[error(transparent)]
    ReaderGone(#[from] ReaderGone),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything the system holds about a person. Error contract: outages are
/// [`StoreError::Unavailable`]; an unknown or erased subject is a value (`false`,
/// [`ErasureOutcome::NotFound`]), never an error.
#[async_trait]
pub trait PersonalDataStore: Send + Sync {
    /// Whether the subject exists and was not erased.
    async fn is_live_subject(&self, subject: UserId) -> Result<bool, StoreError>;

    /// Appends an audit row on its own (an export changes nothing else).
    async fn record(&self, audit: AuditEntry) -> Result<(), StoreError>;

    /// Writes the subject's document to `sink`: every table of the data map with rows about
    /// the subject, read from one consistent snapshot, in chunks of bounded size.
    async fn export(&self, subject: UserId, sink: &mut dyn ExportSink) -> Result<(), ExportStopped>;

    /// Erases or irreversibly pseudonymises every personal datum of the subject, in one
    /// transaction, and records it with `audit` (whose details the store fills with the counts).
    async fn erase(&self, subject: UserId, audit: AuditEntry) -> Result<ErasureOutcome, StoreError>;
}

/// Why an export cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no such user")]
    NotFound,
    /// Only the subject and admins export a person's data.
    #[error("only the subject or an administrator may export personal data")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the right to export and records it; the caller then streams
/// [`PersonalDataStore::export`]. Admins are told whether the subject exists (404); anyone else
/// asking for another person is refused without learning it (403), as `GET /users/{id}` does.
pub async fn begin_export(
    store: &dyn PersonalDataStore,
    actor: Actor,
    subject: UserId,
    context: RequestContext,
) -> Result<(), ExportError> {
    if !may_exercise_privacy_rights(actor, subject) {
        return Err(ExportError::Forbidden);
    }
    if !store.is_live_subject(subject).await? {
        return Err(ExportError::NotFound);
    }
    store
        .record(AuditEntry {
            actor: Some((actor.id, actor.role)),
            action: "user.export",
            resource_type: "user",
            resource_id: Some(subject.as_uuid()),
            outcome: Outcome::Success,
            context,
        })
        .await?;
    Ok(())
}
