//! What the adapters' own tests share: a user to own rows, and what a session keeps prepared.

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::users::UserId;
use uuid::Uuid;

/// Inserts an active officer with `email` (rows of other tables name their user).
pub(crate) async fn insert_user(conn: &mut AsyncPgConnection, email: &str) -> UserId {
    let id = Uuid::now_v7();
    diesel::sql_query(
        "INSERT INTO users (id, email, password_hash, first_name, last_name, role) \
         VALUES ($1, $2, 'unused', 'Test', 'User', 'officer')",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(email)
    .execute(conn)
    .await
    .expect("the test user is inserted");
    UserId::from_uuid(id)
}

/// The texts of the statements prepared on `conn`'s session.
pub(crate) async fn prepared_on(conn: &mut AsyncPgConnection) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Statement {
        #[diesel(sql_type = Text)]
        statement: String,
    }
    diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load::<Statement>(conn)
        .await
        .expect("pg_prepared_statements is readable")
        .into_iter()
        .map(|row| row.statement)
        .collect()
}

/// How many of `prepared` start with `text`.
pub(crate) fn copies(prepared: &[String], text: &str) -> usize {
    prepared.iter().filter(|statement| statement.starts_with(text)).count()
}
