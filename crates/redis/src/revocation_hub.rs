//! Every instance refuses every revoked token, without a database round trip per request.
//!
//! Revocations are committed to PostgreSQL first (the source of truth), then announced over
//! Redis pub/sub; each instance keeps them in a `RevocationSet` in memory. An instance answers
//! from memory only while it is *in sync*: its subscription is up and it has caught up from
//! PostgreSQL since subscribing. Otherwise (Redis down, not yet caught up) it asks PostgreSQL
//! for each token, and refuses with 503 if that fails too: a revoked token is never accepted.
//! Without Redis there is one instance, which hears its own announcements.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use gad_domain::background::BackgroundJob;
use gad_domain::error::StoreError;
use gad_domain::users::{Revocation, RevocationLog, RevocationSet, Revocations, TokenIdentity};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::RevocationChannel;

/// How often the in-memory set is pruned and, as a safety net, caught up from PostgreSQL.
const HOUSEKEEPING_EVERY: StdDuration = StdDuration::from_secs(30);
/// How long to wait before listening again after the subscription failed.
const RESUBSCRIBE_AFTER: StdDuration = StdDuration::from_secs(1);

pub struct RevocationHub {
    set: RevocationSet,
    store: Arc<dyn RevocationLog>,
    channel: Option<RevocationChannel>,
    /// The subscription to announcements is up (always true in spirit without Redis).
    listening: AtomicBool,
    in_sync: AtomicBool,
    /// Rung once a subscription is in place: the catch-up that follows brings the hub in sync.
    subscribed: Notify,
    access_token_ttl: Duration,
}

impl std::fmt::Debug for RevocationHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationHub")
            .field("revocations", &self.set.len())
            .field("in_sync", &self.in_sync.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RevocationHub {
    /// A hub that starts out of sync; its `jobs` bring it in sync and keep it there.
    pub fn new(
        store: Arc<dyn RevocationLog>,
        channel: Option<RevocationChannel>,
        access_token_ttl: Duration,
    ) -> Arc<Self> {
        let listening = AtomicBool::new(channel.is_none());
        Arc::new(Self {
            set: RevocationSet::default(),
            store,
            channel,
            listening,
            in_sync: AtomicBool::new(false),
            subscribed: Notify::new(),
            access_token_ttl,
        })
    }

    /// Loads every revocation that can still matter.
    async fn catch_up(&self) -> Result<(), StoreError> {
        let since = OffsetDateTime::now_utc() - self.access_token_ttl - Duration::minutes(1);
        for revocation in self.store.revocations_since(since).await? {
            self.set.apply(revocation);
        }
        metrics::gauge!("auth_revocations_in_memory").set(self.set.len() as f64);
        Ok(())
    }

    fn set_in_sync(&self, in_sync: bool) {
        if self.in_sync.swap(in_sync, Ordering::SeqCst) != in_sync {
            tracing::info!(in_sync, "revocation list synchronisation changed");
        }
    }

    /// What keeps the hub in sync: housekeeping (pruning, and catching up periodically and
    /// after each new subscription) and, with Redis, listening for announcements (re-subscribing
    /// after failures).
    pub fn jobs(self: &Arc<Self>) -> Vec<BackgroundJob> {
        let mut jobs = vec![BackgroundJob::new("revocation housekeeping", Arc::clone(self).housekeeping())];
        if let Some(channel) = self.channel.clone() {
            jobs.push(BackgroundJob::new("revocation announcements", Arc::clone(self).listen(channel)));
        }
        jobs
    }

    async fn housekeeping(self: Arc<Self>) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_EVERY);
        loop {
            tokio::select! {
                _ = housekeeping.tick() => {
                    self.set.prune(OffsetDateTime::now_utc(), self.access_token_ttl);
                }
                // Caught up only after subscribing, so nothing falls between the two.
                () = self.subscribed.notified() => {}
            }
            match self.catch_up().await {
                Ok(()) if self.listening.load(Ordering::Acquire) => self.set_in_sync(true),
                Ok(()) => {}
                Err(error) => tracing::warn!(%error, "revocation catch-up failed"),
            }
        }
    }

    async fn listen(self: Arc<Self>, channel: RevocationChannel) {
        loop {
            let subscribed = || {
                self.listening.store(true, Ordering::Release);
                self.subscribed.notify_one();
            };
            let error = channel.listen(subscribed, |revocation| self.set.apply(revocation)).await;
            self.listening.store(false, Ordering::Release);
            self.set_in_sync(false);
            tracing::warn!(%error, "revocation announcements interrupted; checking PostgreSQL per request");
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
        }
    }
}

#[async_trait]
impl Revocations for RevocationHub {
    async fn is_revoked(&self, token: &TokenIdentity) -> Result<bool, StoreError> {
        if self.set.is_revoked(token) {
            return Ok(true);
        }
        if self.in_sync.load(Ordering::Acquire) {
            return Ok(false);
        }
        metrics::counter!("auth_revocation_fallback_checks_total").increment(1);
        self.store.is_revoked(token).await
    }

    fn known_revoked(&self, token: &TokenIdentity) -> bool {
        self.set.is_revoked(token)
    }

    fn generation(&self) -> u64 {
        self.set.generation()
    }

    async fn announce(&self, revocation: Revocation) {
        self.set.apply(revocation);
        if let Some(channel) = &self.channel
            && let Err(error) = channel.publish(&revocation).await
        {
            // The others are out of sync too if Redis is down; they ask PostgreSQL meanwhile.
            metrics::counter!("auth_revocation_publish_failures_total").increment(1);
            tracing::warn!(%error, "could not announce a revocation");
        }
    }
}
