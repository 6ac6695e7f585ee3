//! Rate limits shared by every instance: GCRA in one atomic Lua script. A budget large enough
//! to spare it lends each instance a lease of tokens (at most 1 % of it, for a second), spent
//! here without a round trip; small budgets, such as the defaults, are counted in Redis on every
//! request. Leased tokens are taken from the shared budget before they are spent, so instances
//! together never admit more than the budget; at worst a lease left unspent refuses a little
//! early. When Redis cannot be reached the check falls back to this instance's own limiter, so
//! limits keep working (per instance) instead of failing open or closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gad_domain::error::StoreError;
use gad_domain::limits::{Decision, Rate, RateLimiter};

use crate::pool::ThreadConnections;

/// GCRA over one or more budgets at once: each key holds the theoretical arrival time (ms) of
/// its next request. Each budget is asked for a cost (its lease) and grants what it can, at
/// least one; the request is allowed only if every budget grants, and then all of them advance
/// by what they granted. Redis's own clock is used so that instances with skewed clocks agree.
/// KEYS: the budgets; ARGV: period (ms), limit and cost of each, in the same order.
/// Reply: `{1, granted, remaining, reset_ms}` per budget, or `{0, retry_ms}`.
const GCRA: &str = r"
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local next_tats = {}
local reply = {1}
for i, key in ipairs(KEYS) do
  local period = tonumber(ARGV[3 * i - 2])
  local limit = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local granted = math.min(cost, math.floor((now + period - tat) / interval))
  if granted < 1 then
    return {0, math.ceil(tat + interval - period - now)}
  end
  local next_tat = tat + granted * interval
  next_tats[i] = next_tat
  reply[#reply + 1] = granted
  reply[#reply + 1] = math.max(0, math.floor((period - (next_tat - now)) / interval))
  reply[#reply + 1] = math.ceil(next_tat - now)
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tostring(next_tats[i]), 'PX', math.ceil(next_tats[i] - now))
end
return reply
";

/// A lease is at most this share of its budget (1 / n): budgets under twice this many requests
/// per period get leases of one token, that is none, so every request is counted in Redis.
const LEASE_SHARE: u32 = 100;
/// The most tokens one lease holds.
const LEASE_MAX: u32 = 1000;
/// How long leased tokens may be spent. Tokens left over lapse: they were counted in the shared
/// budget, which refills them with time as it does any spent token.
const LEASE_TTL: Duration = Duration::from_secs(1);
/// Lapsed leases are dropped every this many checks, so memory follows the active clients only.
const PRUNE_EVERY: u64 = 4096;

/// How many tokens one round trip asks a budget for.
fn lease_size(rate: Rate) -> u32 {
    (rate.limit / LEASE_SHARE).clamp(1, LEASE_MAX)
}

/// Tokens of one budget held by this instance.
#[derive(Debug, Clone, Copy)]
struct Lease {
    tokens: u32,
    /// What the shared budget had left when the lease was taken.
    shared_remaining: u32,
    /// When the shared budget will be whole again, as of the lease.
    whole_at: Instant,
    expires_at: Instant,
}

impl Lease {
    fn usable(&self, now: Instant) -> bool {
        self.tokens > 0 && self.expires_at > now
    }
}

/// This instance's leases, by budget key.
#[derive(Debug, Default)]
struct Leases {
    held: Mutex<HashMap<String, Lease>>,
    checks: AtomicU64,
}

impl Leases {
    /// Spends one token of every budget of the request if all of them hold a lease; otherwise
    /// what to ask the shared budgets for: a lease where this instance has none, one token
    /// where it has (that lease is kept for later requests).
    fn spend(&self, checks: &[(String, Rate)], now: Instant) -> Result<Decision, Vec<u32>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(PRUNE_EVERY) {
            held.retain(|_, lease| lease.usable(now));
        }
        let covered = |key: &String| held.get(key).is_some_and(|lease| lease.usable(now));
        if !checks.iter().all(|(key, _)| covered(key)) {
            return Err(checks.iter().map(|(key, rate)| if covered(key) { 1 } else { lease_size(*rate) }).collect());
        }
        let mut tightest = Decision::UNCOUNTED;
        for (key, _) in checks {
            if let Some(lease) = held.get_mut(key) {
                lease.tokens -= 1;
                tightest = tightest.tightest(
                    lease.shared_remaining.saturating_add(lease.tokens),
                    lease.whole_at.saturating_duration_since(now),
                );
            }
        }
        Ok(tightest)
    }

    /// Keeps what the shared budgets granted beyond this request, and answers for it.
    fn keep(&self, checks: &[(String, Rate)], grants: &[Grant], now: Instant) -> Decision {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tightest = Decision::UNCOUNTED;
        for ((key, rate), grant) in checks.iter().zip(grants) {
            let whole_at = now + grant.reset_after;
            let mut local = 0;
            if lease_size(*rate) > 1 {
                let fresh =
                    Lease { tokens: 0, shared_remaining: grant.remaining, whole_at, expires_at: now + LEASE_TTL };
                let lease = held.entry(key.clone()).or_insert(fresh);
                if !lease.usable(now) {
                    *lease = fresh;
                }
                lease.tokens += grant.granted - 1;
                lease.shared_remaining = grant.remaining;
                lease.whole_at = whole_at;
                local = lease.tokens;
            }
            tightest = tightest.tightest(grant.remaining.saturating_add(local), grant.reset_after);
        }
        tightest
    }
}

/// What one budget granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grant {
    granted: u32,
    remaining: u32,
    reset_after: Duration,
}

