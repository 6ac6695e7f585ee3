//! `POST /api/v1/ws/tickets`: single-use tickets for opening `GET /ws/connect` from a browser,
//! which cannot set an `Authorization` header on a WebSocket (SPEC §5); and the handshake's
//! authentication, by bearer header or ticket, before anything is upgraded.

use actix_web::{HttpRequest, HttpResponse, post, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gad_domain::events::{SocketOwner, TicketGrant, TicketStore};
use gad_domain::users::TokenIdentity;
use gad_domain::users::policy::Actor;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::state::Services;

/// How long a ticket may wait before it is presented.
pub const TICKET_LIFETIME: time::Duration = time::Duration::seconds(30);

/// Where tickets are kept; registered by the app next to the WebSocket service.
#[derive(Clone)]
pub struct Tickets(pub std::sync::Arc<dyn TicketStore>);

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets").finish_non_exhaustive()
    }
}

/// A ticket for `GET /ws/connect?ticket=…`: valid once, for 30 seconds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketView {
    #[schema(example = "q0oKpM1rRZ0y7cU0wEJ2b1mFhQvDqUeXy8v5pQ0nRkA")]
    ticket: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
}

/// The stored form of a ticket.
fn ticket_hash(ticket: &str) -> [u8; 32] {
    Sha256::digest(ticket.as_bytes()).into()
}

/// A ticket for opening one WebSocket as the caller. The socket lives as long as the access
/// token that asked for it: it closes when that token expires or is revoked.
#[utoipa::path(
    tag = "realtime",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "a single-use ticket, valid for 30 seconds", body = TicketView),
        (status = 401, description = "missing, invalid or revoked token", body = ErrorBody),
        (status = 429, description = "too many requests", body = ErrorBody),
        (status = 503, description = "a dependency is down", body = ErrorBody),
    )
)]
#[post("/api/v1/ws/tickets")]
pub(crate) async fn create_ws_ticket(
    principal: Principal,
    tickets: Option<web::Data<Tickets>>,
) -> Result<HttpResponse, ApiError> {
    let tickets = tickets.ok_or_else(|| ApiError::unavailable("real-time delivery is not configured"))?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(ApiError::internal)?;
    let ticket = URL_SAFE_NO_PAD.encode(secret);
    let grant = TicketGrant {
        user_id: principal.user_id,
        role: principal.role,
        jti: principal.jti,
        session_id: principal.session_id,
        issued_at: principal.issued_at,
        token_expires_at: principal.expires_at,
    };
    // Never outlives the token it stands for.
    let expires_at = (OffsetDateTime::now_utc() + TICKET_LIFETIME).min(principal.expires_at);
    tickets.0.insert(ticket_hash(&ticket), &grant, expires_at).await?;
    Ok(HttpResponse::Created().json(TicketView { ticket, expires_at }))
}

/// The WebSocket itself. Served by the real-time service (`gad-ws`), which the app registers on
/// this listener; described here so that the document lists every route. Authenticate with the
/// bearer header or `?ticket=`; the protocol is in docs/WEBSOCKET.md.
#[utoipa::path(
    get,
    path = "/ws/connect",
    tag = "realtime",
    security(("bearer" = []), ()),
    params(("ticket" = Option<String>, Query, description = "a single-use ticket from POST /api/v1/ws/tickets (browsers)")),
    responses(
        (status = 101, description = "switched to the WebSocket protocol; see docs/WEBSOCKET.md"),
        (status = 400, description = "authenticated, but not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "missing, invalid or revoked token; unknown, used or expired ticket", body = ErrorBody),
        (status = 403, description = "an Origin outside the allow-list", body = ErrorBody),
        (status = 429, description = "too many sockets for this user on this instance", body = ErrorBody),
        (status = 503, description = "this instance holds its maximum of sockets, or a dependency is down", body = ErrorBody),
    )
)]
#[expect(dead_code, reason = "describes the route that gad-ws serves")]
pub(crate) fn ws_connect() {}

#[derive(serde::Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}

/// Who is opening `GET /ws/connect`: the bearer token of the `Authorization` header, or the
/// `ticket` query parameter (spent here). Access tokens are never taken from the URL.
pub async fn socket_owner(req: &HttpRequest, services: &Services, tickets: &Tickets) -> Result<SocketOwner, ApiError> {
    let ticket = web::Query::<TicketQuery>::from_query(req.query_string()).ok().and_then(|query| query.0.ticket);
    if let Some(ticket) = ticket {
        let refused = || ApiError::unauthenticated("the ticket is invalid, expired or already used");
        if ticket.is_empty() || ticket.len() > 128 {
            return Err(refused());
        }
        let grant = tickets.0.redeem(ticket_hash(&ticket)).await?.ok_or_else(refused)?;
        let identity = TokenIdentity {
            jti: grant.jti,
            user_id: grant.user_id,
            session_id: grant.session_id,
            issued_at: grant.issued_at,
        };
        if grant.token_expires_at <= OffsetDateTime::now_utc() || services.revocations.is_revoked(&identity).await? {
            return Err(ApiError::unauthenticated("the access token behind the ticket is no longer valid"));
        }
        return Ok(SocketOwner {
            actor: Actor { id: grant.user_id, role: grant.role },
            identity,
            expires_at: grant.token_expires_at,
        });
    }
    let bearer = crate::auth::bearer_token(req);
    if bearer.is_none() {
        return Err(ApiError::unauthenticated(
            "authenticate with an Authorization: Bearer header or a ticket from POST /api/v1/ws/tickets",
        ));
    }
    let principal = crate::auth::authenticate(&services.tokens, &*services.revocations, bearer).await?;
    Ok(SocketOwner { actor: principal.actor(), identity: principal.identity(), expires_at: principal.expires_at })
}
