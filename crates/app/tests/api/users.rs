//! Users: the role matrix, validation, pagination, rectification, deactivation and the token
//! revocation that role changes cause (SPEC §3).

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use gad_domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};

impl TestApp {
    /// Audit rows of `action` (the tests of several resources count them).
    pub(crate) async fn audit_rows(&self, action: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            count: i64,
        }
        sql_query("SELECT count(*) AS count FROM audit_events WHERE action = $1")
            .bind::<Text, _>(action)
            .get_result::<Count>(&mut self.db().await)
            .await
            .unwrap()
            .count
    }

    /// Users who are administrators and active.
    async fn active_admins(&self) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            count: i64,
        }
        sql_query("SELECT count(*) AS count FROM users WHERE role = 'admin' AND is_active AND erased_at IS NULL")
            .get_result::<Count>(&mut self.db().await)
            .await
            .unwrap()
            .count
    }
}

fn new_user(email: &str, role: &str) -> Value {
    json!({"email": email, "password": PASSWORD, "first_name": "Eva", "last_name": "Núñez-Ruiz", "role": role})
}

#[tokio::test]
async fn every_role_meets_the_matrix_of_the_spec() {
    let app = TestApp::spawn().await;
    let target = app.create_user("target@example.org", Role::Officer).await;
    let cases = [
        (Role::Admin, [200, 201, 200, 200, 204, 200, 403, 200]),
        (Role::Supervisor, [200, 403, 200, 403, 403, 403, 403, 403]),
        (Role::Operator, [403, 403, 403, 403, 403, 403, 403, 403]),
        (Role::Officer, [403, 403, 403, 403, 403, 403, 403, 403]),
    ];
    let consent = json!({"consent_type": "analytics", "granted": true, "policy_version": "1"});
    for (index, (role, expected)) in cases.into_iter().enumerate() {
        let email = format!("{role}@example.org");
        let me = app.create_user(&email, role).await;
        let token = app.login(&email).await.access_token;
        let other = format!("/api/v1/users/{target}");
        let statuses = [
            app.send(Method::GET, "/api/v1/users", &token, None).await.status(),
            app.send(
                Method::POST,
                "/api/v1/users",
                &token,
                Some(new_user(&format!("new{index}@example.org"), "officer")),
            )
            .await
            .status(),
            app.send(Method::GET, &other, &token, None).await.status(),
            app.send(Method::PATCH, &other, &token, Some(json!({"first_name": "Changed"}))).await.status(),
            app.send(Method::DELETE, &other, &token, None).await.status(),
            app.send(Method::GET, &format!("{other}/consents"), &token, None).await.status(),
            app.send(Method::POST, &format!("{other}/consents"), &token, Some(consent.clone())).await.status(),
            app.send(Method::GET, "/api/v1/audit-events", &token, None).await.status(),
        ];
        let statuses: Vec<u16> = statuses.iter().map(StatusCode::as_u16).collect();
        assert_eq!(
            statuses, expected,
            "{role}: list, create, read other, edit other, deactivate other, read and record other's consents, audit"
        );

        let own = format!("/api/v1/users/{me}");
        assert_eq!(app.send(Method::GET, &own, &token, None).await.status(), StatusCode::OK, "{role} reads self");
        let rectified = app.send(Method::PATCH, &own, &token, Some(json!({"phone": "+34600111222"}))).await;
        assert_eq!(rectified.status(), StatusCode::OK, "{role} rectifies self");
        let own_consent = app.send(Method::POST, &format!("{own}/consents"), &token, Some(consent.clone())).await;
        assert_eq!(own_consent.status(), StatusCode::CREATED, "{role} records own consent");
        let own_consents = app.send(Method::GET, &format!("{own}/consents"), &token, None).await;
        assert_eq!(own_consents.status(), StatusCode::OK, "{role} reads own consents");
        assert_eq!(app.get_as("/api/v1/auth/me", &token).await.status(), StatusCode::OK, "{role} reads /auth/me");
        let promote = app.send(Method::PATCH, &own, &token, Some(json!({"role": "admin"}))).await.status();
        let expected_promote = if role == Role::Admin { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(promote, expected_promote, "{role} changes own role");
    }
}

#[tokio::test]
async fn create_validates_every_field_and_refuses_duplicates() {
    let app = TestApp::spawn().await;
    app.create_user("admin@example.org", Role::Admin).await;
    let token = app.login("admin@example.org").await.access_token;
    let audited = app.audit_rows("user.create").await;

    let bad = json!({"email": "nope", "password": "short", "first_name": "R2D2", "last_name": "", "phone": "600",
                     "national_id": "x", "role": "root"});
    let response = app.send(Method::POST, "/api/v1/users", &token, Some(bad)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    let mut fields: Vec<&str> =
        body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["email", "first_name", "last_name", "national_id", "password", "phone", "role"]);

    let mut first = new_user("eva@example.org", "officer");
    first["national_id"] = json!("12345678Z");
    let created = app.send(Method::POST, "/api/v1/users", &token, Some(first)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let user: Value = created.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/users/{}", user["id"].as_str().unwrap()));
    assert_eq!(user["national_id"], "12345678Z");
    assert_eq!(app.audit_rows("user.create").await, audited + 1);

    let same_email =
        app.send(Method::POST, "/api/v1/users", &token, Some(new_user("EVA@example.org", "officer"))).await;
    assert_eq!(same_email.status(), StatusCode::CONFLICT);
    let body: Value = same_email.json().await.unwrap();
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["details"][0]["field"].as_str()),
        (Some("duplicate"), Some("email"))
    );
    let mut same_id = new_user("other@example.org", "officer");
    same_id["national_id"] = json!("12345678z");
    let response = app.send(Method::POST, "/api/v1/users", &token, Some(same_id)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(app.audit_rows("user.create").await, audited + 1, "failed writes leave no audit row");

    let unknown = app.send(Method::PATCH, &location, &token, Some(json!({"status": "x"}))).await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn listing_filters_and_pages_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    app.create_user("admin@example.org", Role::Admin).await;
    for index in 0..7 {
        let role = if index % 2 == 0 { Role::Officer } else { Role::Operator };
        app.create_user(&format!("user{index}@example.org"), role).await;
    }
    let token = app.login("admin@example.org").await.access_token;

    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=3".to_owned();
    loop {
        let page: Value = app.send(Method::GET, &path, &token, None).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|user| user["email"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/users?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "no user twice: {seen:?}");

    let officers: Value = app.send(Method::GET, "/api/v1/users?role=officer", &token, None).await.json().await.unwrap();
    assert_eq!(officers["items"].as_array().unwrap().len(), 4);
    let search: Value = app.send(Method::GET, "/api/v1/users?q=USER3", &token, None).await.json().await.unwrap();
    assert_eq!(search["items"][0]["email"], "user3@example.org");
    assert_eq!(search["items"].as_array().unwrap().len(), 1);
    for bad in ["?limit=0", "?limit=201", "?cursor=nonsense", "?role=root", "?is_active=maybe"] {
        let status = app.send(Method::GET, &format!("/api/v1/users{bad}"), &token, None).await.status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn changing_ones_own_password_needs_the_current_one() {
    let app = TestApp::spawn().await;
    let me = app.create_user("ana@example.org", Role::Officer).await;
    let token = app.login("ana@example.org").await.access_token;
    let path = format!("/api/v1/users/{me}");
    let new_password = "an entirely new passphrase";

    let without = app.send(Method::PATCH, &path, &token, Some(json!({"password": new_password}))).await;
    let body: Value = without.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["field"], "current_password");
    let wrong = json!({"password": new_password, "current_password": "not my password"});
    assert_eq!(app.send(Method::PATCH, &path, &token, Some(wrong)).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let right = json!({"password": new_password, "current_password": PASSWORD});
    assert_eq!(app.send(Method::PATCH, &path, &token, Some(right)).await.status(), StatusCode::OK);

    let old =
        app.post_json("/api/v1/auth/login", &json!({"email": "ana@example.org", "password": PASSWORD}), None).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new =
        app.post_json("/api/v1/auth/login", &json!({"email": "ana@example.org", "password": new_password}), None).await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test]
async fn put_replaces_the_profile() {
    let app = TestApp::spawn().await;
    let me = app.create_user("ana@example.org", Role::Operator).await;
    let token = app.login("ana@example.org").await.access_token;
    let path = format!("/api/v1/users/{me}");
    app.send(Method::PATCH, &path, &token, Some(json!({"phone": "+34600111222"}))).await;
    let replaced = json!({"email": "ana.g@example.org", "first_name": "Ana María", "last_name": "García"});
    let response = app.send(Method::PUT, &path, &token, Some(replaced)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: Value = response.json().await.unwrap();
    assert_eq!((user["email"].as_str(), user["first_name"].as_str()), (Some("ana.g@example.org"), Some("Ana María")));
    assert!(user["phone"].is_null(), "absent in PUT means cleared");
}

#[tokio::test]
async fn role_changes_and_deactivation_revoke_tokens_on_every_instance() {
    let app = TestApp::spawn().await;
    let peer = app.spawn_peer().await;
    app.create_user("admin@example.org", Role::Admin).await;
    let operator = app.create_user("op@example.org", Role::Operator).await;
    let admin = app.login("admin@example.org").await.access_token;
    let old = app.login("op@example.org").await;
    assert_eq!(peer.get_as("/api/v1/auth/me", &old.access_token).await.status(), StatusCode::OK);

    let path = format!("/api/v1/users/{operator}");
    let promoted = app.send(Method::PATCH, &path, &admin, Some(json!({"role": "supervisor"}))).await;
    assert_eq!(promoted.status(), StatusCode::OK);
    assert_eq!(app.get_as("/api/v1/auth/me", &old.access_token).await.status(), StatusCode::UNAUTHORIZED);
    // A new login right away (the same second as the change, most often) carries the new role.
    let fresh = app.login("op@example.org").await.access_token;
    let me: Value = app.get_as("/api/v1/auth/me", &fresh).await.json().await.unwrap();
    assert_eq!(me["role"], "supervisor");
    let mut refused = false;
    for _ in 0..50 {
        if peer.get_as("/api/v1/auth/me", &old.access_token).await.status() == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "the peer refuses the old token within 5 s");
    let refresh = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": old.refresh_token}), None).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED, "sessions are revoked too");

    assert_eq!(peer.get_as("/api/v1/auth/me", &fresh).await.status(), StatusCode::OK, "and so does the peer");

    assert_eq!(app.send(Method::DELETE, &path, &admin, None).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_as("/api/v1/auth/me", &fresh).await.status(), StatusCode::UNAUTHORIZED);
    let login =
        app.post_json("/api/v1/auth/login", &json!({"email": "op@example.org", "password": PASSWORD}), None).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED, "a deactivated account cannot log in");
    let user: Value = app.send(Method::GET, &path, &admin, None).await.json().await.unwrap();
    assert_eq!(user["is_active"], false);
    assert_eq!(app.audit_rows("user.deactivate").await, 1);
}

/// A refusal because the user is the last active administrator: 409 `conflict` saying why.
async fn assert_last_admin_refusal(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), StatusCode::CONFLICT, "{what}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conflict", "{what}: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("last active administrator"), "{what}: {body}");
}

/// A PUT body: the profile as it is, with `role` or `is_active` as given.
fn replacement(email: &str, change: Value) -> Value {
    let mut body = json!({"email": email, "first_name": "Test", "last_name": "User"});
    let Value::Object(change) = change else { panic!("a change is an object") };
    body.as_object_mut().unwrap().extend(change);
    body
}

#[tokio::test]
async fn the_last_active_admin_is_neither_demoted_nor_deactivated_nor_deleted() {
    let app = TestApp::spawn().await;
    let admin = app.create_user("admin@example.org", Role::Admin).await;
    let token = app.login("admin@example.org").await.access_token;
    let path = format!("/api/v1/users/{admin}");
    // An inactive admin does not count.
    let dormant = app.create_user("dormant@example.org", Role::Admin).await;
    let deactivated = app.send(Method::DELETE, &format!("/api/v1/users/{dormant}"), &token, None).await;
    assert_eq!(deactivated.status(), StatusCode::NO_CONTENT);
    let before: Value = app.get_as(&path, &token).await.json().await.unwrap();
    let audited = (app.audit_rows("user.update").await, app.audit_rows("user.deactivate").await);

    let email = "admin@example.org";
    let refused = [
        ("PATCH role", Method::PATCH, Some(json!({"role": "operator"}))),
        ("PUT role", Method::PUT, Some(replacement(email, json!({"role": "supervisor"})))),
        ("PATCH is_active", Method::PATCH, Some(json!({"is_active": false, "role": "admin"}))),
        ("PUT is_active", Method::PUT, Some(replacement(email, json!({"is_active": false})))),
        ("DELETE", Method::DELETE, None),
    ];
    for (what, method, body) in refused {
        assert_last_admin_refusal(app.send(method, &path, &token, body).await, what).await;
    }

    let after: Value = app.get_as(&path, &token).await.json().await.unwrap();
    assert_eq!(after, before, "nothing changed");
    assert_eq!(app.get_as("/api/v1/auth/me", &token).await.status(), StatusCode::OK, "no token was revoked");
    let audited_after = (app.audit_rows("user.update").await, app.audit_rows("user.deactivate").await);
    assert_eq!(audited_after, audited, "refusals leave no audit row");
    let renamed = app.send(Method::PATCH, &path, &token, Some(json!({"first_name": "Ana", "role": "admin"}))).await;
    assert_eq!(renamed.status(), StatusCode::OK, "changes that keep it an active admin pass");
}

#[tokio::test]
async fn with_two_active_admins_one_may_demote_the_other() {
    let app = TestApp::spawn().await;
    let first = app.create_user("first@example.org", Role::Admin).await;
    let second = app.create_user("second@example.org", Role::Admin).await;
    let token = app.login("first@example.org").await.access_token;

    let demoted =
        app.send(Method::PATCH, &format!("/api/v1/users/{second}"), &token, Some(json!({"role": "operator"}))).await;
    assert_eq!(demoted.status(), StatusCode::OK);
    let demoted: Value = demoted.json().await.unwrap();
    assert_eq!(demoted["role"], "operator");
    // Now the first is the last one.
    let own = format!("/api/v1/users/{first}");
    assert_last_admin_refusal(app.send(Method::DELETE, &own, &token, None).await, "DELETE").await;
    assert_eq!(app.active_admins().await, 1);
}

#[tokio::test]
async fn concurrent_demotions_never_leave_no_active_admin() {
    let app = TestApp::spawn().await;
    let mut survivor = ("admin0@example.org".to_owned(), app.create_user("admin0@example.org", Role::Admin).await);
    for round in 1..=6 {
        let email = format!("admin{round}@example.org");
        let newcomer = (email.clone(), app.create_user(&email, Role::Admin).await);
        let pair = [&survivor, &newcomer];
        let tokens = [app.login(&pair[0].0).await.access_token, app.login(&pair[1].0).await.access_token];
        // Even rounds: each demotes the other. Odd rounds: each deactivates itself, which
        // revokes no token of the other, so the loser always sees the refusal itself.
        let targets = if round % 2 == 0 { [pair[1].1, pair[0].1] } else { [pair[0].1, pair[1].1] };
        let paths = targets.map(|target| format!("/api/v1/users/{target}"));
        let body = if round % 2 == 0 { json!({"role": "operator"}) } else { json!({"is_active": false}) };
        let change = |index: usize| app.send(Method::PATCH, &paths[index], &tokens[index], Some(body.clone()));
        let (one, other) = tokio::join!(change(0), change(1));
        let statuses = [one.status(), other.status()];
        assert_eq!(
            statuses.iter().filter(|status| **status == StatusCode::OK).count(),
            1,
            "round {round}: exactly one succeeds, {statuses:?}"
        );
        assert_eq!(app.active_admins().await, 1, "round {round}");
        let (winner, loser) = if statuses[0] == StatusCode::OK { (0, other) } else { (1, one) };
        // In a cross-demotion the winner's change may revoke the loser's token first (401).
        if round % 2 == 1 || loser.status() != StatusCode::UNAUTHORIZED {
            assert_last_admin_refusal(loser, &format!("round {round}")).await;
        }
        // Whoever is still an active admin carries on.
        let still_admin = if round % 2 == 0 { winner } else { 1 - winner };
        survivor = pair[still_admin].clone();
    }
}
