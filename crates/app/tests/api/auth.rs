//! Login, tokens, refresh rotation, logout and revocation across instances (SPEC §3).

use std::time::Duration;

use diesel::sql_types::{Integer, Nullable, Text, Timestamptz};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use gad_domain::users::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, PASSWORD, Redis, TestApp};

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Polls `check` for up to five seconds (revocation must reach every instance within 5 s).
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..50 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[derive(QueryableByName, Debug)]
struct AccountState {
    #[diesel(sql_type = Integer)]
    failed_login_attempts: i32,
    #[diesel(sql_type = Text)]
    password_hash: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_login_at: Option<time::OffsetDateTime>,
}

async fn account(app: &TestApp, email: &str) -> AccountState {
    sql_query("SELECT failed_login_attempts, password_hash, last_login_at FROM users WHERE email = $1")
        .bind::<Text, _>(email)
        .get_result(&mut app.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn login_with_json_or_form_then_me() {
    let app = TestApp::spawn().await;
    app.create_user("ana@example.org", Role::Operator).await;

    let tokens = app.login("ANA@example.org").await;
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 900);
    assert_eq!(tokens.refresh_expires_in, 1_209_600);

    let response = app.get_as("/api/v1/auth/me", &tokens.access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], "ana@example.org");
    assert_eq!(me["role"], "operator");
    assert_eq!(me["is_active"], true);
    assert_eq!(me["telegram_linked"], false);
    assert!(me["last_login_at"].is_string());
    assert!(me.get("password_hash").is_none());

    let form = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.address))
        .form(&[("username", "ana@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK, "OAuth2 password-flow form");
    assert!(account(&app, "ana@example.org").await.last_login_at.is_some());
    let again: Value = app.get_as("/api/v1/auth/me", &tokens.access_token).await.json().await.unwrap();
    assert_eq!(again["updated_at"], me["updated_at"], "logging in does not change the record");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = TestApp::spawn().await;
    app.create_user("ana@example.org", Role::Officer).await;
    let wrong = app
        .post_json("/api/v1/auth/login", &json!({"email": "ana@example.org", "password": "wrong password!"}), None)
        .await;
    assert_eq!(wrong.headers().get("www-authenticate").unwrap(), "Bearer");
    let unknown = app
        .post_json("/api/v1/auth/login", &json!({"email": "nobody@example.org", "password": "wrong password!"}), None)
        .await;
    let (wrong, mut wrong_body) = error_of(wrong).await;
    let (unknown, mut unknown_body) = error_of(unknown).await;
    assert_eq!((wrong, unknown), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    wrong_body["error"]["request_id"] = Value::Null;
    unknown_body["error"]["request_id"] = Value::Null;
    assert_eq!(wrong_body, unknown_body);
    assert_eq!(wrong_body["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn bad_login_bodies_are_rejected_with_the_envelope() {
    let app = TestApp::spawn().await;
    let missing = app.post_json("/api/v1/auth/login", &json!({"email": "a@example.org"}), None).await;
    let (status, body) = error_of(missing).await;
    assert_eq!(
        (status, body["error"]["details"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("password"))
    );
    let text = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("content-type", "text/plain")
        .body("email=a")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(text).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let broken = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(broken).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn five_failures_lock_the_account_and_a_success_resets_the_count() {
    let app = TestApp::spawn().await;
    app.create_user("ana@example.org", Role::Officer).await;
    let wrong = json!({"email": "ana@example.org", "password": "not the password"});

    app.post_json("/api/v1/auth/login", &wrong, None).await;
    app.login("ana@example.org").await;
    assert_eq!(account(&app, "ana@example.org").await.failed_login_attempts, 0, "a success resets the count");

    for _ in 0..5 {
        assert_eq!(app.post_json("/api/v1/auth/login", &wrong, None).await.status(), StatusCode::UNAUTHORIZED);
    }
    let right = json!({"email": "ana@example.org", "password": PASSWORD});
    let locked = app.post_json("/api/v1/auth/login", &right, None).await;
    let retry_after: u64 = locked.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((850..=900).contains(&retry_after), "about 15 minutes: {retry_after}");
    let (status, body) = error_of(locked).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("account_locked")));

    sql_query("UPDATE users SET locked_until = now() - interval '1 second' WHERE email = 'ana@example.org'")
        .execute(&mut app.db().await)
        .await
        .unwrap();
    app.login("ana@example.org").await;
    assert_eq!(account(&app, "ana@example.org").await.failed_login_attempts, 0);
}

/// Statuses of `count` logins sent all at once.
async fn parallel_logins(app: &TestApp, body: &Value, count: usize) -> Vec<StatusCode> {
    let attempts = (0..count).map(|_| async { app.post_json("/api/v1/auth/login", body, None).await.status() });
    futures_util::future::join_all(attempts).await
}

#[tokio::test]
async fn the_lockout_holds_under_parallel_guesses() {
    let app = TestApp::spawn().await;
    app.create_user("ana@example.org", Role::Officer).await;
    app.create_user("eva@example.org", Role::Officer).await;

    // Twenty guesses at once: only five get their password checked, the rest are refused.
    let wrong = json!({"email": "ana@example.org", "password": "not the password"});
    let statuses = parallel_logins(&app, &wrong, 20).await;
    let checked = statuses.iter().filter(|status| **status == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|status| **status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, refused), (5, 15), "{statuses:?}");
    let right = json!({"email": "ana@example.org", "password": PASSWORD});
    assert_eq!(app.post_json("/api/v1/auth/login", &right, None).await.status(), StatusCode::TOO_MANY_REQUESTS);

    // The right password sent once five guesses are counted, while they may still be checked,
    // is refused too.
    let wrong = json!({"email": "eva@example.org", "password": "not the password"});
    let burst = parallel_logins(&app, &wrong, 24);
    let right = async {
        let counted = eventually(async || account(&app, "eva@example.org").await.failed_login_attempts >= 5).await;
        assert!(counted, "five guesses were never counted");
        let body = json!({"email": "eva@example.org", "password": PASSWORD});
        app.post_json("/api/v1/auth/login", &body, None).await.status()
    };
    let (statuses, right) = tokio::join!(burst, right);
    assert_eq!(right, StatusCode::TOO_MANY_REQUESTS, "the sixth attempt is refused");
    let checked = statuses.iter().filter(|status| **status != StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked, 5, "{statuses:?}");
}

#[tokio::test]
async fn imported_bcrypt_passwords_work_and_are_rehashed() {
    let app = TestApp::spawn().await;
    app.create_user("legacy@example.org", Role::Officer).await;
    let imported = bcrypt::hash(PASSWORD, 4).unwrap();
    sql_query("UPDATE users SET password_hash = $1 WHERE email = 'legacy@example.org'")
        .bind::<Text, _>(&imported)
        .execute(&mut app.db().await)
        .await
        .unwrap();
    app.login("legacy@example.org").await;
    assert!(account(&app, "legacy@example.org").await.password_hash.starts_with("$argon2id$"));
    app.login("legacy@example.org").await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_session() {
    let app = TestApp::spawn().await;
    app.create_user("ana@example.org", Role::Supervisor).await;
    let first = app.login("ana@example.org").await;

    let refreshed = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": first.refresh_token}), None).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let second: Value = refreshed.json().await.unwrap();
    assert_ne!(second["refresh_token"], first.refresh_token.as_str());
    let second_access = second["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/v1/auth/me", second_access).await.status(), StatusCode::OK);

    let replay = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": first.refresh_token}), None).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED, "a spent token is refused");
    let newest = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": second["refresh_token"]}), None).await;
    assert_eq!(newest.status(), StatusCode::UNAUTHORIZED, "and the whole family with it");
    assert_eq!(app.get_as("/api/v1/auth/me", second_access).await.status(), StatusCode::UNAUTHORIZED);

    let unknown = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": "made-up"}), None).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_is_seen_by_every_instance_at_once() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    app.create_user("ana@example.org", Role::Operator).await;
    let tokens = app.login("ana@example.org").await;
    assert_eq!(peer.get_as("/api/v1/auth/me", &tokens.access_token).await.status(), StatusCode::OK);

    let other_session = app.login("ana@example.org").await;
    let logout = app.post_json("/api/v1/auth/logout", &json!({}), Some(&tokens.access_token)).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    assert_eq!(app.get_as("/api/v1/auth/me", &tokens.access_token).await.status(), StatusCode::UNAUTHORIZED);
    assert!(
        eventually(
            async || peer.get_as("/api/v1/auth/me", &tokens.access_token).await.status() == StatusCode::UNAUTHORIZED
        )
        .await,
        "the peer refuses the token within 5 s"
    );
    let refresh = peer.post_json("/api/v1/auth/refresh", &json!({"refresh_token": tokens.refresh_token}), None).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(peer.get_as("/api/v1/auth/me", &other_session.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_redis_instances_ask_postgres_and_never_accept_a_revoked_token() {
    let app = TestApp::spawn_with(Options { redis: Redis::Unreachable, ..Options::default() }).await;
    let peer = app.spawn_peer().await;
    app.create_user("ana@example.org", Role::Operator).await;
    let tokens = app.login("ana@example.org").await;
    assert_eq!(peer.get_as("/api/v1/auth/me", &tokens.access_token).await.status(), StatusCode::OK);
    let logout = app.post_json("/api/v1/auth/logout", &json!({}), Some(&tokens.access_token)).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(peer.get_as("/api/v1/auth/me", &tokens.access_token).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_malformed_and_foreign_tokens_are_401() {
    let app = TestApp::spawn().await;
    let (status, body) = error_of(app.get("/api/v1/auth/me").await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
    assert_eq!(app.get_as("/api/v1/auth/me", "garbage").await.status(), StatusCode::UNAUTHORIZED);

    let other = TestApp::spawn().await;
    other.create_user("eve@example.org", Role::Admin).await;
    let mut foreign = other.login("eve@example.org").await.access_token;
    foreign.pop();
    foreign.push('A');
    assert_eq!(app.get_as("/api/v1/auth/me", &foreign).await.status(), StatusCode::UNAUTHORIZED, "bad signature");
}

#[tokio::test]
async fn authentication_events_are_audited_with_the_request() {
    #[derive(QueryableByName, Debug)]
    struct Row {
        #[diesel(sql_type = Text)]
        action: String,
        #[diesel(sql_type = Text)]
        outcome: String,
        #[diesel(sql_type = Nullable<Text>)]
        request_id: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        ip: Option<String>,
    }
    let app = TestApp::spawn().await;
    app.create_user("ana@example.org", Role::Operator).await;
    let failed =
        app.post_json("/api/v1/auth/login", &json!({"email": "ana@example.org", "password": "wrong one!"}), None).await;
    let failed_id = failed.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
    let tokens = app.login("ana@example.org").await;
    app.post_json("/api/v1/auth/logout", &json!({}), Some(&tokens.access_token)).await;

    let rows: Vec<Row> = sql_query(
        "SELECT action, outcome::text AS outcome, request_id, host(ip) AS ip FROM audit_events \
         WHERE action LIKE 'auth.%' ORDER BY at, id",
    )
    .load(&mut app.db().await)
    .await
    .unwrap();
    let summary: Vec<(&str, &str)> = rows.iter().map(|row| (row.action.as_str(), row.outcome.as_str())).collect();
    assert_eq!(summary, [("auth.login", "failure"), ("auth.login", "success"), ("auth.logout", "success")]);
    assert_eq!(rows[0].request_id.as_deref(), Some(failed_id.as_str()));
    assert!(rows.iter().all(|row| row.ip.as_deref() == Some("127.0.0.1")));
}
