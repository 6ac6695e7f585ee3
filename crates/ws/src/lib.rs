//! The real-time service at `GET /ws/connect` (SPEC §5): the handshake (authentication before
//! the upgrade, caps, origin), one task per connection, the hub that fans events out to local
//! subscribers, and the relay that tails the event log. The protocol for client authors is in
//! `docs/WEBSOCKET.md`; the design in `docs/ARCHITECTURE.md`.

mod connection;
mod hub;
mod outbox;
mod protocol;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use gad_domain::events::{CommitAnnouncements, EventLog, SocketOwner};
use gad_domain::tasks::task::TaskStore;
use gad_domain::users::Revocations;
use tokio::sync::Notify;

pub use hub::{Caps, Hub, Refusal, close};

use crate::connection::Connection;
use crate::outbox::OutboxBody;
use crate::relay::Relay;

/// How the service behaves; built by the app from its `ws` configuration section.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// WebSocket pings are sent this often.
    pub heartbeat_interval: Duration,
    /// A peer silent (no frame at all, pongs included) this long is closed.
    pub idle_timeout: Duration,
    /// Open connections on this instance (503 beyond).
    pub max_connections: usize,
    /// Open connections of one user on this instance (429 beyond).
    pub max_connections_per_user: usize,
    /// Events waiting for one connection before it counts as a slow consumer (closed with 1013).
    pub queue_size: usize,
    /// Topics one connection may follow.
    pub max_topics: usize,
    /// Largest frame accepted from a client (closed with 1009 beyond).
    pub max_frame_bytes: usize,
    /// How far back `resume` may go.
    pub replay_retention: time::Duration,
    /// The most events one `resume` replays (`resync_required` beyond).
    pub replay_max_events: i64,
    /// How often the relay reads the log when no wake-up came.
    pub poll_interval: Duration,
    /// How often connections are checked against revocations and token expiry.
    pub revocation_check_interval: Duration,
    /// Origins allowed to open a socket from a browser (the CORS allow-list).
    pub allowed_origins: Vec<String>,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            max_connections: 20_000,
            max_connections_per_user: 10,
            queue_size: 1024,
            max_topics: 100,
            max_frame_bytes: 64 * 1024,
            replay_retention: time::Duration::hours(24),
            replay_max_events: 10_000,
            poll_interval: Duration::from_secs(1),
            revocation_check_interval: Duration::from_secs(1),
            allowed_origins: Vec::new(),
        }
    }
}

/// The service: shared by the handshake handler and every connection of this instance.
#[derive(Clone)]
pub struct Realtime {
    pub(crate) hub: Arc<Hub>,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) tasks: Arc<dyn TaskStore>,
    pub(crate) settings: Arc<WsSettings>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime").field("hub", &self.hub).finish_non_exhaustive()
    }
}

impl Realtime {
    /// Builds the service and starts its relay and revocation sweeper (needs a tokio runtime).
    /// `relay_log` is what the relay reads through: best on connections of its own, so that it
    /// never queues behind requests for a pooled connection; `log` serves replays.
    /// `peers` exchanges commit announcements with the other instances (Redis); `None` runs
    /// alone (PostgreSQL notifications and polling still see every commit).
    pub fn start(
        settings: WsSettings,
        log: Arc<dyn EventLog>,
        relay_log: Arc<dyn EventLog>,
        tasks: Arc<dyn TaskStore>,
        revocations: Arc<dyn Revocations>,
        peers: Option<Arc<dyn CommitAnnouncements>>,
    ) -> Self {
        let hub = Hub::new(Caps {
            max_connections: settings.max_connections,
            max_connections_per_user: settings.max_connections_per_user,
            queue_size: settings.queue_size,
            max_topics: settings.max_topics,
        });
        let relay = Relay {
            hub: Arc::clone(&hub),
            log: relay_log,
            wake: Arc::new(Notify::new()),
            poll_interval: settings.poll_interval,
            peers,
        };
        relay.spawn(revocations, settings.revocation_check_interval);
        Self { hub, log, tasks, settings: Arc::new(settings) }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Whether a browser page from `origin` may open a socket (the CORS allow-list).
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.settings.allowed_origins.iter().any(|allowed| allowed == origin)
    }

    /// Upgrades an authenticated request (see `gad_app`'s handshake) within the caps, and hands
    /// the socket to its own task. A refusal upgrades nothing.
    pub fn upgrade(&self, req: &HttpRequest, body: web::Payload, owner: SocketOwner) -> Result<HttpResponse, Refusal> {
        let admission = self.hub.admit(owner.actor.id)?;
        // actix-ws reads the client's frames; frames to the client are written from the outbox.
        let (response, _session, stream) = actix_ws::handle(req, body).map_err(|_| Refusal::NotAnUpgrade)?;
        let registration = self.hub.register(admission, owner.actor, owner.identity, owner.expires_at);
        let (head, inbound_guard) = response.into_parts();
        let body = OutboxBody::new(Arc::clone(&registration.shared.outbox), inbound_guard);
        let connection = Connection::new(self.clone(), registration);
        actix_web::rt::spawn(connection.run(stream));
        Ok(head.set_body(body).map_into_boxed_body())
    }
}
