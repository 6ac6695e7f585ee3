//! Real time (SPEC §5): the handshake, the protocol, topic authorization, delivery through the
//! relay across instances, ordering, replay, slow consumers and revocation.

use std::time::{Duration, Instant};

use diesel::sql_query;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::RunQueryDsl;
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use gad_domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{Options, TestApp, hours_from_now};

/// Generous bound for anything that should happen "at once".
const SOON: Duration = Duration::from_secs(5);

struct Client {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

enum Auth<'a> {
    Bearer(&'a str),
    Ticket(&'a str),
}

/// Connects; the HTTP status of a refused handshake otherwise.
async fn try_connect(app: &TestApp, auth: Option<Auth<'_>>, origin: Option<&str>) -> Result<Client, u16> {
    let url = match &auth {
        Some(Auth::Ticket(ticket)) => format!("{}?ticket={ticket}", app.ws_url()),
        _ => app.ws_url(),
    };
    let mut request = url.into_client_request().unwrap();
    if let Some(Auth::Bearer(token)) = auth {
        request.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    }
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, response)) => {
            assert_eq!(response.status(), 101);
            Ok(Client { stream })
        }
        Err(WsError::Http(response)) => {
            let body = response.body().as_deref().map(|body| serde_json::from_slice::<Value>(body).unwrap());
            if let Some(body) = body {
                assert!(body["error"]["code"].is_string(), "error envelope: {body}");
            }
            Err(response.status().as_u16())
        }
        Err(other) => panic!("unexpected handshake failure: {other}"),
    }
}

async fn connect(app: &TestApp, token: &str) -> Client {
    let mut client =
        try_connect(app, Some(Auth::Bearer(token)), None).await.unwrap_or_else(|status| panic!("{status}"));
    let ack = client.next().await;
    assert_eq!(ack["type"], "connection_ack");
    client
}

impl Client {
    async fn send(&mut self, message: Value) {
        self.stream.send(Message::text(message.to_string())).await.unwrap();
    }

    /// Sends `resume since`, then collects the replayed events up to `resumed`; returns them and
    /// the count `resumed` reports.
    async fn resume(&mut self, since: i64) -> (Vec<Value>, Value) {
        self.send(json!({"type": "resume", "since": since})).await;
        let mut replayed = Vec::new();
        loop {
            let message = self.next().await;
            if message["type"] == "resumed" {
                return (replayed, message["data"]["replayed"].clone());
            }
            replayed.push(message);
        }
    }

    /// The next JSON message, skipping control frames; panics on close or after `SOON`.
    async fn next(&mut self) -> Value {
        self.next_within(SOON).await.expect("a message in time")
    }

    async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Subscribes and returns the `subscribed` message (errors for refused topics come first).
    async fn subscribe(&mut self, topics: &[&str]) -> Value {
        self.send(json!({"type": "subscribe", "topics": topics})).await;
        self.next().await
    }

