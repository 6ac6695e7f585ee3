//! Request count and latency by route pattern (never the raw path: bounded label values), plus
//! one access-log line per request inside the request span.
//!
//! These two families are GAD's largest by far (route × method × status × bucket: thousands of
//! lines on a server that has seen every route), so they are kept here rather than in the
//! general recorder: each series is a fixed set of atomic counters found by its labels, and its
//! label text is rendered once when the series appears. Recording a request is three atomic
//! additions; a scrape only formats numbers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// Histogram bucket bounds in seconds: fine at the low end, where GAD's latencies live. Every
/// `_seconds` histogram of the service uses them.
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub(crate) async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let result = next.call(req).await;
    let elapsed = started.elapsed();
    let (status, route) = match &result {
        Ok(response) => (response.status(), response.request().match_pattern()),
        Err(error) => (error.as_response_error().status_code(), None),
    };
    HttpMetrics::global().record(method, route.as_deref().unwrap_or(UNMATCHED), status.as_u16(), elapsed);
    tracing::info!(
        http.status_code = status.as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request completed"
    );
    result
}

/// The route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Clients may send any method token; only the standard ones become label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `http_requests_total` and `http_request_duration_seconds` of the process (one per process,
/// like the `metrics` facade: every server of the process records here).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// Series by route pattern; the few of one route are told apart by method and status.
    routes: RwLock<HashMap<String, Vec<Arc<Series>>>>,
}

#[derive(Debug)]
struct Series {
    method: &'static str,
    route: String,
    status: u16,
    /// `method="…",route="…",status="…"`, rendered once.
    labels: String,
    count: AtomicU64,
    sum_nanos: AtomicU64,
    /// Requests per bucket (not cumulative); slower than the last bound only counts.
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
}

impl Series {
    fn new(method: &'static str, route: &str, status: u16) -> Self {
        let labels = format!(r#"method="{method}",route="{}",status="{status}""#, escape_label(route));
        Self {
            method,
            route: route.to_owned(),
            status,
            labels,
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

impl HttpMetrics {
    pub fn global() -> &'static Self {
        static METRICS: OnceLock<HttpMetrics> = OnceLock::new();
        METRICS.get_or_init(Self::default)
    }

    /// Counts one request that took `elapsed`.
    pub fn record(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        self.with_series(method, route, status, |series| series.observe(elapsed));
    }

    /// Exposes a series at zero before its first request (alerts watch it from the start).
    pub fn register(&self, method: &'static str, route: &str, status: u16) {
        self.with_series(method, route, status, |_| ());
    }

    /// Hands the series of these labels to `use_it`, created on first use. The common case, a
    /// series that exists, takes only the read lock and touches no reference count.
    fn with_series(&self, method: &'static str, route: &str, status: u16, use_it: impl FnOnce(&Series)) {
        let same = |series: &&Arc<Series>| series.method == method && series.status == status;
        if let Some(series) = read(&self.routes).get(route).and_then(|all| all.iter().find(same)) {
            return use_it(series);
        }
        let mut routes = self.routes.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let all = routes.entry(route.to_owned()).or_default();
        if let Some(series) = all.iter().find(same) {
            return use_it(series);
        }
        let series = Arc::new(Series::new(method, route, status));
        use_it(&series);
        all.push(series);
    }

    /// Appends both families in the Prometheus text format, series in a stable order.
    pub fn render_into(&self, out: &mut String) {
        let mut all: Vec<Arc<Series>> = read(&self.routes).values().flatten().cloned().collect();
        all.sort_unstable_by(|a, b| (&a.route, a.method, a.status).cmp(&(&b.route, b.method, b.status)));
        // Writing to a String cannot fail.
        let _ = self.write(&all, out);
    }

    fn write(&self, all: &[Arc<Series>], out: &mut String) -> std::fmt::Result {
        out.reserve(all.len() * 2048);
        out.push_str("# HELP http_requests_total HTTP requests by method, route pattern and status\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for series in all {
            writeln!(out, "http_requests_total{{{}}} {}", series.labels, series.count.load(Ordering::Relaxed))?;
        }
        out.push('\n');
        out.push_str("# HELP http_request_duration_seconds HTTP request latency by method, route pattern and status\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for series in all {
            // Read the count first: a request recorded meanwhile can then only make the buckets
            // larger, never the total smaller than a bucket.
            let count = series.count.load(Ordering::Relaxed);
            let mut cumulative = 0;
            for (bucket, bound) in series.buckets.iter().zip(BOUNDS.iter()) {
                cumulative += bucket.load(Ordering::Relaxed);
                writeln!(out, "http_request_duration_seconds_bucket{{{},le=\"{bound}\"}} {cumulative}", series.labels)?;
            }
            let count = count.max(cumulative);
            writeln!(out, "http_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {count}", series.labels)?;
            let sum = series.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            writeln!(out, "http_request_duration_seconds_sum{{{}}} {sum}", series.labels)?;
            writeln!(out, "http_request_duration_seconds_count{{{}}} {count}", series.labels)?;
        }
        out.push('\n');
        Ok(())
    }
}

/// The bucket bounds as the `le` label shows them.
static BOUNDS: [&str; LATENCY_BUCKETS.len()] =
    ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"];

/// A label value as the text format requires: backslash, quote and newline escaped.
fn escape_label(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_le_labels_are_the_bucket_bounds() {
        for (bound, label) in LATENCY_BUCKETS.iter().zip(BOUNDS) {
            assert_eq!(bound.to_string(), label);
        }
    }

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let metrics = HttpMetrics::default();
        metrics.register("GET", "/health/ready", 503);
        for millis in [0, 3, 3, 700, 20_000] {
            metrics.record("GET", "/api/v1/tasks/{id}", 200, Duration::from_millis(millis));
        }
        metrics.record("POST", "/api/v1/tasks", 201, Duration::from_millis(2));
        let mut text = String::new();
        metrics.render_into(&mut text);
        let lines: Vec<&str> = text.lines().collect();
        for expected in [
            r#"http_requests_total{method="GET",route="/api/v1/tasks/{id}",status="200"} 5"#,
            r#"http_requests_total{method="POST",route="/api/v1/tasks",status="201"} 1"#,
            r#"http_requests_total{method="GET",route="/health/ready",status="503"} 0"#,
            r#"http_request_duration_seconds_bucket{method="GET",route="/api/v1/tasks/{id}",status="200",le="0.0005"} 1"#,
            r#"http_request_duration_seconds_bucket{method="GET",route="/api/v1/tasks/{id}",status="200",le="0.005"} 3"#,
            r#"http_request_duration_seconds_bucket{method="GET",route="/api/v1/tasks/{id}",status="200",le="1"} 4"#,
            r#"http_request_duration_seconds_bucket{method="GET",route="/api/v1/tasks/{id}",status="200",le="10"} 4"#,
            r#"http_request_duration_seconds_bucket{method="GET",route="/api/v1/tasks/{id}",status="200",le="+Inf"} 5"#,
            r#"http_request_duration_seconds_sum{method="GET",route="/api/v1/tasks/{id}",status="200"} 20.706"#,
            r#"http_request_duration_seconds_count{method="GET",route="/api/v1/tasks/{id}",status="200"} 5"#,
            "# TYPE http_request_duration_seconds histogram",
        ] {
            assert!(lines.contains(&expected), "{expected} is not in:\n{text}");
        }
        let families = lines.iter().filter(|line| line.starts_with("# TYPE")).count();
        assert_eq!(families, 2, "each family is declared once");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"/a"b\c"#), r#"/a\"b\\c"#);
    }
}
