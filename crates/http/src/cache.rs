//! Version-keyed response caching (the statistics), and the in-process cache used without Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gad_domain::error::StoreError;
use gad_domain::stats::{CACHE_TTL, ResponseCache, Versioned};
use serde::Serialize;

/// A JSON body and whether it came from the cache (`X-Cache: hit|miss`).
pub(crate) struct CachedJson {
    pub(crate) body: Vec<u8>,
    pub(crate) hit: bool,
}

/// The body stored under `key` at the data's current version, or a freshly computed one, stored
/// under the version it was computed from (which may already be newer than the one looked up).
/// Without a version (a change not yet numbered) the cache is neither read nor written.
pub(crate) async fn versioned_json<T, Compute, Fut>(
    cache: &dyn ResponseCache,
    current_version: Option<i64>,
    key: impl Fn(i64) -> String,
    compute: Compute,
) -> Result<CachedJson, StoreError>
where
    T: Serialize,
    Compute: FnOnce() -> Fut,
    Fut: Future<Output = Result<Versioned<T>, StoreError>>,
{
    if let Some(version) = current_version
        && let Some(body) = cache.get(&key(version)).await
    {
        return Ok(CachedJson { body, hit: true });
    }
    let computed = compute().await?;
    let body = serde_json::to_vec(&computed.value).map_err(StoreError::unexpected)?;
    if let Some(version) = computed.version {
        cache.put(&key(version), &body, CACHE_TTL).await;
    }
    Ok(CachedJson { body, hit: false })
}

/// Entries kept at most; when full, expired entries go first, then everything.
const CAPACITY: usize = 1024;

/// One instance's cache, for running without Redis.
#[derive(Debug, Default)]
pub struct InProcessResponseCache {
    entries: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
}

impl InProcessResponseCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Vec<u8>)>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ResponseCache for InProcessResponseCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let entries = self.entries();
        entries.get(key).filter(|(expires, _)| *expires > Instant::now()).map(|(_, body)| body.clone())
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) {
        let now = Instant::now();
        let mut entries = self.entries();
        if entries.len() >= CAPACITY {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (now + ttl, value.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_and_capacity_is_bounded() {
        let cache = InProcessResponseCache::default();
        cache.put("short", b"1", Duration::ZERO).await;
        cache.put("long", b"2", Duration::from_secs(60)).await;
        assert_eq!(cache.get("short").await, None);
        assert_eq!(cache.get("long").await.as_deref(), Some(&b"2"[..]));
        for index in 0..CAPACITY * 2 {
            cache.put(&index.to_string(), b"x", Duration::from_secs(60)).await;
        }
        assert!(cache.entries().len() <= CAPACITY);
    }
}
