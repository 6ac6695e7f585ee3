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
    /// This attempt's number since the last success (or since a lock ran out), this attempt
    /// included. Attempts are counted before their password is checked, so that a burst of
    /// parallel guesses cannot all be checked before the first failure is recorded.
    pub attempt: i32,
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

/// Persistence of login attempts and outcomes.
#[async_trait]
pub trait LoginStore: Send + Sync {
    /// Counts an attempt against the account with this e-mail, atomically, and returns it with
    /// the attempt's number. A lock that has run out starts the count again; the attempt that
    /// reaches `MAX_FAILED_LOGINS` locks the account for `LOCKOUT` at once (a success lifts it).
    async fn begin_attempt(&self, email: &EmailAddress) -> Result<Option<LoginRecord>, StoreError>;

    /// Records a refused attempt in the audit log (the attempt itself was already counted).
    async fn record_failure(&self, audit: AuditEntry) -> Result<(), StoreError>;

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

/// Checks the credentials and, on success, opens the session. At most one password
/// verification runs whatever the outcome, so that timing does not reveal whether the e-mail
/// exists; none runs for an attempt beyond the `MAX_FAILED_LOGINS`-th since the last success,
/// even while the earlier ones are still being checked.
pub async fn login(
    store: &dyn LoginStore,
    hasher: &dyn PasswordHasher,
    attempt: LoginAttempt,
    now: OffsetDateTime,
) -> Result<(UserId, Role), LoginError> {
    let record = match EmailAddress::parse(&attempt.email) {
        Ok(email) => store.begin_attempt(&email).await?,
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
        && record.attempt > MAX_FAILED_LOGINS
    {
        store.record_failure(audit(Some((record.user_id, record.role)), Outcome::Denied)).await?;
        let until = record.locked_until.filter(|until| *until > now).unwrap_or(now + LOCKOUT);
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
            store.record_failure(audit(Some((record.user_id, record.role)), Outcome::Failure)).await?;
            Err(LoginError::InvalidCredentials)
        }
        (None, _) => {
            store.record_failure(audit(None, Outcome::Failure)).await?;
            Err(LoginError::InvalidCredentials)
        }
    }
}
