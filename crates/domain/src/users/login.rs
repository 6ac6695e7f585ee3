//! Logging in: constant-shape answers for unknown accounts, lockout after repeated failures,
//! transparent re-hashing of imported passwords.

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::{EmailAddress, PasswordHash, PasswordHasher, Role, UserId};
use crate::audit::{AuditEntry, Outcome, RequestContext};
use crate::error::StoreError;

/// Consecutive failures that lock an account.
pub const MAX_FAILED_LOGINS: i32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT: Duration = Duration::minutes(15);

/// What the store knows about an account when someone tries to log in with its e-mail.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user_id: UserId,
    pub role: Role,
    pub password_hash: PasswordHash,
    pub is_active: bool,
    pub locked_until: Option<OffsetDateTime>,
}

/// A refresh-token family to open on success; the token itself never reaches the store.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub family_id: uuid::Uuid,
    pub token_id: uuid::Uuid,
    pub refresh_token_hash: [u8; 32],
    pub expires_at: OffsetDateTime,
}

/// Persistence of login outcomes. Each method is one transaction that also writes its audit row.
#[async_trait]
pub trait LoginStore: Send + Sync {
    async fn find_for_login(&self, email: &EmailAddress) -> Result<Option<LoginRecord>, StoreError>;

    /// Counts a failed attempt against `user` (when the account exists) and locks it for
    /// `LOCKOUT` when the count reaches `MAX_FAILED_LOGINS`.
    async fn record_failure(&self, user: Option<UserId>, audit: AuditEntry) -> Result<(), StoreError>;

    /// Resets the failure count, stamps `last_login_at`, replaces the hash when given, and
    /// opens the session.
    async fn record_success(
        &self,
        user: UserId,
        rehash: Option<PasswordHash>,
        session: NewSession,
        audit: AuditEntry,
    ) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown e-mail, wrong password or deactivated account: indistinguishable on purpose.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("account locked")]
    Locked { until: OffsetDateTime },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A login attempt as received.
#[derive(Debug)]
pub struct LoginAttempt {
    pub email: String,
    pub password: String,
    pub session: NewSession,
    pub context: RequestContext,
}

/// Checks the credentials and, on success, opens the session. Exactly one password
/// verification runs whatever the outcome, so that timing does not reveal whether the e-mail
/// exists.
pub async fn login(
    store: &dyn LoginStore,
    hasher: &dyn PasswordHasher,
    attempt: LoginAttempt,
    now: OffsetDateTime,
) -> Result<(UserId, Role), LoginError> {
    let record = match EmailAddress::parse(&attempt.email) {
        Ok(email) => store.find_for_login(&email).await?,
        Err(_) => None,
    };
    let audit = |actor: Option<(UserId, Role)>, outcome| AuditEntry {
        actor,
        action: "auth.login",
        resource_type: "user",
        resource_id: actor.map(|(id, _)| id.as_uuid()),
        outcome,
        context: attempt.context.clone(),
    };
    if let Some(record) = &record
        && let Some(until) = record.locked_until.filter(|until| *until > now)
    {
        store.record_failure(None, audit(Some((record.user_id, record.role)), Outcome::Denied)).await?;
        return Err(LoginError::Locked { until });
    }
    let check = hasher.verify(record.as_ref().map(|r| r.password_hash.clone()), attempt.password.clone()).await?;
    match (record, check) {
        (Some(record), super::PasswordCheck::Valid { rehash }) if record.is_active => {
            let actor = Some((record.user_id, record.role));
            store
                .record_success(record.user_id, rehash, attempt.session.clone(), audit(actor, Outcome::Success))
                .await?;
            Ok((record.user_id, record.role))
        }
        (Some(record), _) => {
            let actor = Some((record.user_id, record.role));
            store.record_failure(Some(record.user_id), audit(actor, Outcome::Failure)).await?;
            Err(LoginError::InvalidCredentials)
        }
        (None, _) => {
            store.record_failure(None, audit(None, Outcome::Failure)).await?;
            Err(LoginError::InvalidCredentials)
        }
    }
}
