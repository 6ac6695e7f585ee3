use async_trait::async_trait;

use super::InvalidValue;
use crate::error::StoreError;

/// A plain-text password that met the length rule (12..=128 characters). Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, InvalidValue> {
        let length = raw.chars().count();
        if length < 12 {
            return Err(InvalidValue("must be at least 12 characters"));
        }
        if length > 128 {
            return Err(InvalidValue("must be at most 128 characters"));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A password hash in PHC string format (argon2id; bcrypt `$2b$` for imported accounts).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// The outcome of checking a candidate password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordCheck {
    /// It matches; `rehash` is set when the stored hash should be replaced (an imported bcrypt
    /// hash, or argon2 parameters weaker than today's).
    Valid {
        rehash: Option<PasswordHash>,
    },
    Invalid,
}

/// Turns passwords into hashes and checks them. Both are deliberately slow, so implementations
/// run them off the async workers. Error contract: only [`StoreError::Unexpected`] (the hashing
/// thread failed).
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: Password) -> Result<PasswordHash, StoreError>;

    /// Checks `candidate` against `stored`. Without a stored hash (unknown account) it checks
    /// against a dummy hash of the same cost and answers `Invalid`, so both cases take as long.
    async fn verify(&self, stored: Option<PasswordHash>, candidate: String) -> Result<PasswordCheck, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("ñ".repeat(11)).is_err());
        assert!(Password::parse("ñ".repeat(12)).is_ok());
        assert!(Password::parse("x".repeat(128)).is_ok());
        assert!(Password::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let password = Password::parse("correct horse battery".into()).expect("valid");
        assert!(!format!("{password:?}").contains("horse"));
    }
}
