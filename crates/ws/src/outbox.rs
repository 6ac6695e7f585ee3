//! What waits to be written to one socket, and the response body that writes it.
//!
//! The hub encodes each event once per topic and appends the finished WebSocket frame (shared
//! bytes, not a copy) to every follower's outbox; the socket's HTTP writer takes everything
//! waiting in one piece. No task sits between the relay and the socket, and frames that pile up
//! go out in one write. The writers the hub makes ready are woken in batches, per worker thread,
//! by a task of that thread ([`WakeQueue`]), not one by one across threads.
//!
//! The connection task appends its own frames (acknowledgements, replays, pings, the close) to
//! the same outbox, so the order the client sees is the order of the appends. While a replay
//! runs, live events are held back and released after it, minus those the replay covered.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
    /// Encoded frames not yet taken by the writer (an event's frame is shared by its sockets).
    pending: VecDeque<Bytes>,
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
    /// Queues `frame`; returns the writer to wake, if it waits.
    #[must_use]
    fn append(&mut self, frame: Bytes) -> Option<Waker> {
        self.pending.push_back(frame);
        self.frames += 1;
        self.writer.take()
    }

    #[must_use]
    fn append_live(&mut self, seq: i64, created_at: OffsetDateTime, frame: &Bytes) -> Option<Waker> {
        self.live_through = self.live_through.max(seq);
        if seq > self.skip_until {
            self.oldest_event.get_or_insert(created_at);
            return self.append(frame.clone());
        }
        None
    }
}

fn wake(writer: Option<Waker>) {
    if let Some(writer) = writer {
        writer.wake();
    }
}

/// The outbound side of one socket, shared by the hub, the connection task and the writer.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Room was made (the writer took what was pending).
    room: Notify,
    capacity: usize,
    /// The wake queue of the worker thread that writes this socket (known from its first poll).
    wake_queue: OnceLock<Arc<WakeQueue>>,
}

impl Outbox {
    /// An outbox that holds at most `capacity` frames for a writer that does not keep up.
    pub(crate) fn new(capacity: usize) -> Self {
        Self { state: Mutex::default(), room: Notify::new(), capacity: capacity.max(1), wake_queue: OnceLock::new() }
    }

