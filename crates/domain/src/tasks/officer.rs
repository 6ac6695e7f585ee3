//! Officers: the field staff that tasks are dispatched to, with their position and availability.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::geo::GeoPoint;
use super::input::Code;
use super::record::AuditAction;
use crate::audit::{AuditEntry, Outcome, RequestContext};
use crate::consent::ConsentType;
use crate::error::StoreError;
use crate::users::policy::Actor;
use crate::users::{InvalidValue, Role, UserId};

crate::ids::id_type!(
    /// Identifies an officer profile.
    OfficerId
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Available,
    OnTask,
    OffDuty,
    Unavailable,
}

impl Availability {
    pub const ALL: [Availability; 4] = [Self::Available, Self::OnTask, Self::OffDuty, Self::Unavailable];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::OnTask => "on_task",
            Self::OffDuty => "off_duty",
            Self::Unavailable => "unavailable",
        }
    }
}

impl std::str::FromStr for Availability {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|availability| availability.as_str() == s)
            .ok_or(InvalidValue("must be one of available, on_task, off_duty, unavailable"))
    }
}

/// A badge number: a [`Code`], unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeNumber(String);

impl BadgeNumber {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Code::parse(raw).map(|code| Self(code.into_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text of a profile (rank, unit, specialty): at most 64 characters, trimmed, no control
/// characters; empty means none.
pub fn parse_label(raw: &str) -> Result<Option<String>, InvalidValue> {
    let value = raw.trim();
    if raw.chars().count() > 64 {
        return Err(InvalidValue("must be at most 64 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidValue("must not contain control characters"));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// Where an officer was last seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OfficerLocation {
    pub point: GeoPoint,
    pub accuracy_m: Option<f64>,
    pub updated_at: OffsetDateTime,
}

/// Serialised as the API and the event log show it: `{lat, lng, accuracy_m, updated_at}`.
impl Serialize for OfficerLocation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let updated_at = self
            .updated_at
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        let mut location = serializer.serialize_struct("OfficerLocation", 4)?;
        location.serialize_field("lat", &self.point.lat())?;
        location.serialize_field("lng", &self.point.lng())?;
        location.serialize_field("accuracy_m", &self.accuracy_m)?;
        location.serialize_field("updated_at", &updated_at)?;
        location.end()
    }
}

/// An officer profile; its serialised form is the one of the API and of the event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Officer {
    pub id: OfficerId,
    pub user_id: UserId,
    pub badge_number: String,
    pub rank: Option<String>,
    pub unit: Option<String>,
    pub specialty: Option<String>,
    pub availability: Availability,
    pub location: Option<OfficerLocation>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewOfficer {
    pub id: OfficerId,
    pub user_id: UserId,
    pub badge_number: BadgeNumber,
    pub rank: Option<String>,
    pub unit: Option<String>,
    pub specialty: Option<String>,
    pub availability: Availability,
}

/// A change to a profile; `None` leaves a field as it is, `Some(None)` clears a label.
#[derive(Debug, Clone, Default)]
pub struct OfficerChanges {
    pub badge_number: Option<BadgeNumber>,
    pub rank: Option<Option<String>>,
    pub unit: Option<Option<String>>,
    pub specialty: Option<Option<String>>,
}

/// A position report.
#[derive(Debug, Clone, Copy)]
pub struct LocationReport {
    pub point: GeoPoint,
    pub accuracy_m: Option<f64>,
    pub recorded_at: OffsetDateTime,
}

#[derive(Debug, Clone, Default)]
pub struct OfficerQuery {
    pub availability: Option<Availability>,
    pub unit: Option<String>,
    pub before: Option<OfficerId>,
    pub limit: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct NearestQuery {
    pub point: GeoPoint,
    pub limit: usize,
    pub available_only: bool,
    pub max_distance_m: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NearbyOfficer {
    pub officer: Officer,
    pub distance_m: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum OfficerError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    /// The officer's user has not granted `location_tracking`.
    #[error("the officer has not consented to location tracking")]
    ConsentRequired,
    /// A unique value is taken: `badge_number`, or `user_id` (one profile per user).
    #[error("a profile with this {0} already exists")]
    Duplicate(&'static str),
    /// `user_id` names no active user.
    #[error("the user does not exist")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Officer profiles. Error contract: unique violations are `Duplicate`, a missing user is
/// `UnknownUser`, a missing officer `Ok(None)`; every write appends its audit row and, for
/// changes others follow live, its event-log row, in the same transaction.
#[async_trait]
pub trait OfficerStore: Send + Sync {
    async fn insert(&self, officer: NewOfficer, audit: AuditEntry) -> Result<Officer, OfficerError>;
    async fn find(&self, id: OfficerId) -> Result<Option<Officer>, StoreError>;
    async fn list(&self, query: &OfficerQuery) -> Result<Vec<Officer>, StoreError>;
    async fn update(
        &self,
        id: OfficerId,
        changes: OfficerChanges,
        audit: AuditEntry,
    ) -> Result<Option<Officer>, OfficerError>;
    async fn delete(&self, id: OfficerId, audit: AuditEntry) -> Result<bool, StoreError>;
    /// Stores the position (and its history row) if the officer's user currently consents to
    /// location tracking; `Err(ConsentRequired)` otherwise.
    async fn report_location(
        &self,
        id: OfficerId,
        report: LocationReport,
        audit: AuditEntry,
    ) -> Result<Option<Officer>, OfficerError>;
    async fn set_availability(
        &self,
        id: OfficerId,
        availability: Availability,
        audit: AuditEntry,
    ) -> Result<Option<Officer>, StoreError>;
    /// Nearest first, distances in metres (geodesic).
    async fn nearest(&self, query: &NearestQuery) -> Result<Vec<NearbyOfficer>, StoreError>;
}

/// The consent that position reports need.
pub const LOCATION_CONSENT: ConsentType = ConsentType::LocationTracking;

fn is_staff(actor: Actor) -> bool {
    matches!(actor.role, Role::Admin | Role::Supervisor | Role::Operator)
}

/// Admins and supervisors manage profiles; operators read them; an officer reads their own.
pub fn may_manage_officers(actor: Actor) -> bool {
    matches!(actor.role, Role::Admin | Role::Supervisor)
}

pub fn may_list_officers(actor: Actor) -> bool {
    is_staff(actor)
}

pub fn may_read_officer(actor: Actor, officer: &Officer) -> bool {
    is_staff(actor) || officer.user_id == actor.id
}

/// Position and availability: the officer themself, or operators and above.
pub fn may_report_for(actor: Actor, officer: &Officer) -> bool {
    is_staff(actor) || officer.user_id == actor.id
}

fn audit(actor: Actor, action: AuditAction, id: OfficerId, context: RequestContext) -> AuditEntry {
    AuditEntry {
        actor: Some((actor.id, actor.role)),
        action: action.as_str(),
        resource_type: "officer",
        resource_id: Some(id.as_uuid()),
        outcome: Outcome::Success,
        context,
    }
}

pub async fn create_officer(
    store: &dyn OfficerStore,
    actor: Actor,
    officer: NewOfficer,
    context: RequestContext,
) -> Result<Officer, OfficerError> {
    if !may_manage_officers(actor) {
        return Err(OfficerError::Forbidden);
    }
    let entry = audit(actor, AuditAction::OfficerCreate, officer.id, context);
    store.insert(officer, entry).await
}

/// The profile, if it exists and the actor may read it. An officer may read only their own
/// profile (SPEC §3): any other id is 403 whether it exists or not, so that nothing is learnt
/// about which ids exist.
pub async fn read_officer(store: &dyn OfficerStore, actor: Actor, id: OfficerId) -> Result<Officer, OfficerError> {
    match store.find(id).await? {
        Some(officer) if may_read_officer(actor, &officer) => Ok(officer),
        None if is_staff(actor) => Err(OfficerError::NotFound),
        _ => Err(OfficerError::Forbidden),
    }
}

pub async fn list_officers(
    store: &dyn OfficerStore,
    actor: Actor,
    query: &OfficerQuery,
) -> Result<Vec<Officer>, OfficerError> {
    if !may_list_officers(actor) {
        return Err(OfficerError::Forbidden);
    }
    Ok(store.list(query).await?)
}

pub async fn update_officer(
    store: &dyn OfficerStore,
    actor: Actor,
    id: OfficerId,
    changes: OfficerChanges,
    context: RequestContext,
) -> Result<Officer, OfficerError> {
    read_officer(store, actor, id).await?;
    if !may_manage_officers(actor) {
        return Err(OfficerError::Forbidden);
    }
    store
        .update(id, changes, audit(actor, AuditAction::OfficerUpdate, id, context))
        .await?
        .ok_or(OfficerError::NotFound)
}

pub async fn delete_officer(
    store: &dyn OfficerStore,
    actor: Actor,
    id: OfficerId,
    context: RequestContext,
) -> Result<(), OfficerError> {
    read_officer(store, actor, id).await?;
    if !may_manage_officers(actor) {
        return Err(OfficerError::Forbidden);
    }
    if store.delete(id, audit(actor, AuditAction::OfficerDelete, id, context)).await? {
        Ok(())
    } else {
        Err(OfficerError::NotFound)
    }
}

pub async fn report_location(
    store: &dyn OfficerStore,
    actor: Actor,
    id: OfficerId,
    report: LocationReport,
    context: RequestContext,
) -> Result<Officer, OfficerError> {
    let officer = read_officer(store, actor, id).await?;
    if !may_report_for(actor, &officer) {
        return Err(OfficerError::Forbidden);
    }
    store
        .report_location(id, report, audit(actor, AuditAction::OfficerLocation, id, context))
        .await?
        .ok_or(OfficerError::NotFound)
}

pub async fn set_availability(
    store: &dyn OfficerStore,
    actor: Actor,
    id: OfficerId,
    availability: Availability,
    context: RequestContext,
) -> Result<Officer, OfficerError> {
    let officer = read_officer(store, actor, id).await?;
    if !may_report_for(actor, &officer) {
        return Err(OfficerError::Forbidden);
    }
    let entry = audit(actor, AuditAction::OfficerAvailability, id, context);
    store.set_availability(id, availability, entry).await?.ok_or(OfficerError::NotFound)
}

pub async fn nearest_officers(
    store: &dyn OfficerStore,
    actor: Actor,
    query: &NearestQuery,
) -> Result<Vec<NearbyOfficer>, OfficerError> {
    if !may_list_officers(actor) {
        return Err(OfficerError::Forbidden);
    }
    Ok(store.nearest(query).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_labels_and_availability_parse_strictly() {
        assert!(BadgeNumber::parse("MAD-0042").is_ok());
        for bad in ["", "has space", "x".repeat(33).as_str(), "ñ1"] {
            assert!(BadgeNumber::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_label("  Patrol  "), Ok(Some("Patrol".into())));
        assert_eq!(parse_label(""), Ok(None));
        assert!(parse_label(&"x".repeat(65)).is_err());
        for availability in Availability::ALL {
            assert_eq!(availability.as_str().parse::<Availability>(), Ok(availability));
        }
        assert!("busy".parse::<Availability>().is_err());
    }

    #[test]
    fn the_officer_matrix_of_the_spec() {
        let now = OffsetDateTime::now_utc();
        let own = UserId::generate();
        let officer = Officer {
            id: OfficerId::generate(),
            user_id: own,
            badge_number: "B-1".into(),
            rank: None,
            unit: None,
            specialty: None,
            availability: Availability::Available,
            location: None,
            created_at: now,
            updated_at: now,
        };
        for (role, manage, list, read_other) in [
            (Role::Admin, true, true, true),
            (Role::Supervisor, true, true, true),
            (Role::Operator, false, true, true),
            (Role::Officer, false, false, false),
        ] {
            let actor = Actor { id: UserId::generate(), role };
            assert_eq!(may_manage_officers(actor), manage, "{role}");
            assert_eq!(may_list_officers(actor), list, "{role}");
            assert_eq!(may_read_officer(actor, &officer), read_other, "{role}");
            assert_eq!(may_report_for(actor, &officer), read_other, "{role}");
        }
        let myself = Actor { id: own, role: Role::Officer };
        assert!(may_read_officer(myself, &officer) && may_report_for(myself, &officer));
    }
}