    /// The close code the server ends with, reading (and discarding) anything before it.
    async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await.ok()? {
                Some(Ok(Message::Close(frame))) => return frame.map(|frame| u16::from(frame.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }
}

struct Desk {
    app: TestApp,
    operator: String,
    supervisor: String,
}

async fn desk_with(app: TestApp) -> Desk {
    app.create_user("op@x.org", Role::Operator).await;
    app.create_user("sup@x.org", Role::Supervisor).await;
    let operator = app.login("op@x.org").await.access_token;
    let supervisor = app.login("sup@x.org").await.access_token;
    Desk { app, operator, supervisor }
}

async fn desk() -> Desk {
    desk_with(TestApp::spawn().await).await
}

/// An officer profile; returns (officer id, officer's token).
async fn officer(desk: &Desk, email: &str) -> (String, String) {
    let user = desk.app.create_user(email, Role::Officer).await;
    let body = json!({"user_id": user.to_string(), "badge_number": email.replace(['@', '.'], "-"), "availability": "available"});
    let officer: Value =
        desk.app.send(Method::POST, "/api/v1/officers", &desk.supervisor, Some(body)).await.json().await.unwrap();
    (officer["id"].as_str().unwrap().to_owned(), desk.app.login(email).await.access_token)
}

async fn create_task(app: &TestApp, token: &str, officers: &[&str]) -> Value {
    let body = json!({"title": "Night patrol", "kind": "patrol", "scheduled_start": hours_from_now(1),
                      "officer_ids": officers});
    let response = app.send(Method::POST, "/api/v1/tasks", token, Some(body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn ticket(app: &TestApp, token: &str) -> String {
    let response = app.send(Method::POST, "/api/v1/ws/tickets", token, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let expires_at = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = expires_at - time::OffsetDateTime::now_utc();
    // 30 s, or less when the token expires sooner.
    assert!(lifetime <= time::Duration::seconds(30) && lifetime > time::Duration::ZERO, "{lifetime}");
    body["ticket"].as_str().unwrap().to_owned()
}

/// Appends `count` events straight to the log from `writers` concurrent connections, each with
/// a payload of about `padding` bytes, numbering them after each commit.
async fn append_events(app: &TestApp, writers: usize, count: usize, padding: usize) {
    let per_writer = count / writers;
    join_all((0..writers).map(|_| async {
        let mut conn = app.db().await;
        for _ in 0..per_writer {
            sql_query(
                "INSERT INTO event_log (id, event_type, payload) \
                 VALUES (gen_random_uuid(), 'task.updated', jsonb_build_object('padding', repeat('x', $1)))",
            )
            .bind::<Integer, _>(i32::try_from(padding).unwrap())
            .execute(&mut conn)
            .await
            .unwrap();
            // As the application's writers do right after their commit.
            sql_query("SELECT gad_event_log_number()").execute(&mut conn).await.unwrap();
        }
    }))
    .await;
}

#[tokio::test]
async fn the_handshake_refuses_missing_bad_and_url_tokens_without_upgrading() {
    let desk = desk().await;
    assert_eq!(try_connect(&desk.app, None, None).await.err(), Some(401));
    assert_eq!(try_connect(&desk.app, Some(Auth::Bearer("not-a-token")), None).await.err(), Some(401));
    assert_eq!(try_connect(&desk.app, Some(Auth::Ticket("made-up")), None).await.err(), Some(401));
    // An access token in the URL is not a credential.
    let url = format!("{}?access_token={}&token={}", desk.app.ws_url(), desk.operator, desk.operator);
    match tokio_tungstenite::connect_async(url).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|(_, response)| response.status())),
    }
    // A plain GET (no upgrade) with a valid token is a bad request, not a socket.
    let response = desk.app.get_as("/ws/connect", &desk.operator).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    // Browsers from origins outside the allow-list are refused.
    assert_eq!(
        try_connect(&desk.app, Some(Auth::Bearer(&desk.operator)), Some("https://evil.example")).await.err(),
        Some(403)
    );
    // A client whose Origin is the host it connects to (as many libraries send) is not cross-site.
    let own = desk.app.address.clone();
    let mut client = try_connect(&desk.app, Some(Auth::Bearer(&desk.operator)), Some(&own))
        .await
        .unwrap_or_else(|status| panic!("same origin: {status}"));
    assert_eq!(client.next().await["type"], "connection_ack");
}

#[tokio::test]
async fn tickets_open_one_socket_once_and_expire() {
    let desk = desk().await;
    let first = ticket(&desk.app, &desk.operator).await;
    let mut client = try_connect(&desk.app, Some(Auth::Ticket(&first)), None)
        .await
        .unwrap_or_else(|status| panic!("the ticket works: {status}"));
    let ack = client.next().await;
    assert_eq!(ack["type"], "connection_ack");
    assert_eq!(ack["data"]["role"], "operator");
    assert_eq!(try_connect(&desk.app, Some(Auth::Ticket(&first)), None).await.err(), Some(401), "single use");

    let second = ticket(&desk.app, &desk.operator).await;
    let mut conn = desk.app.db().await;
    sql_query("UPDATE ws_tickets SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(try_connect(&desk.app, Some(Auth::Ticket(&second)), None).await.err(), Some(401), "expired");
    let stored: Vec<(Vec<u8>,)> = {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Bytea)]
            ticket_hash: Vec<u8>,
        }
        let rows: Vec<Row> = sql_query("SELECT ticket_hash FROM ws_tickets").load(&mut conn).await.unwrap();
        rows.into_iter().map(|row| (row.ticket_hash,)).collect()
    };
    assert!(stored.iter().all(|(hash,)| hash.len() == 32 && hash != first.as_bytes()), "stored hashed");
    let response = desk.app.post_json("/api/v1/ws/tickets", &json!({}), None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_message_of_the_protocol_is_answered() {
    let desk = desk().await;
    let mut client = try_connect(&desk.app, Some(Auth::Bearer(&desk.operator)), None)
        .await
        .unwrap_or_else(|status| panic!("refused: {status}"));
    let ack = client.next().await;
    assert_eq!(ack["type"], "connection_ack");
    for field in ["connection_id", "user_id", "role", "heartbeat_interval_s", "server_time"] {
        assert!(!ack["data"][field].is_null(), "connection_ack lacks {field}: {ack}");
    }
    assert_eq!(ack["data"]["heartbeat_interval_s"], 25);
    assert!(ack["id"].is_string() && ack["ts"].is_string());

    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await["type"], "pong");

    let subscribed = client.subscribe(&["tasks", "alerts"]).await;
    assert_eq!(subscribed["type"], "subscribed");
    assert_eq!(subscribed["topics"], json!(["tasks", "alerts"]));
    assert_eq!(subscribed["data"]["topics"], json!(["tasks", "alerts"]));

    client.stream.send(Message::text("{not json")).await.unwrap();
    let error = client.next().await;
    assert_eq!((error["type"].as_str(), error["data"]["code"].as_str()), (Some("error"), Some("bad_json")));
    client.send(json!({"type": "dance"})).await;
    assert_eq!(client.next().await["data"]["code"], "unknown_type");
    client.stream.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(client.next().await["data"]["code"], "unsupported_frame");
    client.send(json!({"type": "subscribe", "topics": ["weather"]})).await;
    let error = client.next().await;
    assert_eq!(
        (error["data"]["code"].as_str(), error["data"]["topic"].as_str()),
        (Some("forbidden_topic"), Some("weather"))
    );
    client.send(json!({"type": "subscribe", "topics": vec!["tasks"; 101]})).await;
    assert_eq!(client.next().await["data"]["code"], "too_many_topics");

    // Still connected, and events flow with seq and topic.
    let task = create_task(&desk.app, &desk.operator, &[]).await;
    let event = client.next().await;
    assert_eq!(event["type"], "task.created");
    assert_eq!(event["topic"], "tasks");
    assert!(event["seq"].as_i64().unwrap() > 0);
    assert_eq!(event["data"]["id"], task["id"]);
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().unwrap());
    assert_eq!(desk.app.send(Method::DELETE, &path, &desk.supervisor, None).await.status(), StatusCode::NO_CONTENT);
    let deleted = client.next().await;
    assert_eq!((deleted["type"].as_str(), &deleted["data"]["id"]), (Some("task.deleted"), &task["id"]));
    let event = deleted;

    client.send(json!({"type": "unsubscribe", "topics": ["tasks"]})).await;
    create_task(&desk.app, &desk.operator, &[]).await;
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await["type"], "pong", "no answer to unsubscribe, no task event after it");

