//! The connection pool: bounded, with explicit timeouts so that a database that is down turns
//! into a prompt `StoreError::Unavailable` (503) instead of a hung request.
//!
//! A connection is driven by a task on the runtime that opened it. The HTTP server's workers
//! each run a runtime of their own on their own thread, so a connection opened by one worker
//! and used by another hands every round trip from thread to thread and back (two wake-ups and
//! context switches each way). A pool built for `n` workers is therefore split into shards: each
//! worker thread draws from a shard of its own, whose connections it drives itself, and the rest
//! of the process (background jobs on the main runtime) from a shared one.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

pub type PgConnection = Object<AsyncPgConnection>;

/// The pool of an instance: one shard, or a shared shard and one per HTTP worker thread.
#[derive(Clone)]
pub struct PgPool {
    shared: Pool<AsyncPgConnection>,
    workers: Arc<[Pool<AsyncPgConnection>]>,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPool").field("worker_shards", &self.workers.len()).field("status", &self.status()).finish()
    }
}

impl PgPool {
    /// A connection from the calling thread's shard.
    pub async fn get(&self) -> Result<PgConnection, diesel_async::pooled_connection::deadpool::PoolError> {
        self.shard().get().await
    }

    /// The shards' figures added up.
    pub fn status(&self) -> deadpool::Status {
        std::iter::once(&self.shared).chain(self.workers.iter()).map(Pool::status).fold(
            deadpool::Status { max_size: 0, size: 0, available: 0, waiting: 0 },
            |total, shard| deadpool::Status {
                max_size: total.max_size + shard.max_size,
                size: total.size + shard.size,
                available: total.available + shard.available,
                waiting: total.waiting + shard.waiting,
            },
        )
    }

    fn shard(&self) -> &Pool<AsyncPgConnection> {
        match worker_thread() {
            Some(worker) if !self.workers.is_empty() => &self.workers[worker % self.workers.len()],
            _ => &self.shared,
        }
    }
}

/// The index of the calling thread among the threads that run a runtime of their own (the HTTP
/// workers), numbered in the order they first ask; `None` on the main runtime's threads.
fn worker_thread() -> Option<usize> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static WORKER: Cell<Option<Option<usize>>> = const { Cell::new(None) };
    }
    WORKER.with(|worker| {
        if let Some(known) = worker.get() {
            return known;
        }
        let own_runtime = tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        let index = own_runtime.then(|| NEXT.fetch_add(1, Ordering::Relaxed));
        worker.set(Some(index));
        index
    })
}

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

    /// `max_connections` to `url`, with timeouts of five seconds.
    #[cfg(test)]
    pub(crate) fn for_tests(url: &str, max_connections: usize) -> Self {
        Self {
            url: url.to_owned(),
            max_connections,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        }
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

/// Builds a pool of one shard; its connections tell PostgreSQL they are `application_name`.
/// Connections are opened lazily, so this succeeds while the database is down; readiness
/// reports that instead.
pub fn build_pool(settings: &PgSettings, application_name: &str) -> Result<PgPool, StoreError> {
    Ok(PgPool { shared: shard(settings, settings.max_connections, application_name)?, workers: Arc::new([]) })
}

/// Builds the pool of an instance serving HTTP on `workers` threads: `database.max_connections`
/// split between a shared shard and one per worker (one shard when there are too few
/// connections to split).
pub fn build_worker_pool(settings: &PgSettings, application_name: &str, workers: usize) -> Result<PgPool, StoreError> {
    let shards = workers + 1;
    if workers == 0 || settings.max_connections < shards {
        return build_pool(settings, application_name);
    }
    let (each, extra) = (settings.max_connections / shards, settings.max_connections % shards);
    let shared = shard(settings, each + usize::from(extra > 0), application_name)?;
    let workers: Vec<_> = (1..shards)
        .map(|index| shard(settings, each + usize::from(index < extra), application_name))
        .collect::<Result<_, _>>()?;
    Ok(PgPool { shared, workers: workers.into() })
}

fn shard(
    settings: &PgSettings,
    max_connections: usize,
    application_name: &str,
) -> Result<Pool<AsyncPgConnection>, StoreError> {
    // A returned connection is reused without a test query (one round trip less per request);
    // one whose socket closed or whose transaction broke is still discarded.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(&settings.url, config);
    let application_name = application_name.to_owned();
    let statement_timeout_ms = settings.statement_timeout.as_millis().to_string();
    Pool::builder(manager)
        .max_size(max_connections)
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

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use gad_test_support::TestDatabase;

    use super::*;

    fn opened(pool: &PgPool) -> (usize, Vec<usize>) {
        (pool.shared.status().size, pool.workers.iter().map(|shard| shard.status().size).collect())
    }

    /// A thread running a runtime of its own (as an HTTP worker does) checks out twice.
    fn worker_checks_out_twice(pool: &PgPool) {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                drop(pool.get().await.unwrap());
                drop(pool.get().await.unwrap());
            });
        })
        .join()
        .unwrap();
    }

    #[test]
    fn connections_are_split_between_the_shared_shard_and_the_workers() {
        let pool = build_worker_pool(&PgSettings::for_tests("postgres://unused", 16), "pool-test", 2).unwrap();
        let sizes: Vec<_> =
            std::iter::once(&pool.shared).chain(pool.workers.iter()).map(|s| s.status().max_size).collect();
        assert_eq!(sizes, [6, 5, 5]);
        assert_eq!(pool.status().max_size, 16);
        let unsplit = build_worker_pool(&PgSettings::for_tests("postgres://unused", 2), "pool-test", 2).unwrap();
        assert!(unsplit.workers.is_empty(), "two connections cannot serve three shards");
        assert_eq!(unsplit.status().max_size, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_worker_thread_draws_from_a_shard_of_its_own() {
        let database = TestDatabase::empty().await;
        // Many worker shards, so that two threads never share one, whatever other tests of this
        // binary number their own threads meanwhile.
        let pool = build_worker_pool(&PgSettings::for_tests(database.url(), 65), "pool-test", 64).unwrap();
        drop(pool.get().await.unwrap());
        assert_eq!(opened(&pool), (1, vec![0; 64]), "the main runtime uses the shared shard");

        worker_checks_out_twice(&pool);
        let (shared, workers) = opened(&pool);
        assert_eq!((shared, workers.iter().sum::<usize>(), workers.iter().max().copied()), (1, 1, Some(1)));

        worker_checks_out_twice(&pool);
        let (shared, workers) = opened(&pool);
        assert_eq!(
            (shared, workers.iter().sum::<usize>(), workers.iter().max().copied()),
            (1, 2, Some(1)),
            "a second worker opens a connection in a shard of its own: {workers:?}"
        );
    }
}
