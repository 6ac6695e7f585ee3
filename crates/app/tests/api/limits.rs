//! Rate limits per client address and per user, shared through Redis (SPEC §2).

use gad_domain::users::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Options, Redis, TestApp};

async fn wrong_login(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.address))
        .json(&json!({"email": "nobody@example.org", "password": "not a password"}));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).map(|value| value.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn logins_beyond_the_budget_get_429_with_headers_and_health_is_exempt() {
    let app = TestApp::spawn_with(Options { login_per_minute: 3, redis: Redis::Absent, ..Options::default() }).await;
    for remaining in ["2", "1", "0"] {
        let response = wrong_login(&app, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&response, "ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(header(&response, "ratelimit-remaining").as_deref(), Some(remaining));
    }
    let limited = wrong_login(&app, None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&limited, "ratelimit-remaining").as_deref(), Some("0"));
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    let health = app.get("/health/live").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(header(&health, "ratelimit-limit").is_none(), "health is not counted");
    assert_eq!(app.get("/api/v1/health").await.status(), StatusCode::OK, "other routes have their own budget");
}

#[tokio::test]
async fn instances_sharing_redis_share_the_budget() {
    let app = TestApp::spawn_with(Options { login_per_minute: 3, ..Options::default() }).await;
    let peer = app.spawn_peer().await;
    assert_eq!(wrong_login(&app, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_login(&peer, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_login(&app, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_login(&peer, None).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let untrusted = TestApp::spawn_with(Options { login_per_minute: 2, ..Options::default() }).await;
    assert_eq!(wrong_login(&untrusted, Some("203.0.113.1")).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_login(&untrusted, Some("203.0.113.2")).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_login(&untrusted, Some("203.0.113.3")).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a client cannot pick its own bucket"
    );

    let behind_proxy =
        TestApp::spawn_with(Options { login_per_minute: 2, trusted_proxies: &["127.0.0.1/32"], ..Options::default() })
            .await;
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(wrong_login(&behind_proxy, Some(client)).await.status(), StatusCode::UNAUTHORIZED, "{client}");
    }
    assert_eq!(wrong_login(&behind_proxy, Some("203.0.113.1")).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_login(&behind_proxy, Some("203.0.113.1")).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_user_has_one_budget_whatever_the_address() {
    let app =
        TestApp::spawn_with(Options { general_per_minute: 4, trusted_proxies: &["127.0.0.1"], ..Options::default() })
            .await;
    app.create_user("ana@example.org", Role::Operator).await;
    let token = app.login("ana@example.org").await.access_token;
    let me = |client: String| {
        let token = token.clone();
        let address = app.address.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{address}/api/v1/auth/me"))
                .bearer_auth(token)
                .header("x-forwarded-for", client)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for index in 0..4 {
        assert_eq!(me(format!("198.51.100.{index}")).await, StatusCode::OK);
    }
    assert_eq!(me("198.51.100.200".into()).await, StatusCode::TOO_MANY_REQUESTS, "the fifth request of the user");
}

#[tokio::test]
async fn without_redis_reachable_each_instance_still_limits() {
    let app =
        TestApp::spawn_with(Options { login_per_minute: 2, redis: Redis::Unreachable, ..Options::default() }).await;
    assert_eq!(wrong_login(&app, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_login(&app, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_login(&app, None).await.status(), StatusCode::TOO_MANY_REQUESTS, "the local fallback counts");
}
