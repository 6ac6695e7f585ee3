//! Liveness, readiness and the detailed health report (SPEC §8).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError, get, web};
use futures_util::future::join_all;
use gad_domain::health::DependencyStatus;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody, FieldError};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Liveness {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Readiness: `ready`, or (with 503) the error envelope plus `not_ready` and every check.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    #[schema(example = "ready")]
    status: &'static str,
    checks: BTreeMap<&'static str, DependencyReport>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct DependencyReport {
    /// `up` or `down`.
    #[schema(example = "up")]
    status: &'static str,
    /// Why the dependency is down; absent when up.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// How long the probe took.
    latency_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApiHealth {
    /// `ok` when every dependency is up, else `degraded`.
    #[schema(example = "ok")]
    status: &'static str,
    #[schema(example = "0.1.0")]
    version: &'static str,
    uptime_seconds: u64,
    dependencies: BTreeMap<&'static str, DependencyReport>,
}

/// The process is alive. Touches no dependency.
#[utoipa::path(tag = "health", responses((status = 200, description = "alive", body = Liveness)))]
#[get("/health/live")]
pub(crate) async fn get_live() -> web::Json<Liveness> {
    web::Json(Liveness { status: "ok" })
}

/// Whether this instance may receive traffic: PostgreSQL reachable with the expected schema,
/// and Redis when configured.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "a dependency is down (error envelope plus `status` and `checks`); \
            `Retry-After` says when to probe again", body = ErrorBody),
    )
)]
#[get("/health/ready")]
pub(crate) async fn get_ready(state: web::Data<AppState>) -> HttpResponse {
    let checks = probe_all(&state).await;
    let down: Vec<FieldError> = checks
        .iter()
        .filter_map(|(name, report)| {
            report.detail.as_ref().map(|detail| FieldError { field: (*name).to_owned(), message: detail.clone() })
        })
        .collect();
    if down.is_empty() {
        return HttpResponse::Ok().json(Readiness { status: "ready", checks });
    }
    let names: Vec<&str> = down.iter().map(|check| check.field.as_str()).collect();
    let error = ApiError::unavailable(format!("not ready: {} down", names.join(", "))).with_details(down);
    let mut response = HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE);
    if let Some(retry_after) = error.error_response().headers().get(header::RETRY_AFTER) {
        response.insert_header((header::RETRY_AFTER, retry_after.clone()));
    } else {
        response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
    }
    response.json(serde_json::json!({
        "error": error.body().error,
        "status": "not_ready",
        "checks": checks,
    }))
}

/// Status, version, uptime and every dependency with its probe latency. Always 200: the body
/// says `degraded` when something is down (readiness is the endpoint that fails).
///
/// The dependencies are probed at most once per `health.report_max_age_ms`: callers in between
/// (and callers that arrive while a probe runs) share the latest report, so that polling this
/// route costs PostgreSQL and Redis nothing beyond one probe each per interval.
#[utoipa::path(tag = "health", responses((status = 200, description = "health report", body = ApiHealth)))]
#[get("/api/v1/health")]
pub(crate) async fn get_api_health(state: web::Data<AppState>) -> web::Json<ApiHealth> {
    let dependencies = state.health.recent(|| probe_all(&state)).await;
    let all_up = dependencies.values().all(|report| report.detail.is_none());
    web::Json(ApiHealth {
        status: if all_up { "ok" } else { "degraded" },
        version: state.version,
        uptime_seconds: state.started_at.elapsed().as_secs(),
        dependencies: (*dependencies).clone(),
    })
}

type Reports = BTreeMap<&'static str, DependencyReport>;

/// The latest probe of every dependency, shared by the health reports of one interval.
/// Readiness does not use it: a load balancer must see a failure at its next probe.
#[derive(Debug)]
pub struct RecentHealth {
    max_age: std::time::Duration,
    latest: tokio::sync::Mutex<Option<(Instant, Arc<Reports>)>>,
}

impl RecentHealth {
    pub fn new(max_age: std::time::Duration) -> Self {
        Self { max_age, latest: tokio::sync::Mutex::new(None) }
    }

    /// The latest reports if younger than the maximum age, else those of a new probe. The lock
    /// is held while probing, so concurrent callers wait for that one probe instead of starting
    /// their own.
    async fn recent<F: Future<Output = Reports>>(&self, probe: impl FnOnce() -> F) -> Arc<Reports> {
        let mut latest = self.latest.lock().await;
        if let Some((at, reports)) = latest.as_ref()
            && at.elapsed() < self.max_age
        {
            return Arc::clone(reports);
        }
        let reports = Arc::new(probe().await);
        *latest = Some((Instant::now(), Arc::clone(&reports)));
        reports
    }
}

/// Probes every dependency concurrently, each bounded by the probe timeout.
async fn probe_all(state: &AppState) -> BTreeMap<&'static str, DependencyReport> {
    let probes = state.dependencies.iter().map(|dependency| async move {
        let started = Instant::now();
        let status = tokio::time::timeout(state.probe_timeout, dependency.check())
            .await
            .unwrap_or_else(|_| DependencyStatus::Down("probe timed out".into()));
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        metrics::gauge!("dependency_up", "dependency" => dependency.name()).set(f64::from(u8::from(status.is_up())));
        let report = match status {
            DependencyStatus::Up => DependencyReport { status: "up", detail: None, latency_ms },
            DependencyStatus::Down(detail) => DependencyReport { status: "down", detail: Some(detail), latency_ms },
        };
        (dependency.name(), report)
    });
    join_all(probes).await.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    async fn probe(count: &AtomicUsize) -> Reports {
        count.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        BTreeMap::from([("postgres", DependencyReport { status: "up", detail: None, latency_ms: 1.0 })])
    }

    #[tokio::test]
    async fn callers_within_the_maximum_age_share_one_probe() {
        let health = RecentHealth::new(Duration::from_secs(60));
        let probes = AtomicUsize::new(0);
        let reports = join_all((0..8).map(|_| health.recent(|| probe(&probes)))).await;
        assert_eq!(probes.load(Ordering::SeqCst), 1, "eight concurrent callers, one probe");
        assert!(reports.iter().all(|report| report["postgres"].status == "up"));
        health.recent(|| probe(&probes)).await;
        assert_eq!(probes.load(Ordering::SeqCst), 1, "a later caller within the age reuses it");
    }

    #[tokio::test]
    async fn a_report_older_than_the_maximum_age_is_probed_again() {
        let health = RecentHealth::new(Duration::ZERO);
        let probes = AtomicUsize::new(0);
        health.recent(|| probe(&probes)).await;
        health.recent(|| probe(&probes)).await;
        assert_eq!(probes.load(Ordering::SeqCst), 2);
    }
}
