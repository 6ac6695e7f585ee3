//! `/api/v1/officers` (SPEC §4): profiles, positions, availability and nearest-first search.

use actix_web::http::header;
use actix_web::web::Query;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use gad_domain::tasks::geo::parse_accuracy;
use gad_domain::tasks::officer::{
    Availability, BadgeNumber, LocationReport, NearestQuery, NewOfficer, Officer, OfficerChanges, OfficerError,
    OfficerId, OfficerLocation, OfficerQuery, create_officer, delete_officer, list_officers, may_manage_officers,
    nearest_officers, parse_label, read_officer, report_location, set_availability, update_officer,
};
use gad_domain::users::{InvalidValue, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::extract::Json;
use crate::pagination::PageRequest;
use crate::state::Services;
use crate::validation::{Fields, parse_number, present};

/// An officer's last known position.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LocationView {
    lat: f64,
    lng: f64,
    accuracy_m: Option<f64>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
}

/// An officer (SPEC §4). The same shape is the payload of `officer.*` events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OfficerView {
    id: Uuid,
    user_id: Uuid,
    badge_number: String,
    rank: Option<String>,
    unit: Option<String>,
    specialty: Option<String>,
    #[schema(value_type = String, example = "available")]
    availability: Availability,
    location: Option<LocationView>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
}

