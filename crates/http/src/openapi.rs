//! The OpenAPI 3.1 document, collected from the very routes that are served.

use actix_web::{HttpResponse, get, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::error::{ErrorBody, ErrorObject, FieldError};
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "GAD API",
        description = "Dispatch of field work: tasks, officers, real-time events and privacy. \
            Every error response uses one envelope, `ErrorBody`."
    ),
    tags(
        (name = "health", description = "Liveness, readiness and dependency health"),
        (name = "operations", description = "Metrics and the API description"),
        (name = "auth", description = "Login, token refresh, logout and the current user"),
        (name = "realtime", description = "Tickets for the WebSocket at GET /ws/connect (see docs/WEBSOCKET.md)"),
        (name = "users", description = "Users, their roles and their profiles (rectification)"),
        (name = "consents", description = "Consent records of a subject (GDPR)"),
        (name = "privacy", description = "The subject's rights of access, portability and erasure (GDPR)"),
        (name = "audit", description = "The append-only audit log"),
        (name = "officers", description = "Field officers: profiles, positions, availability, nearest search"),
        (name = "tasks", description = "Tasks, their state machine, history and assignments"),
        (name = "statistics", description = "Figures for supervisors and per user, cached by data version"),
        (name = "telegram", description = "Linking a Telegram chat, and the bot's webhook (see docs/TELEGRAM.md)"),
    ),
    paths(routes::ws_tickets::ws_connect, routes::telegram::telegram_webhook),
    components(schemas(ErrorBody, ErrorObject, FieldError)),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator-configured metrics token"))
                    .build(),
            ),
        );
    }
}

/// The document describing every served route, made exact by `contract::refine`; also what
/// `gad openapi` prints.
pub fn document() -> serde_json::Value {
    let (_, document) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes::configure)
        .split_for_parts();
    let mut document = serde_json::to_value(document).unwrap_or_default();
    crate::contract::refine(&mut document);
    document
}

/// The serialised document, built once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct OpenApiJson(pub(crate) String);

/// This document.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
#[get("/api/v1/openapi.json")]
pub(crate) async fn get_openapi(document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document.0.clone())
}
