//! The schema migrations, embedded in the binary and applied by `gad migrate`.

use diesel::migration::MigrationSource;
use diesel::sql_types::BigInt;
use diesel::{Connection, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Serialises concurrent `gad migrate` runs (several replicas starting at once).
const MIGRATION_LOCK_KEY: i64 = 0x6761_645f_6d69_6772;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("cannot take the migration lock: {0}")]
    Lock(#[from] diesel::result::Error),
    #[error("a migration failed: {0}")]
    Failed(String),
    #[error("the migration thread failed: {0}")]
    Thread(#[from] tokio::task::JoinError),
}

/// Applies every pending migration and returns the versions applied, oldest first.
pub async fn run_pending(database_url: &str) -> Result<Vec<String>, MigrationError> {
    let url = database_url.to_owned();
    // The harness is synchronous; it drives the async connection from a blocking thread.
    tokio::task::spawn_blocking(move || {
        let mut connection = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)?;
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(&mut connection)?;
        let applied = connection
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|error| MigrationError::Failed(error.to_string()));
        diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(&mut connection)?;
        applied
    })
    .await?
}

/// The version of the newest embedded migration: the schema the binary expects.
pub fn latest_version() -> String {
    MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .ok()
        .and_then(|migrations| migrations.iter().map(|m| m.name().version().to_string()).max())
        .unwrap_or_default()
}
