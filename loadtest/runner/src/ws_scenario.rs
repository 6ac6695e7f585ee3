//! The blueprint's WebSocket scenario: subscribers that stay connected to `tasks` for the whole
//! run and must receive every event the HTTP scenario causes exactly once, in order; and a probe
//! that opens a fresh connection every interval to sample connect time under the load.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::ws::{Frame, Socket, handshake, request};

/// Connect and handshake give up after this long (counted as a failed connection).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Measurements every WebSocket client adds to.
#[derive(Debug, Default)]
pub struct WsRecorder {
    pub connect_ms: std::sync::Mutex<Vec<f64>>,
    pub connect_errors: std::sync::Mutex<Vec<String>>,
    pub message_ms: std::sync::Mutex<Vec<f64>>,
    pub events: AtomicU64,
}

impl WsRecorder {
    fn connected(&self, started: Instant) {
        self.connect_ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(started.elapsed().as_secs_f64() * 1000.0);
    }

    fn failed(&self, error: &anyhow::Error) {
        self.connect_errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(format!("{error:#}"));
    }
}

/// What one subscriber saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Ids of the tasks whose `task.created` arrived.
    pub created: HashSet<String>,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// The socket failed to open, or closed before the run ended.
    pub lost_connection: bool,
}

/// A connection subscribed to `tasks`, or why not within [`HANDSHAKE_TIMEOUT`].
async fn open(base: &str, token: &str) -> anyhow::Result<Socket> {
    let request = request(base, Some(token), None)?;
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(request, "tasks"))
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no `subscribed` within {HANDSHAKE_TIMEOUT:?}")))
}

/// Opens a subscriber (its connect time recorded) and reads until `stop` turns true.
pub async fn subscriber(
    base: String,
    token: String,
    recorder: Arc<WsRecorder>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen::default();
    let started = Instant::now();
    let mut socket = match open(&base, &token).await {
        Ok(socket) => socket,
        Err(error) => {
            recorder.failed(&error);
            seen.lost_connection = true;
            return seen;
        }
    };
    recorder.connected(started);
    let mut seqs = HashSet::new();
    let mut last_seq = i64::MIN;
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let received = OffsetDateTime::now_utc();
                    let Ok(frame) = serde_json::from_str::<Frame<'_>>(&text) else { continue };
                    let Some(seq) = frame.seq else { continue };
                    recorder.events.fetch_add(1, Ordering::Relaxed);
                    if !seqs.insert(seq) {
                        seen.duplicates += 1;
                        continue;
                    }
                    if seq <= last_seq {
                        seen.out_of_order += 1;
                    }
                    last_seq = last_seq.max(seq);
                    if let Some(latency) = frame.latency_ms(received) {
                        recorder.message_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(latency);
                    }
                    if frame.kind == "task.created" && let Some(id) = frame.data.and_then(|data| data.id) {
                        seen.created.insert(id.to_owned());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    seen.lost_connection = true;
                    break;
                }
            },
            _ = stop.changed() => break,
        }
    }
    let _ = socket.close(None).await;
    seen
}

/// Every `interval` until `stop`: a fresh connection through the handshake, then closed.
pub async fn probe(
    base: String,
    token: String,
    interval: Duration,
    recorder: Arc<WsRecorder>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let started = Instant::now();
        match open(&base, &token).await {
            Ok(mut socket) => {
                recorder.connected(started);
                let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
            }
            Err(error) => recorder.failed(&error),
        }
    }
}
