//! What waits to be written to one socket, and the response body that writes it.
//!
//! The hub encodes each event once per topic and appends the finished WebSocket frame to every
//! follower's outbox; the socket's HTTP writer takes everything waiting in one piece. No task
//! sits between the relay and the socket, and frames that pile up go out in one write.
//!
//! The connection task appends its own frames (acknowledgements, replays, pings, the close) to
//! the same outbox, so the order the client sees is the order of the appends. While a replay
//! runs, live events are held back and released after it, minus those the replay covered.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use actix_http::ws::{CloseReason, OpCode, Parser};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use time::OffsetDateTime;
use tokio::sync::Notify;

/// A WebSocket text frame, encoded once and shared by every socket it goes to.
pub(crate) fn text_frame(payload: &str) -> Bytes {
    frame(payload.as_bytes(), OpCode::Text)
}

/// A WebSocket frame of `opcode` (server frames are not masked).
pub(crate) fn frame(payload: &[u8], opcode: OpCode) -> Bytes {
    let mut encoded = BytesMut::with_capacity(payload.len() + 10);
    Parser::write_message(&mut encoded, payload, opcode, true, false);
    encoded.freeze()
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The socket is closing or gone.
    Closed,
    /// More than the queue allows is waiting: the consumer is too slow.
    Full,
}

/// A live event held back while a replay runs.
#[derive(Debug)]
struct Held {
    seq: i64,
    created_at: OffsetDateTime,
    frame: Bytes,
}

#[derive(Debug, Default)]
struct State {
    /// Encoded frames not yet taken by the writer.
    pending: BytesMut,
    /// How many frames `pending` holds.
    frames: usize,
    /// When the oldest pending event was written to the log (delivery latency).
    oldest_event: Option<OffsetDateTime>,
    /// The writer, waiting for frames.
    writer: Option<Waker>,
    /// A close frame was queued: nothing follows it.
    closed: bool,
    replaying: bool,
    held: VecDeque<Held>,
    /// Live events up to here were already sent by a replay (or predate what the client has).
    skip_until: i64,
    /// The highest `seq` the live stream has handed this socket (sent or skipped).
    live_through: i64,
}

impl State {
    fn append(&mut self, frame: &[u8]) {
        self.pending.extend_from_slice(frame);
        self.frames += 1;
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }

    fn append_live(&mut self, seq: i64, created_at: OffsetDateTime, frame: &[u8]) {
        self.live_through = self.live_through.max(seq);
        if seq > self.skip_until {
            self.oldest_event.get_or_insert(created_at);
            self.append(frame);
        }
    }
}

/// The outbound side of one socket, shared by the hub, the connection task and the writer.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Room was made (the writer took what was pending).
    room: Notify,
    capacity: usize,
}

impl Outbox {
    /// An outbox that holds at most `capacity` frames for a writer that does not keep up.
    pub(crate) fn new(capacity: usize) -> Self {
        Self { state: Mutex::default(), room: Notify::new(), capacity: capacity.max(1) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a live event (called by the hub, in `seq` order, never waiting).
    pub(crate) fn push_event(&self, seq: i64, created_at: OffsetDateTime, frame: &Bytes) -> Result<(), Refused> {
        let mut state = self.state();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.frames + state.held.len() >= self.capacity {
            return Err(Refused::Full);
        }
        if state.replaying {
            state.held.push_back(Held { seq, created_at, frame: frame.clone() });
        } else {
            state.append_live(seq, created_at, frame);
        }
        Ok(())
    }

    /// Queues a frame of the connection's own (never refused for room: they are few and small).
    pub(crate) fn push_control(&self, frame: &[u8]) -> Result<(), Refused> {
        let mut state = self.state();
        if state.closed {
            return Err(Refused::Closed);
        }
        state.append(frame);
        Ok(())
    }

    /// Queues a replayed event, waiting while the writer has more than the queue allows.
    pub(crate) async fn push_replayed(&self, frame: &[u8]) -> Result<(), Refused> {
        loop {
            {
                let mut state = self.state();
                if state.closed {
                    return Err(Refused::Closed);
                }
                if state.frames < self.capacity {
                    state.append(frame);
                    return Ok(());
                }
            }
            self.room.notified().await;
        }
    }

    /// Holds live events back until [`Outbox::end_replay`]; returns how far the live stream
    /// had gone (what it already sent need not be replayed).
    pub(crate) fn begin_replay(&self) -> i64 {
        let mut state = self.state();
        state.replaying = true;
        state.live_through
    }

    /// Queues `frame` (the replay's outcome), then the held live events it did not cover:
    /// after this, live events up to `covered_through` are skipped.
    pub(crate) fn end_replay(&self, covered_through: i64, frame: &[u8]) -> Result<(), Refused> {
        let mut state = self.state();
        state.replaying = false;
        let held = std::mem::take(&mut state.held);
        if state.closed {
            return Err(Refused::Closed);
        }
        state.skip_until = state.skip_until.max(covered_through);
        state.append(frame);
        for event in held {
            state.append_live(event.seq, event.created_at, &event.frame);
        }
        Ok(())
    }

    /// Queues the close frame; what is still pending goes first, except for a slow consumer,
    /// whose backlog is dropped so that the close reaches it.
    pub(crate) fn close(&self, reason: Option<CloseReason>, drop_pending: bool) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        if drop_pending {
            state.pending.clear();
            state.frames = 0;
        }
        state.held.clear();
        let mut frame = BytesMut::new();
        Parser::write_close(&mut frame, reason, false);
        state.append(&frame);
        state.closed = true;
    }

    /// The socket is gone: nothing more is queued.
    pub(crate) fn shut(&self) {
        let mut state = self.state();
        state.closed = true;
        state.pending.clear();
        state.held.clear();
        state.frames = 0;
        self.room.notify_one();
    }
}

/// The response body of an upgraded socket: what its outbox holds, as it arrives.
pub(crate) struct OutboxBody {
    outbox: std::sync::Arc<Outbox>,
    /// actix-ws ends the inbound message stream when its own response body is dropped; it is
    /// kept here (never polled) so that the inbound stream ends when this socket does.
    _inbound_guard: BoxBody,
    /// Resolved once per socket: every write records into it.
    delivery_latency: metrics::Histogram,
}

impl OutboxBody {
    pub(crate) fn new(outbox: std::sync::Arc<Outbox>, inbound_guard: BoxBody) -> Self {
        let delivery_latency = metrics::histogram!("ws_delivery_latency_seconds");
        Self { outbox, _inbound_guard: inbound_guard, delivery_latency }
    }
}

impl MessageBody for OutboxBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        let outbox = &self.outbox;
        let mut state = outbox.state();
        if state.pending.is_empty() {
            if state.closed {
                return Poll::Ready(None);
            }
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let bytes = std::mem::take(&mut state.pending).freeze();
        let had_room = state.frames < outbox.capacity;
        state.frames = 0;
        let oldest_event = state.oldest_event.take();
        drop(state);
        if !had_room {
            outbox.room.notify_one();
        }
        if let Some(created_at) = oldest_event {
            let latency = (OffsetDateTime::now_utc() - created_at).as_seconds_f64().max(0.0);
            self.delivery_latency.record(latency);
        }
        Poll::Ready(Some(Ok(bytes)))
    }
}

impl Drop for OutboxBody {
    fn drop(&mut self) {
        self.outbox.shut();
    }
}
