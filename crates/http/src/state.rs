//! What handlers share: the ports they call, built once by the app and cloned per worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gad_domain::audit::AuditLog;
use gad_domain::clock::Clock;
use gad_domain::consent::ConsentStore;
use gad_domain::consent::export::PersonalDataStore;
use gad_domain::health::DependencyCheck;
use gad_domain::idempotency::IdempotencyStore;
use gad_domain::stats::{ResponseCache, StatsStore};
use gad_domain::tasks::officer::OfficerStore;
use gad_domain::tasks::task::TaskStore;
use gad_domain::users::{LoginStore, PasswordHasher, Revocations, SessionStore, UserStore};

use gad_domain::settings::{self, Secret};
use serde::{Deserialize, Serialize};

use crate::auth::TokenIssuer;
use crate::rate_limit::RateLimitPolicy;
pub use crate::routes::health::RecentHealth;

#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL always; Redis when configured.
    pub dependencies: Arc<[Arc<dyn DependencyCheck>]>,
    /// Upper bound for one readiness probe, so that health never hangs on a stuck dependency.
    pub probe_timeout: Duration,
    /// The probes `/api/v1/health` shares (see `health.report_max_age_ms`).
    pub health: Arc<RecentHealth>,
    pub version: &'static str,
    pub started_at: Instant,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.dependencies.iter().map(|check| check.name()).collect();
        f.debug_struct("AppState")
            .field("dependencies", &names)
            .field("probe_timeout", &self.probe_timeout)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The `health` section of the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Upper bound for one readiness probe.
    #[serde(rename = "probe_timeout_ms", with = "settings::millis")]
    pub probe_timeout: Duration,
    /// How old the dependency probes of `/api/v1/health` may be before a caller probes again.
    #[serde(rename = "report_max_age_ms", with = "settings::millis")]
    pub report_max_age: Duration,
}

/// The `metrics` section of the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// `host:port` of the private metrics listener (`GAD_METRICS_BIND`); unset serves `/metrics`
    /// on the API listener.
    pub bind: Option<String>,
    /// Bearer token for `/metrics` on the API listener (`GAD_METRICS_TOKEN`; secret).
    #[serde(skip_deserializing, serialize_with = "settings::redacted")]
    pub token: Option<Secret>,
}

/// The Prometheus endpoint: how to render the exposition and, when it is served on the public
/// listener, the bearer token that guards it.
#[derive(Clone)]
pub struct MetricsEndpoint {
    render: Arc<dyn Fn() -> String + Send + Sync>,
    token: Option<Arc<str>>,
    own_listener: bool,
}

impl MetricsEndpoint {
    pub fn new(render: Arc<dyn Fn() -> String + Send + Sync>, settings: &MetricsSettings) -> Self {
        let token = settings.token.as_ref().map(|token| Arc::from(token.expose()));
        Self { render, token, own_listener: settings.bind.is_some() }
    }

    /// The same endpoint without a token, for the private metrics listener.
    pub fn unguarded(&self) -> Self {
        Self { render: Arc::clone(&self.render), token: None, own_listener: true }
    }

    /// Whether metrics have their own listener (then the API's `/metrics` needs the token).
    pub(crate) fn has_own_listener(&self) -> bool {
        self.own_listener
    }

    pub(crate) fn render(&self) -> String {
        (self.render)()
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint").field("guarded", &self.token.is_some()).finish_non_exhaustive()
    }
}

/// The ports behind the API's resources, and the token keys; built once by the app.
#[derive(Clone)]
pub struct Services {
    pub logins: Arc<dyn LoginStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub users: Arc<dyn UserStore>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub revocations: Arc<dyn Revocations>,
    pub audit: Arc<dyn AuditLog>,
    pub consents: Arc<dyn ConsentStore>,
    /// Export and erasure of a subject's personal data.
    pub personal_data: Arc<dyn PersonalDataStore>,
    pub officers: Arc<dyn OfficerStore>,
    pub tasks: Arc<dyn TaskStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub stats: Arc<dyn StatsStore>,
    /// The time use cases read.
    pub clock: Arc<dyn Clock>,
    /// Redis when configured, else this instance's memory.
    pub response_cache: Arc<dyn ResponseCache>,
    pub tokens: TokenIssuer,
    pub rate_limits: RateLimitPolicy,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("tokens", &self.tokens).finish_non_exhaustive()
    }
}
