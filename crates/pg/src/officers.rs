//! Officers in PostgreSQL + PostGIS: profiles, positions (with their history), availability,
//! and nearest-first search on the geography GiST indexes.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::AuditEntry;
use gad_domain::error::StoreError;
use gad_domain::tasks::geo::GeoPoint;
use gad_domain::tasks::officer::{
    Availability, LocationReport, NearbyOfficer, NearestQuery, NewOfficer, Officer, OfficerChanges, OfficerError,
    OfficerId, OfficerLocation, OfficerQuery, OfficerStore,
};
use gad_domain::tasks::record::EventType;
use gad_domain::users::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit;
use crate::errors::{corrupt_row, query_error, violated_unique_constraint};
use crate::events::{self, EventNumbering, NewEvent};
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;
use crate::users::live_user_exists;

#[derive(Clone)]
pub struct PgOfficerStore {
    pool: PgPool,
    numbering: EventNumbering,
}

impl PgOfficerStore {
    pub fn new(pool: PgPool, numbering: EventNumbering) -> Self {
        Self { pool, numbering }
    }
}

impl std::fmt::Debug for PgOfficerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOfficerStore").finish_non_exhaustive()
    }
}

/// The columns every officer query returns, the position split into degrees.
const COLUMNS: &str = "o.id, o.user_id, o.badge_number, o.rank, o.unit, o.specialty, o.availability::text AS availability, \
     ST_Y(o.location::geometry) AS lat, ST_X(o.location::geometry) AS lng, o.location_accuracy_m, \
     o.location_updated_at, o.created_at, o.updated_at";

#[derive(QueryableByName)]
struct OfficerRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Text)]
    badge_number: String,
    #[diesel(sql_type = Nullable<Text>)]
    rank: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    unit: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    specialty: Option<String>,
    #[diesel(sql_type = Text)]
    availability: String,
    #[diesel(sql_type = Nullable<Double>)]
    lat: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    lng: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    location_accuracy_m: Option<f64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    location_updated_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Timestamptz)]
    created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    updated_at: OffsetDateTime,
}

#[derive(QueryableByName)]
struct NearbyRow {
    #[diesel(embed)]
    officer: OfficerRow,
    #[diesel(sql_type = Double)]
    distance_m: f64,
}

