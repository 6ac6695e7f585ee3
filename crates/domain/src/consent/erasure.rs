//! Right to erasure (GDPR art. 17): the subject's personal data is erased or irreversibly
//! pseudonymised everywhere at once; operational records (tasks, their history, the audit
//! trail) keep the subject's id, which no longer leads to a person.

use serde::Serialize;
use time::OffsetDateTime;

use super::export::PersonalDataStore;
use crate::audit::{AuditEntry, Outcome, RequestContext};
use crate::error::StoreError;
use crate::users::policy::{Actor, may_exercise_privacy_rights};
use crate::users::{Revocation, UserId};

/// What happened to the rows of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    Deleted,
    /// Identifying columns cleared or replaced; the row stays for operational consistency.
    Pseudonymised,
}

/// The rows of one table that an erasure touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedRecords {
    pub table: String,
    pub treatment: Treatment,
    pub rows: u64,
}

/// The proof handed to whoever asked for the erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReceipt {
    pub subject: UserId,
    pub erased_at: OffsetDateTime,
    /// The subject had already been erased: this is the receipt of that erasure.
    pub already_erased: bool,
    pub records: Vec<ErasedRecords>,
}

/// How an erasure request ended in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErasureOutcome {
    Erased(ErasureReceipt),
    /// An earlier request erased the subject; the receipt is that request's.
    AlreadyErased(ErasureReceipt),
    NotFound,
    /// The subject is the last active administrator: nobody could manage the system afterwards.
    LastActiveAdmin,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("no such user")]
    NotFound,
    #[error("only the subject or an administrator may erase personal data")]
    Forbidden,
    #[error(
        "this is the last active administrator: erasing it would leave nobody able to manage GAD; \
         make another user an administrator first"
    )]
    LastActiveAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Erases the subject. Returns the receipt and, for a fresh erasure, the revocation of every
/// token of the subject, to announce to every instance (which closes live sockets with 4401).
///
/// When the subjects erase themselves, the audit row keeps neither their address nor their user
/// agent: the row that proves the erasure must not identify the person it erased.
pub async fn erase_personal_data(
    store: &dyn PersonalDataStore,
    actor: Actor,
    subject: UserId,
    context: RequestContext,
) -> Result<(ErasureReceipt, Option<Revocation>), ErasureError> {
    if !may_exercise_privacy_rights(actor, subject) {
        return Err(ErasureError::Forbidden);
    }
    let context = if actor.id == subject {
        RequestContext { request_id: context.request_id, ip: None, user_agent: None }
    } else {
        context
    };
    let audit = AuditEntry {
        actor: Some((actor.id, actor.role)),
        action: "user.erase",
        resource_type: "user",
        resource_id: Some(subject.as_uuid()),
        outcome: Outcome::Success,
        context,
    };
    match store.erase(subject, audit).await? {
        ErasureOutcome::Erased(receipt) => {
            let revocation = Revocation::User { user_id: subject, before: receipt.erased_at };
            Ok((receipt, Some(revocation)))
        }
        ErasureOutcome::AlreadyErased(receipt) => Ok((receipt, None)),
        ErasureOutcome::NotFound => Err(ErasureError::NotFound),
        ErasureOutcome::LastActiveAdmin => Err(ErasureError::LastActiveAdmin),
    }
}
