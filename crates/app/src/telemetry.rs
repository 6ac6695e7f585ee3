//! Logging and metrics recorders, installed once per process.
//!
//! Logs go to standard error (standard output stays clean for `gad openapi`): human-readable
//! locally, JSON lines in staging and production, each line carrying the request span's fields
//! (request id, route, user id).

use std::sync::OnceLock;

use gad_http::{HttpMetrics, LATENCY_BUCKETS};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{Environment, LogConfig, LogFormat};

/// Installs the log subscriber. A second call (tests spawning several apps) keeps the first.
pub fn init_logging(log: &LogConfig, environment: Environment) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&log.filter)?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match log.effective_format(environment) {
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    if installed.is_err() {
        tracing::debug!("a log subscriber was already installed");
    }
    Ok(())
}

/// The process-wide Prometheus recorder. The `metrics` facade is global by design, so there is
/// one recorder per process however many servers it runs.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder);
        match recorder {
            Ok(recorder) => {
                let handle = recorder.handle();
                if metrics::set_global_recorder(recorder).is_err() {
                    tracing::warn!("a metrics recorder was already installed; GAD's will stay empty");
                }
                describe();
                register_known_series();
                handle
            }
            // Only reachable with an empty bucket list, which the constant rules out.
            Err(error) => panic!("invalid histogram buckets: {error}"),
        }
    })
}

fn describe() {
    metrics::describe_gauge!("pool_connections", "Connections of each pool (postgres, redis) by state");
    metrics::describe_gauge!("pool_max_connections", "Size limit of each pool");
    metrics::describe_gauge!("pool_waiting", "Requests waiting for a connection of each pool");
    metrics::describe_gauge!("dependency_up", "1 when the dependency's last probe succeeded");
}

/// Counters, histograms and the connection gauge with the label sets known in advance, created
/// at zero. A series that first appears with its first event starts at 1, which `rate()` and
/// `increase()` cannot see, and an alert on a name that is not exposed yet watches nothing: every
/// series the alert rules and the dashboard in `deploy/` read exists from the first scrape
/// (`just check-metrics` compares them with a live scrape).
fn register_known_series() {
    for (route, status) in [("/health/live", 200), ("/health/ready", 200), ("/health/ready", 503)] {
        HttpMetrics::global().register("GET", route, status);
    }
    for outcome in ["success", "invalid", "locked"] {
        metrics::counter!("auth_logins_total", "outcome" => outcome).increment(0);
    }
    for reason in ["client", "idle", "frame_too_large", "protocol_error", "slow_consumer", "expired", "revoked"] {
        metrics::counter!("ws_closes_total", "reason" => reason).increment(0);
    }
    metrics::counter!("ws_handshakes_total", "outcome" => "accepted").increment(0);
    metrics::counter!("ws_dropped_total", "reason" => "queue_full").increment(0);
    for outcome in ["resumed", "resync_required", "failed"] {
        metrics::counter!("ws_replays_total", "outcome" => outcome).increment(0);
    }
    for scope in ["ip", "login", "user"] {
        metrics::counter!("rate_limited_total", "scope" => scope).increment(0);
    }
    for outcome in ["assigned", "unassigned"] {
        metrics::counter!("emergencies_total", "outcome" => outcome).increment(0);
    }
    for name in [
        "ws_slow_consumer_closes_total",
        "ws_events_fanned_out_total",
        "ws_relay_errors_total",
        "ws_relay_announce_failures_total",
        "ws_relay_listener_restarts_total",
        "rate_limit_fallbacks_total",
        "response_cache_errors_total",
        "auth_revocation_fallback_checks_total",
        "auth_revocation_publish_failures_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    metrics::gauge!("ws_connections").set(0.0);
    for name in ["ws_delivery_latency_seconds", "ws_fanout_latency_seconds"] {
        let _registered = metrics::histogram!(name);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_series_are_exposed_at_zero_before_their_first_event() {
        let mut scrape = super::prometheus().render();
        gad_http::HttpMetrics::global().render_into(&mut scrape);
        for series in [
            r#"http_requests_total{method="GET",route="/health/ready",status="503"} 0"#,
            r#"auth_logins_total{outcome="locked"} 0"#,
            r#"ws_closes_total{reason="slow_consumer"} 0"#,
            "ws_slow_consumer_closes_total 0",
            "rate_limit_fallbacks_total 0",
            "ws_delivery_latency_seconds_count 0",
            "ws_connections 0",
        ] {
            assert!(scrape.lines().any(|line| line == series), "{series} is not in the scrape:\n{scrape}");
        }
    }
}
