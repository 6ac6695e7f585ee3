//! The hub of one instance: its live connections, what each follows, and the fan-out of each
//! event to the local subscribers. The relay is its only writer of events, in `seq` order.
//!
//! Every connection has a bounded outbox. The relay never waits on a connection: when an outbox
//! is full the connection is closed with 1013 (slow consumer) and the others carry on.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use actix_web::web::Bytes;
use gad_domain::events::{Event, Topic};
use gad_domain::tasks::task::TaskId;
use gad_domain::users::policy::Actor;
use gad_domain::users::{Revocations, TokenIdentity, UserId};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::outbox::{Outbox, Refused, Wakes, text_frame};
use crate::protocol;

/// Close codes of this service.
pub mod close {
    /// The token was revoked or expired (logout, deactivation, role change, expiry).
    pub const REVOKED: u16 = 4401;
    /// The outbound queue overflowed.
    pub const SLOW_CONSUMER: u16 = 1013;
    /// The instance is shutting down.
    pub const GOING_AWAY: u16 = 1001;
}

pub(crate) type ConnectionId = u64;

/// The part of a connection the hub and the connection task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: ConnectionId,
    pub(crate) actor: Actor,
    pub(crate) identity: TokenIdentity,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) outbox: Arc<Outbox>,
    close_code: AtomicU16,
    closing: AtomicBool,
    pub(crate) close: Notify,
}

impl Shared {
    /// Asks the connection to close with `code` (the first request wins).
    pub(crate) fn close_with(&self, code: u16) {
        if !self.closing.swap(true, Ordering::AcqRel) {
            self.close_code.store(code, Ordering::Release);
            self.close.notify_one();
        }
    }

    pub(crate) fn close_code(&self) -> Option<u16> {
        self.closing.load(Ordering::Acquire).then(|| self.close_code.load(Ordering::Acquire))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Tasks,
    Officers,
    Alerts,
    Mine(UserId),
    Task(TaskId),
}

fn key(topic: Topic, actor: Actor) -> Key {
    match topic {
        Topic::Tasks => Key::Tasks,
        Topic::Officers => Key::Officers,
        Topic::Alerts => Key::Alerts,
        Topic::TasksMine => Key::Mine(actor.id),
        Topic::Task(id) => Key::Task(id),
    }
}

#[derive(Debug)]
struct Entry {
    shared: Arc<Shared>,
    /// Each topic followed, with the hub position when it was subscribed: the live stream
    /// carried its events after that position.
    topics: HashMap<Topic, i64>,
}

#[derive(Debug, Default)]
struct Registry {
    connections: HashMap<ConnectionId, Entry>,
    followers: HashMap<Key, HashSet<ConnectionId>>,
}

impl Registry {
    fn unfollow(&mut self, id: ConnectionId, key: Key) {
        if let Some(set) = self.followers.get_mut(&key) {
            set.remove(&id);
            if set.is_empty() {
                self.followers.remove(&key);
            }
        }
    }
}

/// Limits that the handshake enforces.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub queue_size: usize,
    pub max_topics: usize,
}

/// Why a socket was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This instance holds its maximum of connections (503).
    InstanceFull,
    /// The user holds their maximum of connections on this instance (429).
    UserFull,
    /// The request was not a WebSocket upgrade (400).
    NotAnUpgrade,
}

#[derive(Debug)]
pub struct Hub {
    registry: RwLock<Registry>,
    per_user: Mutex<HashMap<UserId, usize>>,
    open: AtomicUsize,
    next_id: AtomicU64,
    /// Every event with `seq <= position` has been handed to the subscribers of the moment.
    position: AtomicI64,
    caps: Caps,
}

/// A slot taken at the handshake; given back when dropped.
#[derive(Debug)]
pub(crate) struct Admission {
    hub: Arc<Hub>,
    user: UserId,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
        let mut per_user = lock(&self.hub.per_user);
        if let Some(count) = per_user.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_user.remove(&self.user);
            }
        }
        metrics::gauge!("ws_connections").set(self.hub.open.load(Ordering::Acquire) as f64);
    }
}

/// A registered connection; unregistered when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    hub: Arc<Hub>,
    pub(crate) shared: Arc<Shared>,
    _admission: Admission,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = write(&self.hub.registry);
        if let Some(entry) = registry.connections.remove(&self.shared.id) {
            for topic in entry.topics.into_keys() {
                registry.unfollow(self.shared.id, key(topic, self.shared.actor));
            }
        }
    }
}

