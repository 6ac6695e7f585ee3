//! Rate limits shared by every instance: GCRA in one atomic Lua script, one round trip per
//! check. When Redis cannot be reached the check falls back to this instance's own limiter, so
//! limits keep working (per instance) instead of failing open or closed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gad_domain::error::StoreError;
use gad_domain::limits::{Decision, Rate, RateLimiter};

use redis::aio::ConnectionManager;

/// GCRA: the key holds the theoretical arrival time (ms) of the next request. Redis's own clock
/// is used so that instances with skewed clocks agree.
const GCRA: &str = r"
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local interval = period / limit
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allowed_at = next_tat - period
if allowed_at > now then
  return {0, math.ceil(allowed_at - now), 0}
end
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now))
return {1, math.floor((period - (next_tat - now)) / interval), math.ceil(next_tat - now)}
";

pub struct RedisRateLimiter {
    connection: ConnectionManager,
    script: redis::Script,
    key_prefix: String,
    fallback: Arc<dyn RateLimiter>,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    pub fn new(connection: ConnectionManager, key_prefix: &str, fallback: Arc<dyn RateLimiter>) -> Self {
        Self { connection, script: redis::Script::new(GCRA), key_prefix: format!("{key_prefix}rl:"), fallback }
    }

    async fn shared(&self, key: &str, rate: Rate) -> Result<Decision, String> {
        let mut conn = self.connection.clone();
        let period_ms = u64::try_from(rate.period.as_millis()).unwrap_or(u64::MAX);
        let reply: Vec<i64> = self
            .script
            .key(format!("{}{key}", self.key_prefix))
            .arg(period_ms)
            .arg(rate.limit)
            .invoke_async(&mut conn)
            .await
            .map_err(|error| error.to_string())?;
        let millis = |value: i64| Duration::from_millis(u64::try_from(value).unwrap_or(0));
        match reply.as_slice() {
            [1, remaining, reset_ms] => Ok(Decision::Allowed {
                remaining: u32::try_from(*remaining).unwrap_or(0),
                reset_after: millis(*reset_ms),
            }),
            [0, retry_ms, _] => Ok(Decision::Limited { retry_after: millis(*retry_ms) }),
            other => Err(format!("unexpected rate-limit reply {other:?}")),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, rate: Rate) -> Result<Decision, StoreError> {
        match self.shared(key, rate).await {
            Ok(decision) => Ok(decision),
            Err(error) => {
                metrics::counter!("rate_limit_fallbacks_total").increment(1);
                tracing::warn!(%error, "shared rate limit unavailable; limiting on this instance");
                self.fallback.check(key, rate).await
            }
        }
    }
}
