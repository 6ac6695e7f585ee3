//! The relay of one instance: tails the event log in `seq` order and hands each event to the
//! hub, exactly once.
//!
//! The event log is the truth. `seq` is global, gap-free and in commit order (events are
//! numbered after their commit, one numberer at a time, so a reader who has seen `n` never meets
//! a later event `<= n`), so reading `seq > position` in order yields every event once and in
//! order, whichever instance committed it. Wake-ups only say "read again": PostgreSQL
//! `NOTIFY gad_event_log` after each numbering, announcements from the other instances over Redis, and a periodic poll in case both
//! are lost. While PostgreSQL is down nothing is read and nothing is invented; live connections
//! stay open and catch up when it returns.

use std::sync::Arc;
use std::time::Duration;

use gad_domain::background::BackgroundJob;
use gad_domain::events::{CommitAnnouncements, EventLog};
use gad_domain::users::Revocations;
use tokio::sync::{Notify, watch};

use crate::hub::Hub;

/// Events read per query.
const BATCH: i64 = 500;
/// How long to wait before retrying after the database failed.
const RETRY_AFTER: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Relay {
    pub(crate) hub: Arc<Hub>,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) poll_interval: Duration,
    pub(crate) peers: Option<Arc<dyn CommitAnnouncements>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("position", &self.hub.position()).finish_non_exhaustive()
    }
}

impl Relay {
    /// The listener, the reader, the revocation sweeper and (with peers) the exchange of commit
    /// announcements with the other instances.
    pub(crate) fn jobs(self, revocations: Arc<dyn Revocations>, sweep_every: Duration) -> Vec<BackgroundJob> {
        let mut jobs = vec![
            BackgroundJob::new("event-log listener", listen(Arc::clone(&self.log), Arc::clone(&self.wake))),
            BackgroundJob::new("revocation sweeper", sweep(Arc::clone(&self.hub), revocations, sweep_every)),
        ];
        let announced = self.peers.clone().map(|peers| {
            let (progress, progressed) = watch::channel(0i64);
            let (hub, wake) = (Arc::clone(&self.hub), Arc::clone(&self.wake));
            jobs.push(BackgroundJob::new("commit announcements heard", hear_peers(Arc::clone(&peers), hub, wake)));
            jobs.push(BackgroundJob::new("commit announcements told", tell_peers(peers, progressed)));
            progress
        });
        jobs.push(BackgroundJob::new("relay", self.run(announced)));
        jobs
    }

    async fn run(self, announced: Option<watch::Sender<i64>>) {
        // Live delivery starts at the head of the log; older events are for `resume`.
        let start = loop {
            match self.log.head().await {
                Ok(head) => break head,
                Err(error) => {
                    tracing::warn!(%error, "the relay cannot read the event log yet");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        };
        self.hub.start_at(start);
        tracing::info!(position = start, "real-time relay started");
        loop {
            match self.catch_up().await {
                Ok(read) => {
                    if read > 0
                        && let Some(announced) = &announced
                    {
                        announced.send_replace(self.hub.position());
                    }
                }
                Err(error) => {
                    metrics::counter!("ws_relay_errors_total").increment(1);
                    tracing::warn!(%error, "the relay cannot read the event log; retrying");
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue;
                }
            }
            let _ = tokio::time::timeout(self.poll_interval, self.wake.notified()).await;
        }
    }

    /// Reads and dispatches everything after the position; returns how many events.
    async fn catch_up(&self) -> Result<usize, gad_domain::error::StoreError> {
        let mut total = 0;
        loop {
            let position = self.hub.position();
            let events = self.log.read(position, i64::MAX, BATCH).await?;
            let read_at = std::time::Instant::now();
            let count = events.len();
            for event in &events {
                // Gap-free by construction; a gap would mean a bug, never a reason to stall.
                if event.seq != self.hub.position() + 1 {
                    tracing::warn!(expected = self.hub.position() + 1, got = event.seq, "event-log gap");
                }
                self.hub.dispatch(event, read_at);
            }
            total += count;
            metrics::gauge!("ws_relay_position").set(self.hub.position() as f64);
            if count < BATCH as usize {
                return Ok(total);
            }
        }
    }
}

/// Closes connections whose token was revoked or expired; skips rounds in which no revocation
/// became known (expiry is still checked).
async fn sweep(hub: Arc<Hub>, revocations: Arc<dyn Revocations>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen_generation = u64::MAX;
    loop {
        interval.tick().await;
        let generation = revocations.generation();
        let closed = hub.sweep(&*revocations, generation != seen_generation);
        seen_generation = generation;
        if closed > 0 {
            tracing::info!(closed, "closed revoked or expired real-time connections");
        }
    }
}

/// Hears the other instances' commit announcements, waking the reader when they are ahead.
async fn hear_peers(peers: Arc<dyn CommitAnnouncements>, hub: Arc<Hub>, wake: Arc<Notify>) {
    loop {
        let heard = |seq: i64| {
            if seq > hub.position() {
                metrics::counter!("ws_relay_peer_wakeups_total").increment(1);
                wake.notify_one();
            }
        };
        let error = peers.listen(&heard).await;
        tracing::warn!(%error, "commit announcements from other instances interrupted; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Announces this instance's progress, coalesced, without ever blocking the reader.
async fn tell_peers(peers: Arc<dyn CommitAnnouncements>, mut progressed: watch::Receiver<i64>) {
    while progressed.changed().await.is_ok() {
        let seq = *progressed.borrow_and_update();
        if let Err(error) = peers.announce(seq).await {
            metrics::counter!("ws_relay_announce_failures_total").increment(1);
            tracing::debug!(%error, "could not announce commits to the other instances");
        }
    }
}

/// `LISTEN gad_event_log` on a dedicated connection, re-established after failures.
async fn listen(log: Arc<dyn EventLog>, wake: Arc<Notify>) {
    loop {
        match log.listen().await {
            Ok(mut notifications) => {
                // Whatever was committed while nobody listened is read now.
                wake.notify_one();
                loop {
                    if let Err(error) = notifications.next().await {
                        tracing::warn!(%error, "event-log listener lost; polling until it is back");
                        break;
                    }
                    wake.notify_one();
                }
            }
            Err(error) => tracing::debug!(%error, "cannot listen for event-log commits yet"),
        }
        metrics::counter!("ws_relay_listener_restarts_total").increment(1);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
