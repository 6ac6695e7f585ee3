//! Statistics (SPEC §4): the figures, who may read them, and the cache — a hit until a task
//! changes on any instance, shared through Redis, per instance without it.

use gad_domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, Redis, hours_from_now};
use crate::tasks::{Desk, create, desk, desk_with, officer, transition};

const OVERVIEW: &str = "/api/v1/stats/overview";

/// The body and the `X-Cache` header of a successful statistics request.
async fn figures(app: &crate::helpers::TestApp, path: &str, token: &str) -> (Value, String) {
    let response = app.send(Method::GET, path, token, None).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
    (response.json().await.unwrap(), cache)
}

/// One completed task and one scheduled task, both assigned to Ana; returns Ana's user id.
async fn some_work(desk: &Desk) -> (String, String) {
    let (ana, ana_token) = officer(desk, "ana@x.org").await;
    let done = create(desk, &[&ana]).await;
    let done = done["id"].as_str().unwrap();
    assert_eq!(transition(desk, &ana_token, done, "start").await.status(), StatusCode::OK);
    assert_eq!(transition(desk, &ana_token, done, "complete").await.status(), StatusCode::OK);
    create(desk, &[&ana]).await;
    let me: Value = desk.app.get_as("/api/v1/auth/me", &ana_token).await.json().await.unwrap();
    (me["id"].as_str().unwrap().to_owned(), ana_token)
}

