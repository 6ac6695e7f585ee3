//! Wiring: builds the adapters from the settings, hands them to the HTTP layer as ports, binds
//! the listeners and owns the graceful shutdown.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use gad_domain::events::CommitAnnouncements;
use gad_domain::health::DependencyCheck;
use gad_domain::limits::{Rate, RateLimiter};
use gad_domain::tasks::task::TaskStore;
use gad_domain::users::Revocations;
use gad_http::Services;
use gad_http::auth::{TokenIssuer, TokenSettings};
use gad_http::cache::InProcessResponseCache;
use gad_http::rate_limit::{InProcessRateLimiter, RateLimitPolicy};
use gad_http::{AppState, HttpSettings, MetricsEndpoint, Tickets};
use gad_pg::{
    EventNumbering, PgAuditLog, PgAuthStore, PgConsentStore, PgEventLog, PgIdempotencyStore, PgOfficerStore,
    PgPersonalDataStore, PgPool, PgRetentionStore, PgSettings, PgStatsStore, PgTaskStore, PgTicketStore, PgUserStore,
    PostgresCheck,
};
use gad_redis::{
    RedisCheck, RedisCommitAnnouncements, RedisPool, RedisRateLimiter, RedisResponseCache, RedisSettings,
    RevocationChannel,
};
use gad_ws::{Realtime, WsSettings};
use redis::aio::ConnectionManager;
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::password::Argon2Hasher;
use crate::revocations::RevocationHub;
use crate::telemetry::prometheus;

/// A bound, not yet running, GAD instance.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    api: Server,
    metrics: Option<Server>,
    realtime: Realtime,
    retention_job: Option<tokio::task::AbortHandle>,
}

/// Redis, when configured: a pool for probes, one shared multiplexed connection for hot paths.
struct Redis {
    pool: RedisPool,
    connection: ConnectionManager,
}

/// Stops a running instance gracefully: listeners close, in-flight requests finish.
#[derive(Clone)]
pub struct StopHandle {
    servers: Vec<ServerHandle>,
    realtime: Realtime,
    retention_job: Option<tokio::task::AbortHandle>,
}

impl StopHandle {
    /// Requests the stop at once; the returned future resolves when every server has drained.
    /// Live sockets are closed with 1001 (going away) so that clients reconnect elsewhere.
    pub fn stop(&self) -> impl Future<Output = ()> + use<> {
        self.realtime.hub().close_all(gad_ws::close::GOING_AWAY);
        // A purge batch cut short rolls back; the next run redoes it.
        if let Some(job) = &self.retention_job {
            job.abort();
        }
        let draining: Vec<_> = self.servers.iter().map(|server| server.stop(true)).collect();
        async move {
            for server in draining {
                server.await;
            }
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
        let pg_pool = gad_pg::build_pool(&pg_settings(settings))?;
        let redis = match &settings.redis.url {
            Some(url) => {
                let redis_settings = RedisSettings {
                    url: url.clone(),
                    max_connections: settings.redis.max_connections,
                    timeout: Duration::from_millis(settings.redis.timeout_ms),
                    key_prefix: settings.redis.key_prefix.clone(),
                };
                Some(Redis {
                    pool: gad_redis::build_pool(&redis_settings)?,
                    connection: gad_redis::shared_connection(&redis_settings)?,
                })
            }
            None => None,
        };
        let redis_pool = redis.as_ref().map(|redis| redis.pool.clone());

        let mut dependencies: Vec<Arc<dyn DependencyCheck>> = vec![Arc::new(PostgresCheck::new(pg_pool.clone()))];
        if let Some(pool) = &redis_pool {
            let timeout = Duration::from_millis(settings.redis.timeout_ms);
            dependencies.push(Arc::new(RedisCheck::new(pool.clone(), timeout)));
        }
        let state = AppState {
            dependencies: dependencies.into(),
            probe_timeout: Duration::from_millis(settings.health.probe_timeout_ms),
            version: env!("CARGO_PKG_VERSION"),
            started_at: Instant::now(),
        };
        let auth = services(settings, &pg_pool, redis.as_ref())?;
        let realtime =
            realtime(settings, &pg_pool, redis.as_ref(), Arc::clone(&auth.revocations), Arc::clone(&auth.tasks))?;
        let tickets = Tickets(Arc::new(PgTicketStore::new(pg_pool.clone())));
        let metrics = metrics_endpoint(settings, pg_pool.clone(), redis_pool);

        let listener = TcpListener::bind(&settings.http.bind)?;
        let port = listener.local_addr()?.port();
        let http = HttpSettings {
            body_limit: settings.http.body_limit_bytes,
            cors_allowed_origins: settings.http.cors_allowed_origins.clone(),
            hsts: settings.http.hsts,
            workers: settings.http.workers,
            shutdown_timeout: Duration::from_secs(settings.http.shutdown_timeout_s),
            separate_metrics_listener: settings.metrics.bind.is_some(),
            body_read_timeout: Duration::from_millis(settings.http.body_read_timeout_ms),
        };
        let routes = crate::realtime::routes(realtime.clone(), tickets);
        let api = gad_http::api_server_with(listener, state, auth, metrics.clone(), &http, Some(routes))?;
        let (metrics, metrics_port) = match &settings.metrics.bind {
            Some(bind) => {
                let listener = TcpListener::bind(bind)?;
                let port = listener.local_addr()?.port();
                (Some(gad_http::metrics_server(listener, &metrics)?), Some(port))
            }
            None => (None, None),
        };
        let retention_job = (settings.retention.purge_interval_s > 0).then(|| {
            let store = Arc::new(PgRetentionStore::new(pg_pool.clone(), settings.retention.purge_batch_size));
            let every = Duration::from_secs(settings.retention.purge_interval_s);
            tokio::spawn(crate::retention::purge_periodically(store, settings.retention.policy(), every)).abort_handle()
        });
        tracing::info!(port, metrics_port, environment = settings.environment.as_str(), "listening");
        Ok(Self { port, metrics_port, api, metrics, realtime, retention_job })
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
        StopHandle { servers, realtime: self.realtime.clone(), retention_job: self.retention_job.clone() }
    }

    /// Serves until every server has stopped.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        match self.metrics {
            Some(metrics) => {
                let (api, metrics) = tokio::join!(self.api, metrics);
                api?;
                metrics?;
            }
            None => self.api.await?,
        }
        Ok(())
    }
}

