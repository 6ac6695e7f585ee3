//! The task resource's shapes: request bodies, each turned into the domain's input in one step
//! (`validator` collects every field error into the one 422, its checks calling the domain's
//! parsers), and the OpenAPI description of the task that responses and events carry.

use gad_domain::tasks::geo::GeoPoint;
use gad_domain::tasks::input::{
    Code, EmergencyInput, LocationDescription, LongText, Reason, Schedule, TaskInput, TaskPatch, Title,
};
use gad_domain::tasks::officer::OfficerId;
use gad_domain::tasks::state::{TaskAction, TaskStatus};
use gad_domain::tasks::task::{Priority, StatusChange, Task, TaskKind};
use gad_domain::users::{InvalidValue, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;
use validator::{Validate, ValidationError};

use crate::error::ApiError;
use crate::routes::officers::OfficerView;
use crate::validation::{at, invalid, parse_time, present, valid};

#[derive(Debug, Serialize, Deserialize, ToSchema, Validate)]
pub(crate) struct PointView {
    #[validate(custom(function = "check_latitude"))]
    lat: f64,
    #[validate(custom(function = "check_longitude"))]
    lng: f64,
}

impl PointView {
    /// The point; `validate` has already reported bad coordinates under their full names.
    fn point(&self) -> Result<GeoPoint, ApiError> {
        GeoPoint::new(self.lat, self.lng).map_err(|(field, error)| at(field)(error))
    }
}

// Responses and events serialise the domain's `Task` itself; this describes it for the OpenAPI
// document, and a test below proves the two have the same fields.
/// A task (SPEC §4). The same shape is the payload of `task.*` events.
#[derive(Debug, ToSchema)]
#[expect(dead_code, reason = "describes the serialised domain `Task` for the OpenAPI document")]
pub(crate) struct TaskView {
    id: Uuid,
    code: String,
    title: String,
    description: Option<String>,
    #[schema(value_type = String, example = "patrol")]
    kind: TaskKind,
    #[schema(value_type = String, example = "medium")]
    priority: Priority,
    #[schema(value_type = String, example = "scheduled")]
    status: TaskStatus,
    #[schema(value_type = String, format = DateTime)]
    scheduled_start: OffsetDateTime,
    #[schema(value_type = Option<String>, format = DateTime)]
    scheduled_end: Option<OffsetDateTime>,
    #[schema(value_type = Option<String>, format = DateTime)]
    actual_start: Option<OffsetDateTime>,
    #[schema(value_type = Option<String>, format = DateTime)]
    actual_end: Option<OffsetDateTime>,
    #[schema(value_type = Option<String>, format = DateTime)]
    paused_at: Option<OffsetDateTime>,
    total_paused_seconds: i64,
    location: Option<PointView>,
    location_description: Option<String>,
    delegate_id: Uuid,
    created_by: Uuid,
    officer_ids: Vec<Uuid>,
    notes: Option<String>,
    /// Also the `ETag`.
    version: i64,
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskPage {
    #[schema(value_type = Vec<TaskView>)]
    pub(crate) items: Vec<Task>,
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusChangeView {
    #[schema(value_type = String)]
    from_status: TaskStatus,
    #[schema(value_type = String)]
    to_status: TaskStatus,
    #[schema(value_type = String)]
    action: TaskAction,
    actor_id: Option<Uuid>,
    reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
}

impl From<StatusChange> for StatusChangeView {
    fn from(change: StatusChange) -> Self {
        Self {
            from_status: change.from_status,
            to_status: change.to_status,
            action: change.action,
            actor_id: change.actor_id.map(UserId::as_uuid),
            reason: change.reason,
            at: change.at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryView {
    /// Oldest first; exactly one per transition.
    pub(crate) items: Vec<StatusChangeView>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTaskRequest {
    /// Unique; generated (`T-000123`) when absent.
    #[validate(custom(function = "check_code"))]
    code: Option<String>,
    #[validate(custom(function = "check_title"))]
    title: String,
    #[validate(custom(function = "check_long_text"))]
    description: Option<String>,
    #[schema(example = "patrol")]
    #[validate(custom(function = "check_kind"))]
    kind: String,
    /// Default `medium`.
    #[validate(custom(function = "check_priority"))]
    priority: Option<String>,
    /// RFC 3339.
    #[validate(custom(function = "check_time"))]
    scheduled_start: String,
    /// RFC 3339, after `scheduled_start`.
    #[validate(custom(function = "check_time"))]
    scheduled_end: Option<String>,
    #[validate(nested)]
    location: Option<PointView>,
    #[validate(custom(function = "check_location_text"))]
    location_description: Option<String>,
    /// Default: the creator.
    delegate_id: Option<Uuid>,
    officer_ids: Option<Vec<Uuid>>,
    #[validate(custom(function = "check_long_text"))]
    notes: Option<String>,
}

impl CreateTaskRequest {
    pub(crate) fn into_input(self) -> Result<TaskInput, ApiError> {
        self.validate().map_err(|errors| invalid(&errors))?;
        let start = parse_time(&self.scheduled_start).map_err(at("scheduled_start"))?;
        let end = self.scheduled_end.as_deref().map(parse_time).transpose().map_err(at("scheduled_end"))?;
        Ok(TaskInput {
            code: self.code.as_deref().map(Code::parse).transpose().map_err(at("code"))?,
            title: Title::parse(&self.title).map_err(at("title"))?,
            description: text(self.description.as_deref(), "description")?,
            kind: self.kind.parse().map_err(at("kind"))?,
            priority: self.priority.as_deref().map(str::parse).transpose().map_err(at("priority"))?,
            schedule: Schedule::new(start, end).map_err(at("scheduled_end"))?,
            location: self.location.as_ref().map(|point| point.point()).transpose()?,
            location_description: text(self.location_description.as_deref(), "location_description")?,
            delegate_id: self.delegate_id.map(UserId::from_uuid),
            officer_ids: self.officer_ids.unwrap_or_default().into_iter().map(OfficerId::from_uuid).collect(),
            notes: text(self.notes.as_deref(), "notes")?,
        })
    }
}

/// Descriptive fields only; absent fields stay, `null` clears an optional one. `status` is
/// changed through transitions (422 here).
#[derive(Debug, Deserialize, ToSchema, Validate)]
pub(crate) struct PatchTaskRequest {
    #[validate(custom(function = "check_title"))]
    title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    #[validate(custom(function = "check_long_text"))]
    description: Option<Option<String>>,
    #[validate(custom(function = "check_kind"))]
    kind: Option<String>,
    #[validate(custom(function = "check_priority"))]
    priority: Option<String>,
    #[validate(custom(function = "check_time"))]
    scheduled_start: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    #[validate(custom(function = "check_time"))]
    scheduled_end: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<PointView>)]
    #[validate(nested)]
    location: Option<Option<PointView>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    #[validate(custom(function = "check_location_text"))]
    location_description: Option<Option<String>>,
    delegate_id: Option<Uuid>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    #[validate(custom(function = "check_long_text"))]
    notes: Option<Option<String>>,
    /// Refused: use `POST /tasks/{id}/transitions`.
    #[schema(value_type = Option<String>)]
    #[validate(custom(function = "check_through_transitions"))]
    status: Option<serde_json::Value>,
}

impl PatchTaskRequest {
    pub(crate) fn into_patch(self) -> Result<TaskPatch, ApiError> {
        self.validate().map_err(|errors| invalid(&errors))?;
        let cleared =
            |value: Option<Option<String>>, field| value.map(|value| text(value.as_deref(), field)).transpose();
        Ok(TaskPatch {
            title: self.title.as_deref().map(Title::parse).transpose().map_err(at("title"))?,
            description: cleared(self.description, "description")?,
            kind: self.kind.as_deref().map(str::parse).transpose().map_err(at("kind"))?,
            priority: self.priority.as_deref().map(str::parse).transpose().map_err(at("priority"))?,
            scheduled_start: self
                .scheduled_start
                .as_deref()
                .map(parse_time)
                .transpose()
                .map_err(at("scheduled_start"))?,
            scheduled_end: self
                .scheduled_end
                .map(|end| end.as_deref().map(parse_time).transpose())
                .transpose()
                .map_err(at("scheduled_end"))?,
            location: self.location.map(|point| point.map(|point| point.point()).transpose()).transpose()?,
            location_description: self
                .location_description
                .map(|value| text::<500>(value.as_deref(), "location_description"))
                .transpose()?,
            delegate_id: self.delegate_id.map(UserId::from_uuid),
            notes: cleared(self.notes, "notes")?,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmergencyRequest {
    #[validate(custom(function = "check_latitude"))]
    lat: f64,
    #[validate(custom(function = "check_longitude"))]
    lng: f64,
    /// Default `Emergency`.
    #[validate(custom(function = "check_title"))]
    title: Option<String>,
    #[validate(custom(function = "check_long_text"))]
    description: Option<String>,
}

impl EmergencyRequest {
    pub(crate) fn into_input(self) -> Result<EmergencyInput, ApiError> {
        self.validate().map_err(|errors| invalid(&errors))?;
        Ok(EmergencyInput {
            point: PointView { lat: self.lat, lng: self.lng }.point()?,
            title: self.title.as_deref().map(Title::parse).transpose().map_err(at("title"))?,
            description: text(self.description.as_deref(), "description")?,
        })
    }
}

/// The emergency task, the officer sent (if anyone was available) and how far away they were.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EmergencyView {
    #[schema(value_type = TaskView)]
    pub(crate) task: Task,
    pub(crate) officer: Option<OfficerView>,
    pub(crate) distance_m: Option<f64>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitionRequest {
    #[schema(example = "start")]
    #[validate(custom(function = "check_action"))]
    action: String,
    #[validate(custom(function = "check_reason"))]
    reason: Option<String>,
}

impl TransitionRequest {
    pub(crate) fn into_parts(self) -> Result<(TaskAction, Option<Reason>), ApiError> {
        self.validate().map_err(|errors| invalid(&errors))?;
        let action = self.action.parse().map_err(at("action"))?;
        Ok((action, self.reason.as_deref().map(Reason::parse).transpose().map_err(at("reason"))?.flatten()))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignRequest {
    officer_ids: Vec<Uuid>,
}

impl AssignRequest {
    pub(crate) fn officers(self) -> Vec<OfficerId> {
        self.officer_ids.into_iter().map(OfficerId::from_uuid).collect()
    }
}

/// Free text of at most `MAX` characters; empty is none.
fn text<const MAX: usize>(
    raw: Option<&str>,
    field: &'static str,
) -> Result<Option<gad_domain::tasks::input::Text<MAX>>, ApiError> {
    Ok(raw.map(gad_domain::tasks::input::Text::<MAX>::parse).transpose().map_err(at(field))?.flatten())
}

fn check_title(raw: &str) -> Result<(), ValidationError> {
    valid(Title::parse(raw))
}

fn check_code(raw: &str) -> Result<(), ValidationError> {
    valid(Code::parse(raw))
}

fn check_long_text(raw: &str) -> Result<(), ValidationError> {
    valid(LongText::parse(raw))
}

fn check_location_text(raw: &str) -> Result<(), ValidationError> {
    valid(LocationDescription::parse(raw))
}

fn check_reason(raw: &str) -> Result<(), ValidationError> {
    valid(Reason::parse(raw))
}

fn check_kind(raw: &str) -> Result<(), ValidationError> {
    valid(raw.parse::<TaskKind>())
}

fn check_priority(raw: &str) -> Result<(), ValidationError> {
    valid(raw.parse::<Priority>())
}

fn check_action(raw: &str) -> Result<(), ValidationError> {
    valid(raw.parse::<TaskAction>())
}

fn check_time(raw: &str) -> Result<(), ValidationError> {
    valid(parse_time(raw))
}

fn check_latitude(lat: f64) -> Result<(), ValidationError> {
    valid(GeoPoint::latitude(lat))
}

fn check_longitude(lng: f64) -> Result<(), ValidationError> {
    valid(GeoPoint::longitude(lng))
}

fn check_through_transitions(_: &serde_json::Value) -> Result<(), ValidationError> {
    valid::<()>(Err(InvalidValue("is changed through POST /tasks/{id}/transitions")))
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn the_documented_task_has_exactly_the_fields_of_the_served_one() {
        let now = OffsetDateTime::now_utc();
        let task = Task {
            id: gad_domain::tasks::task::TaskId::generate(),
            code: "T-000001".into(),
            title: "Night patrol".into(),
            description: None,
            kind: TaskKind::Patrol,
            priority: Priority::Medium,
            status: TaskStatus::Scheduled,
            scheduled_start: now,
            scheduled_end: None,
            actual_start: None,
            actual_end: None,
            paused_at: None,
            total_paused_seconds: 0,
            location: Some(GeoPoint::new(40.4, -3.7).unwrap()),
            location_description: None,
            delegate_id: UserId::generate(),
            created_by: UserId::generate(),
            officer_ids: vec![],
            officer_user_ids: vec![UserId::generate()],
            notes: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let served = serde_json::to_value(&task).unwrap();
        let served: Vec<&str> = served.as_object().unwrap().keys().map(String::as_str).collect();
        let schema = serde_json::to_value(<TaskView as utoipa::PartialSchema>::schema()).unwrap();
        let documented: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted = served.clone();
        sorted.sort_unstable();
        let mut documented_sorted = documented.clone();
        documented_sorted.sort_unstable();
        assert_eq!(sorted, documented_sorted, "served {served:?}, documented {documented:?}");
    }
}