    client.send(json!({"type": "resume", "since": event["seq"]})).await;
    let resumed = client.next().await;
    assert_eq!(resumed["type"], "resumed");
    assert_eq!(resumed["data"]["replayed"], 0, "only alerts are followed now");

    // A frame over 64 KiB closes the connection with 1009.
    client.stream.send(Message::text("x".repeat(70 * 1024))).await.unwrap();
    assert_eq!(client.close_code(SOON).await, Some(1009));
}

#[tokio::test]
async fn topics_follow_the_rest_policy_for_every_role() {
    let desk = desk().await;
    let (ana, ana_token) = officer(&desk, "ana@x.org").await;
    let (_, eva_token) = officer(&desk, "eva@x.org").await;
    desk.app.create_user("admin@x.org", Role::Admin).await;
    let admin = desk.app.login("admin@x.org").await.access_token;
    let task = create_task(&desk.app, &desk.operator, &[&ana]).await;
    let task_topic = format!("task:{}", task["id"].as_str().unwrap());
    let other_topic = format!("task:{}", create_task(&desk.app, &desk.operator, &[]).await["id"].as_str().unwrap());

    for token in [&admin, &desk.supervisor, &desk.operator] {
        let mut client = connect(&desk.app, token).await;
        let all = ["tasks", "tasks:mine", "officers", "alerts", task_topic.as_str(), other_topic.as_str()];
        assert_eq!(client.subscribe(&all).await["topics"], json!(all), "staff follow everything");
    }
    let mut ana_client = connect(&desk.app, &ana_token).await;
    for topic in ["tasks", "officers", "alerts", other_topic.as_str()] {
        ana_client.send(json!({"type": "subscribe", "topics": [topic]})).await;
        let error = ana_client.next().await;
        assert_eq!(error["data"]["code"], "forbidden_topic", "{topic}");
        assert_eq!(error["data"]["topic"], topic);
    }
    assert_eq!(ana_client.subscribe(&["tasks:mine", &task_topic]).await["topics"], json!(["tasks:mine", task_topic]));

    let mut eva_client = connect(&desk.app, &eva_token).await;
    eva_client.send(json!({"type": "subscribe", "topics": [task_topic]})).await;
    assert_eq!(eva_client.next().await["data"]["code"], "forbidden_topic", "not assigned to eva");
    assert_eq!(eva_client.subscribe(&["tasks:mine"]).await["type"], "subscribed");

    // An edit of ana's task reaches ana once (on the most specific topic), not eva.
    let id = task["id"].as_str().unwrap();
    let response = desk
        .app
        .send(Method::PATCH, &format!("/api/v1/tasks/{id}"), &desk.operator, Some(json!({"title": "Renamed"})))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let event = ana_client.next().await;
    assert_eq!((event["type"].as_str(), event["topic"].as_str()), (Some("task.updated"), Some(task_topic.as_str())));
    assert!(ana_client.next_within(Duration::from_millis(300)).await.is_none(), "exactly once");
    assert!(eva_client.next_within(Duration::from_millis(300)).await.is_none(), "eva sees nothing");

    // Unassigned, ana learns it, then loses the task topic and receives none of its events.
    let response =
        desk.app.send(Method::DELETE, &format!("/api/v1/tasks/{id}/assignments/{ana}"), &desk.operator, None).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(ana_client.next().await["type"], "task.unassigned");
    desk.app.send(Method::PATCH, &format!("/api/v1/tasks/{id}"), &desk.operator, Some(json!({"title": "Again"}))).await;
    let withdrawn = ana_client.next().await;
    assert_eq!(
        (withdrawn["type"].as_str(), withdrawn["data"]["code"].as_str()),
        (Some("error"), Some("forbidden_topic"))
    );
    assert_eq!(withdrawn["data"]["topic"], task_topic);
    desk.app
        .send(Method::PATCH, &format!("/api/v1/tasks/{id}"), &desk.operator, Some(json!({"title": "Once more"})))
        .await;
    ana_client.send(json!({"type": "ping"})).await;
    assert_eq!(ana_client.next().await["type"], "pong", "no more events of the task");
}

