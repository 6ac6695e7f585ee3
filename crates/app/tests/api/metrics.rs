//! The Prometheus endpoint shows real traffic, pool use and the process.

use reqwest::StatusCode;

use crate::helpers::{Options, TestApp};

/// The value of the first sample line that starts with `prefix`.
fn sample(exposition: &str, prefix: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern_and_status() {
    let app = TestApp::spawn().await;
    let counter = r#"http_requests_total{method="GET",route="/health/live",status="200"}"#;
    let (_, before) = app.get_text(&app.address, "/metrics").await;
    let before = sample(&before, counter).unwrap_or(0.0);
    for _ in 0..3 {
        assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    }
    app.get("/api/v1/no-such-thing-4711").await;
    let (status, exposition) = app.get_text(&app.address, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(sample(&exposition, counter).unwrap() >= before + 3.0, "{exposition}");
    assert!(
        exposition.contains(r#"http_request_duration_seconds_bucket{method="GET",route="/health/live",status="200""#)
    );
    assert!(exposition.contains(r#"route="unmatched",status="404""#), "unknown paths share one label");
    assert!(!exposition.contains("no-such-thing-4711"), "raw paths never become labels");
}

#[tokio::test]
async fn pools_and_the_process_are_reported() {
    let app = TestApp::spawn().await;
    app.get("/health/ready").await;
    let (_, exposition) = app.get_text(&app.address, "/metrics").await;
    for series in [
        r#"pool_connections{pool="postgres",state="idle"}"#,
        r#"pool_max_connections{pool="postgres"}"#,
        r#"pool_connections{pool="redis",state="in_use"}"#,
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(exposition.contains(series), "missing {series}");
    }
    assert!(sample(&exposition, "process_resident_memory_bytes").unwrap() > 0.0);
}

#[tokio::test]
async fn a_separate_listener_serves_metrics_and_the_api_does_not() {
    let app = TestApp::spawn_with(Options { separate_metrics_listener: true, ..Options::default() }).await;
    let metrics = app.metrics_address.clone().unwrap();
    let (status, exposition) = app.get_text(&metrics, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(exposition.contains("process_resident_memory_bytes"));
    let (status, body) = app.get_json("/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = app.get_text(&metrics, "/health/live").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the metrics listener serves nothing else");
}
