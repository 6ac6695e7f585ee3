//! Updates are stored first and processed after: the webhook (and the poller) acknowledge an
//! update as soon as one insert has made it durable, and the instance that received it
//! processes it in the background. Each chat's updates go to one of a fixed number of
//! sequential shards, so that a chat's updates are processed in the order they arrived; chats
//! in different shards proceed in parallel. Who processes an update is decided in PostgreSQL by
//! a lease, so that no two instances ever process the same one: the receiving instance holds a
//! short one from the insert, and a sweep on every instance takes over what is left unfinished
//! (a full queue, a crash, a storage failure mid-processing).

use std::sync::Arc;
use std::time::Duration;

use gad_domain::background::BackgroundJob;
use gad_domain::error::StoreError;
use gad_domain::telegram::{StoredUpdate, UpdateInbox};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::bot::Bot;
use crate::types::Update;

/// Sequential processors; throughput is this many updates per processing time, which is mostly
/// the reply's round trip to the Bot API. Each holds a pooled connection only while it queries
/// (not while it waits for the Bot API), and from the pool's shared shard: processing runs on the
/// main runtime, never on the HTTP workers' connections.
const SHARDS: usize = 32;
/// Updates waiting in one shard; beyond that the sweep picks them up later.
const SHARD_QUEUE: usize = 256;
/// The receiving instance's lease from the insert: how long another instance waits before it
/// takes over an update the receiver has not started.
const RECEIPT_LEASE: Duration = Duration::from_secs(15);
/// The lease while an update is processed: longer than any processing (a few Bot API calls).
const PROCESSING_LEASE: Duration = Duration::from_secs(120);
/// How often each instance looks for updates whose lease ran out, and how many it takes at once.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
const SWEEP_BATCH: i64 = 100;
/// An update that failed this often is given up (logged), as Telegram gives up redelivering.
const MAX_ATTEMPTS: i32 = 8;
/// Marking an update processed is tried this often before the sweep is left to redo it.
const FINISH_TRIES: u32 = 3;

/// What became of a received update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored: it will be processed.
    Stored,
    /// Its `update_id` was stored before (a redelivery or another instance's update).
    Duplicate,
}

/// The entrance of the inbox: stores updates and hands them to this instance's processors.
#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn UpdateInbox>,
    /// This instance, as lease owner.
    owner: Uuid,
    shards: Arc<[mpsc::Sender<Update>]>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("owner", &self.owner).finish_non_exhaustive()
    }
}

impl Inbox {
    /// The inbox, and the job that processes what it receives and sweeps for abandoned updates.
    pub fn new(bot: Bot, store: Arc<dyn UpdateInbox>) -> (Self, BackgroundJob) {
        let owner = Uuid::now_v7();
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..SHARDS).map(|_| mpsc::channel(SHARD_QUEUE)).unzip();
        let inbox = Self { store: Arc::clone(&store), owner, shards: senders.into() };
        let processor = Processor { bot, store, owner };
        let job = BackgroundJob::new("telegram update processing", processor.run(receivers, inbox.clone()));
        (inbox, job)
    }

    /// Stores `update` (`raw` is its JSON as received) in one statement, then queues it for
    /// processing without waiting: a full queue leaves it to the sweep. An error means nothing
    /// was stored, and the update must not be acknowledged.
    pub async fn receive(&self, update: Update, raw: &str) -> Result<Received, StoreError> {
        let stored =
            StoredUpdate { update_id: update.update_id, chat_id: update.chat_id(), payload: Some(raw.to_owned()) };
        if !self.store.store(&stored, self.owner, RECEIPT_LEASE).await? {
            metrics::counter!("telegram_updates_total", "outcome" => "duplicate").increment(1);
            return Ok(Received::Duplicate);
        }
        if self.shard(&update).try_send(update).is_err() {
            metrics::counter!("telegram_updates_total", "outcome" => "deferred").increment(1);
        }
        Ok(Received::Stored)
    }

    fn shard(&self, update: &Update) -> &mpsc::Sender<Update> {
        let key = update.chat_id().unwrap_or(update.update_id);
        let index = usize::try_from(key.rem_euclid(SHARDS as i64)).unwrap_or_default();
        &self.shards[index]
    }
}