#[tokio::test]
async fn an_event_committed_on_one_instance_reaches_a_client_of_another_exactly_once() {
    let desk = desk().await;
    let peer = desk.app.spawn_peer().await;
    let mut on_peer = connect(&peer, &desk.operator).await;
    let mut local = connect(&desk.app, &desk.operator).await;
    on_peer.subscribe(&["tasks"]).await;
    local.subscribe(&["tasks"]).await;
    let task = create_task(&desk.app, &desk.operator, &[]).await;
    for client in [&mut on_peer, &mut local] {
        let event = client.next().await;
        assert_eq!((event["type"].as_str(), &event["data"]["id"]), (Some("task.created"), &task["id"]));
        assert!(client.next_within(Duration::from_millis(1500)).await.is_none(), "no duplicate");
    }
}

#[tokio::test]
async fn a_thousand_concurrent_writes_arrive_once_each_in_seq_order() {
    let desk = desk().await;
    let peer = desk.app.spawn_peer().await;
    let mut clients = vec![connect(&desk.app, &desk.operator).await, connect(&peer, &desk.operator).await];
    for client in &mut clients {
        client.subscribe(&["tasks"]).await;
    }
    append_events(&desk.app, 10, 1000, 10).await;
    for client in &mut clients {
        let mut seqs = Vec::with_capacity(1000);
        while seqs.len() < 1000 {
            let event = client.next().await;
            seqs.push(event["seq"].as_i64().unwrap());
        }
        assert!(seqs.windows(2).all(|pair| pair[1] == pair[0] + 1), "consecutive and increasing");
        assert!(client.next_within(Duration::from_millis(500)).await.is_none(), "nothing more");
    }
}

