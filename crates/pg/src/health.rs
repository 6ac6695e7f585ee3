//! Readiness of PostgreSQL: reachable, and migrated to the schema this binary expects.

use async_trait::async_trait;
use diesel::sql_types::{Bool, Text};
use diesel::{QueryableByName, result::Error as DieselError};
use diesel_async::RunQueryDsl;
use gad_domain::error::StoreError;
use gad_domain::health::{DependencyCheck, DependencyStatus};

use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;

#[derive(Clone)]
pub struct PostgresCheck {
    pool: PgPool,
    expected_version: String,
}

impl PostgresCheck {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, expected_version: crate::migrations::latest_version() }
    }
}

#[derive(QueryableByName)]
struct Migrated {
    #[diesel(sql_type = Bool)]
    migrated: bool,
}

#[async_trait]
impl DependencyCheck for PostgresCheck {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn check(&self) -> DependencyStatus {
        let mut conn = match connection(&self.pool).await {
            Ok(conn) => conn,
            Err(StoreError::Unavailable(reason)) => return DependencyStatus::Down(reason),
            Err(error) => return DependencyStatus::Down(error.to_string()),
        };
        let probe = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM __diesel_schema_migrations WHERE version = $1) AS migrated",
        )
        .bind::<Text, _>(&self.expected_version)
        .prepared()
        .get_result::<Migrated>(&mut conn)
        .await;
        match probe {
            Ok(Migrated { migrated: true }) => DependencyStatus::Up,
            Ok(Migrated { migrated: false }) => {
                DependencyStatus::Down(format!("schema not migrated to {} (run `gad migrate`)", self.expected_version))
            }
            Err(DieselError::DatabaseError(_, info)) if info.message().contains("does not exist") => {
                DependencyStatus::Down("schema not migrated (run `gad migrate`)".into())
            }
            Err(error) => DependencyStatus::Down(format!("probe failed: {error}")),
        }
    }
}

impl std::fmt::Debug for PostgresCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresCheck").finish_non_exhaustive()
    }
}
