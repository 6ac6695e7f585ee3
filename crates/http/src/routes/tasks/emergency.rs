//! Emergency dispatch.

use actix_web::{HttpRequest, HttpResponse, post, web};
use gad_domain::tasks::use_cases::dispatch_emergency;

use super::dto::{EmergencyRequest, EmergencyView};
use super::{etag, location, staff_body};
use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::idempotent;
use crate::routes::officers::OfficerView;
use crate::state::Services;

/// Dispatch an emergency (operators and above): a `critical` `emergency` task at the point,
/// with the nearest available officer assigned at once (never the same officer to two
/// concurrent emergencies). With nobody available the task is created unassigned; the
/// `alert.emergency` event goes out either way.
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "replays the stored response of an earlier request with the same key and body (24 h)")),
    request_body = EmergencyRequest,
    responses(
        (status = 201, description = "dispatched", body = EmergencyView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "officers do not dispatch", body = ErrorBody),
        (status = 422, description = "invalid coordinates or text, or an Idempotency-Key malformed or reused with another body", body = ErrorBody),
    )
)]
#[post("/api/v1/tasks/emergency")]
pub(crate) async fn post_emergency(
    req: HttpRequest,
    principal: Principal,
    body: web::Bytes,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let request: EmergencyRequest = staff_body(&req, &principal, &body)?;
    let dispatched = async {
        let input = request.into_input()?;
        let context = request_context(&req);
        let (task, sent) =
            dispatch_emergency(&*services.tasks, principal.actor(), input, context, &*services.clock).await?;
        metrics::counter!("emergencies_total", "outcome" => if sent.is_some() { "assigned" } else { "unassigned" })
            .increment(1);
        let officer = match sent {
            Some(sent) => services.officers.find(sent.officer).await?.map(OfficerView::from),
            None => None,
        };
        Ok(HttpResponse::Created().insert_header(etag(&task)).insert_header(location(&task)).json(EmergencyView {
            officer,
            distance_m: sent.map(|sent| sent.distance_m),
            task,
        }))
    };
    idempotent(&req, &principal, &services, "POST /api/v1/tasks/emergency", &body, dispatched).await
}
