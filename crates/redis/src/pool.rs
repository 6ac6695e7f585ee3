//! One pooled set of multiplexed connections per instance; never a connection per operation.

use std::time::Duration;

use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use gad_domain::error::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub type RedisPool = Pool;

#[derive(Clone)]
pub struct RedisSettings {
    pub url: String,
    pub max_connections: usize,
    /// Bounds both waiting for a pooled connection and opening a new one.
    pub timeout: Duration,
    /// Prepended to every key, so that several deployments (or tests) can share one server.
    pub key_prefix: String,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("timeout", &self.timeout)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// Builds the pool; connections open lazily, so a Redis that is down shows in readiness.
pub fn build_pool(settings: &RedisSettings) -> Result<RedisPool, StoreError> {
    let mut config = Config::from_url(settings.url.clone());
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

/// One multiplexed connection shared by every request, reconnecting by itself: the hot paths
/// (rate limits, announcements) use it, because a pooled connection costs a health-check round
/// trip per checkout. Created lazily, so a Redis that is down does not stop the start.
pub fn shared_connection(settings: &RedisSettings) -> Result<ConnectionManager, StoreError> {
    let client = redis::Client::open(settings.url.as_str()).map_err(StoreError::unexpected)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.timeout))
        .set_response_timeout(Some(settings.timeout))
        .set_number_of_retries(1)
        .set_max_delay(settings.timeout);
    ConnectionManager::new_lazy_with_config(client, config).map_err(StoreError::unexpected)
}
