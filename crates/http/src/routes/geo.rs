//! `GET /api/v1/geo/map` (SPEC §4): what is around a point, for the operations map.

use actix_web::web::Query;
use actix_web::{get, web};
use gad_domain::tasks::officer::{Availability, may_list_officers};
use gad_domain::tasks::state::TaskStatus;
use gad_domain::tasks::task::{Map, Priority};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::state::Services;
use crate::validation::Fields;

#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct MapParams {
    // Optional here so that one 422 names every missing one.
    #[param(required = true)]
    center_lat: Option<String>,
    #[param(required = true)]
    center_lng: Option<String>,
    /// 100..=100000 metres.
    #[param(required = true)]
    radius_m: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MapTaskView {
    id: Uuid,
    code: String,
    title: String,
    #[schema(value_type = String)]
    priority: Priority,
    #[schema(value_type = String)]
    status: TaskStatus,
    lat: f64,
    lng: f64,
    distance_m: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MapOfficerView {
    id: Uuid,
    badge_number: String,
    #[schema(value_type = String)]
    availability: Availability,
    lat: f64,
    lng: f64,
    distance_m: f64,
}

/// Unfinished tasks and officers within the radius, nearest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MapView {
    tasks: Vec<MapTaskView>,
    officers: Vec<MapOfficerView>,
}

impl From<Map> for MapView {
    fn from(map: Map) -> Self {
        Self {
            tasks: map
                .tasks
                .into_iter()
                .map(|task| MapTaskView {
                    id: task.id.as_uuid(),
                    code: task.code,
                    title: task.title,
                    priority: task.priority,
                    status: task.status,
                    lat: task.point.lat(),
                    lng: task.point.lng(),
                    distance_m: task.distance_m,
                })
                .collect(),
            officers: map
                .officers
                .into_iter()
                .map(|officer| MapOfficerView {
                    id: officer.id.as_uuid(),
                    badge_number: officer.badge_number,
                    availability: officer.availability,
                    lat: officer.point.lat(),
                    lng: officer.point.lng(),
                    distance_m: officer.distance_m,
                })
                .collect(),
        }
    }
}

/// The operations map around a point (operators and above).
#[utoipa::path(
    tag = "tasks",
    security(("bearer" = [])),
    params(MapParams),
    responses(
        (status = 200, description = "tasks and officers around the point", body = MapView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "officers do not see the map", body = ErrorBody),
        (status = 422, description = "missing or out-of-range parameters", body = ErrorBody),
    )
)]
#[get("/api/v1/geo/map")]
pub(crate) async fn get_map(
    principal: Principal,
    query: Query<MapParams>,
    services: web::Data<Services>,
) -> Result<web::Json<MapView>, ApiError> {
    if !may_list_officers(principal.actor()) {
        return Err(ApiError::forbidden());
    }
    let mut fields = Fields::default();
    let lat = fields.required_number("center_lat", query.center_lat.as_deref());
    let lng = fields.required_number("center_lng", query.center_lng.as_deref());
    let radius = fields.required_number("radius_m", query.radius_m.as_deref());
    if radius.is_some_and(|radius| !(100.0..=100_000.0).contains(&radius)) {
        fields.push("radius_m", "must be between 100 and 100000");
    }
    let center = match (lat, lng) {
        (Some(lat), Some(lng)) => fields.point("center_", lat, lng),
        _ => None,
    };
    let (center, radius) = fields.finish_with(|| Some((center?, radius?)))?;
    Ok(web::Json(MapView::from(services.tasks.map(center, radius).await?)))
}
