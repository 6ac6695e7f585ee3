//! Wiring: builds the adapters from their settings, hands them to the HTTP layer as ports, binds
//! the listeners, starts the background jobs and owns the graceful shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use gad_domain::background::BackgroundJob;
use gad_domain::clock::SystemClock;
use gad_domain::events::CommitAnnouncements;
use gad_domain::health::DependencyCheck;
use gad_domain::limits::RateLimiter;
use gad_domain::tasks::task::TaskStore;
use gad_domain::users::Revocations;
use gad_http::Services;
use gad_http::auth::{Argon2Hasher, TokenIssuer};
use gad_http::cache::InProcessResponseCache;
use gad_http::rate_limit::{InProcessRateLimiter, RateLimitPolicy};
use gad_http::{AppState, HttpMetrics, MetricsEndpoint, RecentHealth, Tickets};
use gad_pg::{
    EventNumbering, PgAuditLog, PgAuthStore, PgConsentStore, PgEventLog, PgIdempotencyStore, PgOfficerStore,
    PgPersonalDataStore, PgPool, PgRetentionStore, PgStatsStore, PgTaskStore, PgTicketStore, PgUserStore,
    PostgresCheck,
};
use gad_redis::{Redis, RedisPool, RevocationHub};
use gad_ws::{EventLogs, Realtime};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::telemetry::prometheus;

/// A bound, not yet running, GAD instance.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    api: Server,
    metrics: Option<Server>,
    realtime: Realtime,
    background: Background,
}

/// Every background job of the instance: started here, stopped together through one
/// cancellation signal, and waited for.
struct Background {
    stop: CancellationToken,
    running: JoinSet<()>,
}

impl Background {
    fn new() -> Self {
        Self { stop: CancellationToken::new(), running: JoinSet::new() }
    }

    fn start(&mut self, jobs: impl IntoIterator<Item = BackgroundJob>) {
        for BackgroundJob { name, run } in jobs {
            let stop = self.stop.clone();
            self.running.spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => tracing::debug!(job = name, "background job stopped"),
                    () = run => tracing::error!(job = name, "background job ended by itself"),
                }
            });
        }
    }

    /// Signals every job to stop and waits until they all have.
    async fn stop(mut self) {
        self.stop.cancel();
        while let Some(outcome) = self.running.join_next().await {
            if let Err(error) = outcome {
                tracing::error!(%error, "a background job failed");
            }
        }
    }
}

/// Stops a running instance gracefully: listeners close, in-flight requests finish, then the
/// background jobs stop.
#[derive(Clone)]
pub struct StopHandle {
    servers: Vec<ServerHandle>,
    realtime: Realtime,
    background: CancellationToken,
}

impl StopHandle {
    /// Requests the stop at once; the returned future resolves when every server has drained.
    /// Live sockets are closed with 1001 (going away) so that clients reconnect elsewhere.
    pub fn stop(&self) -> impl Future<Output = ()> + use<> {
        self.realtime.hub().close_all(gad_ws::close::GOING_AWAY);
        let draining: Vec<_> = self.servers.iter().map(|server| server.stop(true)).collect();
        let background = self.background.clone();
        async move {
            for server in draining {
                server.await;
            }
            background.cancel();
        }
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("metrics_port", &self.metrics_port)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle").field("servers", &self.servers.len()).finish()
    }
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // A shard of connections per HTTP worker thread, driven by that thread (see gad_pg::pool).
        let pg_pool =
            gad_pg::build_worker_pool(&settings.database, &application_name(settings), settings.http.worker_threads())?;
        let redis = Redis::connect(&settings.redis)?;
        let mut background = Background::new();

        let mut dependencies: Vec<Arc<dyn DependencyCheck>> = vec![Arc::new(PostgresCheck::new(pg_pool.clone()))];
        if let Some(redis) = &redis {
            dependencies.push(Arc::new(redis.check()));
        }
        let state = AppState {
            dependencies: dependencies.into(),
            probe_timeout: settings.health.probe_timeout,
            health: Arc::new(RecentHealth::new(settings.health.report_max_age)),
            version: env!("CARGO_PKG_VERSION"),
            started_at: Instant::now(),
        };
        let services = services(settings, &pg_pool, redis.as_ref(), &mut background)?;
        let realtime = realtime(
            settings,
            &pg_pool,
            redis.as_ref(),
            Arc::clone(&services.revocations),
            Arc::clone(&services.tasks),
            &mut background,
        )?;
        let tickets = Tickets(Arc::new(PgTicketStore::new(pg_pool.clone())));
        let metrics = metrics_endpoint(settings, pg_pool.clone(), redis.as_ref().map(|redis| redis.pool().clone()));

