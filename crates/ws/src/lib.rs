//! The real-time service at `GET /ws/connect` (SPEC §5): the handshake (authentication before
//! the upgrade, caps, origin), one task per connection, the hub that fans events out to local
//! subscribers, and the relay that tails the event log. The protocol for client authors is in
//! `docs/WEBSOCKET.md`; the design in `docs/ARCHITECTURE.md`.

mod connection;
mod hub;
mod protocol;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use gad_domain::events::{CommitAnnouncements, EventLog, TicketStore};
use gad_domain::users::policy::Actor;
use gad_domain::users::{Revocations, TokenIdentity};
use gad_http::Services;
use gad_http::error::ApiError;
use time::OffsetDateTime;
use tokio::sync::Notify;

pub use hub::{Caps, Hub, close};

use crate::connection::Connection;
use crate::hub::Refusal;
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
    pub(crate) tickets: Arc<dyn TicketStore>,
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
        tickets: Arc<dyn TicketStore>,
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
        Self { hub, log, tickets, settings: Arc::new(settings) }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Registers `GET /ws/connect` and the ticket store for `POST /api/v1/ws/tickets`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()))
            .app_data(web::Data::new(gad_http::Tickets(Arc::clone(&self.tickets))))
            .route("/ws/connect", web::get().to(connect));
    }
}

/// Who the socket belongs to, decided before the upgrade.
struct Caller {
    actor: Actor,
    identity: TokenIdentity,
    expires_at: OffsetDateTime,
}

/// `GET /ws/connect`: authenticates (bearer header or single-use ticket), checks the origin and
/// the caps, then upgrades and hands the socket to its own task. Refusals are plain HTTP
/// responses in the error envelope: nothing is upgraded.
async fn connect(
    req: HttpRequest,
    body: web::Payload,
    realtime: web::Data<Realtime>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let outcome = handshake(&req, body, &realtime, &services).await;
    let label = match &outcome {
        Ok(_) => "accepted",
        Err(error) => error.code(),
    };
    metrics::counter!("ws_handshakes_total", "outcome" => label).increment(1);
    outcome
}

async fn handshake(
    req: &HttpRequest,
    body: web::Payload,
    realtime: &Realtime,
    services: &Services,
) -> Result<HttpResponse, ApiError> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|origin| realtime.settings.allowed_origins.iter().any(|o| o == origin));
        if !allowed {
            return Err(ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "forbidden",
                "this origin may not open a real-time connection",
            ));
        }
    }
    let caller = authenticate(req, realtime, services).await?;
    let admission = realtime.hub.admit(caller.actor.id).map_err(|refusal| match refusal {
        Refusal::InstanceFull => ApiError::unavailable("this instance has no room for another connection"),
        Refusal::UserFull => ApiError::rate_limited(5),
    })?;
    let (response, session, stream) = actix_ws::handle(req, body)
        .map_err(|_| ApiError::bad_request("a WebSocket upgrade (GET with Upgrade: websocket) is required"))?;
    let registration = realtime.hub.register(admission, caller.actor, caller.identity, caller.expires_at);
    let connection = Connection::new(realtime.clone(), registration, session, Arc::clone(&services.tasks));
    actix_web::rt::spawn(connection.run(stream));
    Ok(response)
}

/// The bearer token of the `Authorization` header, or the `ticket` query parameter. Access
/// tokens are never taken from the URL.
async fn authenticate(req: &HttpRequest, realtime: &Realtime, services: &Services) -> Result<Caller, ApiError> {
    let ticket = web::Query::<TicketQuery>::from_query(req.query_string()).ok().and_then(|query| query.0.ticket);
    if let Some(ticket) = ticket {
        let refused = || ApiError::unauthenticated("the ticket is invalid, expired or already used");
        if ticket.is_empty() || ticket.len() > 128 {
            return Err(refused());
        }
        let grant = realtime.tickets.redeem(gad_http::ticket_hash(&ticket)).await?.ok_or_else(refused)?;
        let identity = TokenIdentity {
            jti: grant.jti,
            user_id: grant.user_id,
            session_id: grant.session_id,
            issued_at: grant.issued_at,
        };
        if grant.token_expires_at <= OffsetDateTime::now_utc() || services.revocations.is_revoked(&identity).await? {
            return Err(ApiError::unauthenticated("the access token behind the ticket is no longer valid"));
        }
        return Ok(Caller {
            actor: Actor { id: grant.user_id, role: grant.role },
            identity,
            expires_at: grant.token_expires_at,
        });
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim);
    if bearer.is_none() {
        return Err(ApiError::unauthenticated(
            "authenticate with an Authorization: Bearer header or a ticket from POST /api/v1/ws/tickets",
        ));
    }
    let principal = gad_http::auth::authenticate(&services.tokens, &*services.revocations, bearer).await?;
    Ok(Caller { actor: principal.actor(), identity: principal.identity(), expires_at: principal.expires_at })
}

#[derive(serde::Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}
