//! One connection: a task that selects over the client's frames, its outbound queue, its close
//! signal and one timer (heartbeat ping or idle deadline, whichever comes first).

use std::sync::Arc;
use std::time::Duration;

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, ProtocolError, Session};
use bytestring::ByteString;
use gad_domain::events::{Event, ReplayStart, Topic, TopicError};
use serde_json::json;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::hub::{Outbound, Registration, Subscribed, close};
use crate::protocol::{self, ClientMessage};
use crate::{Realtime, WsSettings};

/// Client messages allowed per second before they are refused with `rate_limited`.
const MESSAGES_PER_SECOND: u32 = 50;
/// Events read per replay query.
const REPLAY_PAGE: i64 = 500;

pub(crate) struct Connection {
    pub(crate) realtime: Realtime,
    pub(crate) registration: Registration,
    pub(crate) session: Session,
    /// Live events up to here were already sent by a replay (or predate what the client has).
    skip_until: i64,
    /// The highest `seq` the live stream has handed this connection (sent or skipped).
    live_through: i64,
    window_start: Instant,
    window_count: u32,
    /// Handles resolved once: events are the hot path.
    events_sent: metrics::Counter,
    delivery_latency: metrics::Histogram,
    fanout_latency: metrics::Histogram,
}

enum Flow {
    Continue,
    Close(Option<CloseReason>),
}

fn reason(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason { code: CloseCode::from(code), description: Some(description.to_owned()) })
}

impl Connection {
    pub(crate) fn new(realtime: Realtime, registration: Registration, session: Session) -> Self {
        Self {
            realtime,
            registration,
            session,
            skip_until: 0,
            live_through: 0,
            window_start: Instant::now(),
            window_count: 0,
            events_sent: metrics::counter!("ws_messages_sent_total", "type" => "event"),
            delivery_latency: metrics::histogram!("ws_delivery_latency_seconds"),
            fanout_latency: metrics::histogram!("ws_fanout_latency_seconds"),
        }
    }

    fn settings(&self) -> &WsSettings {
        &self.realtime.settings
    }

    pub(crate) async fn run(mut self, stream: MessageStream) {
        let mut stream = stream.max_frame_size(self.settings().max_frame_bytes);
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
        let mut flow = self.send("connection_ack", ack).await;
        let mut last_seen = Instant::now();
        let mut next_ping = Instant::now() + heartbeat;
        let timer = tokio::time::sleep_until(next_ping.min(last_seen + idle_timeout));
        tokio::pin!(timer);
        while let Flow::Continue = flow {
            flow = tokio::select! {
                biased;
                () = shared.close.notified() => {
                    let code = shared.close_code().unwrap_or(close::GOING_AWAY);
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
                item = self.registration.rx.recv() => match item {
                    Some(item) => self.deliver(item).await,
                    None => Flow::Close(None),
                },
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= last_seen + idle_timeout {
                        metrics::counter!("ws_closes_total", "reason" => "idle").increment(1);
                        Flow::Close(reason(1000, "idle timeout"))
                    } else {
                        next_ping = now + heartbeat;
                        timer.as_mut().reset(next_ping.min(last_seen + idle_timeout));
                        if self.session.ping(b"").await.is_err() { Flow::Close(None) } else { Flow::Continue }
                    }
                }
            };
        }
        if let Flow::Close(reason) = flow {
            // A peer that does not read cannot hold the task: the close gets a bounded wait.
            let _ = tokio::time::timeout(Duration::from_secs(2), self.session.clone().close(reason)).await;
        }
    }