/// How often events are numbered even without a commit of this instance to wake the numbering.
const EVENT_NUMBERING_SWEEP: Duration = Duration::from_secs(1);

/// The API's ports: PostgreSQL stores, argon2id, the revocation hub (announcements over Redis
/// when configured) and the token keys.
fn services(settings: &Settings, pg_pool: &PgPool, redis: Option<&Redis>) -> anyhow::Result<Services> {
    let store = PgAuthStore::new(pg_pool.clone());
    let numbering = EventNumbering::new(pg_pool.clone());
    tokio::spawn(numbering.clone().run(EVENT_NUMBERING_SWEEP));
    let channel = match (&settings.redis.url, redis) {
        (Some(url), Some(redis)) => {
            Some(RevocationChannel::new(url, redis.connection.clone(), &settings.redis.key_prefix)?)
        }
        _ => None,
    };
    let access_ttl = time::Duration::seconds(i64::try_from(settings.auth.access_token_ttl_s)?);
    let refresh_ttl = time::Duration::seconds(i64::try_from(settings.auth.refresh_token_ttl_s)?);
    let revocations = RevocationHub::new(store.clone(), channel, access_ttl);
    revocations.spawn_sync();
    let secret = match &settings.auth.jwt_secret {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => {
            // Allowed only locally and in tests (validation refuses it elsewhere).
            tracing::warn!("GAD_JWT_SECRET is unset: signing with a random key; tokens die with this process");
            let mut key = vec![0u8; 32];
            getrandom::fill(&mut key).map_err(|error| anyhow::anyhow!("no randomness for a signing key: {error}"))?;
            key
        }
    };
    let tokens = TokenIssuer::new(TokenSettings {
        secret,
        issuer: settings.auth.issuer.clone(),
        audience: settings.auth.audience.clone(),
        access_ttl,
        refresh_ttl,
    });
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
        response_cache: match redis {
            Some(redis) => Arc::new(RedisResponseCache::new(redis.connection.clone(), &settings.redis.key_prefix)),
            None => Arc::new(InProcessResponseCache::default()),
        },
        rate_limits: rate_limit_policy(settings, redis, &tokens),
        tokens,
    })
}