pub struct RedisRateLimiter {
    connections: ThreadConnections,
    script: redis::Script,
    key_prefix: String,
    leases: Leases,
    fallback: Arc<dyn RateLimiter>,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    pub(crate) fn new(connections: ThreadConnections, key_prefix: &str, fallback: Arc<dyn RateLimiter>) -> Self {
        Self {
            connections,
            script: redis::Script::new(GCRA),
            key_prefix: format!("{key_prefix}rl:"),
            leases: Leases::default(),
            fallback,
        }
    }

    /// Asks every budget for its cost in one round trip: what each granted, or how long until
    /// the request would be allowed.
    async fn shared(&self, checks: &[(String, Rate)], costs: &[u32]) -> Result<Result<Vec<Grant>, Duration>, String> {
        let mut conn = self.connections.get()?;
        let mut invocation = self.script.prepare_invoke();
        for ((key, rate), cost) in checks.iter().zip(costs) {
            let period_ms = u64::try_from(rate.period.as_millis()).unwrap_or(u64::MAX);
            invocation.key(format!("{}{key}", self.key_prefix)).arg(period_ms).arg(rate.limit).arg(*cost);
        }
        let reply: Vec<i64> = invocation.invoke_async(&mut conn).await.map_err(|error| error.to_string())?;
        let millis = |value: i64| Duration::from_millis(u64::try_from(value).unwrap_or(0));
        let count = |value: i64| u32::try_from(value).unwrap_or(0);
        match reply.as_slice() {
            [0, retry_ms] => Ok(Err(millis(*retry_ms))),
            [1, grants @ ..] if grants.len() == 3 * checks.len() => Ok(Ok(grants
                .chunks_exact(3)
                .map(|grant| Grant {
                    granted: count(grant[0]).max(1),
                    remaining: count(grant[1]),
                    reset_after: millis(grant[2]),
                })
                .collect())),
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
        let costs = match self.leases.spend(checks, Instant::now()) {
            Ok(decision) => return Ok(decision),
            Err(costs) => costs,
        };
        match self.shared(checks, &costs).await {
            Ok(Ok(grants)) => Ok(self.leases.keep(checks, &grants, Instant::now())),
            Ok(Err(retry_after)) => Ok(Decision::Limited { retry_after }),
            Err(error) => {
                metrics::counter!("rate_limit_fallbacks_total").increment(1);
                tracing::warn!(%error, "shared rate limit unavailable; limiting on this instance");
                self.fallback.check_all(checks).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use gad_test_support::TestRedis;

    use super::*;
    use crate::{Redis, RedisSettings};

    /// Stands in for the in-process limiter: these tests must never reach it.
    struct NoFallback;

    #[async_trait]
    impl RateLimiter for NoFallback {
        async fn check(&self, _: &str, _: Rate) -> Result<Decision, StoreError> {
            Err(StoreError::Unavailable("the shared budget was not reached".into()))
        }
    }

    /// An instance's limiter on the test's Redis.
    fn instance(test: &TestRedis) -> RedisRateLimiter {
        let settings = RedisSettings {
            url: Some(test.url().to_owned()),
            max_connections: 2,
            timeout: Duration::from_secs(2),
            key_prefix: test.prefix().to_owned(),
        };
        Redis::connect(&settings).unwrap().unwrap().rate_limiter(Arc::new(NoFallback))
    }

    /// A budget that refills by one request a day: nothing refills during a test.
    fn per_day(limit: u32) -> Rate {
        Rate { limit, period: Duration::from_secs(86_400) }
    }

    fn remaining(decision: Result<Decision, StoreError>) -> u32 {
        match decision {
            Ok(Decision::Allowed { remaining, .. }) => remaining,
            other => panic!("expected an allowed request, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_large_budget_is_leased_and_the_lease_is_spent_locally() {
        let test = TestRedis::new();
        let (first, second) = (instance(&test), instance(&test));
        let rate = per_day(1000);
        assert_eq!(lease_size(rate), 10);
        // The first request leases 10 tokens: 990 left in Redis, 9 held by the first instance.
        assert_eq!(remaining(first.check("ip:192.0.2.1", rate).await), 999);
        // The second instance sees the lease gone from the shared budget and takes its own.
        assert_eq!(remaining(second.check("ip:192.0.2.1", rate).await), 989);
        // The first spends its lease without asking Redis, which still says 990 as of its lease.
        assert_eq!(remaining(first.check("ip:192.0.2.1", rate).await), 998);
    }

    #[tokio::test]
    async fn instances_together_never_admit_more_than_the_budget() {
        let test = TestRedis::new();
        let instances = [instance(&test), instance(&test)];
        let rate = per_day(1000);
        let mut admitted = 0;
        let mut refused = [false, false];
        while !refused.iter().all(|refused| *refused) {
            for (index, limiter) in instances.iter().enumerate() {
                match limiter.check("user:budget", rate).await.unwrap() {
                    Decision::Allowed { .. } => admitted += 1,
                    Decision::Limited { retry_after } => {
                        assert!(retry_after > Duration::ZERO);
                        refused[index] = true;
                    }
                }
            }
        }
        assert!(admitted <= 1000, "admitted {admitted} of a budget of 1000");
        assert!(admitted >= 1000 - 2 * lease_size(rate), "unspent leases refused too early: {admitted}");
    }

    #[tokio::test]
    async fn a_small_budget_counts_every_request_in_redis_even_beside_a_lease() {
        let test = TestRedis::new();
        let (first, second) = (instance(&test), instance(&test));
        let checks = [("ip:192.0.2.7".to_owned(), per_day(1000)), ("user:small".to_owned(), per_day(3))];
        assert_eq!(lease_size(per_day(3)), 1, "small budgets are never leased");
        assert_eq!(remaining(first.check_all(&checks).await), 2);
        assert_eq!(remaining(second.check_all(&checks).await), 1);
        assert_eq!(remaining(first.check_all(&checks).await), 0);
        assert!(matches!(second.check_all(&checks).await, Ok(Decision::Limited { .. })));
        assert!(matches!(first.check_all(&checks).await, Ok(Decision::Limited { .. })), "refused on both instances");
        // The address budget lost the two leases and the third request, counted in Redis: a
        // third instance leases 10 of the 979 left and holds 9 after its request.
        assert_eq!(remaining(instance(&test).check("ip:192.0.2.7", per_day(1000)).await), 979 - 10 + 9);
    }
}