    async fn send(&mut self, kind: &'static str, frame: ByteString) -> Flow {
        metrics::counter!("ws_messages_sent_total", "type" => kind).increment(1);
        match self.session.text(frame).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Close(None),
        }
    }

    async fn deliver(&mut self, item: Outbound) -> Flow {
        match item {
            Outbound::Event { seq, created_at, read_at, frame } => {
                self.live_through = self.live_through.max(seq);
                if seq <= self.skip_until {
                    return Flow::Continue;
                }
                self.events_sent.increment(1);
                let flow = match self.session.text(frame).await {
                    Ok(()) => Flow::Continue,
                    Err(_) => Flow::Close(None),
                };
                let latency = (OffsetDateTime::now_utc() - created_at).as_seconds_f64().max(0.0);
                self.delivery_latency.record(latency);
                self.fanout_latency.record(read_at.elapsed().as_secs_f64());
                flow
            }
            Outbound::Control(frame) => self.send("error", frame).await,
        }
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
                    return self
                        .send("error", protocol::error("rate_limited", "too many messages; slow down", None))
                        .await;
                }
                match ClientMessage::parse(&text) {
                    Ok(message) => self.on_client_message(message).await,
                    Err(fault) => {
                        metrics::counter!("ws_messages_received_total", "type" => "invalid").increment(1);
                        self.send("error", protocol::error(fault.code, &fault.message, None)).await
                    }
                }
            }
            Message::Binary(_) => {
                metrics::counter!("ws_messages_received_total", "type" => "binary").increment(1);
                self.send("error", protocol::error("unsupported_frame", "only JSON text frames are understood", None))
                    .await
            }
            Message::Ping(payload) => match self.session.pong(&payload).await {
                Ok(()) => Flow::Continue,
                Err(_) => Flow::Close(None),
            },
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
                self.send("pong", protocol::control("pong", json!({}), None)).await
            }
            ClientMessage::Subscribe(topics) => {
                metrics::counter!("ws_messages_received_total", "type" => "subscribe").increment(1);
                self.subscribe(topics).await
            }
            ClientMessage::Unsubscribe(topics) => {
                metrics::counter!("ws_messages_received_total", "type" => "unsubscribe").increment(1);
                let shared = Arc::clone(&self.registration.shared);
                let mut done = Vec::new();
                for raw in topics {
                    if let Ok(topic) = Topic::parse(&raw) {
                        self.realtime.hub.unsubscribe(&shared, topic);
                    }
                    done.push(raw);
                }
                let frame = protocol::control("unsubscribed", json!({ "topics": done }), Some(("topics", json!(done))));
                self.send("unsubscribed", frame).await
            }
            ClientMessage::Resume(since) => {
                metrics::counter!("ws_messages_received_total", "type" => "resume").increment(1);
                self.resume(since).await
            }
        }
    }

    async fn subscribe(&mut self, topics: Vec<String>) -> Flow {
        let shared = Arc::clone(&self.registration.shared);
        let mut accepted: Vec<String> = Vec::new();
        for raw in topics {
            let refusal = match Topic::parse(&raw) {
                Err(TopicError::Unknown) => Some(("unknown_topic", "no such topic")),
                Err(TopicError::Forbidden) => Some(("forbidden_topic", "this topic is not available to you")),
                Ok(topic) => match self.check(topic).await {
                    Err(TopicError::Forbidden) => Some(("forbidden_topic", "this topic is not available to you")),
                    Err(TopicError::Unknown) => Some(("unavailable", "the topic cannot be checked now; retry")),
                    Ok(()) => match self.realtime.hub.subscribe(&shared, topic) {
                        Subscribed::Yes => None,
                        Subscribed::TooMany => Some(("too_many_topics", "the connection follows too many topics")),
                    },
                },
            };
            match refusal {
                None => accepted.push(raw),
                Some((code, message)) => {
                    if let Flow::Close(reason) = self.send("error", protocol::error(code, message, Some(&raw))).await {
                        return Flow::Close(reason);
                    }
                }
            }
        }
        if accepted.is_empty() {
            return Flow::Continue;
        }
        let frame = protocol::control("subscribed", json!({ "topics": accepted }), Some(("topics", json!(accepted))));
        self.send("subscribed", frame).await
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

    /// Sends what the client missed after `since` on its current topics, then `resumed`; or
    /// `resync_required` when the log no longer holds all of it. Events the live stream already
    /// sent on this connection (a client subscribes first, then resumes) are not sent again.
    async fn resume(&mut self, since: i64) -> Flow {
        // Everything committed now: what the relay has not dispatched yet is skipped when it
        // arrives live, because the replay already sent it.
        let head = match self.realtime.log.head().await {
            Ok(head) => head.max(self.realtime.hub.position()),
            Err(error) => return self.replay_failed(&error).await,
        };
        if since >= head {
            self.skip_until = self.skip_until.max(since);
            metrics::counter!("ws_replays_total", "outcome" => "resumed").increment(1);
            return self.send("resumed", protocol::control("resumed", json!({ "replayed": 0 }), None)).await;
        }
        let log = Arc::clone(&self.realtime.log);
        let too_many = head - since > self.settings().replay_max_events;
        let start = if too_many {
            Ok(ReplayStart::TooOld)
        } else {
            log.replay_start(since, self.settings().replay_retention).await
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
                return self.send("resync_required", frame).await;
            }
            Err(error) => return self.replay_failed(&error).await,
        }
        let shared = Arc::clone(&self.registration.shared);
        let topics = self.realtime.hub.topics(&shared);
        let mut after = since;
        let mut replayed = 0u64;
        while after < head {
            let page = match log.read(after, head, REPLAY_PAGE).await {
                Ok(page) => page,
                Err(error) => return self.replay_failed(&error).await,
            };
            let Some(last) = page.last() else { break };
            after = last.seq;
            for event in &page {
                if let Some(topic) = replayable_on(&topics, shared.actor, event, self.live_through) {
                    replayed += 1;
                    if let Flow::Close(reason) = self.send("event", protocol::event(event, &topic.to_string())).await {
                        return Flow::Close(reason);
                    }
                }
            }
        }
        self.skip_until = self.skip_until.max(head);
        metrics::counter!("ws_replays_total", "outcome" => "resumed").increment(1);
        metrics::counter!("ws_replayed_events_total").increment(replayed);
        self.send("resumed", protocol::control("resumed", json!({ "replayed": replayed }), None)).await
    }

    async fn replay_failed(&mut self, error: &gad_domain::error::StoreError) -> Flow {
        tracing::warn!(%error, "replay failed");
        metrics::counter!("ws_replays_total", "outcome" => "failed").increment(1);
        self.send("error", protocol::error("unavailable", "the event log cannot be read now; retry resume", None)).await
    }
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
