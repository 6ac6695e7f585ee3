//! The middleware stack and error mapping, exercised through the real app factory with a few
//! test-only routes that take JSON, query and path input.

#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, test, web};
use gad_domain::error::StoreError;
use gad_domain::settings::Secret;
use serde::Deserialize;
use serde_json::Value;

use super::*;
use crate::auth::{AuthSettings, TokenIssuer};
use crate::error::ApiError;
use crate::rate_limit::{InProcessRateLimiter, RateLimitSettings};
use crate::state::MetricsSettings;
use crate::state::RecentHealth;

#[derive(Debug, Deserialize)]
struct Echo {
    title: String,
    count: u32,
}

async fn echo(body: web::Json<Echo>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "title": body.title, "count": body.count }))
}

#[derive(Debug, Deserialize)]
struct Page {
    limit: u32,
}

async fn page(query: web::Query<Page>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "limit": query.limit }))
}

async fn by_id(id: web::Path<uuid::Uuid>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "id": id.into_inner() }))
}

async fn dependency_down() -> Result<HttpResponse, ApiError> {
    Err(StoreError::Unavailable("connection refused".into()).into())
}

async fn broken() -> Result<HttpResponse, ApiError> {
    Err(StoreError::unexpected(std::io::Error::other("password=hunter2 in the cause")).into())
}

fn settings() -> HttpSettings {
    HttpSettings {
        bind: "127.0.0.1:0".into(),
        body_limit: 1024,
        body_read_timeout: Duration::from_secs(10),
        cors_allowed_origins: vec!["https://ops.example".into()],
        hsts: false,
        workers: None,
        shutdown_timeout: Duration::from_secs(1),
    }
}

/// Metrics on the API listener, guarded by `token` when given.
fn metrics(token: Option<&str>) -> MetricsSettings {
    MetricsSettings { bind: None, token: token.map(Secret::new) }
}

fn shared(settings: &HttpSettings, metrics: &MetricsSettings) -> Shared {
    let state = AppState {
        dependencies: Arc::from(Vec::new()),
        probe_timeout: Duration::from_secs(1),
        health: Arc::new(RecentHealth::new(Duration::from_secs(1))),
        version: "test",
        started_at: Instant::now(),
    };
    let endpoint = MetricsEndpoint::new(Arc::new(|| "# metrics\n".to_owned()), metrics);
    let auth = AuthSettings {
        jwt_secret: Some(Secret::new("a-test-secret-of-sufficient-length")),
        issuer: "gad".into(),
        audience: "gad-api".into(),
        access_token_ttl: Duration::from_secs(900),
        refresh_token_ttl: Duration::from_secs(86_400),
    };
    let unlimited =
        RateLimitSettings { general_per_minute: u32::MAX, login_per_minute: u32::MAX, trusted_proxies: Vec::new() };
    let limiter = Arc::new(InProcessRateLimiter::default());
    let rate_limits = RateLimitPolicy::new(&unlimited, limiter, TokenIssuer::new(&auth).unwrap());
    Shared::new(state, rate_limits, endpoint, settings, Arc::new(|_| {})).unwrap()
}

async fn service(
    settings: HttpSettings,
    metrics: MetricsSettings,
) -> impl actix_web::dev::Service<actix_http::Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>
{
    test::init_service(
        api_app(shared(&settings, &metrics))
            .route("/test/echo", web::post().to(echo))
            .route("/test/page", web::get().to(page))
            .route("/test/items/{id}", web::get().to(by_id))
            .route("/test/down", web::get().to(dependency_down))
            .route("/test/broken", web::get().to(broken)),
    )
    .await
}

