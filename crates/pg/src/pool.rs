//! The connection pool: bounded, with explicit timeouts so that a database that is down turns
//! into a prompt `StoreError::Unavailable` (503) instead of a hung request.

use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{Hook, HookError, Timeouts};
use diesel::sql_types::Text;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::error::StoreError;
use gad_domain::settings;
use serde::{Deserialize, Serialize};

use crate::errors::pool_error;

pub type PgPool = Pool<AsyncPgConnection>;
pub type PgConnection = Object<AsyncPgConnection>;

/// The `database` section of the configuration.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PgSettings {
    /// `DATABASE_URL`. May carry a password, so it is redacted when shown.
    #[serde(serialize_with = "settings::redacted_url")]
    pub url: String,
    pub max_connections: usize,
    /// How long a request waits for a free connection before giving up with 503.
    #[serde(rename = "acquire_timeout_ms", with = "settings::millis")]
    pub acquire_timeout: Duration,
    /// How long opening a new connection may take.
    #[serde(rename = "connect_timeout_ms", with = "settings::millis")]
    pub connect_timeout: Duration,
    /// Server-side limit for any single statement (set on every new connection).
    #[serde(rename = "statement_timeout_ms", with = "settings::millis")]
    pub statement_timeout: Duration,
}

impl PgSettings {
    /// Everything wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_connections == 0 {
            problems.push("database.max_connections must be positive".into());
        }
        problems
    }
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// Builds the pool; its connections tell PostgreSQL they are `application_name`. Connections are
/// opened lazily, so this succeeds while the database is down; readiness reports that instead.
pub fn build_pool(settings: &PgSettings, application_name: &str) -> Result<PgPool, StoreError> {
    // A returned connection is reused without a test query (one round trip less per request);
    // one whose socket closed or whose transaction broke is still discarded.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(&settings.url, config);
    let application_name = application_name.to_owned();
    let statement_timeout_ms = settings.statement_timeout.as_millis().to_string();
    Pool::builder(manager)
        .max_size(settings.max_connections)
        .timeouts(Timeouts {
            wait: Some(settings.acquire_timeout),
            create: Some(settings.connect_timeout),
            recycle: Some(settings.connect_timeout),
        })
        .runtime(Runtime::Tokio1)
        .post_create(Hook::async_fn(move |connection: &mut AsyncPgConnection, _| {
            let application_name = application_name.clone();
            let statement_timeout_ms = statement_timeout_ms.clone();
            Box::pin(async move {
                diesel::sql_query(
                    "SELECT set_config('application_name', $1, false), \
                     set_config('statement_timeout', $2, false)",
                )
                .bind::<Text, _>(application_name)
                .bind::<Text, _>(statement_timeout_ms)
                .execute(connection)
                .await
                .map(drop)
                .map_err(|error| HookError::Backend(PoolError::QueryError(error)))
            })
        }))
        .build()
        .map_err(StoreError::unexpected)
}

/// Takes a connection from the pool, translating exhaustion and outages to `Unavailable`.
pub async fn connection(pool: &PgPool) -> Result<PgConnection, StoreError> {
    pool.get().await.map_err(pool_error)
}
