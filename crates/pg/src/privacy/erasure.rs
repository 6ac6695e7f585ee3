//! Erasure in one transaction: every personal datum of the subject is deleted or irreversibly
//! pseudonymised, or nothing is. What each table gets is written in the data map.
//!
//! Concurrency: erasures take turns, with role changes and deactivations, under the lock that
//! keeps an active administrator (`crate::admins`), so two admins erasing or demoting each other
//! can never both succeed and leave no admin. The subject's user row and
//! officer rows are locked before anything else: a concurrent location report by the subject
//! either commits first (and its row is then deleted here) or waits and finds the profile gone.
//! The locks are `NO KEY UPDATE`, which leave the rows referable: the subject's own concurrent
//! writes still insert their audit rows and events, which point at them. A write that locks in
//! the other order (a transition of the subject's task, which then marks the officer busy) can
//! still deadlock with an erasure; PostgreSQL aborts one of the two and the erasure is retried.

use diesel::OptionalExtension;
use diesel::QueryableByName;
use diesel::sql_types::{Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::AuditEntry;
use gad_domain::consent::erasure::{ErasedRecords, ErasureOutcome, ErasureReceipt, Treatment};
use gad_domain::users::UserId;
use time::OffsetDateTime;

use crate::{admins, audit};

#[derive(QueryableByName)]
struct Subject {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    erased_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    first_name: String,
    #[diesel(sql_type = Text)]
    last_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    national_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
}

impl Subject {
    /// A case-insensitive regular expression matching any of the subject's identifiers
    /// literally: every character that is not a letter or digit is escaped.
    fn identifier_pattern(&self) -> String {
        let full_name = format!("{} {}", self.first_name, self.last_name);
        [Some(self.email.as_str()), self.phone.as_deref(), self.national_id.as_deref(), Some(full_name.as_str())]
            .into_iter()
            .flatten()
            .map(|identifier| {
                identifier.chars().fold(String::new(), |mut escaped, c| {
                    if !c.is_alphanumeric() {
                        escaped.push('\\');
                    }
                    escaped.push(c);
                    escaped
                })
            })
            .collect::<Vec<_>>()
            .join("|")
    }
}

#[derive(QueryableByName)]
struct StoredReceipt {
    #[diesel(sql_type = Jsonb)]
    details: serde_json::Value,
}

/// The subject's officer profiles.
const OFFICERS: &str = "(SELECT id FROM officers WHERE user_id = $1)";

/// Tasks the subject created, was delegated or is assigned to.
const TASKS: &str = "(SELECT id FROM tasks WHERE created_by = $1 OR delegate_id = $1 \
     UNION SELECT task_id FROM task_assignments WHERE officer_id IN (SELECT id FROM officers WHERE user_id = $1))";

/// What happens to each table, in order. Statements take the subject as `$1`, the identifier
/// pattern as `$2` and the erasure instant as `$3`, each using what it needs. The long work on
/// the subject's own rows comes first; rows that others write too (events waiting for their
/// number, the subject's tasks) are touched last, so that their locks are held only for the
/// moment before the commit. The user row comes last: the free texts are cleaned with the
/// identifiers it still held.
const STEPS: &[(&str, Treatment, &str)] = &[
    ("officer_locations", Treatment::Deleted, "DELETE FROM officer_locations WHERE officer_id IN {OFFICERS}"),
    (
        "consents",
        Treatment::Pseudonymised,
        "UPDATE consents SET ip = NULL, user_agent = NULL \
         WHERE user_id = $1 AND (ip IS NOT NULL OR user_agent IS NOT NULL)",
    ),
    (
        "audit_events",
        Treatment::Pseudonymised,
        "UPDATE audit_events SET ip = NULL, user_agent = NULL \
         WHERE (actor_id = $1 OR (actor_id IS NULL AND resource_type = 'user' AND resource_id = $1)) \
         AND (ip IS NOT NULL OR user_agent IS NOT NULL)",
    ),
    (
        "idempotency_keys",
        Treatment::Deleted,
        "DELETE FROM idempotency_keys WHERE owner_id = $1 \
            OR (response_body IS NOT NULL AND convert_from(response_body, 'UTF8') ~* $2)",
    ),
    (
        "refresh_tokens",
        Treatment::Deleted,
        "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_token_families WHERE user_id = $1) \
        ",
    ),
    ("refresh_token_families", Treatment::Deleted, "DELETE FROM refresh_token_families WHERE user_id = $1"),
    ("ws_tickets", Treatment::Deleted, "DELETE FROM ws_tickets WHERE user_id = $1"),
    (
        // Before the link goes: the chat's updates not yet processed are dropped unprocessed; the
        // update_ids stay, so that redeliveries are still recognised.
        "telegram_processed_updates",
        Treatment::Pseudonymised,
        "UPDATE telegram_processed_updates SET payload = NULL, chat_id = NULL, processed_at = $3, \
         lease_owner = NULL, lease_until = NULL \
         WHERE processed_at IS NULL AND chat_id IN (SELECT chat_id FROM telegram_links WHERE user_id = $1)",
    ),
    ("telegram_links", Treatment::Deleted, "DELETE FROM telegram_links WHERE user_id = $1"),
    ("telegram_link_codes", Treatment::Deleted, "DELETE FROM telegram_link_codes WHERE user_id = $1"),
    ("telegram_conversations", Treatment::Deleted, "DELETE FROM telegram_conversations WHERE user_id = $1"),
    ("telegram_outbox", Treatment::Deleted, "DELETE FROM telegram_outbox WHERE user_id = $1"),
    (
        "officers",
        Treatment::Pseudonymised,
        "UPDATE officers SET badge_number = 'ERASED-' || substr(md5(gen_random_uuid()::text), 1, 16), \
         rank = NULL, unit = NULL, specialty = NULL, location = NULL, location_accuracy_m = NULL, \
         location_updated_at = NULL, availability = 'off_duty', deleted_at = coalesce(deleted_at, $3) \
         WHERE user_id = $1",
    ),
    (
        "event_log",
        Treatment::Pseudonymised,
        "UPDATE event_log SET payload = CASE \
           WHEN officer_id IN {OFFICERS} AND event_type LIKE 'officer.%' \
             THEN jsonb_build_object('id', officer_id, 'erased', true) \
           ELSE regexp_replace(payload::text, $2, '[erased]', 'gi')::jsonb END \
         WHERE (officer_id IN {OFFICERS} AND event_type LIKE 'officer.%') \
            OR (task_id IN {TASKS} AND payload::text ~* $2)",
    ),
    (
        "tasks",
        Treatment::Pseudonymised,
        "UPDATE tasks SET title = left(regexp_replace(title, $2, '[erased]', 'gi'), 200), \
         description = left(regexp_replace(description, $2, '[erased]', 'gi'), 10000), \
         notes = left(regexp_replace(notes, $2, '[erased]', 'gi'), 10000), \
         location_description = left(regexp_replace(location_description, $2, '[erased]', 'gi'), 500) \
         WHERE id IN {TASKS} AND (title ~* $2 OR description ~* $2 OR notes ~* $2 OR location_description ~* $2) \
        ",
    ),
    (
        "task_status_history",
        Treatment::Pseudonymised,
        "UPDATE task_status_history SET reason = left(regexp_replace(reason, $2, '[erased]', 'gi'), 1000) \
         WHERE (actor_id = $1 OR task_id IN {TASKS}) AND reason ~* $2",
    ),
    (
        "users",
        Treatment::Pseudonymised,
        "UPDATE users SET email = 'erased-' || id || '@erased.invalid', first_name = 'Erased', last_name = 'Erased', \
         national_id = NULL, phone = NULL, password_hash = '!erased', is_active = false, \
         failed_login_attempts = 0, locked_until = NULL, last_login_at = NULL, \
         tokens_valid_after = $3, erased_at = $3 \
         WHERE id = $1",
    ),
];

pub(super) async fn erase(
    conn: &mut AsyncPgConnection,
    subject: UserId,
    entry: &AuditEntry,
) -> diesel::QueryResult<ErasureOutcome> {
    let id = subject.as_uuid();
    conn.transaction(async |conn| {
        diesel::sql_query("SET LOCAL gad.privacy_maintenance = 'on'").execute(conn).await?;
        admins::take_turn(conn).await?;
        let found: Option<Subject> = diesel::sql_query(
            "SELECT erased_at, email, first_name, last_name, national_id, phone \
             FROM users WHERE id = $1 FOR NO KEY UPDATE",
        )
        .bind::<SqlUuid, _>(id)
        .get_result(conn)
        .await
        .optional()?;
        let Some(found) = found else {
            return Ok(ErasureOutcome::NotFound);
        };
        if let Some(erased_at) = found.erased_at {
            return Ok(ErasureOutcome::AlreadyErased(earlier_receipt(conn, subject, erased_at).await?));
        }
        if admins::is_last_active_admin(conn, id).await? {
            return Ok(ErasureOutcome::LastActiveAdmin);
        }
        diesel::sql_query("SELECT 1 FROM officers WHERE user_id = $1 FOR NO KEY UPDATE")
            .bind::<SqlUuid, _>(id)
            .execute(conn)
            .await?;
        let erased_at = now_in_microseconds();
        let pattern = found.identifier_pattern();
        let mut records = Vec::with_capacity(STEPS.len());
        for (table, treatment, statement) in STEPS {
            let statement = statement.replace("{OFFICERS}", OFFICERS).replace("{TASKS}", TASKS);
            let rows = diesel::sql_query(statement)
                .bind::<SqlUuid, _>(id)
                .bind::<Text, _>(&pattern)
                .bind::<Timestamptz, _>(erased_at)
                .execute(conn)
                .await?;
            records.push(ErasedRecords { table: (*table).to_owned(), treatment: *treatment, rows: rows as u64 });
        }
        audit::append_with_details(conn, entry, &receipt_details(&records)).await?;
        Ok(ErasureOutcome::Erased(ErasureReceipt { subject, erased_at, already_erased: false, records }))
    })
    .await
}

/// PostgreSQL keeps microseconds: the receipt shows the instant exactly as stored.
fn now_in_microseconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now)
}

