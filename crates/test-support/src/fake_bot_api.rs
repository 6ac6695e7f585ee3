//! A fake Telegram Bot API server speaking the real wire protocol: `POST /bot<token>/<method>`
//! with a JSON body, answered `{"ok": true, "result": …}` or `{"ok": false, "error_code",
//! "description", "parameters": {"retry_after"}}`. It records every call, can be told to fail
//! the next calls of a method (429 with `retry_after`, 5xx, …) or to hold them unanswered,
//! holds updates for `getUpdates` (long polling with Telegram's offset rules) and answers a
//! second concurrent poller with 409, as Telegram does.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One recorded call.
#[derive(Debug, Clone)]
pub struct BotCall {
    pub token: String,
    pub method: String,
    pub body: Value,
    pub at: Instant,
}

impl BotCall {
    /// `chat_id` of the call, if any.
    pub fn chat_id(&self) -> Option<i64> {
        self.body.get("chat_id").and_then(Value::as_i64)
    }

    pub fn text(&self) -> &str {
        self.body.get("text").and_then(Value::as_str).unwrap_or_default()
    }

    /// Every `callback_data` of the inline keyboard.
    pub fn buttons(&self) -> Vec<(String, String)> {
        self.body
            .pointer("/reply_markup/inline_keyboard")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .map(|button| {
                (
                    button["text"].as_str().unwrap_or_default().to_owned(),
                    button["callback_data"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// A scripted failure: the Bot API's error body with this status.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: u16,
    pub description: String,
    pub retry_after: Option<u64>,
}

impl Failure {
    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            retry_after: Some(retry_after),
        }
    }

    pub fn server_error() -> Self {
        Self { code: 502, description: "Bad Gateway".into(), retry_after: None }
    }
}

#[derive(Default)]
struct State {
    calls: Mutex<Vec<BotCall>>,
    failures: Mutex<VecDeque<(String, Failure)>>,
    updates: Mutex<Vec<Value>>,
    update_arrived: Notify,
    called: Notify,
    /// The method whose calls are left unanswered for now.
    held: Mutex<Option<String>>,
    released: Notify,
    polling: AtomicUsize,
    conflicts: AtomicUsize,
    next_message_id: AtomicI64,
}

/// The running fake; stopped when dropped.
pub struct FakeBotApi {
    url: String,
    state: Arc<State>,
    server: ServerHandle,
}

impl std::fmt::Debug for FakeBotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeBotApi").field("url", &self.url).finish_non_exhaustive()
    }
}

impl FakeBotApi {
    pub async fn start() -> Self {
        let state = Arc::new(State::default());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let shared = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new().app_data(shared.clone()).route("/bot{token}/{method}", web::post().to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, state, server: handle }
    }

    /// The base URL to configure as `TELEGRAM_API_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn calls(&self) -> Vec<BotCall> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<BotCall> {
        self.calls().into_iter().filter(|call| call.method == method).collect()
    }

    /// Waits until `done` holds for the recorded calls, or panics after `deadline`.
    pub async fn wait_until(&self, deadline: Duration, what: &str, done: impl Fn(&[BotCall]) -> bool) -> Vec<BotCall> {
        let until = Instant::now() + deadline;
        loop {
            let called = self.state.called.notified();
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            let left = until
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("the fake Bot API never saw {what}; calls: {:#?}", summary(&calls)));
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), called).await;
        }
    }

    /// Waits for at least `count` calls of `method` to `chat` and returns them.
    pub async fn wait_for_messages(&self, method: &str, chat: i64, count: usize) -> Vec<BotCall> {
        let what = format!("{count} {method} to chat {chat}");
        self.wait_until(Duration::from_secs(20), &what, |calls| {
            calls.iter().filter(|call| call.method == method && call.chat_id() == Some(chat)).count() >= count
        })
        .await
        .into_iter()
        .filter(|call| call.method == method && call.chat_id() == Some(chat))
        .collect()
    }

    /// The next `times` calls of `method` fail with `failure`.
    pub fn fail_next(&self, method: &str, times: usize, failure: &Failure) {
        let mut failures = self.state.failures.lock().unwrap();
        for _ in 0..times {
            failures.push_back((method.to_owned(), failure.clone()));
        }
    }

    /// Calls of `method` are recorded as they arrive but answered only after [`Self::release`].
    pub fn hold(&self, method: &str) {
        *self.state.held.lock().unwrap() = Some(method.to_owned());
    }

    /// Answers the held calls, and the next ones at once.
    pub fn release(&self) {
        *self.state.held.lock().unwrap() = None;
        self.state.released.notify_waiters();
    }

    /// An update for `getUpdates`.
    pub fn push_update(&self, update: Value) {
        self.state.updates.lock().unwrap().push(update);
        self.state.update_arrived.notify_waiters();
    }

    /// How many `getUpdates` were refused because another was running.
    pub fn conflicts(&self) -> usize {
        self.state.conflicts.load(Ordering::SeqCst)
    }
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