    /// The wake queue of the thread that writes this socket, once it has written.
    pub(crate) fn wake_queue(&self) -> Option<&Arc<WakeQueue>> {
        self.wake_queue.get()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a live event (called by the hub, in `seq` order, never waiting). Returns the
    /// writer to wake: the hub wakes the writers of one event in batches ([`Wakes`]).
    pub(crate) fn push_event(
        &self,
        seq: i64,
        created_at: OffsetDateTime,
        frame: &Bytes,
    ) -> Result<Option<Waker>, Refused> {
        let mut state = self.state();
        if state.closed {
            return Err(Refused::Closed);
        }
        if state.frames + state.held.len() >= self.capacity {
            return Err(Refused::Full);
        }
        if state.replaying {
            state.held.push_back(Held { seq, created_at, frame: frame.clone() });
            return Ok(None);
        }
        Ok(state.append_live(seq, created_at, frame))
    }

    /// Queues a frame of the connection's own (never refused for room: they are few and small).
    pub(crate) fn push_control(&self, frame: &[u8]) -> Result<(), Refused> {
        let mut state = self.state();
        if state.closed {
            return Err(Refused::Closed);
        }
        let writer = state.append(Bytes::copy_from_slice(frame));
        drop(state);
        wake(writer);
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
                    let writer = state.append(Bytes::copy_from_slice(frame));
                    drop(state);
                    wake(writer);
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
        let mut writer = state.append(Bytes::copy_from_slice(frame));
        for event in held {
            writer = writer.or(state.append_live(event.seq, event.created_at, &event.frame));
        }
        drop(state);
        wake(writer);
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
        let writer = state.append(frame.freeze());
        state.closed = true;
        drop(state);
        wake(writer);
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
    outbox: Arc<Outbox>,
    /// actix-ws ends the inbound message stream when its own response body is dropped; it is
    /// kept here (never polled) so that the inbound stream ends when this socket does.
    _inbound_guard: BoxBody,
    /// Resolved once per socket: every write records into it.
    delivery_latency: metrics::Histogram,
}

impl OutboxBody {
    pub(crate) fn new(outbox: Arc<Outbox>, inbound_guard: BoxBody) -> Self {
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
            if outbox.wake_queue.get().is_none() {
                // Polled on the worker thread that runs this socket.
                let _ = outbox.wake_queue.set(WakeQueue::current());
            }
            match &state.writer {
                Some(writer) if writer.will_wake(cx.waker()) => {}
                _ => state.writer = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let bytes = if state.pending.len() == 1 {
            state.pending.pop_front().unwrap_or_default()
        } else {
            let mut joined = BytesMut::with_capacity(state.pending.iter().map(Bytes::len).sum());
            for frame in state.pending.drain(..) {
                joined.extend_from_slice(&frame);
            }
            joined.freeze()
        };
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

/// The writers of one worker thread that an event made ready, woken by a task of that thread:
/// waking a writer from the relay's thread costs a cross-thread hand-off (and often a system
/// call) per socket; from its own thread it is a push on the local run queue.
#[derive(Debug, Default)]
pub(crate) struct WakeQueue {
    wakers: Mutex<Vec<Waker>>,
    ready: Notify,
    /// The task that drains this queue runs (it stops with its worker's runtime).
    alive: AtomicBool,
}

thread_local! {
    static WAKE_QUEUE: RefCell<Option<Arc<WakeQueue>>> = const { RefCell::new(None) };
}

/// Marks the queue dead when its task is dropped (its runtime stopped).
struct Alive(Arc<WakeQueue>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Release);
        for waker in std::mem::take(&mut *self.0.lock()) {
            waker.wake();
        }
    }
}

impl WakeQueue {
    /// The queue of the current worker thread, its task started on first use (or again, when the
    /// thread's runtime was replaced).
    fn current() -> Arc<Self> {
        WAKE_QUEUE.with(|cell| {
            let mut cell = cell.borrow_mut();
            if let Some(queue) = cell.as_ref().filter(|queue| queue.alive.load(Ordering::Acquire)) {
                return Arc::clone(queue);
            }
            let queue = Arc::new(Self { alive: AtomicBool::new(true), ..Self::default() });
            let alive = Alive(Arc::clone(&queue));
            actix_web::rt::spawn(async move {
                loop {
                    alive.0.ready.notified().await;
                    let wakers = std::mem::take(&mut *alive.0.lock());
                    for waker in wakers {
                        waker.wake();
                    }
                }
            });
            *cell = Some(Arc::clone(&queue));
            queue
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands `wakers` to the queue's thread; wakes them here when its task is gone.
    fn hand_over(&self, wakers: &mut Vec<Waker>) {
        {
            let mut queued = self.lock();
            if self.alive.load(Ordering::Acquire) {
                queued.append(wakers);
            }
        }
        for waker in wakers.drain(..) {
            waker.wake();
        }
        self.ready.notify_one();
    }
}

/// The writers one dispatch made ready, grouped by worker thread and handed over in batches
/// (the first sockets need not wait for the last to be queued).
#[derive(Default)]
pub(crate) struct Wakes {
    threads: Vec<(Arc<WakeQueue>, Vec<Waker>)>,
}

impl Wakes {
    /// Writers handed over at once.
    const BATCH: usize = 256;

    pub(crate) fn add(&mut self, queue: Option<&Arc<WakeQueue>>, writer: Waker) {
        let Some(queue) = queue else {
            writer.wake();
            return;
        };
        let index = match self.threads.iter().position(|(known, _)| Arc::ptr_eq(known, queue)) {
            Some(index) => index,
            None => {
                self.threads.push((Arc::clone(queue), Vec::with_capacity(Self::BATCH)));
                self.threads.len() - 1
            }
        };
        let (queue, writers) = &mut self.threads[index];
        writers.push(writer);
        if writers.len() >= Self::BATCH {
            queue.hand_over(writers);
        }
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        for (queue, writers) in &mut self.threads {
            if !writers.is_empty() {
                queue.hand_over(writers);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;
    use std::thread::ThreadId;
    use std::time::{Duration, Instant};

    use super::*;

    /// A writer that records where it was woken.
    #[derive(Default)]
    struct Writer {
        woken: AtomicUsize,
        threads: Mutex<Vec<ThreadId>>,
    }

    impl Wake for Writer {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.fetch_add(1, Ordering::AcqRel);
            self.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(std::thread::current().id());
        }
    }

    /// Hands `count` wakes of `writer` to `queue` from another thread, as the relay does.
    fn hand_over_elsewhere(queue: &Arc<WakeQueue>, writer: &Arc<Writer>, count: usize) {
        let (queue, waker) = (Arc::clone(queue), Waker::from(Arc::clone(writer)));
        let relay = std::thread::spawn(move || {
            let mut wakes = Wakes::default();
            for _ in 0..count {
                wakes.add(Some(&queue), waker.clone());
            }
        });
        assert!(relay.join().is_ok());
    }

    #[test]
    fn writers_are_woken_on_their_own_thread_and_directly_once_it_stopped() {
        let writer = Arc::new(Writer::default());
        let worker = std::thread::current().id();
        let queue = actix_web::rt::System::new().block_on({
            let writer = Arc::clone(&writer);
            async move {
                let queue = WakeQueue::current();
                assert!(Arc::ptr_eq(&queue, &WakeQueue::current()), "one queue per thread");
                // More than a batch: handed over in two parts, every one woken.
                hand_over_elsewhere(&queue, &writer, Wakes::BATCH + 44);
                let deadline = Instant::now() + Duration::from_secs(10);
                while writer.woken.load(Ordering::Acquire) < Wakes::BATCH + 44 && Instant::now() < deadline {
                    actix_web::rt::time::sleep(Duration::from_millis(1)).await;
                }
                queue
            }
        });
        assert_eq!(writer.woken.load(Ordering::Acquire), Wakes::BATCH + 44);
        let threads = std::mem::take(&mut *writer.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        assert!(threads.iter().all(|thread| *thread == worker), "woken on the worker's thread");

        // The worker's runtime is gone: nobody would drain its queue, so the hand-over wakes.
        assert!(!queue.alive.load(Ordering::Acquire));
        hand_over_elsewhere(&queue, &writer, 3);
        assert_eq!(writer.woken.load(Ordering::Acquire), Wakes::BATCH + 47);
        let threads = writer.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(threads.iter().all(|thread| *thread != worker));
    }
}
