//! `GET /api/v1/audit-events` (admins): the append-only audit log, newest first.

use actix_web::web::Query;
use actix_web::{get, web};
use gad_domain::audit::{AuditEvent, AuditQuery, ListAuditError, Outcome, list_audit_events};
use gad_domain::users::{Role, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::pagination::PageRequest;
use crate::state::Services;

#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct AuditListQuery {
    actor_id: Option<String>,
    /// e.g. `user`, `consent`.
    resource_type: Option<String>,
    resource_id: Option<String>,
    /// e.g. `auth.login`, `user.update`.
    action: Option<String>,
    /// RFC 3339; inclusive.
    from: Option<String>,
    /// RFC 3339; exclusive.
    to: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEventView {
    id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
    actor_id: Option<Uuid>,
    #[schema(value_type = Option<String>)]
    actor_role: Option<Role>,
    action: String,
    resource_type: String,
    resource_id: Option<Uuid>,
    #[schema(value_type = String, example = "success")]
    outcome: Outcome,
    request_id: Option<String>,
    #[schema(value_type = Option<String>)]
    ip: Option<std::net::IpAddr>,
    user_agent: Option<String>,
}

impl From<AuditEvent> for AuditEventView {
    fn from(event: AuditEvent) -> Self {
        Self {
            id: event.id,
            at: event.at,
            actor_id: event.actor_id.map(UserId::as_uuid),
            actor_role: event.actor_role,
            action: event.action,
            resource_type: event.resource_type,
            resource_id: event.resource_id,
            outcome: event.outcome,
            request_id: event.request_id,
            ip: event.ip,
            user_agent: event.user_agent,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    items: Vec<AuditEventView>,
    next_cursor: Option<String>,
}

fn field(problems: &mut Vec<FieldError>, name: &str, message: &str) {
    problems.push(FieldError { field: name.into(), message: message.into() });
}

fn uuid_param(problems: &mut Vec<FieldError>, name: &str, raw: Option<&str>) -> Option<Uuid> {
    let raw = raw?;
    Uuid::parse_str(raw).map_err(|_| field(problems, name, "must be a UUID")).ok()
}

fn time_param(problems: &mut Vec<FieldError>, name: &str, raw: Option<&str>) -> Option<OffsetDateTime> {
    let raw = raw?;
    OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| field(problems, name, "must be an RFC 3339 time")).ok()
}

/// The audit log (admins only), filtered, newest first.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(AuditListQuery),
    responses(
        (status = 200, description = "a page of audit events", body = AuditPage),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "only admins read the audit log", body = ErrorBody),
        (status = 422, description = "a bad filter, limit or cursor", body = ErrorBody),
    )
)]
#[get("/api/v1/audit-events")]
pub(crate) async fn list_audit_events_route(
    principal: Principal,
    query: Query<AuditListQuery>,
    services: web::Data<Services>,
) -> Result<web::Json<AuditPage>, ApiError> {
    let mut problems = Vec::new();
    let actor_id = uuid_param(&mut problems, "actor_id", query.actor_id.as_deref()).map(UserId::from_uuid);
    let resource_id = uuid_param(&mut problems, "resource_id", query.resource_id.as_deref());
    let from = time_param(&mut problems, "from", query.from.as_deref());
    let to = time_param(&mut problems, "to", query.to.as_deref());
    let page =
        PageRequest::parse(query.limit, query.cursor.as_deref()).map_err(|details| problems.extend(details)).ok();
    let (Some(page), true) = (page, problems.is_empty()) else {
        return Err(ApiError::validation(problems));
    };
    let request = AuditQuery {
        actor_id,
        resource_type: query.resource_type.clone(),
        resource_id,
        action: query.action.clone(),
        from,
        to,
        before: page.after,
        limit: page.limit + 1,
    };
    let events =
        list_audit_events(&*services.audit, principal.actor(), &request).await.map_err(|error| match error {
            ListAuditError::Forbidden => ApiError::forbidden(),
            ListAuditError::Store(error) => error.into(),
        })?;
    let (events, next_cursor) = page.page(events, |event| event.id);
    Ok(web::Json(AuditPage { items: events.into_iter().map(AuditEventView::from).collect(), next_cursor }))
}
