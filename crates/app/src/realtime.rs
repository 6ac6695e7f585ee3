//! `GET /ws/connect`: the handshake joins the HTTP layer (authentication, the error envelope)
//! and the WebSocket service (caps, upgrade), which know nothing of each other.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use gad_http::error::ApiError;
use gad_http::{ExtraRoutes, Services, Tickets, socket_owner};
use gad_ws::{Realtime, Refusal};

/// The route and what it needs, for the API server.
pub fn routes(realtime: Realtime, tickets: Tickets) -> ExtraRoutes {
    Arc::new(move |cfg| {
        cfg.app_data(web::Data::new(realtime.clone()))
            .app_data(web::Data::new(tickets.clone()))
            .route("/ws/connect", web::get().to(connect));
    })
}

/// Checks the origin, authenticates (bearer header or single-use ticket) and upgrades within
/// the caps. Refusals are plain HTTP responses in the error envelope: nothing is upgraded.
async fn connect(
    req: HttpRequest,
    body: web::Payload,
    realtime: web::Data<Realtime>,
    services: web::Data<Services>,
    tickets: web::Data<Tickets>,
) -> Result<HttpResponse, ApiError> {
    let outcome = handshake(&req, body, &realtime, &services, &tickets).await;
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
    tickets: &Tickets,
) -> Result<HttpResponse, ApiError> {
    if let Some(origin) = req.headers().get(header::ORIGIN)
        && !origin.to_str().is_ok_and(|origin| realtime.allows_origin(origin) || same_origin(req, origin))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this origin may not open a real-time connection",
        ));
    }
    let owner = socket_owner(req, services, tickets).await?;
    realtime.upgrade(req, body, owner).map_err(|refusal| match refusal {
        Refusal::InstanceFull => ApiError::unavailable("this instance has no room for another connection"),
        Refusal::UserFull => ApiError::rate_limited(5),
        Refusal::NotAnUpgrade => ApiError::bad_request("a WebSocket upgrade (GET with Upgrade: websocket) is required"),
    })
}

/// Whether `origin` names the host the request was sent to: a page served by GAD itself, or a
/// client library that sends its own target as `Origin` (as many do). Cross-site pages need the
/// allow-list.
fn same_origin(req: &HttpRequest, origin: &str) -> bool {
    let Some(authority) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    req.headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .is_some_and(|host| host.eq_ignore_ascii_case(authority))
}
