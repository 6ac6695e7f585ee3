//! Rows to arrange scenarios with, written in plain SQL so that they test the schema itself.

use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

pub async fn user(conn: &mut AsyncPgConnection, role: &str) -> Uuid {
    let id = Uuid::now_v7();
    diesel::sql_query(format!(
        "INSERT INTO users (id, email, password_hash, first_name, last_name, role) \
         VALUES ($1, $1::text || '@example.org', 'x', 'Test', 'User', '{role}')"
    ))
    .bind::<SqlUuid, _>(id)
    .execute(conn)
    .await
    .unwrap();
    id
}

pub async fn officer(conn: &mut AsyncPgConnection) -> Uuid {
    let user = user(conn, "officer").await;
    let id = Uuid::now_v7();
    diesel::sql_query(
        "INSERT INTO officers (id, user_id, badge_number, availability, location, location_updated_at) \
         VALUES ($1, $2, 'B-' || substr($1::text, 1, 8) || substr($1::text, 25, 12), 'available', \
                 ST_SetSRID(ST_MakePoint(-3.70, 40.41), 4326)::geography, now())",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(user)
    .execute(conn)
    .await
    .unwrap();
    id
}

pub async fn task(conn: &mut AsyncPgConnection, creator: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    diesel::sql_query(
        "INSERT INTO tasks (id, code, title, kind, scheduled_start, delegate_id, created_by) \
         VALUES ($1, 'T-' || right(replace($1::text, '-', ''), 24), 'Night patrol', 'patrol', now(), $2, $2)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(creator)
    .execute(conn)
    .await
    .unwrap();
    id
}

pub async fn assign(conn: &mut AsyncPgConnection, task: Uuid, officer: Uuid) -> Result<usize, Error> {
    diesel::sql_query("INSERT INTO task_assignments (task_id, officer_id) VALUES ($1, $2)")
        .bind::<SqlUuid, _>(task)
        .bind::<SqlUuid, _>(officer)
        .execute(conn)
        .await
}

pub async fn start(conn: &mut AsyncPgConnection, task: Uuid) -> Result<usize, Error> {
    update_task(conn, task, "status = 'in_progress', actual_start = now()").await
}

/// `UPDATE tasks SET <assignments> WHERE id = task`.
pub async fn update_task(conn: &mut AsyncPgConnection, task: Uuid, assignments: &str) -> Result<usize, Error> {
    diesel::sql_query(format!("UPDATE tasks SET {assignments} WHERE id = $1"))
        .bind::<SqlUuid, _>(task)
        .execute(conn)
        .await
}

pub async fn audit_event(conn: &mut AsyncPgConnection, actor: Uuid) {
    diesel::sql_query(
        "INSERT INTO audit_events (id, actor_id, action, resource_type, outcome, ip) \
         VALUES ($1, $2, 'auth.login', 'user', 'success', '10.0.0.1')",
    )
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<SqlUuid, _>(actor)
    .execute(conn)
    .await
    .unwrap();
}

/// The constraint a statement violated, when it failed with a constraint violation.
pub fn violated(result: Result<usize, Error>) -> String {
    match result {
        Err(Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::NotNullViolation,
            info,
        )) => info.constraint_name().unwrap_or("<unnamed>").to_owned(),
        other => panic!("expected a constraint violation, got {other:?}"),
    }
}

/// The message of a failed statement.
pub fn failure_message(result: Result<usize, Error>) -> String {
    match result {
        Err(Error::DatabaseError(_, info)) => info.message().to_owned(),
        other => panic!("expected a database error, got {other:?}"),
    }
}
