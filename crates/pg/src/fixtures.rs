//! What the adapters' own tests share: a pool of one session, a user to own rows, and what that
//! session keeps prepared.

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::users::UserId;
use gad_test_support::TestDatabase;
use uuid::Uuid;

use crate::pool::{PgPool, PgSettings, build_pool, connection};

/// A pool of one connection to `database`: every call of a store runs on the same session.
pub(crate) fn one_session(database: &TestDatabase) -> PgPool {
    build_pool(&PgSettings::for_tests(database.url(), 1), "fixture").expect("the pool is built")
}

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

/// Asserts that each of `statements` (the beginning of its text) is prepared exactly once on the
/// session of `pool` (see [`one_session`]): kept, neither prepared again per call nor closed after it.
pub(crate) async fn assert_prepared_once(pool: &PgPool, statements: &[&str]) {
    #[derive(diesel::QueryableByName)]
    struct Statement {
        #[diesel(sql_type = Text)]
        statement: String,
    }
    let mut conn = connection(pool).await.expect("the session is free");
    let prepared: Vec<String> = diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load::<Statement>(&mut conn)
        .await
        .expect("pg_prepared_statements is readable")
        .into_iter()
        .map(|row| row.statement)
        .collect();
    for statement in statements {
        let copies = prepared.iter().filter(|text| text.starts_with(statement)).count();
        assert_eq!(copies, 1, "{statement}: {prepared:#?}");
    }
}
