//! `/api/v1/users/{id}/consents` (SPEC §7): the subject's consents, current and historical.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use gad_domain::consent::{
    Channel, ConsentError, ConsentRecord, ConsentType, CurrentConsent, NewConsent, PolicyVersion, consent_history,
    current_state, record_consent,
};
use gad_domain::users::UserId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::extract::Json;
use crate::state::Services;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConsentView {
    id: Uuid,
    #[schema(value_type = String, example = "location_tracking")]
    consent_type: ConsentType,
    granted: bool,
    policy_version: String,
    /// `api` or `telegram`.
    channel: String,
    user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    recorded_at: OffsetDateTime,
}

impl From<ConsentRecord> for ConsentView {
    fn from(record: ConsentRecord) -> Self {
        Self {
            id: record.id,
            consent_type: record.consent_type,
            granted: record.granted,
            policy_version: record.policy_version,
            channel: record.channel,
            user_agent: record.user_agent,
            recorded_at: record.recorded_at,
        }
    }
}

/// The state of one type: not granted until a record grants it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConsentStateView {
    #[schema(value_type = String)]
    consent_type: ConsentType,
    granted: bool,
    policy_version: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    recorded_at: Option<OffsetDateTime>,
}

impl From<CurrentConsent> for ConsentStateView {
    fn from(state: CurrentConsent) -> Self {
        Self {
            consent_type: state.consent_type,
            granted: state.granted(),
            policy_version: state.latest.as_ref().map(|record| record.policy_version.clone()),
            recorded_at: state.latest.map(|record| record.recorded_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConsentsView {
    /// One entry per consent type.
    current: Vec<ConsentStateView>,
    /// Every record, newest first.
    history: Vec<ConsentView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordConsentRequest {
    #[schema(example = "location_tracking")]
    consent_type: String,
    granted: bool,
    #[schema(example = "2026-11")]
    policy_version: String,
}

fn consent_error(error: ConsentError) -> ApiError {
    match error {
        ConsentError::NotFound => ApiError::not_found(),
        ConsentError::Forbidden => ApiError::forbidden(),
        ConsentError::Store(error) => error.into(),
    }
}

/// The subject's consents: current state per type and the full history (the subject or admins).
#[utoipa::path(
    tag = "consents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    responses(
        (status = 200, description = "current state and history", body = ConsentsView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 404, description = "no such user, or not visible to the caller", body = ErrorBody),
    )
)]
#[get("/api/v1/users/{id}/consents")]
pub(crate) async fn get_consents(
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<web::Json<ConsentsView>, ApiError> {
    let history =
        consent_history(&*services.consents, principal.actor(), UserId::from_uuid(*id)).await.map_err(consent_error)?;
    let current = current_state(&history).into_iter().map(ConsentStateView::from).collect();
    Ok(web::Json(ConsentsView { current, history: history.into_iter().map(ConsentView::from).collect() }))
}

/// Give or withdraw a consent (the subject only). Appends a record; nothing is overwritten.
#[utoipa::path(
    tag = "consents",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    request_body = RecordConsentRequest,
    responses(
        (status = 201, description = "recorded", body = ConsentView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "only the subject records consent", body = ErrorBody),
        (status = 404, description = "no such user, or not visible to the caller", body = ErrorBody),
        (status = 422, description = "invalid fields", body = ErrorBody),
    )
)]
#[post("/api/v1/users/{id}/consents")]
pub(crate) async fn post_consent(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    body: Json<RecordConsentRequest>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let mut problems = Vec::new();
    let consent_type = body
        .consent_type
        .parse::<ConsentType>()
        .map_err(|error| problems.push(FieldError { field: "consent_type".into(), message: error.to_string() }))
        .ok();
    let policy_version = PolicyVersion::parse(&body.policy_version)
        .map_err(|error| problems.push(FieldError { field: "policy_version".into(), message: error.to_string() }))
        .ok();
    let (Some(consent_type), Some(policy_version)) = (consent_type, policy_version) else {
        return Err(ApiError::validation(problems));
    };
    let consent = NewConsent { consent_type, granted: body.granted, policy_version, channel: Channel::Api };
    let record =
        record_consent(&*services.consents, principal.actor(), UserId::from_uuid(*id), consent, request_context(&req))
            .await
            .map_err(consent_error)?;
    Ok(HttpResponse::Created().json(ConsentView::from(record)))
}
