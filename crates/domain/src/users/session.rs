//! Sessions: rotating refresh tokens grouped in families, and the revocation of access tokens.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{NewSession, Role, UserId};
use crate::audit::AuditEntry;
use crate::error::StoreError;

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now spent and its successor stored in the same family.
    Rotated { user_id: UserId, role: Role, family_id: Uuid },
    /// The token had already been spent: someone replayed it, so the whole family is revoked.
    Reused { user_id: UserId, family_id: Uuid },
    /// Unknown, expired, revoked, or its user is deactivated.
    Invalid,
}

/// Refresh-token families. Error contract: outages are [`StoreError::Unavailable`].
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Spends the token whose SHA-256 is `presented` and stores `next` in its family, in one
    /// transaction (the row is locked, so two concurrent refreshes cannot both succeed).
    async fn rotate(&self, presented: [u8; 32], next: NewSession, audit: AuditEntry) -> Result<Rotation, StoreError>;

    /// Revokes the access token `jti` (until `expires_at`) and the family it belongs to.
    async fn logout(&self, revoked: RevokedToken, family_id: Uuid, audit: AuditEntry) -> Result<(), StoreError>;
}

/// The revocations the store holds (the source of truth): what an instance catches up from, and
/// what it asks while announcements between instances may have been missed.
#[async_trait]
pub trait RevocationLog: Send + Sync {
    /// Revocations recorded after `since`.
    async fn revocations_since(&self, since: OffsetDateTime) -> Result<Vec<Revocation>, StoreError>;

    /// The authoritative check of one token.
    async fn is_revoked(&self, token: &TokenIdentity) -> Result<bool, StoreError>;
}

/// The revocation check of every authenticated request, and the spreading of new revocations to
/// every instance. Error contract: `is_revoked` answers from memory while announcements between
/// instances flow; when they may have been missed it asks the store, whose outage is
/// [`StoreError::Unavailable`] (the request is refused with 503, never let through).
#[async_trait]
pub trait Revocations: Send + Sync {
    async fn is_revoked(&self, token: &TokenIdentity) -> Result<bool, StoreError>;

    /// Makes a revocation that the store already holds effective here at once, and on the other
    /// instances as soon as they hear of it.
    async fn announce(&self, revocation: Revocation);

    /// Whether this instance already knows the token to be revoked, from memory and without I/O
    /// (for sweeping live connections, which must not query a store per connection).
    fn known_revoked(&self, token: &TokenIdentity) -> bool {
        let _ = token;
        false
    }

    /// A number that changes whenever a revocation becomes known here, so that sweepers can skip
    /// rounds in which nothing changed.
    fn generation(&self) -> u64 {
        0
    }
}

/// What identifies an access token for revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenIdentity {
    pub jti: Uuid,
    pub user_id: UserId,
    /// The refresh-token family the token was issued in.
    pub session_id: Uuid,
    /// Whole seconds (JWT `iat`).
    pub issued_at: OffsetDateTime,
}

/// An access token revoked before its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedToken {
    pub jti: Uuid,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
}

/// A revocation as it travels between instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Token(RevokedToken),
    /// Every token of the user issued before `before` (role change, deactivation, erasure).
    User {
        user_id: UserId,
        before: OffsetDateTime,
    },
    /// Every access token of a refresh-token family (logout, refresh-token reuse).
    Session {
        session_id: Uuid,
        revoked_at: OffsetDateTime,
    },
}

/// The revocations this instance knows of, checked on every authenticated request without any
/// I/O. It is filled from PostgreSQL (the source of truth) at start-up and by periodic catch-up,
/// and from the other instances' announcements as they happen.
#[derive(Debug, Default)]
pub struct RevocationSet {
    tokens: RwLock<HashMap<Uuid, OffsetDateTime>>,
    users: RwLock<HashMap<UserId, OffsetDateTime>>,
    sessions: RwLock<HashMap<Uuid, OffsetDateTime>>,
    generation: AtomicU64,
}

