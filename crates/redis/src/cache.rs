//! Rendered responses shared by every instance (the statistics). A Redis that cannot be reached
//! is an empty cache: the caller computes the answer instead of failing.

use std::time::Duration;

use async_trait::async_trait;
use gad_domain::stats::ResponseCache;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

pub struct RedisResponseCache {
    connection: ConnectionManager,
    key_prefix: String,
}

impl std::fmt::Debug for RedisResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisResponseCache").field("key_prefix", &self.key_prefix).finish_non_exhaustive()
    }
}

impl RedisResponseCache {
    pub fn new(connection: ConnectionManager, key_prefix: &str) -> Self {
        Self { connection, key_prefix: format!("{key_prefix}cache:") }
    }
}

fn unavailable(error: &redis::RedisError) {
    metrics::counter!("response_cache_errors_total").increment(1);
    tracing::warn!(%error, "response cache unavailable; computing instead");
}

#[async_trait]
impl ResponseCache for RedisResponseCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut conn = self.connection.clone();
        conn.get(format!("{}{key}", self.key_prefix)).await.unwrap_or_else(|error| {
            unavailable(&error);
            None
        })
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) {
        let mut conn = self.connection.clone();
        let stored: Result<(), _> = conn.set_ex(format!("{}{key}", self.key_prefix), value, ttl.as_secs().max(1)).await;
        if let Err(error) = stored {
            unavailable(&error);
        }
    }
}
