//! Request rate limits (SPEC §2): a budget of requests per key and period, shared by every
//! instance when Redis is configured.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;

/// At most `limit` requests per `period`, with bursts up to `limit` (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub limit: u32,
    pub period: Duration,
}

impl Rate {
    pub fn per_minute(limit: u32) -> Self {
        Self { limit, period: Duration::from_secs(60) }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        /// Requests still possible right now.
        remaining: u32,
        /// When the budget will be whole again.
        reset_after: Duration,
    },
    Limited {
        /// When the next request will be allowed.
        retry_after: Duration,
    },
}

impl Decision {
    /// Allowed with nothing counted yet: where a fold over budgets starts.
    pub const UNCOUNTED: Self = Self::Allowed { remaining: u32::MAX, reset_after: Duration::ZERO };

    /// Of this answer and another allowed one, the budget with the fewest requests left (the
    /// other on a tie).
    #[must_use]
    pub fn tightest(self, remaining: u32, reset_after: Duration) -> Self {
        match self {
            Self::Allowed { remaining: least, .. } if remaining <= least => Self::Allowed { remaining, reset_after },
            other => other,
        }
    }
}

/// Counts requests. Error contract: [`StoreError::Unavailable`] when the shared counter cannot
/// be reached; callers then fall back to a local one rather than refuse or allow everything.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    async fn check(&self, key: &str, rate: Rate) -> Result<Decision, StoreError>;

    /// Counts one request against several budgets at once (a client address and a user): allowed
    /// only when every budget allows it. The answer is the tightest of them. Shared limiters do
    /// this in one round trip and count nothing when any budget refuses.
    async fn check_all(&self, checks: &[(String, Rate)]) -> Result<Decision, StoreError> {
        let mut tightest = Decision::UNCOUNTED;
        for (key, rate) in checks {
            match self.check(key, *rate).await? {
                limited @ Decision::Limited { .. } => return Ok(limited),
                Decision::Allowed { remaining, reset_after } => tightest = tightest.tightest(remaining, reset_after),
            }
        }
        Ok(tightest)
    }
}