fn summary(calls: &[BotCall]) -> Vec<String> {
    calls.iter().map(|call| format!("{} {}", call.method, call.body)).collect()
}

fn error(failure: &Failure) -> HttpResponse {
    let mut body = json!({"ok": false, "error_code": failure.code, "description": failure.description});
    if let Some(seconds) = failure.retry_after {
        body["parameters"] = json!({ "retry_after": seconds });
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(failure.code).unwrap()).json(body)
}

fn ok(result: &Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({"ok": true, "result": result}))
}

async fn answer(path: web::Path<(String, String)>, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let (token, method) = path.into_inner();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let call = BotCall { token, method: method.clone(), body: body.clone(), at: Instant::now() };
    state.calls.lock().unwrap().push(call);
    state.called.notify_waiters();
    loop {
        let released = state.released.notified();
        if state.held.lock().unwrap().as_deref() != Some(method.as_str()) {
            break;
        }
        released.await;
    }
    let scripted = {
        let mut failures = state.failures.lock().unwrap();
        let position = failures.iter().position(|(failing, _)| *failing == method);
        position.and_then(|position| failures.remove(position)).map(|(_, failure)| failure)
    };
    if let Some(failure) = scripted {
        return error(&failure);
    }
    match method.as_str() {
        "sendMessage" => {
            let id = state.next_message_id.fetch_add(1, Ordering::SeqCst) + 1;
            ok(
                &json!({"message_id": id, "date": 0, "chat": {"id": body["chat_id"], "type": "private"}, "text": body["text"]}),
            )
        }
        "editMessageText" => ok(&json!({"message_id": body["message_id"], "date": 0,
            "chat": {"id": body["chat_id"], "type": "private"}, "text": body["text"]})),
        "answerCallbackQuery" | "setWebhook" | "deleteWebhook" => ok(&json!(true)),
        "getUpdates" => get_updates(&body, &state).await,
        _ => error(&Failure { code: 404, description: "Not Found".into(), retry_after: None }),
    }
}

/// Telegram's rules: an offset confirms every update below it; the rest are returned (again)
/// until confirmed; with none ready the call waits up to `timeout` seconds.
async fn get_updates(body: &Value, state: &State) -> HttpResponse {
    if state.polling.fetch_add(1, Ordering::SeqCst) > 0 {
        state.polling.fetch_sub(1, Ordering::SeqCst);
        state.conflicts.fetch_add(1, Ordering::SeqCst);
        return error(&Failure {
            code: 409,
            description: "Conflict: terminated by other getUpdates request".into(),
            retry_after: None,
        });
    }
    let offset = body.get("offset").and_then(Value::as_i64);
    let wait = Duration::from_secs(body.get("timeout").and_then(Value::as_u64).unwrap_or(0));
    let until = Instant::now() + wait;
    let ready = loop {
        let arrived = state.update_arrived.notified();
        let ready: Vec<Value> = {
            let mut updates = state.updates.lock().unwrap();
            if let Some(offset) = offset {
                updates.retain(|update| update["update_id"].as_i64().unwrap_or_default() >= offset);
            }
            updates.clone()
        };
        let left = until.saturating_duration_since(Instant::now());
        if !ready.is_empty() || left.is_zero() {
            break ready;
        }
        let _ = tokio::time::timeout(left, arrived).await;
    };
    state.polling.fetch_sub(1, Ordering::SeqCst);
    ok(&Value::Array(ready))
}