#[tokio::test]
async fn resume_replays_exactly_the_missed_events_then_continues_live() {
    let desk = desk().await;
    let mut client = connect(&desk.app, &desk.operator).await;
    let mut watcher = connect(&desk.app, &desk.operator).await;
    client.subscribe(&["tasks"]).await;
    watcher.subscribe(&["tasks"]).await;
    create_task(&desk.app, &desk.operator, &[]).await;
    let last_seen = client.next().await["seq"].as_i64().unwrap();
    watcher.next().await;
    drop(client);

    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(create_task(&desk.app, &desk.operator, &[]).await["id"].clone());
    }
    // Events are numbered after commit: once the watcher has them, the hub is past them and
    // the reconnecting client gets them from the replay only.
    for _ in 0..3 {
        watcher.next().await;
    }
    let mut client = connect(&desk.app, &desk.operator).await;
    client.subscribe(&["tasks"]).await;
    let (replayed, count) = client.resume(last_seen).await;
    assert_eq!(count, 3);
    let seqs: Vec<i64> = replayed.iter().map(|event| event["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (last_seen + 1..=last_seen + 3).collect::<Vec<_>>(), "in order, from since + 1");
    let ids: Vec<Value> = replayed.iter().map(|event| event["data"]["id"].clone()).collect();
    assert_eq!(ids, missed);
    let live = create_task(&desk.app, &desk.operator, &[]).await;
    let event = client.next().await;
    assert_eq!(event["data"]["id"], live["id"]);
    assert_eq!(event["seq"].as_i64().unwrap(), last_seen + 4, "no gap, no duplicate");

    // A client that resumes before subscribing gets what it may follow.
    let mut early = connect(&desk.app, &desk.operator).await;
    let (replayed, count) = early.resume(last_seen).await;
    assert_eq!(count, 4);
    let seqs: Vec<i64> = replayed.iter().map(|event| event["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (last_seen + 1..=last_seen + 4).collect::<Vec<_>>());

    // Older than the retention: resync.
    let mut conn = desk.app.db().await;
    sql_query("UPDATE event_log SET created_at = now() - interval '2 days' WHERE seq <= $1")
        .bind::<BigInt, _>(last_seen + 1)
        .execute(&mut conn)
        .await
        .unwrap();
    client.send(json!({"type": "resume", "since": last_seen})).await;
    assert_eq!(client.next().await["type"], "resync_required");
}

#[tokio::test]
async fn resume_does_not_repeat_what_arrived_live_after_subscribing() {
    let desk = desk().await;
    let mut client = connect(&desk.app, &desk.operator).await;
    client.subscribe(&["tasks"]).await;
    create_task(&desk.app, &desk.operator, &[]).await;
    let last_seen = client.next().await["seq"].as_i64().unwrap();
    drop(client);
    let missed = create_task(&desk.app, &desk.operator, &[]).await;

    // The client subscribes, an event arrives live before it asks to resume.
    let mut client = connect(&desk.app, &desk.operator).await;
    client.subscribe(&["tasks"]).await;
    let mut seen = Vec::new();
    let live = create_task(&desk.app, &desk.operator, &[]).await;
    loop {
        let event = client.next().await;
        seen.push(event["data"]["id"].clone());
        if event["data"]["id"] == live["id"] {
            break;
        }
    }
    let (replayed, _) = client.resume(last_seen).await;
    seen.extend(replayed.iter().map(|event| event["data"]["id"].clone()));
    let mut expected = vec![missed["id"].clone(), live["id"].clone()];
    expected.sort_by_key(ToString::to_string);
    seen.sort_by_key(ToString::to_string);
    assert_eq!(seen, expected, "each event once, live or replayed");
    assert!(client.next_within(Duration::from_millis(300)).await.is_none(), "nothing repeated afterwards");
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1013_and_the_others_get_everything() {
    let app = TestApp::spawn_configured(Options::default(), |settings| settings.ws.queue_size = 64).await;
    let desk = desk_with(app).await;
    let mut slow = connect(&desk.app, &desk.operator).await;
    let mut fast = connect(&desk.app, &desk.operator).await;
    slow.subscribe(&["tasks"]).await;
    fast.subscribe(&["tasks"]).await;
    // About 16 MB: more than the socket buffers of a reader that has stopped reading.
    let (events, reader) = (1000, async {
        let mut received = 0;
        while received < 1000 {
            let event = fast.next().await;
            assert_eq!(event["type"], "task.updated");
            received += 1;
        }
        received
    });
    let (_, received) = tokio::join!(append_events(&desk.app, 1, events, 16_000), reader);
    assert_eq!(received, 1000);
    let started = Instant::now();
    assert_eq!(slow.close_code(Duration::from_secs(30)).await, Some(1013));
    assert!(started.elapsed() < Duration::from_secs(30));
    let (_, metrics) = desk.app.get_text(&desk.app.address, "/metrics").await;
    assert!(metrics.contains("ws_slow_consumer_closes_total"), "counted");
}

#[tokio::test]
async fn logout_closes_the_users_sockets_with_4401_on_every_instance() {
    let desk = desk().await;
    let peer = desk.app.spawn_peer().await;
    let mut here = connect(&desk.app, &desk.operator).await;
    let mut there = connect(&peer, &desk.operator).await;
    let mut bystander = connect(&desk.app, &desk.supervisor).await;
    let started = Instant::now();
    let response = desk.app.send(Method::POST, "/api/v1/auth/logout", &desk.operator, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(here.close_code(SOON).await, Some(4401));
    assert_eq!(there.close_code(SOON).await, Some(4401));
    assert!(started.elapsed() < SOON, "within 5 s: {:?}", started.elapsed());
    bystander.send(json!({"type": "ping"})).await;
    assert_eq!(bystander.next().await["type"], "pong", "other users keep their sockets");
    assert_eq!(try_connect(&desk.app, Some(Auth::Bearer(&desk.operator)), None).await.err(), Some(401));
}

#[tokio::test]
async fn erasure_closes_the_subjects_sockets_with_4401_on_every_instance() {
    let desk = desk().await;
    let peer = desk.app.spawn_peer().await;
    let (_, officer) = officer(&desk, "erased@x.org").await;
    let me: Value = desk.app.get_as("/api/v1/auth/me", &officer).await.json().await.unwrap();
    let mut here = connect(&desk.app, &officer).await;
    let mut there = connect(&peer, &officer).await;
    let mut bystander = connect(&peer, &desk.operator).await;
    let erase = format!("/api/v1/users/{}/gdpr-delete", me["id"].as_str().unwrap());
    assert_eq!(desk.app.send(Method::DELETE, &erase, &officer, None).await.status(), StatusCode::OK);
    assert_eq!(here.close_code(SOON).await, Some(4401));
    assert_eq!(there.close_code(SOON).await, Some(4401));
    assert_eq!(peer.get_as("/api/v1/auth/me", &officer).await.status(), StatusCode::UNAUTHORIZED, "revoked there too");
    bystander.send(json!({"type": "ping"})).await;
    assert_eq!(bystander.next().await["type"], "pong", "other users keep their sockets");
}

#[tokio::test]
async fn per_user_caps_refuse_the_handshake_with_429() {
    let app = TestApp::spawn_configured(Options::default(), |settings| settings.ws.max_connections_per_user = 2).await;
    let desk = desk_with(app).await;
    let _first = connect(&desk.app, &desk.operator).await;
    let _second = connect(&desk.app, &desk.operator).await;
    assert_eq!(try_connect(&desk.app, Some(Auth::Bearer(&desk.operator)), None).await.err(), Some(429));
    let _other_user = connect(&desk.app, &desk.supervisor).await;
}

#[tokio::test]
async fn without_redis_or_with_redis_down_an_instance_serves_its_own_events() {
    for redis in [crate::helpers::Redis::Absent, crate::helpers::Redis::Unreachable] {
        let desk = desk_with(TestApp::spawn_with(Options { redis, ..Options::default() }).await).await;
        let mut client = connect(&desk.app, &desk.operator).await;
        client.subscribe(&["tasks"]).await;
        let task = create_task(&desk.app, &desk.operator, &[]).await;
        let event = client.next().await;
        assert_eq!(event["data"]["id"], task["id"]);
        assert!(client.next_within(Duration::from_millis(300)).await.is_none(), "once");
    }
}

#[tokio::test]
async fn a_silent_peer_is_closed_and_a_live_one_is_kept() {
    let app = TestApp::spawn_configured(Options::default(), |settings| {
        settings.ws.heartbeat_interval = Duration::from_secs(1);
        settings.ws.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let desk = desk_with(app).await;
    let mut silent = connect(&desk.app, &desk.operator).await;
    let mut live = connect(&desk.app, &desk.operator).await;
    // The live client reads (answering the server's pings); the silent one does nothing.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, live.stream.next()).await {
        if matches!(frame, Message::Ping(_)) {
            pings += 1;
        }
    }
    assert!(pings >= 2, "a ping per heartbeat interval, got {pings}");
    live.send(json!({"type": "ping"})).await;
    assert_eq!(live.next().await["type"], "pong", "still open after the idle timeout");
    assert_eq!(silent.close_code(SOON).await, Some(1000), "closed for silence");
}

#[tokio::test]
async fn a_role_change_and_a_deactivation_close_sockets_with_4401() {
    let desk = desk().await;
    desk.app.create_user("admin@x.org", Role::Admin).await;
    let staff = desk.app.create_user("staff@x.org", Role::Operator).await;
    let gone = desk.app.create_user("gone@x.org", Role::Operator).await;
    let admin = desk.app.login("admin@x.org").await.access_token;
    let staff_token = desk.app.login("staff@x.org").await.access_token;
    let gone_token = desk.app.login("gone@x.org").await.access_token;

    let mut promoted = connect(&desk.app, &staff_token).await;
    let ticket = ticket(&desk.app, &gone_token).await;
    let mut deactivated =
        try_connect(&desk.app, Some(Auth::Ticket(&ticket)), None).await.unwrap_or_else(|status| panic!("{status}"));
    assert_eq!(deactivated.next().await["type"], "connection_ack");

    let response = desk
        .app
        .send(Method::PATCH, &format!("/api/v1/users/{staff}"), &admin, Some(json!({"role": "supervisor"})))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(promoted.close_code(SOON).await, Some(4401), "role change");
    let response = desk.app.send(Method::DELETE, &format!("/api/v1/users/{gone}"), &admin, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(deactivated.close_code(SOON).await, Some(4401), "deactivation closes a ticket socket too");
    let mut bystander = connect(&desk.app, &desk.operator).await;
    bystander.send(json!({"type": "ping"})).await;
    assert_eq!(bystander.next().await["type"], "pong");
}

#[tokio::test]
async fn a_socket_closes_with_4401_when_its_token_expires() {
    let app = TestApp::spawn_configured(Options::default(), |settings| {
        settings.auth.access_token_ttl = Duration::from_secs(3)
    })
    .await;
    app.create_user("op@x.org", Role::Operator).await;
    let token = app.login("op@x.org").await.access_token;
    let started = Instant::now();
    let mut expiring = connect(&app, &token).await;
    assert_eq!(expiring.close_code(SOON).await, Some(4401));
    assert!(started.elapsed() >= Duration::from_secs(1), "not before the token expires");
}

#[tokio::test]
async fn websocket_metrics_are_exposed() {
    let desk = desk().await;
    let mut client = connect(&desk.app, &desk.operator).await;
    client.subscribe(&["tasks"]).await;
    create_task(&desk.app, &desk.operator, &[]).await;
    assert_eq!(client.next().await["type"], "task.created");
    let (_, metrics) = desk.app.get_text(&desk.app.address, "/metrics").await;
    for name in [
        "ws_connections",
        "ws_handshakes_total",
        "ws_messages_sent_total",
        "ws_messages_received_total",
        "ws_delivery_latency_seconds",
        "ws_fanout_latency_seconds",
        "ws_relay_position",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
}

#[tokio::test]
async fn officer_events_and_emergency_alerts_reach_their_topics() {
    let desk = desk().await;
    let (ana, ana_token) = officer(&desk, "ana@x.org").await;
    let mut dashboard = connect(&desk.app, &desk.operator).await;
    dashboard.subscribe(&["officers", "alerts"]).await;
    let mut ana_client = connect(&desk.app, &ana_token).await;
    ana_client.subscribe(&["tasks:mine"]).await;

    let path = format!("/api/v1/officers/{ana}/availability");
    let response = desk.app.send(Method::PUT, &path, &ana_token, Some(json!({"availability": "off_duty"}))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let event = dashboard.next().await;
    assert_eq!(
        (event["type"].as_str(), event["topic"].as_str()),
        (Some("officer.availability_changed"), Some("officers"))
    );
    assert_eq!(event["data"]["availability"], "off_duty");

    // Nobody available: the task is created unassigned and the alert still goes out.
    let response = desk
        .app
        .send(Method::POST, "/api/v1/tasks/emergency", &desk.operator, Some(json!({"lat": 40.4168, "lng": -3.7038})))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let alert = dashboard.next().await;
    assert_eq!((alert["type"].as_str(), alert["topic"].as_str()), (Some("alert.emergency"), Some("alerts")));
    assert!(alert["data"]["officer_id"].is_null());
    assert!(ana_client.next_within(Duration::from_millis(300)).await.is_none(), "not ana's task");
}

#[tokio::test]
async fn the_instance_cap_refuses_the_handshake_with_503() {
    let app = TestApp::spawn_configured(Options::default(), |settings| settings.ws.max_connections = 1).await;
    let desk = desk_with(app).await;
    let first = connect(&desk.app, &desk.operator).await;
    assert_eq!(try_connect(&desk.app, Some(Auth::Bearer(&desk.supervisor)), None).await.err(), Some(503));
    drop(first);
    // The slot comes back once the server has seen the socket go.
    let deadline = Instant::now() + SOON;
    loop {
        match try_connect(&desk.app, Some(Auth::Bearer(&desk.supervisor)), None).await {
            Ok(_) => break,
            Err(503) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(status) => panic!("{status}"),
        }
    }
}

#[tokio::test]
async fn browsers_from_allowed_origins_connect_with_a_ticket() {
    let app = TestApp::spawn_configured(Options::default(), |settings| {
        settings.http.cors_allowed_origins = vec!["https://ops.example".into()];
    })
    .await;
    let desk = desk_with(app).await;
    let first = ticket(&desk.app, &desk.operator).await;
    let mut client = try_connect(&desk.app, Some(Auth::Ticket(&first)), Some("https://ops.example"))
        .await
        .unwrap_or_else(|status| panic!("{status}"));
    assert_eq!(client.next().await["type"], "connection_ack");
    let other = ticket(&desk.app, &desk.operator).await;
    let refused = try_connect(&desk.app, Some(Auth::Ticket(&other)), Some("https://ops.example.evil")).await;
    assert_eq!(refused.err(), Some(403));
}

#[tokio::test]
async fn sockets_outlive_a_database_outage_and_delivery_resumes_after_it() {
    let desk = desk().await;
    let mut client = connect(&desk.app, &desk.operator).await;
    client.subscribe(&["tasks"]).await;

    // Every connection of the instance to its database is cut, as a PostgreSQL restart does.
    let database = desk.app.database.as_ref().unwrap().name().to_owned();
    let terminated: Vec<bool> = sql_query(
        "SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<diesel::sql_types::Text, _>(&database)
    .load::<Terminated>(&mut desk.app.db().await)
    .await
    .unwrap()
    .into_iter()
    .map(|row| row.terminated)
    .collect();
    assert!(!terminated.is_empty(), "the instance held connections to cut");

    // The socket stays open, answers, and receives nothing that did not happen.
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await["type"], "pong");
    assert!(client.next_within(Duration::from_millis(500)).await.is_none(), "no event is invented");

    // Connections come back by themselves: the next write is delivered live.
    let body = json!({"title": "After the outage", "kind": "patrol", "scheduled_start": hours_from_now(1)});
    let deadline = Instant::now() + SOON;
    let task: Value = loop {
        let response = desk.app.send(Method::POST, "/api/v1/tasks", &desk.operator, Some(body.clone())).await;
        if response.status() == StatusCode::CREATED {
            break response.json().await.unwrap();
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "an outage is a 503, never a 500");
        assert!(Instant::now() < deadline, "the pool did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let event = client.next().await;
    assert_eq!((event["type"].as_str(), &event["data"]["id"]), (Some("task.created"), &task["id"]));
}

#[derive(diesel::QueryableByName)]
struct Terminated {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    terminated: bool,
}
