//! Consent records and the audit log as their readers see them (SPEC §3, §7).

use gad_domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, hours_from_now};

#[tokio::test]
async fn consents_are_appended_by_the_subject_and_read_by_the_subject_or_admins() {
    let app = TestApp::spawn().await;
    let ana = app.create_user("ana@example.org", Role::Officer).await;
    app.create_user("admin@example.org", Role::Admin).await;
    app.create_user("boss@example.org", Role::Supervisor).await;
    let token = app.login("ana@example.org").await.access_token;
    let path = format!("/api/v1/users/{ana}/consents");

    let grant = json!({"consent_type": "location_tracking", "granted": true, "policy_version": "2026-11"});
    let created = app.send(Method::POST, &path, &token, Some(grant)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let record: Value = created.json().await.unwrap();
    assert_eq!((record["channel"].as_str(), record["granted"].as_bool()), (Some("api"), Some(true)));
    assert!(record["user_agent"].is_string());
    let withdraw = json!({"consent_type": "location_tracking", "granted": false, "policy_version": "2026-11"});
    assert_eq!(app.send(Method::POST, &path, &token, Some(withdraw)).await.status(), StatusCode::CREATED);

    let consents: Value = app.send(Method::GET, &path, &token, None).await.json().await.unwrap();
    let current = consents["current"].as_array().unwrap();
    assert_eq!(current.len(), 4);
    let location = current.iter().find(|c| c["consent_type"] == "location_tracking").unwrap();
    assert_eq!(location["granted"], false, "the withdrawal is the newest record");
    let analytics = current.iter().find(|c| c["consent_type"] == "analytics").unwrap();
    assert_eq!((analytics["granted"].as_bool(), analytics["recorded_at"].is_null()), (Some(false), true));
    let history = consents["history"].as_array().unwrap();
    assert_eq!(history.iter().map(|r| r["granted"].as_bool().unwrap()).collect::<Vec<_>>(), [false, true]);

    let admin = app.login("admin@example.org").await.access_token;
    assert_eq!(app.send(Method::GET, &path, &admin, None).await.status(), StatusCode::OK);
    let on_behalf = json!({"consent_type": "analytics", "granted": true, "policy_version": "1"});
    assert_eq!(app.send(Method::POST, &path, &admin, Some(on_behalf.clone())).await.status(), StatusCode::FORBIDDEN);
    let boss = app.login("boss@example.org").await.access_token;
    assert_eq!(app.send(Method::GET, &path, &boss, None).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.send(Method::POST, &path, &boss, Some(on_behalf)).await.status(), StatusCode::FORBIDDEN);

    let bad = json!({"consent_type": "marketing", "granted": true, "policy_version": ""});
    let response = app.send(Method::POST, &path, &token, Some(bad)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["details"].as_array().unwrap().len(), 2);
    let nobody = format!("/api/v1/users/{}/consents", uuid::Uuid::now_v7());
    assert_eq!(app.send(Method::GET, &nobody, &admin, None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admins_read_the_audit_log_filtered_and_paged() {
    let app = TestApp::spawn().await;
    let admin_id = app.create_user("admin@example.org", Role::Admin).await;
    app.create_user("boss@example.org", Role::Supervisor).await;
    let admin = app.login("admin@example.org").await.access_token;
    for _ in 0..3 {
        app.post_json("/api/v1/auth/login", &json!({"email": "boss@example.org", "password": "wrong password"}), None)
            .await;
    }

    let logins: Value =
        app.send(Method::GET, "/api/v1/audit-events?action=auth.login", &admin, None).await.json().await.unwrap();
    let items = logins["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items.iter().filter(|e| e["outcome"] == "failure").count(), 3);
    assert!(items.windows(2).all(|pair| pair[0]["at"].as_str() >= pair[1]["at"].as_str()), "newest first");

    let mine: Value = app
        .send(Method::GET, &format!("/api/v1/audit-events?actor_id={admin_id}&action=auth.login"), &admin, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["actor_role"], "admin");

    let first: Value = app.send(Method::GET, "/api/v1/audit-events?limit=2", &admin, None).await.json().await.unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .send(Method::GET, &format!("/api/v1/audit-events?limit=2&cursor={cursor}"), &admin, None)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(first["items"][1]["id"], second["items"][0]["id"]);

    let future: Value = app
        .send(Method::GET, &format!("/api/v1/audit-events?from={}", hours_from_now(24)), &admin, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(future["items"], json!([]));
    let bad = app.send(Method::GET, "/api/v1/audit-events?from=yesterday&actor_id=1", &admin, None).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let boss = app.login("boss@example.org").await.access_token;
    assert_eq!(app.send(Method::GET, "/api/v1/audit-events", &boss, None).await.status(), StatusCode::FORBIDDEN);
}
