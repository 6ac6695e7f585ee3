//! The subject's rights in PostgreSQL: the data map, the export, the erasure and the retention
//! purge.

pub mod data_map;
mod erasure;
mod export;
mod retention;

use async_trait::async_trait;
use gad_domain::audit::AuditEntry;
use gad_domain::consent::erasure::ErasureOutcome;
use gad_domain::consent::export::{ExportSink, ExportStopped, PersonalDataStore};
use gad_domain::consent::retention::{PurgeMode, PurgeOutcome, RetentionPolicy, RetentionStore};
use gad_domain::error::StoreError;
use gad_domain::users::UserId;

use crate::audit;
use crate::errors::query_error;
use crate::pool::{PgPool, connection};
use crate::users::live_user_exists;

/// An erasure that lost a deadlock against a concurrent write is run again, this often.
const ERASURE_ATTEMPTS: u32 = 3;

/// PostgreSQL aborted the transaction to break a deadlock or a serialization conflict.
fn is_lost_race(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().starts_with("deadlock detected"),
        _ => false,
    }
}

/// Export and erasure.
#[derive(Clone)]
pub struct PgPersonalDataStore {
    pool: PgPool,
}

impl PgPersonalDataStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl std::fmt::Debug for PgPersonalDataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPersonalDataStore").finish_non_exhaustive()
    }
}

#[async_trait]
impl PersonalDataStore for PgPersonalDataStore {
    async fn is_live_subject(&self, subject: UserId) -> Result<bool, StoreError> {
        let mut conn = connection(&self.pool).await?;
        live_user_exists(&mut conn, subject.as_uuid()).await.map_err(query_error)
    }

    async fn record(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let conn = connection(&self.pool).await?;
        audit::append(&conn, &entry).await.map_err(query_error)
    }

    async fn export(&self, subject: UserId, sink: &mut dyn ExportSink) -> Result<(), ExportStopped> {
        let mut conn = connection(&self.pool).await?;
        export::write_export(&mut conn, subject.as_uuid(), sink).await
    }

    async fn erase(&self, subject: UserId, entry: AuditEntry) -> Result<ErasureOutcome, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let mut attempts = 1;
        loop {
            match erasure::erase(&mut conn, subject, &entry).await {
                Err(error) if attempts < ERASURE_ATTEMPTS && is_lost_race(&error) => attempts += 1,
                outcome => return outcome.map_err(query_error),
            }
        }
    }
}

/// The retention purge; `batch_size` rows per transaction.
#[derive(Clone)]
pub struct PgRetentionStore {
    pool: PgPool,
    batch_size: u32,
}

impl PgRetentionStore {
    pub fn new(pool: PgPool, batch_size: u32) -> Self {
        Self { pool, batch_size: batch_size.max(1) }
    }
}

impl std::fmt::Debug for PgRetentionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRetentionStore").field("batch_size", &self.batch_size).finish_non_exhaustive()
    }
}

#[async_trait]
impl RetentionStore for PgRetentionStore {
    async fn purge(&self, policy: &RetentionPolicy, mode: PurgeMode) -> Result<PurgeOutcome, StoreError> {
        let mut conn = connection(&self.pool).await?;
        retention::purge(&mut conn, policy, mode, self.batch_size).await.map_err(query_error)
    }
}
