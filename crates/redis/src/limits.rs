//! Rate limits shared by every instance: GCRA in one atomic Lua script, one round trip per
//! check. When Redis cannot be reached the check falls back to this instance's own limiter, so
//! limits keep working (per instance) instead of failing open or closed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gad_domain::error::StoreError;
use gad_domain::limits::{Decision, Rate, RateLimiter};

use crate::pool::ThreadConnections;

/// GCRA over one or more budgets at once: each key holds the theoretical arrival time (ms) of
/// its next request; the request is allowed only if every budget allows it, and then all of them
/// advance. Redis's own clock is used so that instances with skewed clocks agree.
/// KEYS: the budgets; ARGV: period (ms) and limit of each, in the same order.
const GCRA: &str = r"
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local next_tats = {}
local remaining = nil
local reset = 0
for i, key in ipairs(KEYS) do
  local period = tonumber(ARGV[2 * i - 1])
  local limit = tonumber(ARGV[2 * i])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local next_tat = tat + interval
  local allowed_at = next_tat - period
  if allowed_at > now then
    return {0, math.ceil(allowed_at - now), 0}
  end
  next_tats[i] = next_tat
  local left = math.floor((period - (next_tat - now)) / interval)
  if remaining == nil or left < remaining then
    remaining = left
    reset = math.ceil(next_tat - now)
  end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tostring(next_tats[i]), 'PX', math.ceil(next_tats[i] - now))
end
return {1, remaining, reset}
";

pub struct RedisRateLimiter {
    connections: ThreadConnections,
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
    pub(crate) fn new(connections: ThreadConnections, key_prefix: &str, fallback: Arc<dyn RateLimiter>) -> Self {
        Self { connections, script: redis::Script::new(GCRA), key_prefix: format!("{key_prefix}rl:"), fallback }
    }

    async fn shared(&self, checks: &[(String, Rate)]) -> Result<Decision, String> {
        let mut conn = self.connections.get()?;
        let mut invocation = self.script.prepare_invoke();
        for (key, rate) in checks {
            let period_ms = u64::try_from(rate.period.as_millis()).unwrap_or(u64::MAX);
            invocation.key(format!("{}{key}", self.key_prefix)).arg(period_ms).arg(rate.limit);
        }
        let reply: Vec<i64> = invocation.invoke_async(&mut conn).await.map_err(|error| error.to_string())?;
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
        self.check_all(&[(key.to_owned(), rate)]).await
    }

    async fn check_all(&self, checks: &[(String, Rate)]) -> Result<Decision, StoreError> {
        match self.shared(checks).await {
            Ok(decision) => Ok(decision),
            Err(error) => {
                metrics::counter!("rate_limit_fallbacks_total").increment(1);
                tracing::warn!(%error, "shared rate limit unavailable; limiting on this instance");
                self.fallback.check_all(checks).await
            }
        }
    }
}
