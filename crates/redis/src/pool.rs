//! One pooled set of multiplexed connections per instance; never a connection per operation.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use gad_domain::error::StoreError;
use gad_domain::limits::RateLimiter;
use gad_domain::settings;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use thread_local::ThreadLocal;
use uuid::Uuid;

use crate::{RedisCheck, RedisCommitAnnouncements, RedisRateLimiter, RedisResponseCache, RevocationChannel};

pub type RedisPool = Pool;

/// The `redis` section of the configuration.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `REDIS_URL`; unset (or empty) runs one instance with in-process state.
    #[serde(serialize_with = "settings::redacted_optional_url")]
    pub url: Option<String>,
    pub max_connections: usize,
    /// Bounds both waiting for a pooled connection and opening a new one.
    #[serde(rename = "timeout_ms", with = "settings::millis")]
    pub timeout: Duration,
    /// Prepended to every key, so that several deployments (or tests) can share one server.
    pub key_prefix: String,
}

impl RedisSettings {
    /// Everything wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_connections == 0 {
            problems.push("redis.max_connections must be positive".into());
        }
        problems
    }
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .field("timeout", &self.timeout)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Redis, when configured: a pool for probes, one shared multiplexed connection for the hot
/// paths, and the adapters built on them.
#[derive(Clone)]
pub struct Redis {
    pool: RedisPool,
    connection: ConnectionManager,
    per_thread: ThreadConnections,
    url: String,
    settings: RedisSettings,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Redis {
    /// Redis as configured, or `None` without a URL. Connections open lazily, so a Redis that
    /// is down does not stop the start; readiness shows it.
    pub fn connect(settings: &RedisSettings) -> Result<Option<Self>, StoreError> {
        let Some(url) = settings.url.clone().filter(|url| !url.trim().is_empty()) else {
            return Ok(None);
        };
        let pool = build_pool(&url, settings)?;
        let (client, config) = connection_recipe(&url, settings)?;
        let connection =
            ConnectionManager::new_lazy_with_config(client.clone(), config.clone()).map_err(StoreError::unexpected)?;
        let per_thread = ThreadConnections { client, config, connections: Arc::new(ThreadLocal::new()) };
        Ok(Some(Self { pool, connection, per_thread, url, settings: settings.clone() }))
    }

    pub fn pool(&self) -> &RedisPool {
        &self.pool
    }

    /// Readiness: a `PING` within the configured timeout.
    pub fn check(&self) -> RedisCheck {
        RedisCheck::new(self.pool.clone(), self.settings.timeout)
    }

    /// Limits counted in Redis, in `fallback` while Redis is away.
    pub fn rate_limiter(&self, fallback: Arc<dyn RateLimiter>) -> RedisRateLimiter {
        RedisRateLimiter::new(self.per_thread.clone(), &self.settings.key_prefix, fallback)
    }

    pub fn response_cache(&self) -> RedisResponseCache {
        RedisResponseCache::new(self.connection.clone(), &self.settings.key_prefix)
    }

    pub fn revocation_channel(&self) -> Result<RevocationChannel, StoreError> {
        RevocationChannel::new(&self.url, self.connection.clone(), &self.settings.key_prefix)
    }

    /// Commit announcements between instances; `origin` names this one.
    pub fn commit_announcements(&self, origin: Uuid) -> Result<RedisCommitAnnouncements, StoreError> {
        RedisCommitAnnouncements::new(&self.url, self.connection.clone(), &self.settings.key_prefix, origin)
    }
}

/// Builds the pool; connections open lazily, so a Redis that is down shows in readiness.
fn build_pool(url: &str, settings: &RedisSettings) -> Result<RedisPool, StoreError> {
    let mut config = Config::from_url(url);
    config.pool = Some(PoolConfig {
        max_size: settings.max_connections,
        timeouts: Timeouts {
            wait: Some(settings.timeout),
            create: Some(settings.timeout),
            recycle: Some(settings.timeout),
        },
        ..PoolConfig::default()
    });
    config.create_pool(Some(Runtime::Tokio1)).map_err(StoreError::unexpected)
}

/// How the multiplexed connections of the hot paths (rate limits, announcements) are made: they
/// reconnect by themselves and are used without a checkout, because a pooled connection costs a
/// health-check round trip per checkout. Opened lazily, so a Redis that is down does not stop
/// the start.
fn connection_recipe(
    url: &str,
    settings: &RedisSettings,
) -> Result<(redis::Client, ConnectionManagerConfig), StoreError> {
    let client = redis::Client::open(url).map_err(StoreError::unexpected)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.timeout))
        .set_response_timeout(Some(settings.timeout))
        .set_number_of_retries(1)
        .set_max_delay(settings.timeout);
    Ok((client, config))
}

/// A connection per thread that uses it, opened on that thread's first use. A connection is
/// driven on the runtime that first uses it, and each HTTP worker thread runs a runtime of its
/// own: through one shared connection, every rate-limit check of a request would go from its
/// worker to another thread and back.
#[derive(Clone)]
pub(crate) struct ThreadConnections {
    client: redis::Client,
    config: ConnectionManagerConfig,
    connections: Arc<ThreadLocal<ConnectionManager>>,
}

impl ThreadConnections {
    pub(crate) fn get(&self) -> Result<ConnectionManager, String> {
        self.connections
            .get_or_try(|| ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()))
            .cloned()
            .map_err(|error| error.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use gad_test_support::TestRedis;

    use super::*;

    /// The server-side id of the connection `connections` gives the calling thread, twice.
    async fn client_ids(connections: &ThreadConnections) -> (i64, i64) {
        let mut first = connections.get().unwrap();
        let mut second = connections.get().unwrap();
        let first: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut first).await.unwrap();
        let second: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut second).await.unwrap();
        (first, second)
    }

    #[tokio::test]
    async fn each_thread_keeps_a_connection_of_its_own() {
        let test = TestRedis::new();
        let settings = RedisSettings {
            url: Some(test.url().to_owned()),
            max_connections: 2,
            timeout: Duration::from_secs(2),
            key_prefix: test.prefix().to_owned(),
        };
        let redis = Redis::connect(&settings).unwrap().unwrap();
        let (first, again) = client_ids(&redis.per_thread).await;
        assert_eq!(first, again, "one thread reuses its connection");

        let connections = redis.per_thread.clone();
        let (other, other_again) = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(client_ids(&connections))
        })
        .join()
        .unwrap();
        assert_eq!(other, other_again);
        assert_ne!(first, other, "another thread opens its own");
    }
}
