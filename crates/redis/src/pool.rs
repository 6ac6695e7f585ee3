//! One pooled set of multiplexed connections per instance; never a connection per operation.

use std::time::Duration;

use deadpool_redis::{Config, Pool, PoolConfig, Runtime, Timeouts};
use gad_domain::error::StoreError;

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