/// The counts of an erasure, as its audit row keeps them (nothing identifying).
fn receipt_details(records: &[ErasedRecords]) -> serde_json::Value {
    let records: Vec<_> = records
        .iter()
        .map(|record| serde_json::json!({ "table": record.table, "treatment": record.treatment, "rows": record.rows }))
        .collect();
    serde_json::json!({ "records": records })
}

/// The receipt of the erasure that already happened, rebuilt from its audit row (empty records
/// when that row has since been purged).
async fn earlier_receipt(
    conn: &mut AsyncPgConnection,
    subject: UserId,
    erased_at: OffsetDateTime,
) -> diesel::QueryResult<ErasureReceipt> {
    let stored: Option<StoredReceipt> = diesel::sql_query(
        "SELECT details FROM audit_events WHERE resource_type = 'user' AND resource_id = $1 \
         AND action = 'user.erase' AND outcome = 'success' ORDER BY at LIMIT 1",
    )
    .bind::<SqlUuid, _>(subject.as_uuid())
    .get_result(conn)
    .await
    .optional()?;
    let records = stored
        .as_ref()
        .and_then(|stored| stored.details.get("records")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|record| {
            let treatment = match record.get("treatment")?.as_str()? {
                "deleted" => Treatment::Deleted,
                _ => Treatment::Pseudonymised,
            };
            Some(ErasedRecords {
                table: record.get("table")?.as_str()?.to_owned(),
                treatment,
                rows: record.get("rows")?.as_u64()?,
            })
        })
        .collect();
    Ok(ErasureReceipt { subject, erased_at, already_erased: true, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_match_literally() {
        let subject = Subject {
            erased_at: None,
            email: "a.b+c@example.org".into(),
            first_name: "Ana".into(),
            last_name: "O'Neil".into(),
            national_id: None,
            phone: Some("+34600111222".into()),
        };
        assert_eq!(subject.identifier_pattern(), r"a\.b\+c\@example\.org|\+34600111222|Ana\ O\'Neil");
    }
}
