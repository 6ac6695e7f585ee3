//! One connection: a task that selects over the client's frames, its close signal and one timer
//! (heartbeat ping or idle deadline, whichever comes first), and answers in the socket's outbox.
//! Live events do not pass through it: the hub writes them to the outbox directly.

use std::sync::Arc;
use std::time::Duration;

use actix_http::ws::OpCode;
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, ProtocolError};
use bytestring::ByteString;
use gad_domain::events::{Event, ReplayStart, Topic, TopicError};
use serde_json::json;
use tokio::time::Instant;

use crate::hub::{Registration, close};
use crate::outbox::{self, Outbox};
use crate::protocol::{self, ClientMessage};
use crate::{Realtime, WsSettings};

/// Client messages allowed per second before they are refused with `rate_limited`.
const MESSAGES_PER_SECOND: u32 = 50;
/// Events read per replay query.
const REPLAY_PAGE: i64 = 500;

pub(crate) struct Connection {
    pub(crate) realtime: Realtime,
    pub(crate) registration: Registration,
    outbox: Arc<Outbox>,
    window_start: Instant,
    window_count: u32,
}

enum Flow {
    Continue,
    Close(Option<CloseReason>),
}

fn reason(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason { code: CloseCode::from(code), description: Some(description.to_owned()) })
}

impl Connection {
    pub(crate) fn new(realtime: Realtime, registration: Registration) -> Self {
        let outbox = Arc::clone(&registration.shared.outbox);
        Self { realtime, registration, outbox, window_start: Instant::now(), window_count: 0 }
    }

    fn settings(&self) -> &WsSettings {
        &self.realtime.settings
    }

    pub(crate) async fn run(mut self, stream: MessageStream) {
        let mut stream = stream.max_frame_size(crate::MAX_FRAME_BYTES);
        let heartbeat = self.settings().heartbeat_interval;
        let idle_timeout = self.settings().idle_timeout;
        let shared = Arc::clone(&self.registration.shared);
        let ack = protocol::control(
            "connection_ack",
            json!({
                "connection_id": shared.id.to_string(),
                "user_id": shared.actor.id,
                "role": shared.actor.role,
                "heartbeat_interval_s": heartbeat.as_secs(),
                "server_time": protocol::control_time(),
            }),
            None,
        );
        let mut flow = self.send("connection_ack", &ack);
        let mut last_seen = Instant::now();
        let mut next_ping = Instant::now() + heartbeat;
        let timer = tokio::time::sleep_until(next_ping.min(last_seen + idle_timeout));
        tokio::pin!(timer);
        while let Flow::Continue = flow {
            flow = tokio::select! {
                biased;
                () = shared.close.notified() => self.close_requested(),
                frame = stream.recv() => {
                    last_seen = Instant::now();
                    timer.as_mut().reset(next_ping.min(last_seen + idle_timeout));
                    match frame {
                        Some(Ok(message)) => self.on_message(message).await,
                        Some(Err(ProtocolError::Overflow)) => {
                            metrics::counter!("ws_closes_total", "reason" => "frame_too_large").increment(1);
                            Flow::Close(reason(1009, "frames are limited to 64 KiB"))
                        }
                        Some(Err(_)) => {
                            metrics::counter!("ws_closes_total", "reason" => "protocol_error").increment(1);
                            Flow::Close(reason(1002, "protocol error"))
                        }
                        None => {
                            metrics::counter!("ws_closes_total", "reason" => "client").increment(1);
                            return;
                        }
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= last_seen + idle_timeout {
                        metrics::counter!("ws_closes_total", "reason" => "idle").increment(1);
                        Flow::Close(reason(1000, "idle timeout"))
                    } else {
                        next_ping = now + heartbeat;
                        timer.as_mut().reset(next_ping.min(last_seen + idle_timeout));
                        self.queue("ping", &outbox::frame(b"", OpCode::Ping))
                    }
                }
            };
        }
        if let Flow::Close(reason) = flow {
            let slow_consumer = shared.close_code() == Some(close::SLOW_CONSUMER);
            self.outbox.close(reason, slow_consumer);
        }
    }

    /// The close the hub, the revocation sweeper or the shutdown asked for.
    fn close_requested(&self) -> Flow {
        let code = self.registration.shared.close_code().unwrap_or(close::GOING_AWAY);
        let description = match code {
            close::REVOKED => "token revoked or expired",
            close::SLOW_CONSUMER => "slow consumer",
            _ => "server going away",
        };
        if code == close::SLOW_CONSUMER {
            metrics::counter!("ws_closes_total", "reason" => "slow_consumer").increment(1);
        }
        Flow::Close(reason(code, description))
    }

    /// Queues one of the connection's own frames.
    fn queue(&self, kind: &'static str, frame: &[u8]) -> Flow {
        metrics::counter!("ws_messages_sent_total", "type" => kind).increment(1);
        match self.outbox.push_control(frame) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close(None),
        }
    }

