//! The OpenAPI document says what is served (SPEC §2): what the contract fuzzer found where the
//! two differed, each checked against the running application and the document it serves.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::tasks::{create, desk, officer};

async fn document(desk: &crate::tasks::Desk) -> Value {
    desk.app.get("/api/v1/openapi.json").await.json().await.unwrap()
}

fn parameter<'a>(document: &'a Value, path: &str, name: &str) -> &'a Value {
    document["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == name)
        .unwrap_or_else(|| panic!("{path} documents {name}"))
}

#[tokio::test]
async fn a_body_is_a_json_object_never_an_array_of_its_fields() {
    let desk = desk().await;
    let (officer_id, _) = officer(&desk, "ana@x.org").await;
    let task = create(&desk, &[]).await;
    let me: Value = desk.app.get_as("/api/v1/auth/me", &desk.supervisor).await.json().await.unwrap();
    let targets = [
        (Method::PATCH, format!("/api/v1/officers/{officer_id}")),
        (Method::PATCH, format!("/api/v1/tasks/{}", task["id"].as_str().unwrap())),
        (Method::PUT, format!("/api/v1/users/{}", me["id"].as_str().unwrap())),
        (Method::POST, "/api/v1/tasks".to_owned()),
    ];
    for (method, path) in targets {
        let response = desk.app.send(method.clone(), &path, &desk.supervisor, Some(json!([null, null]))).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["details"][0]["field"], "body", "{method} {path}");
    }
    let officer: Value =
        desk.app.get_as(&format!("/api/v1/officers/{officer_id}"), &desk.supervisor).await.json().await.unwrap();
    assert_eq!(officer["badge_number"], "ana-x-org", "the officer is unchanged");
}

#[tokio::test]
async fn parameters_the_handlers_require_are_required_in_the_document() {
    let desk = desk().await;
    let document = document(&desk).await;
    for (path, names, complete) in [
        ("/api/v1/geo/map", &["center_lat", "center_lng", "radius_m"][..], "center_lat=40&center_lng=-3&radius_m=500"),
        ("/api/v1/officers/nearest", &["lat", "lng"][..], "lat=40&lng=-3"),
    ] {
        let status = desk.app.send(Method::GET, &format!("{path}?{complete}"), &desk.supervisor, None).await.status();
        assert_eq!(status, StatusCode::OK, "{path}?{complete}");
        for name in names {
            assert_eq!(parameter(&document, path, name)["required"], true, "{path} {name}");
            let without: Vec<&str> =
                complete.split('&').filter(|pair| !pair.starts_with(&format!("{name}="))).collect();
            let uri = format!("{path}?{}", without.join("&"));
            let response = desk.app.send(Method::GET, &uri, &desk.supervisor, None).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["details"][0]["field"], *name, "{uri}");
        }
    }
}

#[tokio::test]
async fn positive_distances_and_the_search_text_are_described_as_validated() {
    let desk = desk().await;
    let document = document(&desk).await;
    for (path, name) in [("/api/v1/tasks", "radius_m"), ("/api/v1/officers/nearest", "max_distance_m")] {
        assert_eq!(parameter(&document, path, name)["schema"]["exclusiveMinimum"], 0, "{path} {name}");
    }
    let tiny = desk.app.send(Method::GET, "/api/v1/tasks?near_lat=40&near_lng=-3&radius_m=0.5", &desk.operator, None);
    assert_eq!(tiny.await.status(), StatusCode::OK);
    // `q` is compared as given: control characters other than NUL are text, and the limit counts
    // what remains once trimmed.
    let q = parameter(&document, "/api/v1/tasks", "q");
    assert!(q["schema"]["pattern"].as_str().unwrap().contains("[^\\x00]{0,200}"), "{q}");
    assert!(q["schema"].get("maxLength").is_none(), "{q}");
    let padded = format!("%20%20{}%20", "a".repeat(200));
    for (query, expected) in [
        ("q=%C2%84".to_owned(), StatusCode::OK),
        (format!("q={padded}"), StatusCode::OK),
        (format!("q={}", "a".repeat(201)), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let status = desk.app.send(Method::GET, &format!("/api/v1/tasks?{query}"), &desk.operator, None).await.status();
        assert_eq!(status, expected, "{query}");
    }
}

#[tokio::test]
async fn the_idempotency_key_is_described_as_validated() {
    let desk = desk().await;
    let document = document(&desk).await;
    let key = document["paths"]["/api/v1/tasks"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == "Idempotency-Key")
        .unwrap();
    assert_eq!(key["schema"]["type"], "string", "{key}");
    for path in ["/api/v1/tasks", "/api/v1/tasks/emergency"] {
        let responses = &document["paths"][path]["post"]["responses"];
        assert!(responses["409"].is_object(), "{path}: the same key still running");
        assert!(responses["422"].is_object(), "{path}: a key reused with another body");
    }
    assert!(key["schema"]["pattern"].as_str().unwrap().contains("{0,253}"), "{key}");
    let body = json!({"title": "Keyed", "kind": "patrol", "scheduled_start": crate::helpers::hours_from_now(1)});
    for (key, expected) in [("k".repeat(255), StatusCode::CREATED), ("k".repeat(256), StatusCode::UNPROCESSABLE_ENTITY)]
    {
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/tasks", desk.app.address))
            .bearer_auth(&desk.operator)
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "a key of {} bytes", key.len());
    }
}