        let listener = TcpListener::bind(&settings.http.bind)?;
        let port = listener.local_addr()?.port();
        let telegram = crate::telegram::service(settings, &pg_pool, redis.as_ref(), &services)?;
        background.start(telegram.jobs);
        let realtime_routes = crate::realtime::routes(realtime.clone(), tickets);
        let telegram_routes = telegram.routes;
        let routes: gad_http::ExtraRoutes = Arc::new(move |cfg| {
            realtime_routes(cfg);
            telegram_routes(cfg);
        });
        let api = gad_http::api_server(listener, state, services, metrics.clone(), &settings.http, routes)?;
        let (metrics, metrics_port) = match &settings.metrics.bind {
            Some(bind) => {
                let listener = TcpListener::bind(bind)?;
                let port = listener.local_addr()?.port();
                (Some(gad_http::metrics_server(listener, &metrics)?), Some(port))
            }
            None => (None, None),
        };
        if settings.retention.purge_interval_s > 0 {
            let store = Arc::new(PgRetentionStore::new(pg_pool.clone(), settings.retention.purge_batch_size));
            let every = Duration::from_secs(settings.retention.purge_interval_s);
            let purge = crate::retention::purge_periodically(store, settings.retention.policy(), every);
            background.start([BackgroundJob::new("retention purge", purge)]);
        }
        tracing::info!(port, metrics_port, environment = settings.environment.as_str(), "listening");
        Ok(Self { port, metrics_port, api, metrics, realtime, background })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    pub fn stop_handle(&self) -> StopHandle {
        let mut servers = vec![self.api.handle()];
        servers.extend(self.metrics.as_ref().map(Server::handle));
        StopHandle { servers, realtime: self.realtime.clone(), background: self.background.stop.clone() }
    }

    /// Serves until every server has stopped, then stops the background jobs and waits for them.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = match self.metrics {
            Some(metrics) => {
                let (api, metrics) = tokio::join!(self.api, metrics);
                api.and(metrics)
            }
            None => self.api.await,
        };
        self.background.stop().await;
        Ok(served?)
    }
}

/// How often events are numbered even without a commit of this instance to wake the numbering.
const EVENT_NUMBERING_SWEEP: Duration = Duration::from_secs(1);

/// The API's ports: PostgreSQL stores, argon2id, the revocation hub (announcements over Redis
/// when configured) and the token keys. Starts the event numbering and the hub's jobs.
fn services(
    settings: &Settings,
    pg_pool: &PgPool,
    redis: Option<&Redis>,
    background: &mut Background,
) -> anyhow::Result<Services> {
    let store = PgAuthStore::new(pg_pool.clone());
    let numbering = EventNumbering::new(pg_pool.clone());
    background.start([BackgroundJob::new("event numbering", numbering.clone().run(EVENT_NUMBERING_SWEEP))]);
    let channel = redis.map(Redis::revocation_channel).transpose()?;
    let revocations = RevocationHub::new(Arc::new(store.clone()), channel, settings.auth.access_ttl());
    background.start(revocations.jobs());
    let tokens = TokenIssuer::new(&settings.auth)?;
    let local: Arc<dyn RateLimiter> = Arc::new(InProcessRateLimiter::default());
    // Counted in Redis when configured (falling back to this process while it is away).
    let limiter: Arc<dyn RateLimiter> = match redis {
        Some(redis) => Arc::new(redis.rate_limiter(local)),
        None => local,
    };
    Ok(Services {
        logins: Arc::new(store.clone()),
        sessions: Arc::new(store),
        users: Arc::new(PgUserStore::new(pg_pool.clone())),
        hasher: Arc::new(Argon2Hasher::owasp()),
        revocations,
        audit: Arc::new(PgAuditLog::new(pg_pool.clone())),
        consents: Arc::new(PgConsentStore::new(pg_pool.clone())),
        personal_data: Arc::new(PgPersonalDataStore::new(pg_pool.clone())),
        officers: Arc::new(PgOfficerStore::new(pg_pool.clone(), numbering.clone())),
        tasks: Arc::new(PgTaskStore::new(pg_pool.clone(), numbering)),
        idempotency: Arc::new(PgIdempotencyStore::new(pg_pool.clone())),
        stats: Arc::new(PgStatsStore::new(pg_pool.clone())),
        clock: Arc::new(SystemClock),
        response_cache: match redis {
            Some(redis) => Arc::new(redis.response_cache()),
            None => Arc::new(InProcessResponseCache::default()),
        },
        rate_limits: RateLimitPolicy::new(&settings.rate_limit, limiter, tokens.clone()),
        tokens,
    })
}