impl From<Officer> for OfficerView {
    fn from(officer: Officer) -> Self {
        Self {
            id: officer.id.as_uuid(),
            user_id: officer.user_id.as_uuid(),
            badge_number: officer.badge_number,
            rank: officer.rank,
            unit: officer.unit,
            specialty: officer.specialty,
            availability: officer.availability,
            location: officer.location.map(|location: OfficerLocation| LocationView {
                lat: location.point.lat(),
                lng: location.point.lng(),
                accuracy_m: location.accuracy_m,
                updated_at: location.updated_at,
            }),
            created_at: officer.created_at,
            updated_at: officer.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OfficerPage {
    items: Vec<OfficerView>,
    next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NearbyOfficerView {
    officer: OfficerView,
    /// Geodesic distance in metres.
    distance_m: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NearbyOfficers {
    /// Nearest first.
    items: Vec<NearbyOfficerView>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct OfficerListQuery {
    /// `available`, `on_task`, `off_duty` or `unavailable`.
    availability: Option<String>,
    unit: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct NearestParams {
    // Optional here so that one 422 names every missing one.
    #[param(required = true)]
    lat: Option<String>,
    #[param(required = true)]
    lng: Option<String>,
    /// 1..=100, default 5.
    limit: Option<String>,
    /// Default `true`.
    available_only: Option<String>,
    max_distance_m: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOfficerRequest {
    user_id: Uuid,
    badge_number: String,
    rank: Option<String>,
    unit: Option<String>,
    specialty: Option<String>,
    /// Default `available`: a new profile is ready for dispatch once it reports a location.
    availability: Option<String>,
}

/// Absent fields stay; `null` clears `rank`, `unit` or `specialty`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchOfficerRequest {
    badge_number: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    rank: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    unit: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    specialty: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LocationRequest {
    lat: f64,
    lng: f64,
    accuracy_m: Option<f64>,
    /// RFC 3339; default now. At most a minute in the future.
    recorded_at: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AvailabilityRequest {
    #[schema(example = "available")]
    availability: String,
}

fn officer_error(error: OfficerError) -> ApiError {
    match error {
        OfficerError::NotFound => ApiError::not_found(),
        OfficerError::Forbidden => ApiError::forbidden(),
        OfficerError::ConsentRequired => ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "consent_required",
            "the officer has not consented to location tracking",
        ),
        OfficerError::Duplicate(field) => ApiError::duplicate(field),
        OfficerError::UnknownUser => {
            ApiError::validation(vec![FieldError { field: "user_id".into(), message: "names no user".into() }])
        }
        OfficerError::Store(error) => error.into(),
    }
}

fn parse_availability(raw: &str) -> Result<Availability, InvalidValue> {
    raw.parse()
}

fn labels(
    problems: &mut Fields,
    rank: Option<&str>,
    unit: Option<&str>,
    specialty: Option<&str>,
) -> [Option<String>; 3] {
    [("rank", rank), ("unit", unit), ("specialty", specialty)]
        .map(|(field, raw)| raw.and_then(|raw| problems.check(field, parse_label(raw)).flatten()))
}

/// List officers (operators and above), newest first.
#[utoipa::path(
    tag = "officers",
    security(("bearer" = [])),
    params(OfficerListQuery),
    responses(
        (status = 200, description = "a page of officers", body = OfficerPage),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "officers may not list officers", body = ErrorBody),
        (status = 422, description = "a bad filter, limit or cursor", body = ErrorBody),
    )
)]
#[get("/api/v1/officers")]
pub(crate) async fn list_officers_route(
    principal: Principal,
    query: Query<OfficerListQuery>,
    services: web::Data<Services>,
) -> Result<web::Json<OfficerPage>, ApiError> {
    let mut problems = Fields::default();
    let availability =
        query.availability.as_deref().and_then(|raw| problems.check("availability", parse_availability(raw)));
    let page =
        PageRequest::parse(query.limit, query.cursor.as_deref()).map_err(|details| problems.0.extend(details)).ok();
    problems.finish()?;
    let page = page.ok_or_else(|| ApiError::internal("validated page missing"))?;
    let request = OfficerQuery {
        availability,
        unit: query.unit.clone(),
        before: page.after.map(OfficerId::from_uuid),
        limit: page.limit + 1,
    };
    let officers = list_officers(&*services.officers, principal.actor(), &request).await.map_err(officer_error)?;
    let (officers, next_cursor) = page.page(officers, |officer| officer.id.as_uuid());
    Ok(web::Json(OfficerPage { items: officers.into_iter().map(OfficerView::from).collect(), next_cursor }))
}

/// Create an officer profile for a user (admins and supervisors); one per user.
#[utoipa::path(
    tag = "officers",
    security(("bearer" = [])),
    request_body = CreateOfficerRequest,
    responses(
        (status = 201, description = "created; `Location` names it", body = OfficerView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "only admins and supervisors create profiles", body = ErrorBody),
        (status = 409, description = "`duplicate` badge number, or the user already has a profile", body = ErrorBody),
        (status = 422, description = "invalid fields, or `user_id` names no user", body = ErrorBody),
    )
)]
#[post("/api/v1/officers")]
pub(crate) async fn create_officer_route(
    req: HttpRequest,
    principal: Principal,
    body: Json<CreateOfficerRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    // The caller's right comes before the body's faults.
    if !may_manage_officers(principal.actor()) {
        return Err(ApiError::forbidden());
    }
    let mut problems = Fields::default();
    let badge_number = problems.check("badge_number", BadgeNumber::parse(&body.badge_number));
    let [rank, unit, specialty] =
        labels(&mut problems, body.rank.as_deref(), body.unit.as_deref(), body.specialty.as_deref());
    let availability = match body.availability.as_deref() {
        Some(raw) => problems.check("availability", parse_availability(raw)),
        None => Some(Availability::Available),
    };
    problems.finish()?;
    let (Some(badge_number), Some(availability)) = (badge_number, availability) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let officer = NewOfficer {
        id: OfficerId::generate(),
        user_id: UserId::from_uuid(body.user_id),
        badge_number,
        rank,
        unit,
        specialty,
        availability,
    };
    let officer = create_officer(&*services.officers, principal.actor(), officer, request_context(&req))
        .await
        .map_err(officer_error)?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/officers/{}", officer.id)))
        .json(OfficerView::from(officer)))
}

/// Officers nearest to a point, nearest first (operators and above).
#[utoipa::path(
    tag = "officers",
    security(("bearer" = [])),
    params(NearestParams),
    responses(
        (status = 200, description = "nearest first, distances in metres", body = NearbyOfficers),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "officers may not search officers", body = ErrorBody),
        (status = 422, description = "missing or out-of-range parameters", body = ErrorBody),
    )
)]
#[get("/api/v1/officers/nearest")]
pub(crate) async fn nearest_officers_route(
    principal: Principal,
    query: Query<NearestParams>,
    services: web::Data<Services>,
) -> Result<web::Json<NearbyOfficers>, ApiError> {
    let mut problems = Fields::default();
    let lat = problems.required_number("lat", query.lat.as_deref());
    let lng = problems.required_number("lng", query.lng.as_deref());
    let point = match (lat, lng) {
        (Some(lat), Some(lng)) => problems.point("", lat, lng),
        _ => None,
    };
    let limit = match query.limit.as_deref() {
        None => Some(5),
        Some(raw) => problems.check(
            "limit",
            raw.trim()
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=100).contains(limit))
                .ok_or(InvalidValue("must be between 1 and 100")),
        ),
    };
    let available_only = match query.available_only.as_deref() {
        None | Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => problems.check("available_only", Err(InvalidValue("must be true or false"))),
    };
    let max_distance_m = query.max_distance_m.as_deref().and_then(|raw| {
        problems.check(
            "max_distance_m",
            parse_number(raw).and_then(|m| if m > 0.0 { Ok(m) } else { Err(InvalidValue("must be positive")) }),
        )
    });
    problems.finish()?;
    let (Some(point), Some(limit), Some(available_only)) = (point, limit, available_only) else {
        return Err(ApiError::internal("validated parameters missing"));
    };
    let request = NearestQuery { point, limit, available_only, max_distance_m };
    let nearby = nearest_officers(&*services.officers, principal.actor(), &request).await.map_err(officer_error)?;
    let items = nearby
        .into_iter()
        .map(|nearby| NearbyOfficerView { officer: OfficerView::from(nearby.officer), distance_m: nearby.distance_m })
        .collect();
    Ok(web::Json(NearbyOfficers { items }))
}