/// Sends `request` and returns status, headers and the JSON body (Null when not JSON).
async fn call(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    request: test::TestRequest,
) -> (StatusCode, header::HeaderMap, Value) {
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = test::read_body(response).await;
    (status, headers, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn assert_envelope(status: StatusCode, headers: &header::HeaderMap, body: &Value, expected: (u16, &str)) {
    assert_eq!(status.as_u16(), expected.0, "{body}");
    assert_eq!(body["error"]["code"], expected.1, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"]["details"].is_array(), "{body}");
    let request_id = headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(body["error"]["request_id"], request_id, "the body names the request");
}

fn json_post(body: &'static str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/test/echo")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(body)
}

#[actix_web::test]
async fn well_formed_input_passes_through() {
    let app = service(settings(), metrics(None)).await;
    let (status, _, body) = call(&app, json_post(r#"{"title":"Patrol","count":2}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({ "title": "Patrol", "count": 2 }));
}

#[actix_web::test]
async fn malformed_json_is_400_bad_request() {
    let app = service(settings(), metrics(None)).await;
    let (status, headers, body) = call(&app, json_post(r#"{"title": "#)).await;
    assert_envelope(status, &headers, &body, (400, "bad_request"));
    let (status, headers, body) = call(&app, json_post("not json")).await;
    assert_envelope(status, &headers, &body, (400, "bad_request"));
}

#[actix_web::test]
async fn json_of_the_wrong_shape_is_422_naming_the_field() {
    let app = service(settings(), metrics(None)).await;
    let (status, headers, body) = call(&app, json_post(r#"{"count": 1}"#)).await;
    assert_envelope(status, &headers, &body, (422, "validation_failed"));
    assert_eq!(body["error"]["details"][0]["field"], "title");
    let (status, headers, body) = call(&app, json_post(r#"{"title": "x", "count": "many"}"#)).await;
    assert_envelope(status, &headers, &body, (422, "validation_failed"));
    assert!(!body["error"]["details"][0]["message"].as_str().unwrap().contains("line"), "no parser positions");
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413() {
    let app = service(settings(), metrics(None)).await;
    let big = format!(r#"{{"title":"{}","count":1}}"#, "x".repeat(2048));
    let request = test::TestRequest::post()
        .uri("/test/echo")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(big);
    let (status, headers, body) = call(&app, request).await;
    assert_envelope(status, &headers, &body, (413, "payload_too_large"));
}

#[actix_web::test]
async fn bodies_that_are_not_json_are_415() {
    let app = service(settings(), metrics(None)).await;
    let text = test::TestRequest::post()
        .uri("/test/echo")
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload(r#"{"title":"x","count":1}"#);
    let (status, headers, body) = call(&app, text).await;
    assert_envelope(status, &headers, &body, (415, "unsupported_media_type"));
    let untyped = test::TestRequest::post().uri("/test/echo").set_payload(r#"{"title":"x","count":1}"#);
    let (status, headers, body) = call(&app, untyped).await;
    assert_envelope(status, &headers, &body, (415, "unsupported_media_type"));
}

#[actix_web::test]
async fn bad_query_is_422_and_bad_path_id_is_404() {
    let app = service(settings(), metrics(None)).await;
    let (status, headers, body) = call(&app, test::TestRequest::get().uri("/test/page?limit=ten")).await;
    assert_envelope(status, &headers, &body, (422, "validation_failed"));
    let (status, headers, body) = call(&app, test::TestRequest::get().uri("/test/items/not-a-uuid")).await;
    assert_envelope(status, &headers, &body, (404, "not_found"));
    let id = uuid::Uuid::now_v7();
    let (status, _, body) = call(&app, test::TestRequest::get().uri(&format!("/test/items/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], id.to_string());
}

#[actix_web::test]
async fn unknown_routes_get_the_envelope() {
    let app = service(settings(), metrics(None)).await;
    let (status, headers, body) = call(&app, test::TestRequest::get().uri("/api/v1/nothing-here")).await;
    assert_envelope(status, &headers, &body, (404, "not_found"));
}

#[actix_web::test]
async fn a_dependency_that_is_down_is_503_with_retry_after() {
    let app = service(settings(), metrics(None)).await;
    let (status, headers, body) = call(&app, test::TestRequest::get().uri("/test/down")).await;
    assert_envelope(status, &headers, &body, (503, "unavailable"));
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "5");
}

#[actix_web::test]
async fn internal_errors_are_opaque() {
    let app = service(settings(), metrics(None)).await;
    let (status, headers, body) = call(&app, test::TestRequest::get().uri("/test/broken")).await;
    assert_envelope(status, &headers, &body, (500, "internal"));
    assert!(!body.to_string().contains("hunter2"), "the cause never reaches the client: {body}");
}

#[actix_web::test]
async fn security_headers_are_on_every_response() {
    let app = service(settings(), metrics(None)).await;
    for uri in ["/health/live", "/api/v1/nothing-here", "/test/broken"] {
        let (_, headers, _) = call(&app, test::TestRequest::get().uri(uri)).await;
        assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff", "{uri}");
        assert_eq!(headers.get("x-frame-options").unwrap(), "DENY", "{uri}");
        assert_eq!(headers.get("referrer-policy").unwrap(), "no-referrer", "{uri}");
        assert_eq!(
            headers.get("content-security-policy").unwrap(),
            "default-src 'none'; frame-ancestors 'none'",
            "{uri}"
        );
        assert_eq!(headers.get("cache-control").unwrap(), "no-store", "{uri}");
        assert!(headers.get("strict-transport-security").is_none(), "no HSTS unless configured");
        assert!(headers.get("server").is_none(), "no server banner");
    }
    let tls = HttpSettings { hsts: true, ..settings() };
    let app = service(tls, metrics(None)).await;
    let (_, headers, _) = call(&app, test::TestRequest::get().uri("/health/live")).await;
    assert!(headers.get("strict-transport-security").unwrap().to_str().unwrap().starts_with("max-age="));
}

#[actix_web::test]
async fn request_ids_are_echoed_generated_or_replaced() {
    let app = service(settings(), metrics(None)).await;
    let given = test::TestRequest::get().uri("/health/live").insert_header(("x-request-id", "req-42.a:b"));
    let (_, headers, _) = call(&app, given).await;
    assert_eq!(headers.get("x-request-id").unwrap(), "req-42.a:b");

    let (_, headers, _) = call(&app, test::TestRequest::get().uri("/health/live")).await;
    let generated = headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(generated).unwrap().get_version_num(), 7);

    let forged = test::TestRequest::get().uri("/api/v1/nothing-here").insert_header(("x-request-id", "a b c"));
    let (_, headers, body) = call(&app, forged).await;
    let replaced = headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_ne!(replaced, "a b c");
    assert_eq!(body["error"]["request_id"], replaced);
}

#[actix_web::test]
async fn cors_answers_only_the_allowed_origins() {
    let app = service(settings(), metrics(None)).await;
    let allowed = test::TestRequest::get().uri("/health/live").insert_header((header::ORIGIN, "https://ops.example"));
    let (status, headers, _) = call(&app, allowed).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "https://ops.example");

    let other = test::TestRequest::get().uri("/health/live").insert_header((header::ORIGIN, "https://evil.example"));
    let (status, headers, _) = call(&app, other).await;
    assert_eq!(status, StatusCode::OK, "served, but without CORS headers the browser withholds it");
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let preflight = test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/v1/health")
        .insert_header((header::ORIGIN, "https://ops.example"))
        .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "POST"))
        .insert_header((header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization, content-type"));
    let (status, headers, _) = call(&app, preflight).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "https://ops.example");
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_METHODS).unwrap().to_str().unwrap().contains("POST"));
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none(), "no credentials");
}

#[actix_web::test]
async fn metrics_on_the_api_listener_follow_the_token_rules() {
    let open = service(settings(), metrics(None)).await;
    let (status, headers, _) = call(&open, test::TestRequest::get().uri("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with("text/plain"));

    let guarded = service(settings(), metrics(Some("metrics-token"))).await;
    let (status, headers, body) = call(&guarded, test::TestRequest::get().uri("/metrics")).await;
    assert_envelope(status, &headers, &body, (401, "unauthenticated"));
    let wrong = test::TestRequest::get().uri("/metrics").insert_header((header::AUTHORIZATION, "Bearer nope"));
    assert_eq!(call(&guarded, wrong).await.0, StatusCode::UNAUTHORIZED);
    let right = test::TestRequest::get().uri("/metrics").insert_header((header::AUTHORIZATION, "Bearer metrics-token"));
    assert_eq!(call(&guarded, right).await.0, StatusCode::OK);

    let elsewhere = MetricsSettings { bind: Some("127.0.0.1:0".into()), token: None };
    let app = service(settings(), elsewhere).await;
    let (status, headers, body) = call(&app, test::TestRequest::get().uri("/metrics")).await;
    assert_envelope(status, &headers, &body, (404, "not_found"));
}

#[actix_web::test]
async fn the_docs_ui_is_served_from_the_binary() {
    let app = service(settings(), metrics(None)).await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/docs").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = test::read_body(response).await;
    assert!(String::from_utf8_lossy(&page).contains("url=/docs/"), "sends browsers on to the UI");

    for (asset, needle) in [
        ("/docs/", "swagger-ui"),
        ("/docs/swagger-ui-bundle.js", "SwaggerUIBundle"),
        ("/docs/swagger-initializer.js", "/api/v1/openapi.json"),
    ] {
        let response = test::call_service(&app, test::TestRequest::get().uri(asset).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let csp = response.headers().get("content-security-policy").unwrap().to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("http"), "{asset}: {csp}");
        let body = test::read_body(response).await;
        assert!(String::from_utf8_lossy(&body).contains(needle), "{asset} lacks {needle}");
    }
}

#[actix_web::test]
async fn the_served_openapi_document_is_the_generated_one() {
    let app = service(settings(), metrics(None)).await;
    let (status, _, served) = call(&app, test::TestRequest::get().uri("/api/v1/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, serde_json::to_value(document()).unwrap());
    assert_eq!(served["openapi"], "3.1.0");
    for path in ["/health/live", "/health/ready", "/api/v1/health", "/metrics", "/api/v1/openapi.json"] {
        assert!(served["paths"][path]["get"]["responses"].is_object(), "{path} is documented");
    }
    insta::assert_json_snapshot!("openapi", served, { ".info.version" => "[version]" });
}

#[actix_web::test]
async fn unserved_methods_on_served_paths_are_405_with_allow() {
    let app = service(settings(), metrics(None)).await;
    for (request, allow) in [
        (test::TestRequest::delete().uri("/health/live"), "GET"),
        (test::TestRequest::put().uri("/api/v1/tasks"), "GET, POST"),
    ] {
        let (status, headers, body) = call(&app, request).await;
        assert_envelope(status, &headers, &body, (405, "method_not_allowed"));
        assert_eq!(headers.get(header::ALLOW).unwrap(), allow);
    }
    let (status, headers, body) = call(&app, test::TestRequest::get().uri("/api/v1/nothing-here")).await;
    assert_envelope(status, &headers, &body, (404, "not_found"));
    let repeated = test::TestRequest::get().uri("/health/live?limit=500&limit=1");
    let (status, headers, body) = call(&app, repeated).await;
    assert_envelope(status, &headers, &body, (422, "validation_failed"));
    assert_eq!(body["error"]["details"][0]["field"], "limit");
}