impl RevocationSet {
    /// Changes (grows) with every revocation applied.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn apply(&self, revocation: Revocation) {
        self.insert(revocation);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn insert(&self, revocation: Revocation) {
        match revocation {
            Revocation::Token(token) => {
                write(&self.tokens).insert(token.jti, token.expires_at);
            }
            Revocation::User { user_id, before } => {
                let mut users = write(&self.users);
                let entry = users.entry(user_id).or_insert(before);
                *entry = (*entry).max(before);
            }
            Revocation::Session { session_id, revoked_at } => {
                write(&self.sessions).insert(session_id, revoked_at);
            }
        }
    }

    /// Whether a token with this id, subject and issue time must be refused. `issued_at` has
    /// millisecond precision (truncated), so a token from the same millisecond as a user-wide
    /// revocation counts as issued before it: the doubt goes to refusing.
    pub fn is_revoked(&self, token: &TokenIdentity) -> bool {
        read(&self.tokens).contains_key(&token.jti)
            || read(&self.sessions).contains_key(&token.session_id)
            || read(&self.users).get(&token.user_id).is_some_and(|before| token.issued_at <= *before)
    }

    /// Forgets what can no longer matter: revoked tokens past their expiry, and user-wide
    /// revocations older than the longest access-token lifetime.
    pub fn prune(&self, now: OffsetDateTime, access_token_ttl: time::Duration) {
        write(&self.tokens).retain(|_, expires_at| *expires_at > now);
        write(&self.users).retain(|_, before| *before + access_token_ttl > now);
        write(&self.sessions).retain(|_, revoked_at| *revoked_at + access_token_ttl > now);
    }

    pub fn len(&self) -> usize {
        read(&self.tokens).len() + read(&self.users).len() + read(&self.sessions).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A poisoned lock only means another thread panicked mid-insert; the map is still usable.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn revoked_tokens_and_users_are_refused_until_pruned() {
        let set = RevocationSet::default();
        let now = OffsetDateTime::now_utc();
        let (alice, bob, carol) = (UserId::generate(), UserId::generate(), UserId::generate());
        let token =
            |user_id, issued_at| TokenIdentity { jti: Uuid::now_v7(), user_id, session_id: Uuid::now_v7(), issued_at };
        let revoked = token(alice, now);
        set.apply(Revocation::Token(RevokedToken {
            jti: revoked.jti,
            user_id: alice,
            expires_at: now + Duration::minutes(5),
        }));
        set.apply(Revocation::User { user_id: bob, before: now });
        let logged_out = token(carol, now);
        set.apply(Revocation::Session { session_id: logged_out.session_id, revoked_at: now });

        assert!(set.is_revoked(&revoked));
        assert!(!set.is_revoked(&token(alice, now)), "other tokens of alice stay valid");
        assert!(set.is_revoked(&token(bob, now - Duration::seconds(1))));
        assert!(set.is_revoked(&token(bob, now)), "same second counts as before");
        assert!(!set.is_revoked(&token(bob, now + Duration::seconds(1))), "newer tokens pass");
        assert!(set.is_revoked(&TokenIdentity { jti: Uuid::now_v7(), ..logged_out }), "the whole session");
        assert!(!set.is_revoked(&token(carol, now)), "carol's other sessions stay valid");

        set.prune(now + Duration::minutes(20), Duration::minutes(15));
        assert!(set.is_empty());
    }

    #[test]
    fn a_later_user_revocation_never_moves_back() {
        let set = RevocationSet::default();
        let now = OffsetDateTime::now_utc();
        let user = UserId::generate();
        set.apply(Revocation::User { user_id: user, before: now });
        set.apply(Revocation::User { user_id: user, before: now - Duration::minutes(1) });
        let token = TokenIdentity { jti: Uuid::now_v7(), user_id: user, session_id: Uuid::now_v7(), issued_at: now };
        assert!(set.is_revoked(&token));
    }
}