impl OfficerRow {
    fn into_officer(self) -> Result<Officer, StoreError> {
        let availability = self.availability.parse::<Availability>().map_err(StoreError::unexpected)?;
        let location = match (self.lat, self.lng, self.location_updated_at) {
            (Some(lat), Some(lng), Some(updated_at)) => Some(OfficerLocation {
                point: GeoPoint::new(lat, lng).map_err(|(_, error)| StoreError::unexpected(error))?,
                accuracy_m: self.location_accuracy_m,
                updated_at,
            }),
            _ => None,
        };
        Ok(Officer {
            id: OfficerId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            badge_number: self.badge_number,
            rank: self.rank,
            unit: self.unit,
            specialty: self.specialty,
            availability,
            location,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

async fn load(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<OfficerRow>> {
    diesel::sql_query(format!("SELECT {COLUMNS} FROM officers o WHERE o.id = $1 AND o.deleted_at IS NULL"))
        .bind::<SqlUuid, _>(id)
        .prepared()
        .get_result(conn)
        .await
        .optional()
}

fn officer_error(error: diesel::result::Error) -> OfficerError {
    match violated_unique_constraint(&error) {
        Some("officers_badge_number_key") => OfficerError::Duplicate("badge_number"),
        Some("officers_user_id_key") => OfficerError::Duplicate("user_id"),
        _ => OfficerError::Store(query_error(error)),
    }
}

/// Re-reads the officer after a write, appends the audit row and, when others follow the
/// change live, the event with the officer as its payload.
async fn reload_with_event(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    event_type: Option<&'static str>,
    entry: &AuditEntry,
) -> QueryResult<Option<Officer>> {
    let Some(officer) =
        load(conn, id).await?.map(OfficerRow::into_officer).transpose().map_err(|error| corrupt_row(&error))?
    else {
        return Ok(None);
    };
    audit::append(conn, entry).await?;
    if let Some(event_type) = event_type {
        append_event(conn, &officer, event_type, entry).await?;
    }
    Ok(Some(officer))
}

/// The event of an officer change, with the officer as its payload.
async fn append_event(
    conn: &AsyncPgConnection,
    officer: &Officer,
    event_type: &'static str,
    entry: &AuditEntry,
) -> QueryResult<()> {
    let payload =
        serde_json::to_value(officer).map_err(|error| diesel::result::Error::SerializationError(Box::new(error)))?;
    events::append(
        conn,
        NewEvent { event_type, task_id: None, officer_id: Some(officer.id.as_uuid()), audience: &[], entry, payload },
    )
    .await
}

/// Moves officers whose availability a task write changes (a start, a finish, an emergency, an
/// unassignment), in that write's transaction, and announces each one it changed: one
/// `officer.availability_changed` built from the row the update returns (no second read).
/// `update` is an `UPDATE officers o SET … WHERE o.id = ANY($1) …` without `RETURNING`.
pub(crate) async fn move_availability(
    mut conn: &AsyncPgConnection,
    update: &str,
    officers: &[Uuid],
    entry: &AuditEntry,
) -> QueryResult<()> {
    if officers.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<OfficerRow> = diesel::sql_query(format!("{update} RETURNING {COLUMNS}"))
        .bind::<Array<SqlUuid>, _>(officers)
        .prepared()
        .load(&mut conn)
        .await?;
    rows.sort_by_key(|row| row.id);
    for row in rows {
        let officer = row.into_officer().map_err(|error| corrupt_row(&error))?;
        append_event(conn, &officer, EventType::OfficerAvailabilityChanged.as_str(), entry).await?;
    }
    Ok(())
}

#[async_trait]
impl OfficerStore for PgOfficerStore {
    async fn insert(&self, officer: NewOfficer, entry: AuditEntry) -> Result<Officer, OfficerError> {
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async |conn| {
            if !live_user_exists(conn, officer.user_id.as_uuid()).await? {
                return Ok(None);
            }
            diesel::sql_query(
                "INSERT INTO officers (id, user_id, badge_number, rank, unit, specialty, availability) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7::officer_availability)",
            )
            .bind::<SqlUuid, _>(officer.id.as_uuid())
            .bind::<SqlUuid, _>(officer.user_id.as_uuid())
            .bind::<Text, _>(officer.badge_number.as_str())
            .bind::<Nullable<Text>, _>(officer.rank.as_deref())
            .bind::<Nullable<Text>, _>(officer.unit.as_deref())
            .bind::<Nullable<Text>, _>(officer.specialty.as_deref())
            .bind::<Text, _>(officer.availability.as_str())
            .prepared()
            .execute(conn)
            .await?;
            reload_with_event(conn, officer.id.as_uuid(), None, &entry).await
        })
        .await
        .map_err(officer_error)?
        .ok_or(OfficerError::UnknownUser)
    }

    async fn find(&self, id: OfficerId) -> Result<Option<Officer>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        load(&mut conn, id.as_uuid()).await.map_err(query_error)?.map(OfficerRow::into_officer).transpose()
    }

    async fn list(&self, query: &OfficerQuery) -> Result<Vec<Officer>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let rows: Vec<OfficerRow> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM officers o WHERE o.deleted_at IS NULL \
               AND ($1::text IS NULL OR o.availability = $1::officer_availability) \
               AND ($2::text IS NULL OR o.unit = $2) \
               AND ($3::uuid IS NULL OR o.id < $3) \
             ORDER BY o.id DESC LIMIT $4"
        ))
        .bind::<Nullable<Text>, _>(query.availability.map(Availability::as_str))
        .bind::<Nullable<Text>, _>(query.unit.as_deref())
        .bind::<Nullable<SqlUuid>, _>(query.before.map(OfficerId::as_uuid))
        .bind::<Integer, _>(i32::try_from(query.limit).unwrap_or(i32::MAX))
        .prepared()
        .load(&mut conn)
        .await
        .map_err(query_error)?;
        rows.into_iter().map(OfficerRow::into_officer).collect()
    }

    async fn update(
        &self,
        id: OfficerId,
        changes: OfficerChanges,
        entry: AuditEntry,
    ) -> Result<Option<Officer>, OfficerError> {
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async |conn| {
            let changed = diesel::sql_query(
                "UPDATE officers SET \
                        badge_number = COALESCE($2, badge_number), \
                        rank = CASE WHEN $3 THEN $4 ELSE rank END, \
                        unit = CASE WHEN $5 THEN $6 ELSE unit END, \
                        specialty = CASE WHEN $7 THEN $8 ELSE specialty END \
                     WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<Nullable<Text>, _>(changes.badge_number.as_ref().map(|badge| badge.as_str()))
            .bind::<Bool, _>(changes.rank.is_some())
            .bind::<Nullable<Text>, _>(changes.rank.clone().flatten())
            .bind::<Bool, _>(changes.unit.is_some())
            .bind::<Nullable<Text>, _>(changes.unit.clone().flatten())
            .bind::<Bool, _>(changes.specialty.is_some())
            .bind::<Nullable<Text>, _>(changes.specialty.clone().flatten())
            .prepared()
            .execute(conn)
            .await?;
            if changed == 0 {
                return Ok(None);
            }
            reload_with_event(conn, id.as_uuid(), None, &entry).await
        })
        .await
        .map_err(officer_error)
    }

