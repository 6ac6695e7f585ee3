//! Liveness, readiness and the health report in every dependency state.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Database, Options, Redis, TestApp};

fn assert_not_ready(status: StatusCode, body: &Value, dependency: &str, detail_contains: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready", "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert_eq!(body["checks"][dependency]["status"], "down", "{body}");
    let detail = body["checks"][dependency]["detail"].as_str().unwrap();
    assert!(detail.contains(detail_contains), "{detail:?} should mention {detail_contains:?}");
    let details = body["error"]["details"].as_array().unwrap();
    assert!(details.iter().any(|d| d["field"] == dependency), "{body}");
}

#[tokio::test]
async fn liveness_needs_no_dependency() {
    let app = TestApp::spawn_with(Options {
        database: Database::Unreachable,
        redis: Redis::Unreachable,
        ..Options::default()
    })
    .await;
    let (status, body) = app.get_json("/health/live").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({ "status": "ok" }));
}

#[tokio::test]
async fn ready_when_postgres_is_migrated_and_redis_answers() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get_json("/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["postgres"]["status"], "up");
    assert_eq!(body["checks"]["redis"]["status"], "up");
}

#[tokio::test]
async fn without_redis_only_postgres_decides() {
    let app = TestApp::spawn_with(Options { redis: Redis::Absent, ..Options::default() }).await;
    let (status, body) = app.get_json("/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["checks"].get("redis").is_none(), "{body}");
}

#[tokio::test]
async fn not_ready_when_postgres_is_down() {
    let app = TestApp::spawn_with(Options { database: Database::Unreachable, ..Options::default() }).await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.headers().get("retry-after").unwrap(), "5");
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_not_ready(status, &body, "postgres", "connection");
    assert_eq!(body["checks"]["redis"]["status"], "up", "the other dependency is still reported");
}

#[tokio::test]
async fn not_ready_when_redis_is_down() {
    let app = TestApp::spawn_with(Options { redis: Redis::Unreachable, ..Options::default() }).await;
    let (status, body) = app.get_json("/health/ready").await;
    assert_not_ready(status, &body, "redis", "unreachable");
    assert_eq!(body["checks"]["postgres"]["status"], "up");
}

#[tokio::test]
async fn not_ready_until_the_schema_is_migrated() {
    let app = TestApp::spawn_with(Options { database: Database::Empty, ..Options::default() }).await;
    let (status, body) = app.get_json("/health/ready").await;
    assert_not_ready(status, &body, "postgres", "not migrated");

    gad_pg::migrations::run_pending(app.database.as_ref().unwrap().url()).await.unwrap();
    let (status, body) = app.get_json("/health/ready").await;
    assert_eq!(status, StatusCode::OK, "ready once migrated: {body}");
}

#[tokio::test]
async fn the_health_report_has_version_uptime_and_latencies() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get_json("/api/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64());
    for dependency in ["postgres", "redis"] {
        assert_eq!(body["dependencies"][dependency]["status"], "up");
        assert!(body["dependencies"][dependency]["latency_ms"].as_f64().unwrap() >= 0.0);
    }
}

#[tokio::test]
async fn the_health_report_says_degraded_when_a_dependency_is_down() {
    let app = TestApp::spawn_with(Options { database: Database::Unreachable, ..Options::default() }).await;
    let (status, body) = app.get_json("/api/v1/health").await;
    assert_eq!(status, StatusCode::OK, "the report itself is served");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["dependencies"]["postgres"]["status"], "down");
}
