//! `Idempotency-Key` (SPEC §4): a retried request with the same key and body gets the stored
//! response instead of running twice.

use async_trait::async_trait;
use time::Duration;

use crate::error::StoreError;
use crate::users::UserId;

/// How long a key is remembered.
pub const KEY_LIFETIME: Duration = Duration::hours(24);

/// A response as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The headers worth replaying (`Location`, `ETag`, content type).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Whose key, for which operation.
#[derive(Debug, Clone, Copy)]
pub struct KeyScope<'a> {
    pub owner: UserId,
    pub scope: &'a str,
    pub key: &'a str,
}

/// What to do with a request that carries a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First time: run it, then `complete` (or `abandon` if it failed).
    Started,
    /// Done before with the same body: send this again.
    Replay(StoredResponse),
    /// The key was used with a different body.
    Mismatch,
    /// The first request with this key has not finished yet.
    InProgress,
}

/// Remembered keys. Error contract: outages are [`StoreError::Unavailable`].
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims the key for a request whose body hashes to `request_hash` (expired keys are
    /// claimed afresh).
    async fn begin(&self, key: KeyScope<'_>, request_hash: [u8; 32]) -> Result<Begin, StoreError>;
    async fn complete(&self, key: KeyScope<'_>, response: StoredResponse) -> Result<(), StoreError>;
    /// Forgets a claim whose request failed, so that a retry runs again.
    async fn abandon(&self, key: KeyScope<'_>) -> Result<(), StoreError>;
}