/// The real-time service: the relay over the event log and the hub; starts the relay's jobs.
fn realtime(
    settings: &Settings,
    pg_pool: &PgPool,
    redis: Option<&Redis>,
    revocations: Arc<dyn Revocations>,
    tasks: Arc<dyn TaskStore>,
    background: &mut Background,
) -> anyhow::Result<Realtime> {
    // The relay reads on a connection of its own: behind a saturated pool it would add the
    // requests' queueing to every delivery.
    let relay_pool = gad_pg::build_pool(
        &gad_pg::PgSettings { max_connections: 1, ..settings.database.clone() },
        &application_name(settings),
    )?;
    let logs = EventLogs {
        replay: Arc::new(PgEventLog::new(pg_pool.clone(), &settings.database.url)),
        relay: Arc::new(PgEventLog::new(relay_pool, &settings.database.url)),
    };
    let peers: Option<Arc<dyn CommitAnnouncements>> = match redis {
        Some(redis) => Some(Arc::new(redis.commit_announcements(uuid::Uuid::now_v7())?)),
        None => None,
    };
    let (realtime, jobs) =
        Realtime::new(settings.ws.clone(), &settings.http.cors_allowed_origins, logs, tasks, revocations, peers);
    background.start(jobs);
    Ok(realtime)
}

/// How this instance's connections show in PostgreSQL (`pg_stat_activity`).
fn application_name(settings: &Settings) -> String {
    format!("gad-{}", settings.environment.as_str())
}

/// The PostgreSQL pool of this instance.
pub fn pg_pool(settings: &Settings) -> anyhow::Result<PgPool> {
    Ok(gad_pg::build_pool(&settings.database, &application_name(settings))?)
}

/// How often the process gauges are read at most, however often `/metrics` is scraped.
const PROCESS_SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// Renders the Prometheus exposition, sampling pool gauges at scrape time and process gauges at
/// most once per [`PROCESS_SAMPLE_PERIOD`]: they read several `/proc` files and list every open
/// file descriptor (one per WebSocket among them), which a flood of scrapes would repeat for
/// nothing.
fn metrics_endpoint(settings: &Settings, pg_pool: PgPool, redis_pool: Option<RedisPool>) -> MetricsEndpoint {
    let handle = prometheus();
    let process = metrics_process::Collector::default();
    process.describe();
    let process_sampled = std::sync::Mutex::new(None::<Instant>);
    let render = move || {
        if let Ok(mut sampled) = process_sampled.lock()
            && sampled.is_none_or(|at| at.elapsed() >= PROCESS_SAMPLE_PERIOD)
        {
            process.collect();
            *sampled = Some(Instant::now());
        }
        record_pool("postgres", pg_pool.status());
        if let Some(pool) = &redis_pool {
            record_pool("redis", pool.status());
        }
        handle.run_upkeep();
        let mut exposition = handle.render();
        HttpMetrics::global().render_into(&mut exposition);
        exposition
    };
    MetricsEndpoint::new(Arc::new(render), &settings.metrics)
}

fn record_pool(pool: &'static str, status: deadpool::Status) {
    let in_use = status.size.saturating_sub(status.available);
    metrics::gauge!("pool_connections", "pool" => pool, "state" => "idle").set(status.available as f64);
    metrics::gauge!("pool_connections", "pool" => pool, "state" => "in_use").set(in_use as f64);
    metrics::gauge!("pool_max_connections", "pool" => pool).set(status.max_size as f64);
    metrics::gauge!("pool_waiting", "pool" => pool).set(status.waiting as f64);
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
