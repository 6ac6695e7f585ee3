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
use gad_domain::background::BackgroundJob;
use gad_domain::events::{CommitAnnouncements, EventLog, SocketOwner};
use gad_domain::settings;
use gad_domain::tasks::task::TaskStore;
use gad_domain::users::Revocations;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

pub use hub::{Caps, Hub, Refusal, close};

use crate::connection::Connection;
use crate::outbox::OutboxBody;
use crate::relay::Relay;

/// Largest frame accepted from a client (closed with 1009 beyond): the protocol's messages are
/// small.
pub(crate) const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The `ws` section of the configuration: how the service behaves.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WsSettings {
    /// WebSocket pings are sent this often.
    #[serde(rename = "heartbeat_interval_s", with = "settings::seconds")]
    pub heartbeat_interval: Duration,
    /// A peer silent (no frame at all, pongs included) this long is closed.
    #[serde(rename = "idle_timeout_s", with = "settings::seconds")]
    pub idle_timeout: Duration,
    /// Open connections on this instance (503 beyond).
    pub max_connections: usize,
    /// Open connections of one user on this instance (429 beyond).
    pub max_connections_per_user: usize,
    /// Events waiting for one connection before it counts as a slow consumer (closed with 1013).
    pub queue_size: usize,
    /// Topics one connection may follow.
    pub max_topics: usize,
    /// How far back `resume` may go.
    #[serde(rename = "replay_retention_h", with = "settings::hours")]
    pub replay_retention: Duration,
    /// The most events one `resume` replays (`resync_required` beyond).
    pub replay_max_events: i64,
    /// How often the relay reads the log when no wake-up came.
    #[serde(rename = "poll_interval_ms", with = "settings::millis")]
    pub poll_interval: Duration,
    /// How often connections are checked against revocations and token expiry.
    #[serde(rename = "revocation_check_interval_ms", with = "settings::millis")]
    pub revocation_check_interval: Duration,
}

impl WsSettings {
    /// Everything wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.heartbeat_interval.is_zero() || self.idle_timeout <= self.heartbeat_interval {
            problems.push("ws.idle_timeout_s must be longer than a positive ws.heartbeat_interval_s".into());
        }
        if self.max_connections == 0
            || self.max_connections_per_user == 0
            || self.queue_size == 0
            || self.max_topics == 0
        {
            problems.push("ws connection caps, queue size and topic cap must be positive".into());
        }
        if self.replay_retention.is_zero() || self.replay_max_events <= 0 {
            problems.push("ws replay retention and replay_max_events must be positive".into());
        }
        if self.poll_interval.is_zero()
            || self.revocation_check_interval.is_zero()
            || self.revocation_check_interval > Duration::from_secs(4)
        {
            problems.push("ws.poll_interval_ms must be positive and ws.revocation_check_interval_ms 1..=4000".into());
        }
        problems
    }
}

/// The event log as the service reads it.
#[derive(Clone)]
pub struct EventLogs {
    /// Serves `resume`.
    pub replay: Arc<dyn EventLog>,
    /// What the relay tails.
    pub relay: Arc<dyn EventLog>,
}

impl std::fmt::Debug for EventLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLogs").finish_non_exhaustive()
    }
}

/// The service: shared by the handshake handler and every connection of this instance.
#[derive(Clone)]
pub struct Realtime {
    pub(crate) hub: Arc<Hub>,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) tasks: Arc<dyn TaskStore>,
    pub(crate) settings: Arc<WsSettings>,
    /// Origins allowed to open a socket from a browser (the API's CORS allow-list).
    allowed_origins: Arc<[String]>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime").field("hub", &self.hub).finish_non_exhaustive()
    }
}

impl Realtime {
    /// Builds the service, and the jobs that feed it (the relay and the revocation sweeper),
    /// for the app to run. `relay_log` is what the relay reads through: best on connections of
    /// its own, so that it never queues behind requests for a pooled connection; `log` serves
    /// replays. `peers` exchanges commit announcements with the other instances (Redis); `None`
    /// runs alone (PostgreSQL notifications and polling still see every commit).
    pub fn new(
        settings: WsSettings,
        allowed_origins: &[String],
        logs: EventLogs,
        tasks: Arc<dyn TaskStore>,
        revocations: Arc<dyn Revocations>,
        peers: Option<Arc<dyn CommitAnnouncements>>,
    ) -> (Self, Vec<BackgroundJob>) {
        let hub = Hub::new(Caps {
            max_connections: settings.max_connections,
            max_connections_per_user: settings.max_connections_per_user,
            queue_size: settings.queue_size,
            max_topics: settings.max_topics,
        });
        let relay = Relay {
            hub: Arc::clone(&hub),
            log: logs.relay,
            wake: Arc::new(Notify::new()),
            poll_interval: settings.poll_interval,
            peers,
        };
        let jobs = relay.jobs(revocations, settings.revocation_check_interval);
        let realtime = Self {
            hub,
            log: logs.replay,
            tasks,
            settings: Arc::new(settings),
            allowed_origins: allowed_origins.into(),
        };
        (realtime, jobs)
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Whether a browser page from `origin` may open a socket (the CORS allow-list).
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|allowed| allowed == origin)
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