#[tokio::test]
async fn nullable_times_and_ids_keep_their_format_in_the_document() {
    let desk = desk().await;
    let document = document(&desk).await;
    let patch = &document["components"]["schemas"]["PatchTaskRequest"]["properties"];
    for (field, format) in [("scheduled_start", "date-time"), ("scheduled_end", "date-time"), ("delegate_id", "uuid")] {
        assert_eq!(patch[field], json!({"oneOf": [{"type": "string", "format": format}, {"type": "null"}]}), "{field}");
    }
    let task = create(&desk, &[]).await;
    let empty = json!({"scheduled_start": ""});
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    let status = desk.app.send(Method::PATCH, &path, &desk.operator, Some(empty)).await.status();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an empty string is no date-time");
}

/// The task list documents exactly the parameters it reads: a bad value of each is named in the
/// 422, and the document lists no other.
#[tokio::test]
async fn the_task_list_reads_exactly_the_parameters_it_documents() {
    let desk = desk().await;
    let document = document(&desk).await;
    let documented: Vec<&str> = document["paths"]["/api/v1/tasks"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    let bad = [
        ("status", "status=done"),
        ("priority", "priority=whenever"),
        ("kind", "kind=party"),
        ("officer_id", "officer_id=42"),
        ("delegate_id", "delegate_id=42"),
        ("created_from", "created_from=soon"),
        ("created_to", "created_to=later"),
        ("q", &format!("q={}", "a".repeat(201))),
        ("near_lat", "near_lat=north&near_lng=-3&radius_m=5"),
        ("near_lng", "near_lat=40&near_lng=west&radius_m=5"),
        ("radius_m", "near_lat=40&near_lng=-3&radius_m=wide"),
        ("sort", "sort=title"),
        ("limit", "limit=201"),
        ("cursor", "cursor=!!"),
    ];
    assert_eq!(documented, bad.iter().map(|(name, _)| *name).collect::<Vec<_>>());
    for (name, query) in bad {
        let response = desk.app.send(Method::GET, &format!("/api/v1/tasks?{query}"), &desk.operator, None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["details"][0]["field"], name, "{query}");
    }
    let repeated = "status=scheduled&status=paused&limit=5";
    let status = desk.app.send(Method::GET, &format!("/api/v1/tasks?{repeated}"), &desk.operator, None).await.status();
    assert_eq!(status, StatusCode::OK);
    for repeated in ["limit=5&limit=6", "sort=priority&sort=priority", "q=a&q=b"] {
        let status =
            desk.app.send(Method::GET, &format!("/api/v1/tasks?{repeated}"), &desk.operator, None).await.status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{repeated}");
    }
}

/// A filter compared as given (`unit`) refuses only NUL, as the document says of it.
#[tokio::test]
async fn plain_text_filters_refuse_only_nul() {
    let desk = desk().await;
    let document = document(&desk).await;
    let unit = parameter(&document, "/api/v1/officers", "unit");
    assert_eq!(unit["schema"], json!({"type": "string", "pattern": "^[^\\x00]*$"}));
    for (query, expected) in
        [("unit=%C2%84%F2%A9%A8%BE", StatusCode::OK), ("unit=a%00b", StatusCode::UNPROCESSABLE_ENTITY)]
    {
        let status =
            desk.app.send(Method::GET, &format!("/api/v1/officers?{query}"), &desk.operator, None).await.status();
        assert_eq!(status, expected, "{query}");
    }
}