    async fn delete(&self, id: OfficerId, entry: AuditEntry) -> Result<bool, StoreError> {
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async |conn| {
            let changed =
                diesel::sql_query("UPDATE officers SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL")
                    .bind::<SqlUuid, _>(id.as_uuid())
                    .prepared()
                    .execute(conn)
                    .await?;
            if changed == 1 {
                audit::append(conn, &entry).await?;
            }
            Ok(changed == 1)
        })
        .await
        .map_err(query_error)
    }

    async fn report_location(
        &self,
        id: OfficerId,
        report: LocationReport,
        entry: AuditEntry,
    ) -> Result<Option<Officer>, OfficerError> {
        #[derive(QueryableByName)]
        struct Consent {
            #[diesel(sql_type = Bool)]
            granted: bool,
        }
        let mut conn = connection(&self.pool).await?;
        let outcome: Result<Option<Officer>, LocationFailure> = conn
            .transaction(async |conn| {
                // The newest consent record of the officer's user decides.
                let consent: Option<Consent> = diesel::sql_query(
                    "SELECT c.granted FROM officers o JOIN consents c ON c.user_id = o.user_id \
                     WHERE o.id = $1 AND o.deleted_at IS NULL AND c.consent_type = 'location_tracking' \
                     ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1",
                )
                .bind::<SqlUuid, _>(id.as_uuid())
                .prepared()
                .get_result(conn)
                .await
                .optional()?;
                if !consent.is_some_and(|consent| consent.granted) {
                    return Err(LocationFailure::ConsentRequired);
                }
                let point = "ST_SetSRID(ST_MakePoint($3, $2), 4326)::geography";
                // The profile row is locked first: an erasure that holds it makes this report
                // wait, then find the profile gone, and record nothing.
                let updated = diesel::sql_query(format!(
                    "UPDATE officers SET location = {point}, location_accuracy_m = $4, location_updated_at = $5 \
                     WHERE id = $1 AND deleted_at IS NULL"
                ))
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<Double, _>(report.point.lat())
                .bind::<Double, _>(report.point.lng())
                .bind::<Nullable<Double>, _>(report.accuracy_m)
                .bind::<Timestamptz, _>(report.recorded_at)
                .prepared()
                .execute(conn)
                .await?;
                if updated == 0 {
                    return Ok(None);
                }
                diesel::sql_query(format!(
                    "INSERT INTO officer_locations (officer_id, location, accuracy_m, recorded_at) VALUES ($1, {point}, $4, $5)"
                ))
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<Double, _>(report.point.lat())
                .bind::<Double, _>(report.point.lng())
                .bind::<Nullable<Double>, _>(report.accuracy_m)
                .bind::<Timestamptz, _>(report.recorded_at)
                .prepared()
                .execute(conn)
                .await?;
                Ok(reload_with_event(conn, id.as_uuid(), Some(EventType::OfficerLocationUpdated.as_str()), &entry).await?)
            })
            .await;
        let outcome = events::after_commit(&self.numbering, outcome);
        match outcome {
            Ok(officer) => Ok(officer),
            Err(LocationFailure::ConsentRequired) => Err(OfficerError::ConsentRequired),
            Err(LocationFailure::Query(error)) => Err(OfficerError::Store(query_error(error))),
        }
    }

    async fn set_availability(
        &self,
        id: OfficerId,
        availability: Availability,
        entry: AuditEntry,
    ) -> Result<Option<Officer>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let outcome = conn
            .transaction(async |conn| {
                let changed = diesel::sql_query(
                    "UPDATE officers SET availability = $2::officer_availability WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<Text, _>(availability.as_str())
                .prepared()
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Ok(None);
                }
                reload_with_event(conn, id.as_uuid(), Some(EventType::OfficerAvailabilityChanged.as_str()), &entry)
                    .await
            })
            .await
            .map_err(query_error);
        events::after_commit(&self.numbering, outcome)
    }

    async fn nearest(&self, query: &NearestQuery) -> Result<Vec<NearbyOfficer>, StoreError> {
        // The availability and distance predicates are spelled out only when asked for, so that
        // the planner can use the partial index of available officers and each variant keeps a
        // plan of its own; the limit is written in for the same reason (a bound limit leaves the
        // planner guessing and re-planning on every execution).
        let available = if query.available_only { "AND o.availability = 'available'" } else { "" };
        let point = "ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography";
        let within = match query.max_distance_m {
            Some(_) => format!("AND ST_DWithin(o.location, {point}, $3)"),
            None => "AND $3::float8 IS NULL".to_owned(),
        };
        let statement = format!(
            "SELECT {COLUMNS}, ST_Distance(o.location, {point}) AS distance_m FROM officers o \
             WHERE o.deleted_at IS NULL AND o.location IS NOT NULL {available} \
               {within} \
             ORDER BY o.location <-> {point} LIMIT {limit}",
            limit = query.limit
        );
        let mut conn = connection(&self.pool).await?;
        let rows: Vec<NearbyRow> = diesel::sql_query(statement)
            .bind::<Double, _>(query.point.lat())
            .bind::<Double, _>(query.point.lng())
            .bind::<Nullable<Double>, _>(query.max_distance_m)
            .prepared()
            .load(&mut conn)
            .await
            .map_err(query_error)?;
        rows.into_iter()
            .map(|row| Ok(NearbyOfficer { officer: row.officer.into_officer()?, distance_m: row.distance_m }))
            .collect()
    }
}

/// Why a position report's transaction was rolled back.
enum LocationFailure {
    ConsentRequired,
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for LocationFailure {
    fn from(error: diesel::result::Error) -> Self {
        Self::Query(error)
    }
}