    /// Queues one of the connection's own JSON messages.
    fn send(&self, kind: &'static str, message: &str) -> Flow {
        self.queue(kind, &outbox::text_frame(message))
    }

    fn rate_limited(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.window_count = 0;
        }
        self.window_count += 1;
        self.window_count > MESSAGES_PER_SECOND
    }

    async fn on_message(&mut self, message: Message) -> Flow {
        match message {
            Message::Text(text) => {
                if self.rate_limited() {
                    metrics::counter!("ws_messages_received_total", "type" => "rate_limited").increment(1);
                    return self.send("error", &protocol::error("rate_limited", "too many messages; slow down", None));
                }
                match ClientMessage::parse(&text) {
                    Ok(message) => self.on_client_message(message).await,
                    Err(fault) => {
                        metrics::counter!("ws_messages_received_total", "type" => "invalid").increment(1);
                        self.send("error", &protocol::error(fault.code, &fault.message, None))
                    }
                }
            }
            Message::Binary(_) => {
                metrics::counter!("ws_messages_received_total", "type" => "binary").increment(1);
                self.send("error", &protocol::error("unsupported_frame", "only JSON text frames are understood", None))
            }
            Message::Ping(payload) => self.queue("pong", &outbox::frame(&payload, OpCode::Pong)),
            Message::Pong(_) | Message::Nop => Flow::Continue,
            Message::Close(_) => {
                metrics::counter!("ws_closes_total", "reason" => "client").increment(1);
                Flow::Close(None)
            }
            // Fragmented messages are not part of the protocol; the 64 KiB limit covers one frame.
            Message::Continuation(_) => Flow::Close(reason(1003, "fragmented messages are not supported")),
        }
    }

    async fn on_client_message(&mut self, message: ClientMessage) -> Flow {
        match message {
            ClientMessage::Ping => {
                metrics::counter!("ws_messages_received_total", "type" => "ping").increment(1);
                self.send("pong", &protocol::control("pong", json!({}), None))
            }
            ClientMessage::Subscribe(topics) => {
                metrics::counter!("ws_messages_received_total", "type" => "subscribe").increment(1);
                self.subscribe(topics).await
            }
            ClientMessage::Unsubscribe(topics) => {
                metrics::counter!("ws_messages_received_total", "type" => "unsubscribe").increment(1);
                // SPEC §5 gives `unsubscribe` no answer: the events simply stop.
                let shared = Arc::clone(&self.registration.shared);
                for topic in topics.iter().filter_map(|raw| Topic::parse(raw).ok()) {
                    self.realtime.hub.unsubscribe(&shared, topic);
                }
                Flow::Continue
            }
            ClientMessage::Resume(since) => {
                metrics::counter!("ws_messages_received_total", "type" => "resume").increment(1);
                self.resume(since).await
            }
        }
    }

    async fn subscribe(&mut self, topics: Vec<String>) -> Flow {
        let mut allowed: Vec<(Topic, String)> = Vec::new();
        for raw in topics {
            let refusal = match Topic::parse(&raw) {
                Err(TopicError::Unknown) => ("forbidden_topic", "no such topic"),
                Err(TopicError::Forbidden) => ("forbidden_topic", "this topic is not available to you"),
                Ok(topic) => match self.check(topic).await {
                    Err(TopicError::Forbidden) => ("forbidden_topic", "this topic is not available to you"),
                    Err(TopicError::Unknown) => ("unavailable", "the topic cannot be checked now; retry"),
                    Ok(()) => {
                        allowed.push((topic, raw));
                        continue;
                    }
                },
            };
            if let Flow::Close(reason) = self.send("error", &protocol::error(refusal.0, refusal.1, Some(&raw))) {
                return Flow::Close(reason);
            }
        }
        if allowed.is_empty() {
            return Flow::Continue;
        }
        let shared = Arc::clone(&self.registration.shared);
        let too_many = self.realtime.hub.subscribe(&shared, allowed);
        for raw in too_many {
            let refusal = protocol::error("too_many_topics", "the connection follows too many topics", Some(&raw));
            if let Flow::Close(reason) = self.send("error", &refusal) {
                return Flow::Close(reason);
            }
        }
        Flow::Continue
    }

    /// The REST policy for the topic; `Unknown` here stands for "could not check" (store down).
    async fn check(&self, topic: Topic) -> Result<(), TopicError> {
        let actor = self.registration.shared.actor;
        match topic {
            Topic::Task(id) => match self.realtime.tasks.find(id).await {
                Ok(task) => topic.check_access(actor, task.as_ref()),
                Err(error) => {
                    tracing::warn!(%error, "cannot check a task subscription");
                    Err(TopicError::Unknown)
                }
            },
            _ => topic.check_access(actor, None),
        }
    }

    /// Sends what the client missed after `since` on its current topics (on every topic it may
    /// follow when it follows none yet), then `resumed`; or
    /// `resync_required` when the log no longer holds all of it. Live events wait in the outbox
    /// meanwhile; those the replay covered are then skipped, and those the live stream already
    /// sent on this connection (a client subscribes first, then resumes) are not replayed.
    async fn resume(&mut self, since: i64) -> Flow {
        let live_through = self.outbox.begin_replay();
        let (covered_through, outcome) = match self.replay(since, live_through).await {
            Ok(done) => done,
            Err(flow) => return flow,
        };
        let (kind, message) = outcome;
        metrics::counter!("ws_messages_sent_total", "type" => kind).increment(1);
        match self.outbox.end_replay(covered_through, &outbox::text_frame(&message)) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close(None),
        }
    }

    /// Replays into the outbox; returns how far the replay covered the log and the message
    /// that concludes it.
    async fn replay(&mut self, since: i64, live_through: i64) -> Result<(i64, (&'static str, ByteString)), Flow> {
        // Everything committed now: what the relay has not dispatched yet is skipped when it
        // arrives live, because the replay sends it.
        let head = match self.realtime.log.head().await {
            Ok(head) => head.max(self.realtime.hub.position()),
            Err(error) => return Ok((0, replay_failed(&error))),
        };
        if since >= head {
            metrics::counter!("ws_replays_total", "outcome" => "resumed").increment(1);
            return Ok((since, ("resumed", protocol::control("resumed", json!({ "replayed": 0 }), None))));
        }
        let log = Arc::clone(&self.realtime.log);
        let too_many = head - since > self.settings().replay_max_events;
        let start = if too_many {
            Ok(ReplayStart::TooOld)
        } else {
            log.replay_start(since, self.settings().replay_retention.try_into().unwrap_or(time::Duration::MAX)).await
        };
        match start {
            Ok(ReplayStart::Available) => {}
            Ok(ReplayStart::TooOld) => {
                metrics::counter!("ws_replays_total", "outcome" => "resync_required").increment(1);
                let frame = protocol::control(
                    "resync_required",
                    json!({ "since": since, "head": head, "message": "the log no longer holds every event after since; reload the state over the REST API" }),
                    None,
                );
                return Ok((0, ("resync_required", frame)));
            }
            Err(error) => return Ok((0, replay_failed(&error))),
        }
        let shared = Arc::clone(&self.registration.shared);
        let mut topics = self.realtime.hub.topics(&shared);
        if topics.is_empty() {
            // Resumed before subscribing: everything the caller may follow, none of it sent live.
            topics = [Topic::Tasks, Topic::Officers, Topic::Alerts, Topic::TasksMine]
                .into_iter()
                .filter(|topic| topic.check_access(shared.actor, None).is_ok())
                .map(|topic| (topic, i64::MAX))
                .collect();
        }
        let mut after = since;
        let mut replayed = 0u64;
        while after < head {
            let page = match log.read(after, head, REPLAY_PAGE).await {
                Ok(page) => page,
                Err(error) => return Ok((0, replay_failed(&error))),
            };
            let Some(last) = page.last() else { break };
            after = last.seq;
            for event in &page {
                let Some(topic) = replayable_on(&topics, shared.actor, event, live_through) else {
                    continue;
                };
                let frame = outbox::text_frame(&protocol::event(event, &topic.to_string()));
                tokio::select! {
                    pushed = self.outbox.push_replayed(&frame) => if pushed.is_err() {
                        return Err(Flow::Close(None));
                    },
                    () = shared.close.notified() => return Err(self.close_requested()),
                }
                replayed += 1;
            }
        }
        metrics::counter!("ws_replays_total", "outcome" => "resumed").increment(1);
        metrics::counter!("ws_replayed_events_total").increment(replayed);
        metrics::counter!("ws_messages_sent_total", "type" => "event").increment(replayed);
        Ok((head, ("resumed", protocol::control("resumed", json!({ "replayed": replayed }), None))))
    }
}

fn replay_failed(error: &gad_domain::error::StoreError) -> (&'static str, ByteString) {
    tracing::warn!(%error, "replay failed");
    metrics::counter!("ws_replays_total", "outcome" => "failed").increment(1);
    ("error", protocol::error("unavailable", "the event log cannot be read now; retry resume", None))
}

/// The topic a replay sends an event on, as the hub would pick it; `None` when no subscription
/// matches it or the live stream already sent it (a subscription older than the event, and the
/// live stream past it).
fn replayable_on(
    topics: &[(Topic, i64)],
    actor: gad_domain::users::policy::Actor,
    event: &Event,
    live_through: i64,
) -> Option<Topic> {
    let matching = || topics.iter().filter(|(topic, _)| topic.matches(actor, event));
    let sent_live = event.seq <= live_through && matching().any(|(_, subscribed_at)| *subscribed_at < event.seq);
    if sent_live {
        return None;
    }
    let rank = |topic: &Topic| match topic {
        Topic::Task(_) => 0,
        Topic::TasksMine => 1,
        _ => 2,
    };
    matching().map(|(topic, _)| *topic).min_by_key(rank)
}
