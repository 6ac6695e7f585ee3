//! Rules the database refuses to break whatever the application sends.

use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::RunQueryDsl;
use gad_test_support::TestDatabase;

use crate::fixtures::{failure_message, task, update_task, user, violated};

#[tokio::test]
async fn emails_national_ids_and_badges_are_unique_regardless_of_case() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    let insert = |email: &'static str, national_id: &'static str| {
        diesel::sql_query(format!(
            "INSERT INTO users (id, email, password_hash, first_name, last_name, role, national_id) \
             VALUES (gen_random_uuid(), '{email}', 'x', 'A', 'B', 'operator', '{national_id}')"
        ))
    };
    insert("ana@example.org", "12345678Z").execute(&mut conn).await.unwrap();
    assert_eq!(violated(insert("ANA@example.org", "99999999R").execute(&mut conn).await), "users_email_key");
    assert_eq!(violated(insert("eva@example.org", "12345678z").execute(&mut conn).await), "users_national_id_key");

    let officer_user = user(&mut conn, "officer").await;
    let other_user = user(&mut conn, "officer").await;
    let badge = |user: uuid::Uuid, badge: &'static str| {
        diesel::sql_query(format!(
            "INSERT INTO officers (id, user_id, badge_number) VALUES (gen_random_uuid(), $1, '{badge}')"
        ))
        .bind::<SqlUuid, _>(user)
    };
    badge(officer_user, "MAD-001").execute(&mut conn).await.unwrap();
    assert_eq!(violated(badge(other_user, "mad-001").execute(&mut conn).await), "officers_badge_number_key");
    assert_eq!(violated(badge(officer_user, "MAD-002").execute(&mut conn).await), "officers_user_id_key");
    assert_eq!(violated(badge(other_user, "bad badge!").execute(&mut conn).await), "officers_badge_number_check");
}

#[tokio::test]
async fn task_dates_and_states_stay_coherent() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    let operator = user(&mut conn, "operator").await;
    let backwards = diesel::sql_query(
        "INSERT INTO tasks (id, code, title, kind, scheduled_start, scheduled_end, delegate_id, created_by) \
         VALUES (gen_random_uuid(), 'T-1', 'Inspection', 'patrol', now(), now() - interval '1 hour', $1, $1)",
    )
    .bind::<SqlUuid, _>(operator)
    .execute(&mut conn)
    .await;
    assert_eq!(violated(backwards), "tasks_schedule_order");

    let task = task(&mut conn, operator).await;
    let cases = [
        ("status = 'in_progress'", "tasks_started_has_start"),
        ("status = 'paused', actual_start = now()", "tasks_paused_matches_status"),
        ("status = 'cancelled'", "tasks_finished_has_end"),
        ("title = 'x'", "tasks_title_check"),
        ("total_paused_seconds = -1", "tasks_total_paused_seconds_check"),
    ];
    for (assignments, constraint) in cases {
        assert_eq!(violated(update_task(&mut conn, task, assignments).await), constraint, "{assignments}");
    }
}

#[tokio::test]
async fn enums_accept_only_their_values() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    let outcome = diesel::sql_query(
        "INSERT INTO users (id, email, password_hash, first_name, last_name, role) \
         VALUES (gen_random_uuid(), 'x@example.org', 'x', 'A', 'B', 'superuser')",
    )
    .execute(&mut conn)
    .await;
    assert!(failure_message(outcome).contains("invalid input value for enum user_role"));
}

#[tokio::test]
async fn every_update_bumps_the_task_version() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    let operator = user(&mut conn, "operator").await;
    let task = task(&mut conn, operator).await;
    for _ in 0..2 {
        update_task(&mut conn, task, "notes = 'seen'").await.unwrap();
    }
    let version: i64 =
        diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT version FROM tasks").get_result(&mut conn).await.unwrap();
    assert_eq!(version, 3);
}
