//! Tasks: creation, reading with ETags, edits with If-Match, the state machine through the API,
//! history, assignments, officer availability and the one-task-per-officer rule (SPEC §4).

use diesel::sql_types::Text;
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use futures_util::future::join_all;
use gad_domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, hours_from_now};

pub(crate) struct Desk {
    pub(crate) app: TestApp,
    pub(crate) operator: String,
    pub(crate) supervisor: String,
}

/// An app with an operator and a supervisor logged in.
pub(crate) async fn desk() -> Desk {
    desk_with(Options::default()).await
}

pub(crate) async fn desk_with(options: Options) -> Desk {
    let app = TestApp::spawn_with(options).await;
    app.create_user("op@x.org", Role::Operator).await;
    app.create_user("sup@x.org", Role::Supervisor).await;
    let operator = app.login("op@x.org").await.access_token;
    let supervisor = app.login("sup@x.org").await.access_token;
    Desk { app, operator, supervisor }
}

/// An officer profile; returns (officer id, officer's token).
pub(crate) async fn officer(desk: &Desk, email: &str) -> (String, String) {
    let user = desk.app.create_user(email, Role::Officer).await;
    let body = json!({"user_id": user.to_string(), "badge_number": email.replace(['@', '.'], "-"), "availability": "available"});
    let officer: Value =
        desk.app.send(Method::POST, "/api/v1/officers", &desk.supervisor, Some(body)).await.json().await.unwrap();
    (officer["id"].as_str().unwrap().to_owned(), desk.app.login(email).await.access_token)
}

fn task_body(officers: &[&str]) -> Value {
    json!({"title": "Night patrol", "kind": "patrol", "scheduled_start": hours_from_now(-1),
           "scheduled_end": hours_from_now(7), "location": {"lat": 40.41, "lng": -3.70}, "officer_ids": officers})
}

