//! Officers: the role matrix, positions under consent, availability, nearest-first search and
//! the events they write (SPEC §4).

use diesel::sql_types::{BigInt, Jsonb, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use gad_domain::tasks::geo::GeoPoint;
use gad_domain::users::{Role, UserId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, hours_from_now};

/// An officer user with a profile; returns (officer id, user id, token of the officer).
async fn officer(app: &TestApp, admin: &str, email: &str, badge: &str) -> (String, UserId, String) {
    let user = app.create_user(email, Role::Officer).await;
    let body =
        json!({"user_id": user.to_string(), "badge_number": badge, "unit": "Centro", "availability": "available"});
    let created = app.send(Method::POST, "/api/v1/officers", admin, Some(body)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let officer: Value = created.json().await.unwrap();
    let token = app.login(email).await.access_token;
    (officer["id"].as_str().unwrap().to_owned(), user, token)
}

async fn consent_to_tracking(app: &TestApp, user: UserId, token: &str) {
    let grant = json!({"consent_type": "location_tracking", "granted": true, "policy_version": "1"});
    let response = app.send(Method::POST, &format!("/api/v1/users/{user}/consents"), token, Some(grant)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    sql_query(sql).get_result::<Count>(&mut app.db().await).await.unwrap().count
}

#[tokio::test]
async fn profiles_follow_the_matrix_of_the_spec() {
    let app = TestApp::spawn().await;
    for (email, role) in [("admin@x.org", Role::Admin), ("sup@x.org", Role::Supervisor), ("op@x.org", Role::Operator)] {
        app.create_user(email, role).await;
    }
    let admin = app.login("admin@x.org").await.access_token;
    let supervisor = app.login("sup@x.org").await.access_token;
    let operator = app.login("op@x.org").await.access_token;
    let (ana, ana_user, ana_token) = officer(&app, &admin, "ana@x.org", "MAD-1").await;
    let (eva, _, _) = officer(&app, &supervisor, "eva@x.org", "MAD-2").await;
    let path = |id: &str| format!("/api/v1/officers/{id}");

    let again = json!({"user_id": ana_user.to_string(), "badge_number": "MAD-9"});
    let duplicate: Value = app.send(Method::POST, "/api/v1/officers", &admin, Some(again)).await.json().await.unwrap();
    assert_eq!(duplicate["error"]["details"][0]["field"], "user_id", "one profile per user");
    let other = app.create_user("other@x.org", Role::Officer).await;
    let badge = json!({"user_id": other.to_string(), "badge_number": "mad-1"});
    assert_eq!(app.send(Method::POST, "/api/v1/officers", &admin, Some(badge)).await.status(), StatusCode::CONFLICT);
    let nobody = json!({"user_id": uuid::Uuid::now_v7().to_string(), "badge_number": "MAD-3"});
    assert_eq!(
        app.send(Method::POST, "/api/v1/officers", &admin, Some(nobody)).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let created_by_operator = json!({"user_id": other.to_string(), "badge_number": "MAD-4"});
    assert_eq!(
        app.send(Method::POST, "/api/v1/officers", &operator, Some(created_by_operator)).await.status(),
        StatusCode::FORBIDDEN
    );

    let list: Value =
        app.send(Method::GET, "/api/v1/officers?unit=Centro", &operator, None).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.send(Method::GET, "/api/v1/officers", &ana_token, None).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.send(Method::GET, &path(&ana), &ana_token, None).await.status(), StatusCode::OK, "own profile");
    assert_eq!(app.send(Method::GET, &path(&eva), &ana_token, None).await.status(), StatusCode::FORBIDDEN, "another's");
    // One answer for another's profile and for an id that names nothing: no probing for ids.
    let unknown = path(&uuid::Uuid::now_v7().to_string());
    let another: Value = app.send(Method::GET, &path(&eva), &ana_token, None).await.json().await.unwrap();
    let random = app.send(Method::GET, &unknown, &ana_token, None).await;
    assert_eq!(random.status(), StatusCode::FORBIDDEN, "a random id looks like another's profile");
    let random: Value = random.json().await.unwrap();
    assert_eq!(random["error"]["code"], another["error"]["code"]);
    assert_eq!(random["error"]["message"], another["error"]["message"]);
    for (method, suffix, body) in [
        (Method::PUT, "/availability", Some(json!({"availability": "off_duty"}))),
        (Method::PUT, "/location", Some(json!({"lat": 40.4, "lng": -3.7}))),
        (Method::PATCH, "", Some(json!({"rank": "Sergeant"}))),
    ] {
        for id in [&eva, &uuid::Uuid::now_v7().to_string()] {
            let status =
                app.send(method.clone(), &format!("{}{suffix}", path(id)), &ana_token, body.clone()).await.status();
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {suffix} on {id}");
        }
    }
    assert_eq!(app.send(Method::GET, &unknown, &operator, None).await.status(), StatusCode::NOT_FOUND, "staff see 404");

    let rank = json!({"rank": "Sergeant"});
    assert_eq!(
        app.send(Method::PATCH, &path(&ana), &operator, Some(rank.clone())).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.send(Method::PATCH, &path(&ana), &ana_token, Some(rank.clone())).await.status(),
        StatusCode::FORBIDDEN
    );
    let patched: Value = app.send(Method::PATCH, &path(&ana), &supervisor, Some(rank)).await.json().await.unwrap();
    assert_eq!((patched["rank"].as_str(), patched["unit"].as_str()), (Some("Sergeant"), Some("Centro")));
    let cleared: Value =
        app.send(Method::PATCH, &path(&ana), &admin, Some(json!({"unit": null}))).await.json().await.unwrap();
    assert!(cleared["unit"].is_null());

    assert_eq!(app.send(Method::DELETE, &path(&eva), &operator, None).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.send(Method::DELETE, &path(&eva), &supervisor, None).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.send(Method::GET, &path(&eva), &admin, None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn positions_need_consent_keep_a_history_and_write_events() {
    #[derive(QueryableByName)]
    struct Event {
        #[diesel(sql_type = Text)]
        event_type: String,
        #[diesel(sql_type = Jsonb)]
        payload: Value,
    }
    let app = TestApp::spawn().await;
    app.create_user("op@x.org", Role::Operator).await;
    app.create_user("admin@x.org", Role::Admin).await;
    let admin = app.login("admin@x.org").await.access_token;
    let operator = app.login("op@x.org").await.access_token;
    let (ana, ana_user, ana_token) = officer(&app, &admin, "ana@x.org", "MAD-1").await;
    let location = format!("/api/v1/officers/{ana}/location");
    let here = json!({"lat": 40.4168, "lng": -3.7038, "accuracy_m": 12.5});

    let refused = app.send(Method::PUT, &location, &ana_token, Some(here.clone())).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "consent_required");
    assert_eq!(count(&app, "SELECT count(*) AS count FROM officer_locations").await, 0, "nothing stored");

    consent_to_tracking(&app, ana_user, &ana_token).await;
    let moved = app.send(Method::PUT, &location, &ana_token, Some(here)).await;
    assert_eq!(moved.status(), StatusCode::OK);
    let officer: Value = moved.json().await.unwrap();
    assert_eq!(
        (officer["location"]["lat"].as_f64(), officer["location"]["accuracy_m"].as_f64()),
        (Some(40.4168), Some(12.5))
    );
    let by_operator = json!({"lat": 40.42, "lng": -3.70, "recorded_at": hours_from_now(-3)});
    assert_eq!(app.send(Method::PUT, &location, &operator, Some(by_operator)).await.status(), StatusCode::OK);
    assert_eq!(count(&app, "SELECT count(*) AS count FROM officer_locations").await, 2);

    for bad in [
        json!({"lat": 91, "lng": 0}),
        json!({"lat": 0, "lng": 181}),
        json!({"lat": 0, "lng": 0, "accuracy_m": -1}),
        json!({"lat": 0, "lng": 0, "recorded_at": hours_from_now(24)}),
        json!({"lat": "north", "lng": 0}),
    ] {
        let status = app.send(Method::PUT, &location, &ana_token, Some(bad.clone())).await.status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    let availability = format!("/api/v1/officers/{ana}/availability");
    let off = app.send(Method::PUT, &availability, &ana_token, Some(json!({"availability": "off_duty"}))).await;
    assert_eq!(off.status(), StatusCode::OK);
    let bad = app.send(Method::PUT, &availability, &ana_token, Some(json!({"availability": "asleep"}))).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let events: Vec<Event> =
        sql_query("SELECT event_type, payload FROM event_log ORDER BY id").load(&mut app.db().await).await.unwrap();
    let types: Vec<&str> = events.iter().map(|event| event.event_type.as_str()).collect();
    assert_eq!(types, ["officer.location_updated", "officer.location_updated", "officer.availability_changed"]);
    let latest: Value =
        app.send(Method::GET, &format!("/api/v1/officers/{ana}"), &operator, None).await.json().await.unwrap();
    assert_eq!(events[2].payload, latest, "the event carries the resource as the API shows it");
}

#[tokio::test]
async fn nearest_orders_by_geodesic_distance_and_filters() {
    let app = TestApp::spawn().await;
    app.create_user("admin@x.org", Role::Admin).await;
    let admin = app.login("admin@x.org").await.access_token;
    let origin = GeoPoint::new(40.4168, -3.7038).unwrap();
    // Spread around Madrid at growing distances; the third is not available.
    let spots = [(40.4200, -3.7000), (40.4400, -3.6900), (40.3500, -3.7500), (40.5000, -3.6000), (41.3874, 2.1686)];
    let mut expected = Vec::new();
    for (index, (lat, lng)) in spots.into_iter().enumerate() {
        let (id, user, token) = officer(&app, &admin, &format!("o{index}@x.org"), &format!("B-{index}")).await;
        consent_to_tracking(&app, user, &token).await;
        let response = app
            .send(
                Method::PUT,
                &format!("/api/v1/officers/{id}/location"),
                &token,
                Some(json!({"lat": lat, "lng": lng})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        if index == 2 {
            app.send(
                Method::PUT,
                &format!("/api/v1/officers/{id}/availability"),
                &token,
                Some(json!({"availability": "unavailable"})),
            )
            .await;
        }
        expected.push((id, origin.haversine_m(GeoPoint::new(lat, lng).unwrap()), index != 2));
    }
    expected.sort_by(|a, b| a.1.total_cmp(&b.1));

    let all: Value = app
        .send(
            Method::GET,
            "/api/v1/officers/nearest?lat=40.4168&lng=-3.7038&limit=10&available_only=false",
            &admin,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let items = all["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|item| item["officer"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, expected.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>(), "nearest first");
    for (item, (_, haversine, _)) in items.iter().zip(&expected) {
        let distance = item["distance_m"].as_f64().unwrap();
        assert!((distance - haversine).abs() <= haversine * 0.005, "{distance} vs {haversine}");
    }

    let available: Value = app
        .send(Method::GET, "/api/v1/officers/nearest?lat=40.4168&lng=-3.7038", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    let available_ids: Vec<&str> =
        available["items"].as_array().unwrap().iter().map(|i| i["officer"]["id"].as_str().unwrap()).collect();
    let expected_available: Vec<&str> =
        expected.iter().filter(|(_, _, ok)| *ok).map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(available_ids, expected_available, "available only by default, limit 5");

    let near: Value = app
        .send(Method::GET, "/api/v1/officers/nearest?lat=40.4168&lng=-3.7038&max_distance_m=5000", &admin, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(near["items"].as_array().unwrap().iter().all(|i| i["distance_m"].as_f64().unwrap() <= 5000.0));
    assert_eq!(near["items"].as_array().unwrap().len(), 2);

    for bad in ["lat=40", "lat=91&lng=0", "lat=0&lng=0&limit=0", "lat=0&lng=0&available_only=maybe", "lat=x&lng=0"] {
        let status = app.send(Method::GET, &format!("/api/v1/officers/nearest?{bad}"), &admin, None).await.status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let (_, _, officer_token) = officer(&app, &admin, "late@x.org", "B-9").await;
    let forbidden = app.send(Method::GET, "/api/v1/officers/nearest?lat=0&lng=0", &officer_token, None).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
}