/// Read an officer: operators and above any, officers their own (others are 404 to them).
#[utoipa::path(
    tag = "officers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "officer id")),
    responses(
        (status = 200, description = "the officer", body = OfficerView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "the caller's role may not read another officer's profile", body = ErrorBody),
        (status = 404, description = "no such officer", body = ErrorBody),
    )
)]
#[get("/api/v1/officers/{id}")]
pub(crate) async fn get_officer(
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<web::Json<OfficerView>, ApiError> {
    let officer =
        read_officer(&*services.officers, principal.actor(), OfficerId::from_uuid(*id)).await.map_err(officer_error)?;
    Ok(web::Json(OfficerView::from(officer)))
}

/// Change a profile (admins and supervisors).
#[utoipa::path(
    tag = "officers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "officer id")),
    request_body = PatchOfficerRequest,
    responses(
        (status = 200, description = "the updated officer", body = OfficerView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "visible but not editable by the caller", body = ErrorBody),
        (status = 404, description = "no such officer", body = ErrorBody),
        (status = 409, description = "`duplicate` badge number", body = ErrorBody),
        (status = 422, description = "invalid fields", body = ErrorBody),
    )
)]
#[patch("/api/v1/officers/{id}")]
pub(crate) async fn patch_officer(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    body: Json<PatchOfficerRequest>,
    services: web::Data<Services>,
) -> Result<web::Json<OfficerView>, ApiError> {
    let body = body.into_inner();
    let mut problems = Fields::default();
    let badge_number =
        body.badge_number.as_deref().and_then(|raw| problems.check("badge_number", BadgeNumber::parse(raw)));
    let mut label = |field: &str, value: Option<Option<String>>| {
        value.map(|value| value.and_then(|raw| problems.check(field, parse_label(&raw)).flatten()))
    };
    let changes = OfficerChanges {
        badge_number,
        rank: label("rank", body.rank),
        unit: label("unit", body.unit),
        specialty: label("specialty", body.specialty),
    };
    problems.finish()?;
    let officer = update_officer(
        &*services.officers,
        principal.actor(),
        OfficerId::from_uuid(*id),
        changes,
        request_context(&req),
    )
    .await
    .map_err(officer_error)?;
    Ok(web::Json(OfficerView::from(officer)))
}