pub(crate) async fn create(desk: &Desk, officers: &[&str]) -> Value {
    let response = desk.app.send(Method::POST, "/api/v1/tasks", &desk.operator, Some(task_body(officers))).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub(crate) async fn transition(desk: &Desk, token: &str, task: &str, action: &str) -> reqwest::Response {
    desk.app
        .send(Method::POST, &format!("/api/v1/tasks/{task}/transitions"), token, Some(json!({"action": action})))
        .await
}

#[tokio::test]
async fn generated_codes_stay_unique_past_six_digits() {
    let desk = desk().await;
    let mut conn = desk.app.db().await;
    sql_query("SELECT setval('task_code_seq', 999998)").execute(&mut conn).await.unwrap();
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(create(&desk, &[]).await["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes, ["T-999999", "T-1000000", "T-1000001"]);
}

async fn availability(desk: &Desk, officer: &str) -> String {
    let officer: Value = desk
        .app
        .send(Method::GET, &format!("/api/v1/officers/{officer}"), &desk.operator, None)
        .await
        .json()
        .await
        .unwrap();
    officer["availability"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_read_and_edit_with_etags() {
    let desk = desk().await;
    let (ana, ana_token) = officer(&desk, "ana@x.org").await;
    let (_, eva_token) = officer(&desk, "eva@x.org").await;

    let response = desk.app.send(Method::POST, "/api/v1/tasks", &desk.operator, Some(task_body(&[&ana]))).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers().get("etag").unwrap(), "\"1\"");
    let location = response.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let task: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/tasks/{}", task["id"].as_str().unwrap()));
    assert!(task["code"].as_str().unwrap().starts_with("T-"));
    assert_eq!((task["status"].as_str(), task["priority"].as_str()), (Some("scheduled"), Some("medium")));
    assert_eq!(task["officer_ids"], json!([ana]));
    assert_eq!(task["location"], json!({"lat": 40.41, "lng": -3.70}));

    assert_eq!(desk.app.send(Method::GET, &location, &ana_token, None).await.status(), StatusCode::OK, "assigned");
    assert_eq!(desk.app.send(Method::GET, &location, &eva_token, None).await.status(), StatusCode::NOT_FOUND);
    let mine: Value = desk.app.send(Method::GET, "/api/v1/tasks", &eva_token, None).await.json().await.unwrap();
    assert_eq!(mine["items"], json!([]), "officers list only their own tasks");
    let created_by_officer = desk.app.send(Method::POST, "/api/v1/tasks", &ana_token, Some(task_body(&[]))).await;
    assert_eq!(created_by_officer.status(), StatusCode::FORBIDDEN);

    let client = reqwest::Client::new();
    let stale = client
        .patch(format!("{}{location}", desk.app.address))
        .bearer_auth(&desk.operator)
        .header("if-match", "\"7\"")
        .json(&json!({"priority": "high"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let fresh = client
        .patch(format!("{}{location}", desk.app.address))
        .bearer_auth(&desk.operator)
        .header("if-match", "\"1\"")
        .json(&json!({"priority": "high", "notes": "bring radios"}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    assert_eq!(fresh.headers().get("etag").unwrap(), "\"2\"");
    let edited: Value = fresh.json().await.unwrap();
    assert_eq!(
        (edited["priority"].as_str(), edited["notes"].as_str(), edited["title"].as_str()),
        (Some("high"), Some("bring radios"), Some("Night patrol"))
    );
    let status = desk.app.send(Method::PATCH, &location, &desk.operator, Some(json!({"status": "completed"}))).await;
    assert_eq!(status.status(), StatusCode::UNPROCESSABLE_ENTITY);

    for bad in [
        json!({"title": "ab", "kind": "patrol", "scheduled_start": hours_from_now(1)}),
        json!({"title": "Patrol", "kind": "chores", "scheduled_start": hours_from_now(1)}),
        json!({"title": "Patrol", "kind": "patrol", "scheduled_start": hours_from_now(1), "scheduled_end": hours_from_now(0)}),
        json!({"title": "Patrol", "kind": "patrol", "scheduled_start": "tomorrow"}),
        json!({"title": "Patrol", "kind": "patrol", "scheduled_start": hours_from_now(1), "officer_ids": [uuid::Uuid::now_v7()]}),
        // PostgreSQL cannot store NUL: refused as input, never a 500.
        json!({"title": "Night\u{0}patrol", "kind": "patrol", "scheduled_start": hours_from_now(1)}),
        json!({"title": "Patrol", "kind": "patrol", "scheduled_start": hours_from_now(1), "description": "a\u{0}b"}),
    ] {
        let response = desk.app.send(Method::POST, "/api/v1/tasks", &desk.operator, Some(bad.clone())).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    for query in ["/api/v1/tasks?q=a%00b", "/api/v1/officers?unit=%00", "/api/v1/users?q=%00"] {
        let response = desk.app.send(Method::GET, query, &desk.operator, None).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "validation_failed");
    }
    let reason = json!({"action": "cancel", "reason": "x\u{0}"});
    let transition = format!("{location}/transitions");
    let response = desk.app.send(Method::POST, &transition, &desk.operator, Some(reason)).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut coded = task_body(&[]);
    coded["code"] = json!("OP-1");
    assert_eq!(
        desk.app.send(Method::POST, "/api/v1/tasks", &desk.operator, Some(coded.clone())).await.status(),
        StatusCode::CREATED
    );
    coded["code"] = json!("op-1");
    assert_eq!(
        desk.app.send(Method::POST, "/api/v1/tasks", &desk.operator, Some(coded)).await.status(),
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn the_lifecycle_moves_officers_and_writes_one_history_row_per_transition() {
    #[derive(QueryableByName)]
    struct Event {
        #[diesel(sql_type = Text)]
        event_type: String,
    }
    let desk = desk().await;
    let (ana, ana_token) = officer(&desk, "ana@x.org").await;
    let task = create(&desk, &[&ana]).await;
    let id = task["id"].as_str().unwrap();

    let refused = transition(&desk, &desk.operator, id, "complete").await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_transition");
    let allowed: Vec<&str> =
        body["error"]["details"].as_array().unwrap().iter().map(|d| d["message"].as_str().unwrap()).collect();
    assert_eq!(allowed, ["allowed: start", "allowed: cancel"]);

    let started: Value = transition(&desk, &ana_token, id, "start").await.json().await.unwrap();
    assert_eq!(started["status"], "in_progress");
    assert!(started["actual_start"].is_string());
    assert_eq!(availability(&desk, &ana).await, "on_task");
    let paused: Value = transition(&desk, &ana_token, id, "pause").await.json().await.unwrap();
    assert!(paused["paused_at"].is_string());
    let resumed: Value = transition(&desk, &ana_token, id, "resume").await.json().await.unwrap();
    assert!(resumed["paused_at"].is_null() && resumed["total_paused_seconds"].as_i64().unwrap() >= 0);
    assert_eq!(
        transition(&desk, &ana_token, id, "cancel").await.status(),
        StatusCode::FORBIDDEN,
        "officers do not cancel"
    );
    let completed: Value = transition(&desk, &ana_token, id, "complete").await.json().await.unwrap();
    assert_eq!(completed["status"], "completed");
    assert!(completed["actual_end"].is_string());
    assert_eq!(availability(&desk, &ana).await, "available");

    let history: Value = desk
        .app
        .send(Method::GET, &format!("/api/v1/tasks/{id}/history"), &desk.operator, None)
        .await
        .json()
        .await
        .unwrap();
    let steps: Vec<(&str, &str, &str)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (row["from_status"].as_str().unwrap(), row["action"].as_str().unwrap(), row["to_status"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("scheduled", "start", "in_progress"),
            ("in_progress", "pause", "paused"),
            ("paused", "resume", "in_progress"),
            ("in_progress", "complete", "completed")
        ]
    );
    let events: Vec<Event> = sql_query("SELECT event_type FROM event_log WHERE task_id IS NOT NULL ORDER BY id")
        .load(&mut desk.app.db().await)
        .await
        .unwrap();
    let events: Vec<&str> = events.iter().map(|event| event.event_type.as_str()).collect();
    assert_eq!(
        events,
        ["task.created", "task.status_changed", "task.status_changed", "task.status_changed", "task.status_changed"]
    );

    #[derive(QueryableByName)]
    struct Availability {
        #[diesel(sql_type = Text)]
        availability: String,
    }
    let moves: Vec<Availability> = sql_query(
        "SELECT payload->>'availability' AS availability FROM event_log \
         WHERE event_type = 'officer.availability_changed' AND officer_id = $1::uuid ORDER BY id",
    )
    .bind::<Text, _>(&ana)
    .load(&mut desk.app.db().await)
    .await
    .unwrap();
    let moves: Vec<&str> = moves.iter().map(|row| row.availability.as_str()).collect();
    assert_eq!(moves, ["on_task", "available"], "followers of officers see the moves a task makes");

    let path = format!("/api/v1/tasks/{id}");
    assert_eq!(desk.app.send(Method::DELETE, &path, &desk.operator, None).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(desk.app.send(Method::DELETE, &path, &desk.supervisor, None).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(desk.app.send(Method::GET, &path, &desk.supervisor, None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_officer_runs_one_task_at_a_time_even_under_twenty_racing_starts() {
    let desk = desk().await;
    let (ana, _) = officer(&desk, "ana@x.org").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(create(&desk, &[&ana]).await["id"].as_str().unwrap().to_owned());
    }
    let starts = tasks.iter().map(|task| transition(&desk, &desk.operator, task, "start"));
    let statuses: Vec<StatusCode> = join_all(starts).await.iter().map(reqwest::Response::status).collect();
    assert_eq!(statuses.iter().filter(|status| **status == StatusCode::OK).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|status| *status == StatusCode::OK || *status == StatusCode::CONFLICT));

    let running = transition(&desk, &desk.operator, &tasks[0], "start").await;
    if running.status() == StatusCode::CONFLICT {
        let body: Value = running.json().await.unwrap();
        assert!(["officer_busy", "invalid_transition"].contains(&body["error"]["code"].as_str().unwrap()));
    }
    let history: Value = desk
        .app
        .send(Method::GET, "/api/v1/tasks?status=in_progress", &desk.operator, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn assignments_add_and_remove_officers() {
    let desk = desk().await;
    let (ana, _) = officer(&desk, "ana@x.org").await;
    let (eva, _) = officer(&desk, "eva@x.org").await;
    let task = create(&desk, &[&ana]).await;
    let id = task["id"].as_str().unwrap();
    let assignments = format!("/api/v1/tasks/{id}/assignments");

    let added: Value = desk
        .app
        .send(Method::POST, &assignments, &desk.operator, Some(json!({"officer_ids": [eva]})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(added["officer_ids"].as_array().unwrap().len(), 2);
    let unknown = desk
        .app
        .send(Method::POST, &assignments, &desk.operator, Some(json!({"officer_ids": [uuid::Uuid::now_v7()]})))
        .await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let removed: Value = desk
        .app
        .send(Method::DELETE, &format!("{assignments}/{ana}"), &desk.operator, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(removed["officer_ids"], json!([eva]));
    #[derive(QueryableByName)]
    struct Audience {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        members: i64,
    }
    let audience: Audience = sql_query(
        "SELECT cardinality(audience)::bigint AS members FROM event_log WHERE event_type = 'task.unassigned' \
           AND audience @> (SELECT array_agg(user_id) FROM officers)",
    )
    .get_result(&mut desk.app.db().await)
    .await
    .unwrap();
    assert_eq!(audience.members, 2, "the officer removed hears of it, and so does the one who stays");
    let again = desk.app.send(Method::DELETE, &format!("{assignments}/{ana}"), &desk.operator, None).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let filtered: Value = desk
        .app
        .send(
            Method::GET,
            &format!("/api/v1/tasks?officer_id={eva}&status=scheduled&status=paused"),
            &desk.operator,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let bad = desk.app.send(Method::GET, "/api/v1/tasks?status=done", &desk.operator, None).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    transition(&desk, &desk.operator, id, "start").await;
    let audited_before = desk.app.audit_rows("task.delete").await;
    let running = desk.app.send(Method::DELETE, &format!("/api/v1/tasks/{id}"), &desk.supervisor, None).await;
    assert_eq!(running.status(), StatusCode::NO_CONTENT, "a running task is cancelled, then deleted");
    let gone = desk.app.send(Method::GET, &format!("/api/v1/tasks/{id}"), &desk.supervisor, None).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(availability(&desk, &eva).await, "available", "its officers are free again");
    assert_eq!(desk.app.audit_rows("task.delete").await, audited_before + 1, "one audit row");
}

/// Places an officer at a point (consenting to tracking first).
async fn place(desk: &Desk, email: &str, lat: f64, lng: f64) -> String {
    let user = desk.app.create_user(email, Role::Officer).await;
    let body = json!({"user_id": user.to_string(), "badge_number": email.replace(['@', '.'], "-"), "availability": "available"});
    let officer: Value =
        desk.app.send(Method::POST, "/api/v1/officers", &desk.supervisor, Some(body)).await.json().await.unwrap();
    let id = officer["id"].as_str().unwrap().to_owned();
    let token = desk.app.login(email).await.access_token;
    let grant = json!({"consent_type": "location_tracking", "granted": true, "policy_version": "1"});
    desk.app.send(Method::POST, &format!("/api/v1/users/{user}/consents"), &token, Some(grant)).await;
    let moved = desk
        .app
        .send(Method::PUT, &format!("/api/v1/officers/{id}/location"), &token, Some(json!({"lat": lat, "lng": lng})))
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    id
}

#[tokio::test]
async fn an_emergency_takes_the_nearest_available_officer() {
    let desk = desk().await;
    let far = place(&desk, "far@x.org", 40.50, -3.60).await;
    let near = place(&desk, "near@x.org", 40.4170, -3.7040).await;
    let response = desk
        .app
        .send(Method::POST, "/api/v1/tasks/emergency", &desk.operator, Some(json!({"lat": 40.4168, "lng": -3.7038})))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["task"]["kind"].as_str(), body["task"]["priority"].as_str()),
        (Some("emergency"), Some("critical"))
    );
    assert_eq!(body["officer"]["id"], near.as_str());
    assert_eq!(body["officer"]["availability"], "on_task");
    assert!(body["distance_m"].as_f64().unwrap() < 50.0);
    assert_eq!(body["task"]["officer_ids"], json!([near]));
    assert_eq!(availability(&desk, &far).await, "available");

    for bad in [json!({"lat": 95, "lng": 0}), json!({"lat": 0, "lng": 0, "title": "x"})] {
        let status = desk.app.send(Method::POST, "/api/v1/tasks/emergency", &desk.operator, Some(bad)).await.status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (_, officer_token) = officer(&desk, "late@x.org").await;
    let refused =
        desk.app.send(Method::POST, "/api/v1/tasks/emergency", &officer_token, Some(json!({"lat": 0, "lng": 0}))).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn concurrent_emergencies_never_share_an_officer() {
    #[derive(QueryableByName)]
    struct Alerts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let desk = desk().await;
    let mut officers = Vec::new();
    for index in 0..4 {
        officers.push(place(&desk, &format!("o{index}@x.org"), 40.41 + f64::from(index) * 0.001, -3.70).await);
    }
    let calls = (0..10).map(|_| {
        desk.app.send(
            Method::POST,
            "/api/v1/tasks/emergency",
            &desk.operator,
            Some(json!({"lat": 40.41, "lng": -3.70})),
        )
    });
    let responses = join_all(calls).await;
    let mut assigned = Vec::new();
    let mut unassigned = 0;
    for response in responses {
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        match body["officer"]["id"].as_str() {
            Some(officer) => assigned.push(officer.to_owned()),
            None => unassigned += 1,
        }
    }
    assigned.sort();
    let mut unique = assigned.clone();
    unique.dedup();
    assert_eq!((assigned.len(), unique.len(), unassigned), (4, 4, 6), "no officer twice: {assigned:?}");
    let alerts: Alerts = sql_query("SELECT count(*) AS count FROM event_log WHERE event_type = 'alert.emergency'")
        .get_result(&mut desk.app.db().await)
        .await
        .unwrap();
    assert_eq!(alerts.count, 10, "every emergency raises its alert, assigned or not");
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_other_bodies_and_expire_nothing_else() {
    let desk = desk().await;
    let client = reqwest::Client::new();
    let post = |key: &'static str, body: Value| {
        client
            .post(format!("{}/api/v1/tasks", desk.app.address))
            .bearer_auth(&desk.operator)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    // One body, built once: a replay must carry exactly the same bytes.
    let body = task_body(&[]);
    let first = post("create-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let location = first.headers().get("location").unwrap().clone();
    let first: Value = first.json().await.unwrap();

    let replay = post("create-1", body.clone()).await.unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.headers().get("location").unwrap(), &location);
    assert_eq!(replay.json::<Value>().await.unwrap(), first, "the same body again");

    let mut other = body.clone();
    other["title"] = json!("Another patrol");
    let mismatch = post("create-1", other).await.unwrap();
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let failing =
        post("create-2", json!({"title": "x", "kind": "patrol", "scheduled_start": hours_from_now(1)})).await.unwrap();
    assert_eq!(failing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        post("create-2", body.clone()).await.unwrap().status(),
        StatusCode::CREATED,
        "failures are not remembered"
    );

    let page: Value = desk.app.send(Method::GET, "/api/v1/tasks", &desk.operator, None).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "the replay created nothing");

    let racing = (0..5).map(|_| post("create-3", body.clone()));
    let statuses: Vec<StatusCode> =
        join_all(racing).await.into_iter().map(|response| response.unwrap().status()).collect();
    assert!(statuses.iter().all(|status| [StatusCode::CREATED, StatusCode::CONFLICT].contains(status)), "{statuses:?}");
    let page: Value = desk.app.send(Method::GET, "/api/v1/tasks", &desk.operator, None).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "concurrent duplicates ran once");
}

#[tokio::test]
async fn the_map_shows_unfinished_tasks_and_officers_within_the_radius() {
    let desk = desk().await;
    let near = place(&desk, "near@x.org", 40.4170, -3.7040).await;
    place(&desk, "far@x.org", 41.3874, 2.1686).await;
    let open = create(&desk, &[]).await;
    let done = create(&desk, &[]).await;
    let done_id = done["id"].as_str().unwrap();
    assert_eq!(transition(&desk, &desk.operator, done_id, "cancel").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(transition(&desk, &desk.supervisor, done_id, "cancel").await.status(), StatusCode::OK);
    assert_eq!(transition(&desk, &desk.supervisor, done_id, "cancel").await.status(), StatusCode::CONFLICT);

    let map: Value = desk
        .app
        .send(Method::GET, "/api/v1/geo/map?center_lat=40.4168&center_lng=-3.7038&radius_m=5000", &desk.operator, None)
        .await
        .json()
        .await
        .unwrap();
    let tasks: Vec<&str> = map["tasks"].as_array().unwrap().iter().map(|task| task["id"].as_str().unwrap()).collect();
    let officers: Vec<&str> =
        map["officers"].as_array().unwrap().iter().map(|officer| officer["id"].as_str().unwrap()).collect();
    assert_eq!(tasks, [open["id"].as_str().unwrap()], "cancelled tasks are off the map");
    assert_eq!(officers, [near.as_str()]);
    assert!(map["officers"][0]["distance_m"].as_f64().unwrap() < 50.0);
    for bad in [
        "center_lat=40&center_lng=-3&radius_m=50",
        "center_lat=95&center_lng=-3&radius_m=500",
        "center_lng=-3&radius_m=500",
    ] {
        let status = desk.app.send(Method::GET, &format!("/api/v1/geo/map?{bad}"), &desk.operator, None).await.status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

/// Inserts `count` tasks straight into the database: varied priorities, start times and places.
async fn bulk_tasks(desk: &Desk, creator: gad_domain::users::UserId, count: i64, prefix: &str) {
    sql_query(format!(
        "INSERT INTO tasks (id, code, title, kind, priority, scheduled_start, location, delegate_id, created_by) \
         SELECT gen_random_uuid(), '{prefix}-' || g, 'Bulk task ' || g, 'patrol', \
                (ARRAY['low','medium','high','urgent','critical'])[1 + g % 5]::task_priority, \
                now() + (g || ' minutes')::interval, \
                ST_SetSRID(ST_MakePoint(-3.70 + (g % 100) * 0.001, 40.41), 4326)::geography, $1, $1 \
         FROM generate_series(1, {count}) g"
    ))
    .bind::<diesel::sql_types::Uuid, _>(creator.as_uuid())
    .execute(&mut desk.app.db().await)
    .await
    .unwrap();
}

#[tokio::test]
async fn pages_stay_whole_while_tasks_are_added_and_every_filter_narrows() {
    let desk = desk().await;
    let creator = desk.app.create_user("bulk@x.org", Role::Operator).await;
    bulk_tasks(&desk, creator, 1000, "B").await;

    for sort in ["-created_at", "priority", "scheduled_start"] {
        let mut seen = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        let mut previous: Option<Value> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/api/v1/tasks?sort={sort}&limit=100&cursor={cursor}"),
                None => format!("/api/v1/tasks?sort={sort}&limit=100"),
            };
            let page: Value = desk.app.send(Method::GET, &path, &desk.operator, None).await.json().await.unwrap();
            if pages == 2 {
                // Tasks created while a client pages must not shift the pages it has not read.
                bulk_tasks(&desk, creator, 50, &format!("N{}", sort.len())).await;
            }
            for task in page["items"].as_array().unwrap() {
                assert!(seen.insert(task["id"].as_str().unwrap().to_owned()), "{sort}: a task twice");
                if let (Some(previous), "priority") = (&previous, sort) {
                    let rank = |task: &Value| {
                        ["low", "medium", "high", "urgent", "critical"]
                            .iter()
                            .position(|p| *p == task["priority"])
                            .unwrap()
                    };
                    assert!(rank(previous) >= rank(task), "{sort}: out of order");
                }
                if let (Some(previous), "scheduled_start") = (&previous, sort) {
                    assert!(
                        previous["scheduled_start"].as_str() <= task["scheduled_start"].as_str(),
                        "{sort}: out of order"
                    );
                }
                previous = Some(task.clone());
            }
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let bulk = seen.len();
        assert!(bulk >= 1000, "{sort}: every original task seen ({bulk})");
    }

    let searched: Value =
        desk.app.send(Method::GET, "/api/v1/tasks?q=b-99&limit=200", &desk.operator, None).await.json().await.unwrap();
    let codes: Vec<&str> =
        searched["items"].as_array().unwrap().iter().map(|task| task["code"].as_str().unwrap()).collect();
    assert!(!codes.is_empty() && codes.iter().all(|code| code.to_ascii_lowercase().contains("b-99")), "{codes:?}");
    let near: Value = desk
        .app
        .send(Method::GET, "/api/v1/tasks?near_lat=40.41&near_lng=-3.70&radius_m=50&limit=200", &desk.operator, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(!near["items"].as_array().unwrap().is_empty());
    assert!(
        near["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|task| (task["location"]["lng"].as_f64().unwrap() + 3.70).abs() < 0.001)
    );
    let future: Value = desk
        .app
        .send(Method::GET, &format!("/api/v1/tasks?created_from={}", hours_from_now(24)), &desk.operator, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(future["items"], json!([]));
    for bad in ["sort=title", "near_lat=40", "created_to=soon", "near_lat=40&near_lng=-3&radius_m=0"] {
        let status = desk.app.send(Method::GET, &format!("/api/v1/tasks?{bad}"), &desk.operator, None).await.status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}
