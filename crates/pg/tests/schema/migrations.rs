//! Every migration can be reverted and applied again, and the schema is the expected one.

use diesel::Connection;
use diesel::migration::MigrationSource;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::MigrationHarness;
use gad_pg::migrations::{MIGRATIONS, latest_version, run_pending};
use gad_test_support::TestDatabase;

#[tokio::test]
async fn down_migrations_undo_the_up_migrations() {
    let database = TestDatabase::migrated().await;
    let url = database.url().to_owned();
    let reverted = tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
        conn.revert_all_migrations(MIGRATIONS).unwrap().len()
    })
    .await
    .unwrap();
    let embedded = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).unwrap().len();
    assert_eq!(reverted, embedded);
    let applied = run_pending(database.url()).await.unwrap();
    assert_eq!(applied.len(), embedded);
    assert_eq!(applied.last(), Some(&latest_version()));
    assert!(run_pending(database.url()).await.unwrap().is_empty(), "idempotent");
}
