//! Readiness of Redis: a `PING` through the pool within its timeouts.

use std::time::Duration;

use async_trait::async_trait;
use gad_domain::health::{DependencyCheck, DependencyStatus};

use crate::pool::RedisPool;

#[derive(Clone)]
pub struct RedisCheck {
    pool: RedisPool,
    timeout: Duration,
}

impl RedisCheck {
    pub fn new(pool: RedisPool, timeout: Duration) -> Self {
        Self { pool, timeout }
    }
}

impl std::fmt::Debug for RedisCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCheck").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

#[async_trait]
impl DependencyCheck for RedisCheck {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> DependencyStatus {
        let ping = async {
            let mut conn = self.pool.get().await.map_err(|error| error.to_string())?;
            redis::cmd("PING").query_async::<String>(&mut conn).await.map_err(|error| error.to_string())
        };
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(Ok(_)) => DependencyStatus::Up,
            Ok(Err(reason)) => DependencyStatus::Down(format!("unreachable: {reason}")),
            Err(_) => DependencyStatus::Down("timed out".into()),
        }
    }
}