impl Hub {
    pub fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            registry: RwLock::default(),
            per_user: Mutex::default(),
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            position: AtomicI64::new(0),
            caps,
        })
    }

    /// Open connections on this instance.
    pub fn connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The `seq` up to which events have been delivered live.
    pub fn position(&self) -> i64 {
        self.position.load(Ordering::Acquire)
    }

    /// Where live delivery starts (the relay's first position).
    pub(crate) fn start_at(&self, seq: i64) {
        self.position.store(seq, Ordering::Release);
    }

    /// Takes a connection slot for `user`, or says which cap is reached.
    pub(crate) fn admit(self: &Arc<Self>, user: UserId) -> Result<Admission, Refusal> {
        let mut per_user = lock(&self.per_user);
        if self.open.load(Ordering::Acquire) >= self.caps.max_connections {
            return Err(Refusal::InstanceFull);
        }
        let count = per_user.entry(user).or_insert(0);
        if *count >= self.caps.max_connections_per_user {
            return Err(Refusal::UserFull);
        }
        *count += 1;
        let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        metrics::gauge!("ws_connections").set(open as f64);
        Ok(Admission { hub: Arc::clone(self), user })
    }

    pub(crate) fn register(
        self: &Arc<Self>,
        admission: Admission,
        actor: Actor,
        identity: TokenIdentity,
        expires_at: OffsetDateTime,
    ) -> Registration {
        let shared = Arc::new(Shared {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            actor,
            identity,
            expires_at,
            outbox: Arc::new(Outbox::new(self.caps.queue_size)),
            close_code: AtomicU16::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        write(&self.registry)
            .connections
            .insert(shared.id, Entry { shared: Arc::clone(&shared), topics: HashMap::new() });
        Registration { hub: Arc::clone(self), shared, _admission: admission }
    }

    /// Follows `topics` (each with the name the client gave) up to the cap, and queues the
    /// `subscribed` acknowledgement for those accepted under the same lock as the
    /// registration, so that no event of theirs reaches the client before it. Returns the
    /// names refused for the cap.
    pub(crate) fn subscribe(&self, connection: &Shared, topics: Vec<(Topic, String)>) -> Vec<String> {
        let mut registry = write(&self.registry);
        let position = self.position.load(Ordering::Acquire);
        let Some(entry) = registry.connections.get_mut(&connection.id) else {
            return Vec::new();
        };
        let (mut accepted, mut refused, mut added) = (Vec::new(), Vec::new(), Vec::new());
        for (topic, raw) in topics {
            if !entry.topics.contains_key(&topic) && entry.topics.len() >= self.caps.max_topics {
                refused.push(raw);
                continue;
            }
            // `dispatch` advances the position under the read lock: events after it reach
            // this topic live.
            entry.topics.entry(topic).or_insert(position);
            added.push(topic);
            accepted.push(raw);
        }
        for topic in added {
            registry.followers.entry(key(topic, connection.actor)).or_default().insert(connection.id);
        }
        if !accepted.is_empty() {
            let ack = protocol::control("subscribed", json!({ "topics": accepted }), Some(("topics", json!(accepted))));
            if connection.outbox.push_control(&text_frame(&ack)).is_ok() {
                metrics::counter!("ws_messages_sent_total", "type" => "subscribed").increment(1);
            }
        }
        refused
    }

    pub(crate) fn unsubscribe(&self, connection: &Shared, topic: Topic) {
        let mut registry = write(&self.registry);
        if let Some(entry) = registry.connections.get_mut(&connection.id)
            && entry.topics.remove(&topic).is_some()
        {
            registry.unfollow(connection.id, key(topic, connection.actor));
        }
    }

    /// The topics a connection follows now, each with the position it was subscribed at.
    pub(crate) fn topics(&self, connection: &Shared) -> Vec<(Topic, i64)> {
        read(&self.registry)
            .connections
            .get(&connection.id)
            .map(|entry| entry.topics.iter().map(|(topic, since)| (*topic, *since)).collect())
            .unwrap_or_default()
    }

    /// Hands one event to every local follower, at most once per connection, then records it
    /// as delivered. Called by the relay only, in `seq` order.
    pub(crate) fn dispatch(&self, event: &Event, read_at: std::time::Instant) {
        let mut withdrawn: Vec<(Arc<Shared>, Topic)> = Vec::new();
        let mut sent = 0u64;
        // Declared before the lock: the last batches of writers are woken after it is released.
        let mut wakes = Wakes::default();
        {
            let registry = read(&self.registry);
            // The most specific topic names the delivery: task:<id>, then tasks:mine, then the family.
            let mut keys: Vec<Key> = Vec::with_capacity(2 + event.audience.len());
            if let Some(task) = event.task_id {
                keys.push(Key::Task(TaskId::from_uuid(task)));
                keys.extend(event.audience.iter().map(|user| Key::Mine(*user)));
            }
            keys.extend([Key::Tasks, Key::Officers, Key::Alerts]);
            let mut frames: Vec<(Topic, Bytes)> = Vec::new();
            // A connection is reached once: only needed when several keys have followers.
            let followed = keys.iter().filter(|key| registry.followers.contains_key(key)).count();
            let mut reached: HashSet<ConnectionId> = HashSet::new();
            for key in keys {
                let Some(followers) = registry.followers.get(&key) else {
                    continue;
                };
                for id in followers {
                    if followed > 1 && reached.contains(id) {
                        continue;
                    }
                    let Some(entry) = registry.connections.get(id) else {
                        continue;
                    };
                    let shared = &entry.shared;
                    let topic = topic_of(key);
                    if !topic.matches(shared.actor, event) {
                        if topic.revoked_by(shared.actor, event) {
                            withdrawn.push((Arc::clone(shared), topic));
                        }
                        continue;
                    }
                    if followed > 1 {
                        reached.insert(*id);
                    }
                    if shared.closing.load(Ordering::Acquire) {
                        continue;
                    }
                    let index = match frames.iter().position(|(known, _)| *known == topic) {
                        Some(index) => index,
                        None => {
                            frames.push((topic, text_frame(&protocol::event(event, &topic.to_string()))));
                            frames.len() - 1
                        }
                    };
                    match shared.outbox.push_event(event.seq, event.created_at, &frames[index].1) {
                        Ok(writer) => {
                            sent += 1;
                            if let Some(writer) = writer {
                                wakes.add(shared.outbox.wake_queue(), writer);
                            }
                        }
                        Err(Refused::Full) => {
                            metrics::counter!("ws_dropped_total", "reason" => "queue_full").increment(1);
                            metrics::counter!("ws_slow_consumer_closes_total").increment(1);
                            shared.close_with(close::SLOW_CONSUMER);
                        }
                        Err(Refused::Closed) => {}
                    }
                }
            }
            // Still under the read lock: a subscription made after this point is also after
            // this event, so replay up to `position` never misses it.
            self.position.fetch_max(event.seq, Ordering::AcqRel);
        }
        drop(wakes);
        if sent > 0 {
            metrics::counter!("ws_events_fanned_out_total").increment(sent);
            metrics::counter!("ws_messages_sent_total", "type" => "event").increment(sent);
            metrics::histogram!("ws_fanout_latency_seconds").record(read_at.elapsed().as_secs_f64());
        }
        for (shared, topic) in withdrawn {
            self.unsubscribe(&shared, topic);
            let notice = protocol::error(
                "forbidden_topic",
                "this topic is no longer available to you; you have been unsubscribed",
                Some(&topic.to_string()),
            );
            if shared.outbox.push_control(&text_frame(&notice)).is_ok() {
                metrics::counter!("ws_messages_sent_total", "type" => "error").increment(1);
            }
        }
    }

    /// Closes, with 4401, the connections whose token expired or is known to be revoked.
    pub(crate) fn sweep(&self, revocations: &dyn Revocations, check_revocations: bool) -> usize {
        let now = OffsetDateTime::now_utc();
        let registry = read(&self.registry);
        let mut closed = 0;
        for entry in registry.connections.values() {
            let shared = &entry.shared;
            if shared.closing.load(Ordering::Acquire) {
                continue;
            }
            let expired = shared.expires_at <= now;
            if expired || (check_revocations && revocations.known_revoked(&shared.identity)) {
                let reason = if expired { "expired" } else { "revoked" };
                metrics::counter!("ws_closes_total", "reason" => reason).increment(1);
                shared.close_with(close::REVOKED);
                closed += 1;
            }
        }
        closed
    }

    /// Asks every connection to close with `code` (shutdown).
    pub fn close_all(&self, code: u16) {
        for entry in read(&self.registry).connections.values() {
            entry.shared.close_with(code);
        }
    }
}

fn topic_of(key: Key) -> Topic {
    match key {
        Key::Tasks => Topic::Tasks,
        Key::Officers => Topic::Officers,
        Key::Alerts => Topic::Alerts,
        Key::Mine(_) => Topic::TasksMine,
        Key::Task(id) => Topic::Task(id),
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