#[tokio::test]
async fn the_overview_counts_and_is_cached_until_a_task_changes_on_any_instance() {
    let desk = desk().await;
    some_work(&desk).await;
    let peer = desk.app.spawn_peer().await;

    let (first, cache) = figures(&desk.app, OVERVIEW, &desk.supervisor).await;
    assert_eq!(cache, "miss");
    let tasks = &first["tasks"];
    assert_eq!(tasks["total"], 2);
    assert_eq!(tasks["completed"], 1);
    assert_eq!(
        tasks["by_status"],
        json!({"scheduled": 1, "in_progress": 0, "paused": 0, "completed": 1, "cancelled": 0})
    );
    assert_eq!(tasks["by_priority"]["medium"], 2);
    assert_eq!(tasks["by_priority"]["critical"], 0);
    assert_eq!(tasks["by_kind"]["patrol"], 2);
    assert_eq!(tasks["by_kind"].as_object().unwrap().len(), 7, "every kind is listed");
    assert!(tasks["mean_completion_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(tasks["on_time_rate"], 1.0, "completed before its scheduled end");
    assert_eq!(
        first["officers_by_availability"],
        json!({"available": 1, "on_task": 0, "off_duty": 0, "unavailable": 0})
    );

    let (again, cache) = figures(&desk.app, OVERVIEW, &desk.supervisor).await;
    assert_eq!((cache.as_str(), &again), ("hit", &first));
    let (from_peer, cache) = figures(&peer, OVERVIEW, &desk.supervisor).await;
    assert_eq!((cache.as_str(), &from_peer), ("hit", &first), "the peer shares the cache");

    // A task written through the peer invalidates the first instance's answer.
    let response = peer
        .send(
            Method::POST,
            "/api/v1/tasks",
            &desk.operator,
            Some(json!({"title": "Court escort", "kind": "administrative", "scheduled_start": hours_from_now(2)})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (after, cache) = figures(&desk.app, OVERVIEW, &desk.supervisor).await;
    assert_eq!(cache, "miss");
    assert_eq!(after["tasks"]["total"], 3);
    assert_eq!(after["tasks"]["by_kind"]["administrative"], 1);
    // The change's event was numbered by that read at the latest: its figures are cached.
    assert_eq!(figures(&peer, OVERVIEW, &desk.supervisor).await, (after, "hit".to_owned()));

    // A window is part of the key; an empty window counts nothing.
    let tomorrow = hours_from_now(24);
    let (future, cache) = figures(&desk.app, &format!("{OVERVIEW}?from={tomorrow}"), &desk.supervisor).await;
    assert_eq!((future["tasks"]["total"].as_i64(), cache.as_str()), (Some(0), "miss"));
    assert_eq!(future["tasks"]["mean_completion_seconds"], Value::Null);
    assert_eq!(future["from"], tomorrow);
}

#[tokio::test]
async fn without_redis_each_instance_caches_for_itself() {
    let desk = desk_with(Options { redis: Redis::Absent, ..Options::default() }).await;
    let (_, cache) = figures(&desk.app, OVERVIEW, &desk.supervisor).await;
    assert_eq!(cache, "miss");
    assert_eq!(figures(&desk.app, OVERVIEW, &desk.supervisor).await.1, "hit");
    create(&desk, &[]).await;
    let (after, cache) = figures(&desk.app, OVERVIEW, &desk.supervisor).await;
    assert_eq!((after["tasks"]["total"].as_i64(), cache.as_str()), (Some(1), "miss"));
}

#[tokio::test]
async fn a_users_figures_are_for_themselves_and_supervisors() {
    let desk = desk().await;
    let (ana, ana_token) = some_work(&desk).await;
    let path = format!("/api/v1/stats/users/{ana}");

    let (own, cache) = figures(&desk.app, &path, &ana_token).await;
    assert_eq!(cache, "miss");
    assert_eq!(own["user_id"], ana.as_str());
    assert_eq!(own["days"], 30);
    assert_eq!(own["assigned"]["total"], 2);
    assert_eq!(own["assigned"]["completed"], 1);
    assert_eq!((own["created"].as_i64(), own["delegated"].as_i64()), (Some(0), Some(0)));
    assert_eq!(figures(&desk.app, &path, &desk.supervisor).await, (own, "hit".to_owned()));

    let (week, _) = figures(&desk.app, &format!("{path}?days=7"), &desk.supervisor).await;
    assert_eq!(week["days"], 7);
    let me: Value = desk.app.get_as("/api/v1/auth/me", &desk.operator).await.json().await.unwrap();
    let (operator, _) =
        figures(&desk.app, &format!("/api/v1/stats/users/{}", me["id"].as_str().unwrap()), &desk.operator).await;
    assert_eq!((operator["created"].as_i64(), operator["delegated"].as_i64()), (Some(2), Some(2)));
    assert_eq!(operator["assigned"]["total"], 0, "no officer profile, nothing assigned");

    // Others are refused, unknown users are 404, bad windows are 422.
    assert_eq!(desk.app.send(Method::GET, &path, &desk.operator, None).await.status(), StatusCode::FORBIDDEN);
    let stranger = format!("/api/v1/stats/users/{}", uuid::Uuid::now_v7());
    assert_eq!(desk.app.send(Method::GET, &stranger, &desk.supervisor, None).await.status(), StatusCode::NOT_FOUND);
    for days in ["0", "366", "x", "-1"] {
        let response = desk.app.send(Method::GET, &format!("{path}?days={days}"), &ana_token, None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "days={days}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["details"][0]["field"], "days");
    }
}

#[tokio::test]
async fn the_overview_is_for_supervisors_and_refuses_bad_windows() {
    let desk = desk().await;
    desk.app.create_user("admin@x.org", Role::Admin).await;
    let admin = desk.app.login("admin@x.org").await.access_token;
    let (_, officer_token) = officer(&desk, "bo@x.org").await;
    assert_eq!(figures(&desk.app, OVERVIEW, &admin).await.1, "miss");
    for token in [&desk.operator, &officer_token] {
        assert_eq!(desk.app.send(Method::GET, OVERVIEW, token, None).await.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(desk.app.get(OVERVIEW).await.status(), StatusCode::UNAUTHORIZED);
    let (now, tomorrow) = (hours_from_now(0), hours_from_now(24));
    for (query, field) in [
        ("from=yesterday".to_owned(), "from"),
        (format!("to={}-13-01T00:00:00Z", &now[..4]), "to"),
        (format!("from={tomorrow}&to={now}"), "to"),
        (format!("from={now}&to={now}"), "to"),
    ] {
        let response = desk.app.send(Method::GET, &format!("{OVERVIEW}?{query}"), &desk.supervisor, None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["details"][0]["field"], field, "{query}");
    }
}