/// Remove a profile (admins and supervisors); it is kept for the records but no longer served.
#[utoipa::path(
    tag = "officers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "officer id")),
    responses(
        (status = 204, description = "removed"),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "visible but not removable by the caller", body = ErrorBody),
        (status = 404, description = "no such officer", body = ErrorBody),
    )
)]
#[delete("/api/v1/officers/{id}")]
pub(crate) async fn delete_officer_route(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    delete_officer(&*services.officers, principal.actor(), OfficerId::from_uuid(*id), request_context(&req))
        .await
        .map_err(officer_error)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Report an officer's position (the officer, or operators and above). Needs the officer's
/// `location_tracking` consent; keeps a history.
#[utoipa::path(
    tag = "officers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "officer id")),
    request_body = LocationRequest,
    responses(
        (status = 200, description = "the officer with the new position", body = OfficerView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "`consent_required`: no location-tracking consent", body = ErrorBody),
        (status = 404, description = "no such officer", body = ErrorBody),
        (status = 422, description = "coordinates, accuracy or time out of range", body = ErrorBody),
    )
)]
#[put("/api/v1/officers/{id}/location")]
pub(crate) async fn put_location(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    body: Json<LocationRequest>,
    services: web::Data<Services>,
) -> Result<web::Json<OfficerView>, ApiError> {
    let mut problems = Fields::default();
    let point = problems.point("", body.lat, body.lng);
    let accuracy_m = body.accuracy_m.and_then(|accuracy| problems.check("accuracy_m", parse_accuracy(accuracy)));
    let now = OffsetDateTime::now_utc();
    let recorded_at = match body.recorded_at.as_deref() {
        None => Some(now),
        Some(raw) => problems.check(
            "recorded_at",
            OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| InvalidValue("must be an RFC 3339 time")).and_then(|at| {
                if at <= now + time::Duration::minutes(1) {
                    Ok(at)
                } else {
                    Err(InvalidValue("must not be in the future"))
                }
            }),
        ),
    };
    problems.finish()?;
    let (Some(point), Some(recorded_at)) = (point, recorded_at) else {
        return Err(ApiError::internal("validated fields missing"));
    };
    let report = LocationReport { point, accuracy_m, recorded_at };
    let officer = report_location(
        &*services.officers,
        principal.actor(),
        OfficerId::from_uuid(*id),
        report,
        request_context(&req),
    )
    .await
    .map_err(officer_error)?;
    Ok(web::Json(OfficerView::from(officer)))
}

/// Set an officer's availability (the officer, or operators and above).
#[utoipa::path(
    tag = "officers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "officer id")),
    request_body = AvailabilityRequest,
    responses(
        (status = 200, description = "the officer", body = OfficerView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "only the officer themself or an operator+ may set it", body = ErrorBody),
        (status = 404, description = "no such officer", body = ErrorBody),
        (status = 422, description = "unknown availability", body = ErrorBody),
    )
)]
#[put("/api/v1/officers/{id}/availability")]
pub(crate) async fn put_availability(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    body: Json<AvailabilityRequest>,
    services: web::Data<Services>,
) -> Result<web::Json<OfficerView>, ApiError> {
    let mut problems = Fields::default();
    let availability = problems.check("availability", parse_availability(&body.availability));
    problems.finish()?;
    let availability = availability.ok_or_else(|| ApiError::internal("validated field missing"))?;
    let officer = set_availability(
        &*services.officers,
        principal.actor(),
        OfficerId::from_uuid(*id),
        availability,
        request_context(&req),
    )
    .await
    .map_err(officer_error)?;
    Ok(web::Json(OfficerView::from(officer)))
}

#[cfg(test)]
mod tests {
    use gad_domain::tasks::geo::GeoPoint;

    use super::*;

    #[test]
    fn the_api_shape_is_the_event_payload_shape() {
        let now = OffsetDateTime::now_utc();
        let officer = Officer {
            id: OfficerId::generate(),
            user_id: UserId::generate(),
            badge_number: "MAD-1".into(),
            rank: Some("Agent".into()),
            unit: None,
            specialty: None,
            availability: Availability::OnTask,
            location: Some(OfficerLocation {
                point: GeoPoint::new(40.4, -3.7).expect("valid"),
                accuracy_m: Some(8.5),
                updated_at: now,
            }),
            created_at: now,
            updated_at: now,
        };
        let event = serde_json::to_value(&officer).expect("serialises");
        let api = serde_json::to_value(OfficerView::from(officer)).expect("serialises");
        assert_eq!(event, api);
    }
}
