//! The Telegram bot (SPEC §6) against the fake Bot API of the test support crate: the webhook's
//! secret and duplicate updates, linking, every command and button, the `/crear` conversation,
//! notifications with consent, limits and retries, and long polling by one instance.

use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use gad_domain::settings::Secret;
use gad_domain::users::{Role, UserId};
use gad_telegram::TelegramMode;
use gad_test_support::{BotCall, Failure, FakeBotApi};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use gad_app::config::Settings;

use crate::helpers::{Database, Options, TestApp, hours_from_now};

const TOKEN: &str = "123456:TEST-token-never-logged";
const SECRET: &str = "webhook-secret-of-the-tests";

struct Desk {
    app: TestApp,
    fake: FakeBotApi,
    admin: String,
    operator: String,
    client: reqwest::Client,
}

/// The bot in `mode` against `fake`, with the tests' token and webhook secret.
fn bot_on(settings: &mut Settings, mode: TelegramMode, fake: &FakeBotApi) {
    settings.telegram.mode = Some(mode);
    settings.telegram.api_url = fake.url().to_owned();
    settings.telegram.bot_token = Some(Secret::new(TOKEN));
    settings.telegram.webhook_secret = Some(Secret::new(SECRET));
}

/// `body` posted to `app`'s webhook with the right secret.
async fn post_webhook(app: &TestApp, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/telegram/webhook", app.address))
        .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn desk(mode: TelegramMode) -> Desk {
    let fake = FakeBotApi::start().await;
    let app = TestApp::spawn_configured(Options::default(), |settings| {
        bot_on(settings, mode, &fake);
        settings.telegram.bot_username = Some("gad_test_bot".into());
        settings.telegram.notifications.poll_interval_ms = 20;
        settings.telegram.notifications.backoff_base_ms = 100;
    })
    .await;
    app.create_user("admin@x.org", Role::Admin).await;
    app.create_user("op@x.org", Role::Operator).await;
    let admin = app.login("admin@x.org").await.access_token;
    let operator = app.login("op@x.org").await.access_token;
    Desk { app, fake, admin, operator, client: reqwest::Client::new() }
}

impl Desk {
    /// Posts an update to the webhook with `secret` (none: no header).
    async fn post_update(&self, update: &Value, secret: Option<&str>) -> StatusCode {
        self.post_update_to(&self.app, update, secret).await
    }

    async fn post_update_to(&self, app: &TestApp, update: &Value, secret: Option<&str>) -> StatusCode {
        let mut request = self.client.post(format!("{}/telegram/webhook", app.address)).json(update);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send().await.unwrap().status()
    }

    /// Delivers an update as Telegram does; the bot has answered when this returns.
    async fn deliver(&self, update: Value) {
        self.deliver_to(&self.app, update).await;
    }

    async fn deliver_to(&self, app: &TestApp, update: Value) {
        assert_eq!(self.post_update_to(app, &update, Some(SECRET)).await, StatusCode::OK);
        self.processed(update["update_id"].as_i64().unwrap()).await;
    }

    /// Waits until update `update_id` has been processed (the webhook answers before).
    async fn processed(&self, update_id: i64) {
        let sql = format!(
            "SELECT count(*) FROM telegram_processed_updates WHERE update_id = {update_id} AND processed_at IS NOT NULL"
        );
        self.eventually(&format!("update {update_id} processed"), &sql, 1).await;
    }

    /// Waits until `sql` counts `expected`.
    async fn eventually(&self, what: &str, sql: &str, expected: i64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.count(sql).await != expected {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The texts of the messages sent to `chat`, oldest first.
    fn said(&self, chat: i64) -> Vec<String> {
        self.sent(chat).iter().map(|call| call.text().to_owned()).collect()
    }

    fn sent(&self, chat: i64) -> Vec<BotCall> {
        self.fake.calls_to("sendMessage").into_iter().filter(|call| call.chat_id() == Some(chat)).collect()
    }

    fn last_said(&self, chat: i64) -> String {
        self.said(chat).pop().unwrap_or_default()
    }

    /// A user with `role` (and an officer profile for officers) whose chat `chat` is linked
    /// through the real flow; returns (user id, token, officer id).
    async fn linked(
        &self,
        email: &str,
        role: Role,
        chat: i64,
        updates: &mut Updates,
    ) -> (UserId, String, Option<String>) {
        let user = self.app.create_user(email, role).await;
        let token = self.app.login(email).await.access_token;
        let officer = if role == Role::Officer {
            let body =
                json!({"user_id": user.to_string(), "badge_number": format!("B-{chat}"), "availability": "available"});
            let response = self.app.send(Method::POST, "/api/v1/officers", &self.admin, Some(body)).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            let officer: Value = response.json().await.unwrap();
            Some(officer["id"].as_str().unwrap().to_owned())
        } else {
            None
        };
        let code = link_code(&self.app, &token).await["code"].as_str().unwrap().to_owned();
        self.deliver(updates.message(chat, &format!("/start {code}"))).await;
        assert!(self.last_said(chat).contains("vinculado"), "{}", self.last_said(chat));
        (user, token, officer)
    }

    async fn consent(&self, user: UserId, token: &str, consent_type: &str, granted: bool) {
        let body = json!({"consent_type": consent_type, "granted": granted, "policy_version": "1"});
        let response = self.app.send(Method::POST, &format!("/api/v1/users/{user}/consents"), token, Some(body)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    async fn task(&self, officers: &[&str], title: &str) -> Value {
        let body = json!({"title": title, "kind": "patrol", "priority": "high", "scheduled_start": hours_from_now(1),
                          "officer_ids": officers});
        let response = self.app.send(Method::POST, "/api/v1/tasks", &self.operator, Some(body)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    async fn read(&self, path: &str) -> Value {
        let response = self.app.send(Method::GET, path, &self.admin, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            count: i64,
        }
        sql_query(sql).get_result::<Count>(&mut self.app.db().await).await.unwrap().count
    }
}

async fn link_code(app: &TestApp, token: &str) -> Value {
    let response = app.send(Method::POST, "/api/v1/users/me/telegram-link", token, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// Builds updates with fresh `update_id`s.
#[derive(Default)]
struct Updates(i64);

impl Updates {
    fn next(&mut self) -> i64 {
        self.0 += 1;
        self.0
    }

    fn message(&mut self, chat: i64, text: &str) -> Value {
        let id = self.next();
        json!({"update_id": id, "message": {"message_id": id, "date": 0, "text": text,
               "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": false, "first_name": "A", "username": "agent"}}})
    }

    fn location(&mut self, chat: i64, lat: f64, lng: f64) -> Value {
        let id = self.next();
        json!({"update_id": id, "message": {"message_id": id, "date": 0, "location": {"latitude": lat, "longitude": lng},
               "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": false, "first_name": "A"}}})
    }

    fn press(&mut self, chat: i64, message_id: i64, data: &str) -> Value {
        let id = self.next();
        json!({"update_id": id, "callback_query": {"id": format!("cb-{id}"), "data": data, "chat_instance": "x",
               "from": {"id": chat, "is_bot": false, "first_name": "A"},
               "message": {"message_id": message_id, "date": 0, "chat": {"id": chat, "type": "private"}}}})
    }
}

/// The answer to the callback query of `update`.
fn answer_of(desk: &Desk, update: &Value) -> String {
    let id = update["callback_query"]["id"].as_str().unwrap();
    let answers = desk.fake.calls_to("answerCallbackQuery");
    let answer = answers.iter().find(|call| call.body["callback_query_id"] == id).expect("every press is answered");
    answer.body["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_webhook_checks_its_secret_and_processes_each_update_once() {
    let desk = desk(TelegramMode::Webhook).await;
    let mut updates = Updates::default();
    let update = updates.message(501, "/ayuda");
    assert_eq!(desk.post_update(&update, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(desk.post_update(&update, Some("wrong-secret")).await, StatusCode::FORBIDDEN);
    assert_eq!(desk.post_update(&update, Some(&SECRET[..SECRET.len() - 1])).await, StatusCode::FORBIDDEN);
    assert!(desk.fake.calls().is_empty(), "nothing is processed without the secret");
    assert_eq!(desk.count("SELECT count(*) FROM telegram_processed_updates").await, 0);

    // An unlinked chat is invited to link, whatever it asks, and sees no data.
    desk.deliver(update.clone()).await;
    desk.deliver(update).await;
    let said = desk.said(501);
    assert_eq!(said.len(), 1, "a redelivered update_id is acknowledged, not processed again");
    assert!(said[0].contains("no está vinculado"), "{}", said[0]);
    for text in ["/mis_tareas", "/crear", "hola", "/start"] {
        desk.deliver(updates.message(501, text)).await;
        assert!(desk.last_said(501).contains("no está vinculado"), "{text}");
    }
    let stranger = updates.press(501, 1, "t:s:00000000000000000000000000000000:1");
    desk.deliver(stranger.clone()).await;
    assert!(answer_of(&desk, &stranger).contains("no está vinculado"));

    // Kinds the bot does not handle, bodies that are not updates.
    desk.deliver(json!({"update_id": updates.next(), "edited_message": {"message_id": 1}})).await;
    desk.deliver(json!({"update_id": updates.next(), "message": {"unexpected": true}})).await;
    assert_eq!(desk.post_update(&json!({"no": "id"}), Some(SECRET)).await, StatusCode::BAD_REQUEST);
    let sent = desk.fake.calls().len();
    assert_eq!(sent, 6, "only the invitations and the press's answer went out");
    assert!(desk.fake.calls().iter().all(|call| call.token == TOKEN));
}

#[tokio::test]
async fn linking_codes_are_single_use_expire_and_unlinking_stops_the_bot() {
    let desk = desk(TelegramMode::Webhook).await;
    let mut updates = Updates::default();
    let user = desk.app.create_user("agent@x.org", Role::Officer).await;
    let token = desk.app.login("agent@x.org").await.access_token;
    let link = link_code(&desk.app, &token).await;
    let code = link["code"].as_str().unwrap();
    assert!(
        (1..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    assert_eq!(link["deep_link"], format!("https://t.me/gad_test_bot?start={code}"));
    let expires = time::OffsetDateTime::parse(
        link["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(9) && left <= time::Duration::minutes(10), "{left}");
    assert_eq!(
        desk.count(&format!("SELECT count(*) FROM telegram_link_codes WHERE code = '{code}'")).await,
        0,
        "stored hashed"
    );

    let me = desk.read_as("/api/v1/auth/me", &token).await;
    assert_eq!(me["telegram_linked"], false);
    desk.deliver(updates.message(601, "/start not-a-real-code")).await;
    assert!(desk.last_said(601).contains("no es válido"));
    desk.deliver(updates.message(601, &format!("/start {code}"))).await;
    assert!(desk.last_said(601).contains("vinculado"));
    assert_eq!(desk.read_as("/api/v1/auth/me", &token).await["telegram_linked"], true);
    assert_eq!(desk.read(&format!("/api/v1/users/{user}")).await["telegram_linked"], true);
    // Used once, from any chat.
    desk.deliver(updates.message(602, &format!("/start {code}"))).await;
    assert!(desk.last_said(602).contains("ya se usó"));
    // Expired.
    let late = link_code(&desk.app, &token).await["code"].as_str().unwrap().to_owned();
    sql_query("UPDATE telegram_link_codes SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        .execute(&mut desk.app.db().await)
        .await
        .unwrap();
    desk.deliver(updates.message(603, &format!("/start {late}"))).await;
    assert!(desk.last_said(603).contains("caducado"));

    desk.deliver(updates.message(601, "/ayuda")).await;
    assert!(desk.last_said(601).contains("/mis_tareas"));
    let response = desk.app.send(Method::DELETE, "/api/v1/users/me/telegram-link", &token, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(desk.read_as("/api/v1/auth/me", &token).await["telegram_linked"], false);
    desk.deliver(updates.message(601, "/mis_tareas")).await;
    assert!(desk.last_said(601).contains("no está vinculado"));
    let again = desk.app.send(Method::DELETE, "/api/v1/users/me/telegram-link", &token, None).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT, "unlinking is idempotent");
    let anonymous = desk.app.post_json("/api/v1/users/me/telegram-link", &json!({}), None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

impl Desk {
    async fn read_as(&self, path: &str, token: &str) -> Value {
        let response = self.app.send(Method::GET, path, token, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }
}

#[tokio::test]
async fn officers_work_their_tasks_from_the_buttons_through_the_use_cases() {
    let desk = desk(TelegramMode::Webhook).await;
    let mut updates = Updates::default();
    let (user, token, officer) = desk.linked("agent@x.org", Role::Officer, 701, &mut updates).await;
    let officer = officer.unwrap();
    let (_, _, other) = desk.linked("other@x.org", Role::Officer, 702, &mut updates).await;
    let task = desk.task(&[&officer], "Ronda <norte> & más").await;
    let id = task["id"].as_str().unwrap();
    let foreign = desk.task(&[other.as_deref().unwrap()], "Not yours").await;

    desk.deliver(updates.message(701, "/mis_tareas")).await;
    let card = desk.sent(701).pop().unwrap();
    assert!(card.text().contains("Ronda &lt;norte&gt; &amp; más"), "user text is escaped: {}", card.text());
    assert!(card.text().contains(task["code"].as_str().unwrap()) && card.text().contains("Alta"));
    assert_eq!(card.body["parse_mode"], "HTML");
    let buttons = card.buttons();
    assert_eq!(buttons.iter().map(|(text, _)| text.as_str()).collect::<Vec<_>>(), ["▶️ Iniciar"]);
    assert!(buttons.iter().all(|(_, data)| data.len() <= 64));
    let message_id = desk.fake.calls_to("sendMessage").len() as i64;

    let start = updates.press(701, message_id, &buttons[0].1);
    desk.deliver(start.clone()).await;
    assert_eq!(answer_of(&desk, &start), "Tarea iniciada.");
    let edit = desk.fake.calls_to("editMessageText").pop().unwrap();
    assert_eq!((edit.chat_id(), edit.body["message_id"].as_i64()), (Some(701), Some(message_id)));
    assert!(edit.text().contains("En curso"));
    let after: Vec<String> = edit.buttons().into_iter().map(|(text, _)| text).collect();
    assert_eq!(after, ["⏸ Pausar", "✅ Finalizar"]);
    assert_eq!(desk.read(&format!("/api/v1/tasks/{id}")).await["status"], "in_progress");
    let history = desk.read(&format!("/api/v1/tasks/{id}/history")).await;
    assert_eq!(history["items"][0]["actor_id"], user.to_string(), "the bot acted as the linked user");

    // The same press again (replayed, stale): refused, nothing changes.
    let replay = updates.press(701, message_id, &buttons[0].1);
    desk.deliver(replay.clone()).await;
    assert!(answer_of(&desk, &replay).contains("cambió"));
    assert_eq!(desk.read(&format!("/api/v1/tasks/{id}/history")).await["items"].as_array().unwrap().len(), 1);
    // Forged payloads and other officers' tasks.
    let forged = updates.press(701, message_id, "t:s:not-a-task:1");
    desk.deliver(forged.clone()).await;
    assert_eq!(answer_of(&desk, &forged), "Acción no válida.");
    let foreign_id = uuid::Uuid::parse_str(foreign["id"].as_str().unwrap()).unwrap().simple().to_string();
    let theirs = updates.press(701, message_id, &format!("t:s:{foreign_id}:{}", foreign["version"]));
    desk.deliver(theirs.clone()).await;
    assert!(answer_of(&desk, &theirs).contains("no es tuya"));
    assert_eq!(desk.read(&format!("/api/v1/tasks/{}", foreign["id"].as_str().unwrap())).await["status"], "scheduled");

    // Pause, resume, finish from the edited message's buttons.
    for (label, answer, status) in [
        ("⏸ Pausar", "Tarea en pausa.", "paused"),
        ("⏯ Reanudar", "Tarea reanudada.", "in_progress"),
        ("✅ Finalizar", "Tarea finalizada.", "completed"),
    ] {
        let buttons = desk.fake.calls_to("editMessageText").pop().unwrap().buttons();
        let data = &buttons.iter().find(|(text, _)| text == label).unwrap_or_else(|| panic!("{label}: {buttons:?}")).1;
        let press = updates.press(701, message_id, data);
        desk.deliver(press.clone()).await;
        assert_eq!(answer_of(&desk, &press), answer);
        assert_eq!(desk.read(&format!("/api/v1/tasks/{id}")).await["status"], status);
    }
    assert!(
        desk.fake.calls_to("editMessageText").pop().unwrap().buttons().is_empty(),
        "a finished task has no buttons"
    );

    desk.deliver(updates.message(701, "/mis_tareas")).await;
    assert_eq!(desk.last_said(701), "No tienes tareas activas.");
    desk.deliver(updates.message(701, "/historial")).await;
    assert!(desk.last_said(701).contains(task["code"].as_str().unwrap()) && desk.last_said(701).contains("Finalizada"));
    desk.deliver(updates.message(701, "/estadisticas")).await;
    assert!(desk.last_said(701).contains("Finalizadas: 1"), "{}", desk.last_said(701));

    // Availability.
    desk.deliver(updates.message(701, "/no_disponible")).await;
    assert_eq!(desk.read(&format!("/api/v1/officers/{officer}")).await["availability"], "unavailable");
    desk.deliver(updates.message(701, "/disponible")).await;
    assert_eq!(desk.read(&format!("/api/v1/officers/{officer}")).await["availability"], "available");

    // A shared position needs the location_tracking consent.
    desk.deliver(updates.location(701, 40.4168, -3.7038)).await;
    assert!(desk.last_said(701).contains("location_tracking"));
    assert!(desk.read(&format!("/api/v1/officers/{officer}")).await["location"].is_null());
    desk.consent(user, &token, "location_tracking", true).await;
    desk.deliver(updates.location(701, 40.4168, -3.7038)).await;
    assert!(desk.last_said(701).contains("Posición actualizada"));
    assert_eq!(desk.read(&format!("/api/v1/officers/{officer}")).await["location"]["lat"], 40.4168);

    // Unknown commands, huge texts: a short reply, never an error.
    desk.deliver(updates.message(701, "/nada")).await;
    assert!(desk.last_said(701).contains("/ayuda"));
    desk.deliver(updates.message(701, &"x".repeat(10_000))).await;
    assert!(desk.last_said(701).len() < 200);
    assert!(desk.fake.calls_to("sendMessage").iter().all(|call| call.text().chars().count() <= 4096));
}

#[tokio::test]
async fn operators_create_tasks_in_a_guided_conversation_that_survives_a_restart() {
    let desk = desk(TelegramMode::Webhook).await;
    let mut updates = Updates::default();
    desk.linked("officer@x.org", Role::Officer, 801, &mut updates).await;
    desk.deliver(updates.message(801, "/crear")).await;
    assert!(desk.last_said(801).contains("Solo operadores"));
    assert_eq!(desk.count("SELECT count(*) FROM telegram_conversations").await, 0);

    desk.linked("dispatcher@x.org", Role::Operator, 802, &mut updates).await;
    desk.deliver(updates.message(802, "/crear")).await;
    let kinds = desk.sent(802).pop().unwrap().buttons();
    assert!(kinds.iter().any(|(text, data)| text == "Patrulla" && data == "c:k:patrol"));
    assert!(kinds.iter().all(|(_, data)| data != "c:k:emergency"));
    desk.deliver(updates.press(802, 10, "c:k:patrol")).await;
    assert!(desk.last_said(802).contains("título"));
    desk.deliver(updates.message(802, "ab")).await;
    assert!(desk.last_said(802).contains("entre 3 y 200"));

    // Another instance (a restart) carries on from the stored state.
    let peer = desk.app.spawn_peer().await;
    let title = updates.message(802, "Control <b>puerto</b>");
    desk.deliver_to(&peer, title).await;
    let priorities = desk.sent(802).pop().unwrap();
    assert!(priorities.text().contains("Control &lt;b&gt;puerto&lt;/b&gt;"), "{}", priorities.text());
    desk.deliver(updates.press(802, 11, "c:p:urgent")).await;
    desk.deliver(updates.location(802, 40.0, -3.5)).await;
    let confirm = desk.sent(802).pop().unwrap();
    assert!(confirm.text().contains("Urgente") && confirm.text().contains("40.00000"), "{}", confirm.text());
    // A button of an earlier step only repeats the question.
    desk.deliver(updates.press(802, 10, "c:k:training")).await;
    assert!(desk.last_said(802).contains("¿La creo?"));
    let create = updates.press(802, 12, "c:ok");
    desk.deliver(create.clone()).await;
    assert!(desk.last_said(802).contains("Tarea creada"));
    let created = desk.read("/api/v1/tasks?q=Control").await;
    let items = created["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!((items[0]["priority"].as_str(), items[0]["kind"].as_str()), (Some("urgent"), Some("patrol")));
    assert_eq!(items[0]["location"]["lat"], 40.0);
    // A second confirmation creates nothing.
    let twice = updates.press(802, 12, "c:ok");
    desk.deliver(twice.clone()).await;
    assert!(answer_of(&desk, &twice).contains("ya terminó"));
    assert_eq!(desk.read("/api/v1/tasks?q=Control").await["items"].as_array().unwrap().len(), 1);

    // /cancelar ends a conversation and creates nothing; an idle one expires.
    desk.deliver(updates.message(802, "/crear")).await;
    desk.deliver(updates.press(802, 13, "c:k:training")).await;
    desk.deliver(updates.message(802, "/cancelar")).await;
    assert!(desk.last_said(802).contains("No se ha creado nada"));
    desk.deliver(updates.message(802, "Nunca creada")).await;
    assert!(desk.last_said(802).contains("No entiendo"));
    desk.deliver(updates.message(802, "/crear")).await;
    sql_query("UPDATE telegram_conversations SET updated_at = now() - interval '1 hour'")
        .execute(&mut desk.app.db().await)
        .await
        .unwrap();
    desk.deliver(updates.press(802, 14, "c:k:training")).await;
    assert!(desk.last_said(802).contains("caducó"));
    assert_eq!(desk.read("/api/v1/tasks?q=Nunca").await["items"].as_array().unwrap().len(), 0);
    drop(peer);
}

/// Tasks assigned to `officer` through the REST API.
async fn assign(desk: &Desk, task: &str, officer: &str) {
    let body = json!({"officer_ids": [officer]});
    let response =
        desk.app.send(Method::POST, &format!("/api/v1/tasks/{task}/assignments"), &desk.operator, Some(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn notifications_follow_consent_limits_and_retry_after() {
    let desk = desk(TelegramMode::Webhook).await;
    let mut updates = Updates::default();
    let (user, token, officer) = desk.linked("agent@x.org", Role::Officer, 901, &mut updates).await;
    let officer = officer.unwrap();
    let (quiet, _, quiet_officer) = desk.linked("quiet@x.org", Role::Officer, 902, &mut updates).await;
    let quiet_officer = quiet_officer.unwrap();
    desk.consent(user, &token, "telegram_notifications", true).await;
    desk.consent(user, &token, "location_tracking", true).await;
    let here = json!({"lat": 40.41, "lng": -3.70});
    let placed = desk.app.send(Method::PUT, &format!("/api/v1/officers/{officer}/location"), &token, Some(here)).await;
    assert_eq!(placed.status(), StatusCode::OK);
    let before = desk.sent(901).len();

    // Without consent: nothing is sent, the queue records why.
    let first = desk.task(&[&quiet_officer], "Sin consentimiento").await;
    let first_id = first["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while desk.count("SELECT count(*) FROM telegram_outbox WHERE status = 'skipped'").await == 0 {
        assert!(std::time::Instant::now() < deadline, "the notification was never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(desk.sent(902).len(), 1, "only the link confirmation reached the chat without consent");
    let skipped = format!("SELECT count(*) FROM telegram_outbox WHERE user_id = '{quiet}' AND task_id = '{first_id}'");
    assert_eq!(desk.count(&skipped).await, 1);

    // Assignment, then 429 with retry_after honoured.
    desk.fake.fail_next("sendMessage", 1, &Failure::too_many_requests(1));
    let task = desk.task(&[], "Vigilancia del puerto").await;
    let id = task["id"].as_str().unwrap();
    assign(&desk, id, &officer).await;
    let sent = desk.fake.wait_for_messages("sendMessage", 901, before + 2).await;
    let (refused, delivered) = (&sent[before], &sent[before + 1]);
    assert!(delivered.text().contains("Nueva tarea asignada") && delivered.text().contains("Vigilancia del puerto"));
    assert!(delivered.at.duration_since(refused.at) >= Duration::from_millis(950), "retry_after was not honoured");

    // Two notifications for one chat are spaced by a second; unassignment and emergencies too.
    let response =
        desk.app.send(Method::DELETE, &format!("/api/v1/tasks/{id}/assignments/{officer}"), &desk.operator, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let emergency = json!({"lat": 40.4, "lng": -3.7, "title": "Incendio"});
    let response = desk.app.send(Method::POST, "/api/v1/tasks/emergency", &desk.operator, Some(emergency)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let dispatched: Value = response.json().await.unwrap();
    assert_eq!(dispatched["officer"]["id"], officer.as_str(), "the only available officer");
    let sent = desk.fake.wait_for_messages("sendMessage", 901, before + 4).await;
    let (gone, alert) = (&sent[before + 2], &sent[before + 3]);
    assert!(gone.text().contains("Ya no estás asignado"), "{}", gone.text());
    assert!(alert.text().contains("EMERGENCIA") && alert.text().contains("Incendio"), "{}", alert.text());
    assert!(alert.at.duration_since(gone.at) >= Duration::from_millis(950), "one message per second per chat");
    assert!(gone.at.duration_since(delivered.at) >= Duration::from_millis(950));

    // Failures back off and end recorded as failed after the bounded attempts. The queue is
    // drained first, so that the refusals meet this notification and no earlier one.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while desk.count("SELECT count(*) FROM telegram_outbox WHERE status = 'pending'").await > 0 {
        assert!(std::time::Instant::now() < deadline, "the queue never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    desk.fake.fail_next("sendMessage", 5, &Failure::server_error());
    desk.task(&[&officer], "Destinada a fallar").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while desk.count("SELECT count(*) FROM telegram_outbox WHERE status = 'failed' AND attempts = 5").await == 0 {
        assert!(std::time::Instant::now() < deadline, "never recorded as failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = desk.said(901).iter().filter(|text| text.contains("Destinada")).count();
    assert_eq!(attempts, 5, "five attempts, every one refused, then no more");
    let metrics = desk.app.get_text(&desk.app.address, "/metrics").await.1;
    for outcome in ["sent", "skipped", "rate_limited", "retried", "failed"] {
        assert!(metrics.contains(&format!("telegram_sends_total{{outcome=\"{outcome}\"}}")), "{outcome}");
    }
    assert!(metrics.contains("telegram_delivery_latency_seconds") && metrics.contains("telegram_queue_depth"));
}

#[tokio::test]
async fn two_instances_deliver_each_notification_exactly_once() {
    let desk = desk(TelegramMode::Webhook).await;
    let peer = desk.app.spawn_peer().await;
    let mut updates = Updates::default();
    let mut officers = Vec::new();
    for n in 0..12 {
        let chat = 1000 + n;
        let (user, token, officer) = desk.linked(&format!("o{n}@x.org"), Role::Officer, chat, &mut updates).await;
        desk.consent(user, &token, "telegram_notifications", true).await;
        officers.push((chat, officer.unwrap()));
    }
    for (_, officer) in &officers {
        desk.task(&[officer], "Ronda doble").await;
        let body = json!({"title": "Ronda del par", "kind": "patrol", "scheduled_start": hours_from_now(1), "officer_ids": [officer]});
        let response = peer.send(Method::POST, "/api/v1/tasks", &desk.operator, Some(body)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let assigned = |call: &BotCall| call.method == "sendMessage" && call.text().contains("Nueva tarea asignada");
    desk.fake
        .wait_until(Duration::from_secs(30), "24 assignment messages", |calls| {
            calls.iter().filter(|call| assigned(call)).count() >= 24
        })
        .await;
    // Settled twice would mean sent twice: wait until the queue is empty, then count.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while desk.count("SELECT count(*) FROM telegram_outbox WHERE status = 'pending'").await > 0 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (chat, _) in &officers {
        let received = desk.sent(*chat).into_iter().filter(|call| assigned(call)).count();
        assert_eq!(received, 2, "chat {chat}");
    }
    assert_eq!(desk.count("SELECT count(*) FROM telegram_outbox WHERE status = 'sent'").await, 24);
}

#[tokio::test]
async fn one_instance_polls_with_a_correct_offset_and_each_update_is_answered_once() {
    let desk = desk(TelegramMode::Polling).await;
    let peer = desk.app.spawn_peer().await;
    let mut updates = Updates::default();
    for _ in 0..3 {
        desk.fake.push_update(updates.message(1101, "/ayuda"));
    }
    desk.fake
        .wait_until(Duration::from_secs(20), "three invitations", |calls| {
            calls.iter().filter(|call| call.method == "sendMessage").count() >= 3
        })
        .await;
    desk.fake
        .wait_until(Duration::from_secs(20), "the offset confirming them", |calls| {
            calls.iter().any(|call| call.method == "getUpdates" && call.body["offset"] == 4)
        })
        .await;
    desk.fake.push_update(updates.message(1101, "/mis_tareas"));
    desk.fake
        .wait_until(Duration::from_secs(20), "a fourth invitation and offset 5", |calls| {
            calls.iter().filter(|call| call.method == "sendMessage").count() >= 4
                && calls.iter().any(|call| call.method == "getUpdates" && call.body["offset"] == 5)
        })
        .await;
    assert_eq!(desk.sent(1101).len(), 4, "each update answered once");
    assert_eq!(desk.fake.conflicts(), 0, "never two pollers at once");
    assert!(!desk.fake.calls_to("deleteWebhook").is_empty());
    // The webhook route is served only with a secret; updates through it are deduplicated too.
    desk.deliver(json!({"update_id": 4, "message": {"message_id": 1, "date": 0, "text": "/ayuda", "chat": {"id": 1101, "type": "private"}}})).await;
    assert_eq!(desk.sent(1101).len(), 4);
    drop(peer);
}

#[tokio::test]
async fn the_webhook_is_registered_at_start_up_and_off_runs_nothing() {
    let fake = FakeBotApi::start().await;
    let app = TestApp::spawn_configured(Options::default(), |settings| {
        bot_on(settings, TelegramMode::Webhook, &fake);
        settings.telegram.webhook_url = Some("https://gad.example.org/telegram/webhook".into());
    })
    .await;
    let calls = fake.wait_until(Duration::from_secs(10), "setWebhook", |calls| !calls.is_empty()).await;
    assert_eq!(calls[0].method, "setWebhook");
    assert_eq!(calls[0].body["url"], "https://gad.example.org/telegram/webhook");
    assert_eq!(calls[0].body["secret_token"], SECRET);
    drop(app);

    let quiet = FakeBotApi::start().await;
    let app =
        TestApp::spawn_configured(Options::default(), |settings| bot_on(settings, TelegramMode::Off, &quiet)).await;
    let response = post_webhook(&app, &json!({"update_id": 1})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Linking still works: another deployment may run the bot; here the username is missing.
    app.create_user("u@x.org", Role::Officer).await;
    let token = app.login("u@x.org").await.access_token;
    let response = app.send(Method::POST, "/api/v1/users/me/telegram-link", &token, None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A whole start-up and a request later, the Bot API has heard nothing.
    let _ = app.get("/health/live").await;
    assert!(quiet.calls().is_empty());
}

#[tokio::test]
async fn the_webhook_answers_once_the_update_is_stored_and_the_reply_follows() {
    let desk = desk(TelegramMode::Webhook).await;
    let mut updates = Updates::default();
    desk.fake.hold("sendMessage");
    let update = updates.message(1201, "/ayuda");
    let id = update["update_id"].as_i64().unwrap();
    assert_eq!(desk.post_update(&update, Some(SECRET)).await, StatusCode::OK);
    // The reply is on its way but held: the webhook did not wait for it.
    desk.fake.wait_for_messages("sendMessage", 1201, 1).await;
    let pending =
        format!("SELECT count(*) FROM telegram_processed_updates WHERE update_id = {id} AND processed_at IS NULL");
    assert_eq!(desk.count(&pending).await, 1, "acknowledged while still being processed");
    // Redeliveries meanwhile, even concurrent ones, are acknowledged and not processed again.
    let again = futures_util::future::join_all((0..4).map(|_| desk.post_update(&update, Some(SECRET)))).await;
    assert!(again.iter().all(|status| *status == StatusCode::OK), "{again:?}");
    desk.fake.release();
    desk.processed(id).await;
    assert_eq!(desk.said(1201).len(), 1);
    assert!(desk.said(1201)[0].contains("no está vinculado"));
    // Processed, the row keeps only the update_id and its times.
    let forgotten = format!(
        "SELECT count(*) FROM telegram_processed_updates WHERE update_id = {id} \
         AND payload IS NULL AND chat_id IS NULL AND lease_until IS NULL"
    );
    assert_eq!(desk.count(&forgotten).await, 1);
}

#[tokio::test]
async fn a_quick_conversation_is_processed_in_order() {
    let desk = desk(TelegramMode::Webhook).await;
    let mut updates = Updates::default();
    desk.linked("dispatcher@x.org", Role::Operator, 1301, &mut updates).await;
    // Each step is sent as soon as the previous one is acknowledged, long before it is answered.
    desk.fake.hold("sendMessage");
    let steps = [
        updates.message(1301, "/crear"),
        updates.press(1301, 20, "c:k:patrol"),
        updates.message(1301, "Ronda sin esperas"),
        updates.press(1301, 21, "c:p:high"),
        updates.location(1301, 40.2, -3.6),
        updates.press(1301, 22, "c:ok"),
    ];
    for step in &steps {
        assert_eq!(desk.post_update(step, Some(SECRET)).await, StatusCode::OK);
    }
    desk.fake.release();
    desk.processed(steps[5]["update_id"].as_i64().unwrap()).await;
    let sent = desk.sent(1301);
    let asked = &sent[sent.len() - 6..];
    let texts: Vec<_> = asked.iter().map(BotCall::text).collect();
    assert!(asked[0].buttons().iter().any(|(_, data)| data == "c:k:patrol"), "{texts:?}");
    assert!(texts[1].contains("título"), "{texts:?}");
    assert!(texts[2].contains("Ronda sin esperas"), "{texts:?}");
    assert!(texts[3].contains("ubicación"), "{texts:?}");
    assert!(texts[4].contains("¿La creo?"), "{texts:?}");
    assert!(texts[5].contains("Tarea creada"), "{texts:?}");
    let created = desk.read("/api/v1/tasks?q=esperas").await;
    let items = created["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!((items[0]["priority"].as_str(), items[0]["kind"].as_str()), (Some("high"), Some("patrol")));
}

#[tokio::test]
async fn updates_left_unfinished_are_taken_over_by_one_sweep_once() {
    let desk = desk(TelegramMode::Webhook).await;
    let peer = desk.app.spawn_peer().await;
    let mut updates = Updates::default();
    // As a crashed instance leaves them: stored, leased to an owner that is gone.
    let abandoned = updates.message(1401, "/ayuda");
    let held = updates.message(1402, "/ayuda");
    let mut db = desk.app.db().await;
    for (update, lease) in [(&abandoned, "- interval '1 second'"), (&held, "+ interval '1 hour'")] {
        sql_query(format!(
            "INSERT INTO telegram_processed_updates (update_id, chat_id, payload, lease_owner, lease_until) \
             VALUES ($1, $2, $3, gen_random_uuid(), now() {lease})"
        ))
        .bind::<BigInt, _>(update["update_id"].as_i64().unwrap())
        .bind::<BigInt, _>(update["message"]["chat"]["id"].as_i64().unwrap())
        .bind::<diesel::sql_types::Text, _>(update.to_string())
        .execute(&mut db)
        .await
        .unwrap();
    }
    desk.processed(abandoned["update_id"].as_i64().unwrap()).await;
    assert_eq!(desk.said(1401).len(), 1, "processed once, by one of the two instances");
    // Telegram redelivering it changes nothing.
    desk.deliver(abandoned).await;
    assert_eq!(desk.said(1401).len(), 1);
    // An update whose lease is held is left to its holder.
    let pending = "SELECT count(*) FROM telegram_processed_updates WHERE processed_at IS NULL";
    assert_eq!(desk.count(pending).await, 1);
    assert!(desk.said(1402).is_empty());
    // Once that lease runs out too, it is taken over.
    sql_query(
        "UPDATE telegram_processed_updates SET lease_until = now() - interval '1 second' WHERE processed_at IS NULL",
    )
    .execute(&mut db)
    .await
    .unwrap();
    desk.processed(held["update_id"].as_i64().unwrap()).await;
    assert_eq!(desk.said(1402).len(), 1);
    drop(peer);
}

#[tokio::test]
async fn the_webhook_acknowledges_nothing_it_could_not_store() {
    let fake = FakeBotApi::start().await;
    let options = Options { database: Database::Unreachable, ..Options::default() };
    let app = TestApp::spawn_configured(options, |settings| bot_on(settings, TelegramMode::Webhook, &fake)).await;
    let response = post_webhook(&app, &Updates::default().message(1501, "/ayuda")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "Telegram delivers it again");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(fake.calls_to("sendMessage").is_empty());
}
