//! Every route, one module per resource; each handler carries its `#[utoipa::path]` and is
//! registered through utoipa-actix-web so that the OpenAPI document lists exactly what is served.

#[expect(unused_qualifications, reason = "utoipa's expansion of query parameters qualifies their type")]
mod audit;
mod auth;
mod consents;
#[expect(unused_qualifications, reason = "utoipa's expansion of query parameters qualifies their type")]
mod geo;
pub(crate) mod health;
mod metrics;
#[expect(unused_qualifications, reason = "utoipa's expansion of query parameters qualifies their type")]
pub(crate) mod officers;
mod privacy;
mod stats;
pub(crate) mod tasks;
pub mod telegram;
#[expect(unused_qualifications, reason = "utoipa's expansion of query parameters qualifies their type")]
pub(crate) mod users;
pub mod ws_tickets;

use utoipa_actix_web::service_config::ServiceConfig;

pub(crate) use metrics::MetricsExposure;

pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::get_live)
        .service(health::get_ready)
        .service(health::get_api_health)
        .service(metrics::get_metrics)
        .service(crate::openapi::get_openapi)
        .service(auth::post_login)
        .service(auth::post_refresh)
        .service(auth::post_logout)
        .service(auth::get_me)
        .service(ws_tickets::create_ws_ticket)
        .service(users::list_users_route)
        .service(users::create_user_route)
        .service(users::get_user)
        .service(users::patch_user)
        .service(users::put_user)
        .service(users::delete_user)
        .service(consents::get_consents)
        .service(consents::post_consent)
        .service(privacy::get_data_export)
        .service(privacy::delete_personal_data)
        .service(telegram::create_telegram_link)
        .service(telegram::delete_telegram_link)
        .service(audit::list_audit_events_route)
        .service(officers::list_officers_route)
        .service(officers::create_officer_route)
        // Before `/officers/{id}`, which would otherwise take "nearest" for an id.
        .service(officers::nearest_officers_route)
        .service(officers::get_officer)
        .service(officers::patch_officer)
        .service(officers::delete_officer_route)
        .service(officers::put_location)
        .service(officers::put_availability)
        .service(tasks::list_tasks)
        .service(tasks::create_task)
        // Before `/tasks/{id}`.
        .service(tasks::post_emergency)
        .service(tasks::get_task)
        .service(tasks::patch_task)
        .service(tasks::delete_task)
        .service(tasks::post_transition)
        .service(tasks::get_history)
        .service(tasks::post_assignments)
        .service(tasks::delete_assignment)
        .service(geo::get_map)
        .service(stats::get_overview)
        .service(stats::get_user_stats);
}

/// Only the metrics route, for the private metrics listener.
pub(crate) fn configure_metrics_only(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(metrics::get_metrics);
}