/// The real-time service: the relay over the event log and the hub.
fn realtime(
    settings: &Settings,
    pg_pool: &PgPool,
    redis: Option<&Redis>,
    revocations: Arc<dyn Revocations>,
    tasks: Arc<dyn TaskStore>,
) -> anyhow::Result<Realtime> {
    let ws = &settings.ws;
    let ws_settings = WsSettings {
        heartbeat_interval: Duration::from_secs(ws.heartbeat_interval_s),
        idle_timeout: Duration::from_secs(ws.idle_timeout_s),
        max_connections: ws.max_connections,
        max_connections_per_user: ws.max_connections_per_user,
        queue_size: ws.queue_size,
        max_topics: ws.max_topics,
        replay_retention: time::Duration::hours(i64::try_from(ws.replay_retention_h).unwrap_or(i64::MAX / 3600)),
        replay_max_events: ws.replay_max_events,
        poll_interval: Duration::from_millis(ws.poll_interval_ms),
        revocation_check_interval: Duration::from_millis(ws.revocation_check_interval_ms),
        allowed_origins: settings.http.cors_allowed_origins.clone(),
        ..WsSettings::default()
    };
    let log = Arc::new(PgEventLog::new(pg_pool.clone(), &settings.database.url));
    // The relay reads on a connection of its own: behind a saturated pool it would add the
    // requests' queueing to every delivery.
    let relay_pool = gad_pg::build_pool(&PgSettings { max_connections: 1, ..pg_settings(settings) })?;
    let relay_log = Arc::new(PgEventLog::new(relay_pool, &settings.database.url));
    let peers: Option<Arc<dyn CommitAnnouncements>> = match (&settings.redis.url, redis) {
        (Some(url), Some(redis)) => {
            let origin = uuid::Uuid::now_v7();
            let prefix = &settings.redis.key_prefix;
            Some(Arc::new(RedisCommitAnnouncements::new(url, redis.connection.clone(), prefix, origin)?))
        }
        _ => None,
    };
    Ok(Realtime::start(ws_settings, log, relay_log, tasks, revocations, peers))
}

/// Limits per client and user: counted in Redis when configured (falling back to this process
/// while it is away), in this process otherwise.
fn rate_limit_policy(settings: &Settings, redis: Option<&Redis>, tokens: &TokenIssuer) -> RateLimitPolicy {
    let local: Arc<dyn RateLimiter> = Arc::new(InProcessRateLimiter::default());
    let limiter: Arc<dyn RateLimiter> = match redis {
        Some(redis) => Arc::new(RedisRateLimiter::new(redis.connection.clone(), &settings.redis.key_prefix, local)),
        None => local,
    };
    RateLimitPolicy {
        limiter,
        general: Rate::per_minute(settings.rate_limit.general_per_minute),
        login: Rate::per_minute(settings.rate_limit.login_per_minute),
        trusted_proxies: settings.rate_limit.trusted_proxies.iter().filter_map(|proxy| parse_network(proxy)).collect(),
        tokens: Some(tokens.clone()),
    }
}

/// An address or a CIDR block.
pub fn parse_network(raw: &str) -> Option<ipnet::IpNet> {
    raw.parse::<ipnet::IpNet>().ok().or_else(|| raw.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

pub fn pg_settings(settings: &Settings) -> PgSettings {
    PgSettings {
        url: settings.database.url.clone(),
        max_connections: settings.database.max_connections,
        acquire_timeout: Duration::from_millis(settings.database.acquire_timeout_ms),
        connect_timeout: Duration::from_millis(settings.database.connect_timeout_ms),
        statement_timeout: Duration::from_millis(settings.database.statement_timeout_ms),
        application_name: format!("gad-{}", settings.environment.as_str()),
    }
}

/// Renders the Prometheus exposition, sampling pool and process gauges at scrape time.
fn metrics_endpoint(settings: &Settings, pg_pool: PgPool, redis_pool: Option<RedisPool>) -> MetricsEndpoint {
    let handle = prometheus();
    let process = metrics_process::Collector::default();
    process.describe();
    let render = move || {
        process.collect();
        record_pool("postgres", pg_pool.status());
        if let Some(pool) = &redis_pool {
            record_pool("redis", pool.status());
        }
        handle.run_upkeep();
        handle.render()
    };
    let token = settings.metrics.token.as_ref().map(|token| token.expose_secret().to_owned());
    MetricsEndpoint::new(Arc::new(render), token)
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