/// Processes updates, one at a time per shard.
#[derive(Clone)]
struct Processor {
    bot: Bot,
    store: Arc<dyn UpdateInbox>,
    owner: Uuid,
}

impl Processor {
    async fn run(self, receivers: Vec<mpsc::Receiver<Update>>, inbox: Inbox) {
        let mut tasks = tokio::task::JoinSet::new();
        for mut receiver in receivers {
            let processor = self.clone();
            tasks.spawn(async move {
                while let Some(update) = receiver.recv().await {
                    processor.process(&update).await;
                }
            });
        }
        tasks.spawn(self.sweep(inbox));
        // Dropping the set (the job stopped) aborts the shards and the sweep: what they had not
        // finished is unfinished in the inbox, for the sweep of whichever instance runs next.
        while tasks.join_next().await.is_some() {}
    }

    /// Processes `update` if this instance may: it is unfinished, and no other instance holds
    /// its lease.
    async fn process(&self, update: &Update) {
        let id = update.update_id;
        let attempts = match self.store.take(id, self.owner, PROCESSING_LEASE).await {
            Ok(Some(attempts)) => attempts,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, update_id = id, "cannot take an update; the sweep will retry it");
                return;
            }
        };
        if attempts > MAX_ATTEMPTS {
            metrics::counter!("telegram_updates_total", "outcome" => "abandoned").increment(1);
            tracing::error!(update_id = id, attempts, "an update failed too often; giving it up");
            self.finish(id).await;
            return;
        }
        match self.bot.handle(update).await {
            Ok(()) => self.finish(id).await,
            Err(error) => {
                let after = retry_delay(attempts);
                tracing::warn!(%error, update_id = id, ?after, "an update could not be processed; it will be retried");
                if let Err(error) = self.store.retry_later(id, self.owner, after).await {
                    tracing::warn!(%error, update_id = id, "cannot schedule the retry; the lease will run out");
                }
            }
        }
    }

    async fn finish(&self, update_id: i64) {
        for attempt in 1..=FINISH_TRIES {
            match self.store.finish(update_id).await {
                Ok(()) => return,
                Err(error) if attempt == FINISH_TRIES => {
                    tracing::error!(%error, update_id, "cannot mark an update processed; it may be processed again");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
            }
        }
    }

    /// Takes over unfinished updates whose lease ran out and hands them to the shards, oldest
    /// first. Waiting for room in a shard is fine here: nobody waits for the sweep.
    async fn sweep(self, inbox: Inbox) {
        let mut ticks = tokio::time::interval(SWEEP_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            loop {
                let taken = match self.store.take_over(SWEEP_BATCH, self.owner, PROCESSING_LEASE).await {
                    Ok(taken) => taken,
                    Err(error) => {
                        tracing::warn!(%error, "the sweep of unfinished Telegram updates failed");
                        break;
                    }
                };
                let full = i64::try_from(taken.len()).unwrap_or(i64::MAX) >= SWEEP_BATCH;
                for stored in taken {
                    metrics::counter!("telegram_updates_total", "outcome" => "taken_over").increment(1);
                    let parsed = stored.payload.as_deref().and_then(|payload| {
                        serde_json::from_str::<serde_json::Value>(payload).ok().and_then(|raw| Update::parse(&raw))
                    });
                    match parsed {
                        Some(update) => {
                            if inbox.shard(&update).send(update).await.is_err() {
                                return;
                            }
                        }
                        // Nothing left to process (it was stored unreadable): done.
                        None => self.finish(stored.update_id).await,
                    }
                }
                if !full {
                    break;
                }
            }
        }
    }
}

/// The pause after failed attempt number `attempt`: 1 s doubling, at most a minute.
fn retry_delay(attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or_default().min(6);
    Duration::from_secs(1 << exponent).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_a_minute() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(3), Duration::from_secs(4));
        assert_eq!(retry_delay(50), Duration::from_secs(60));
    }
}
