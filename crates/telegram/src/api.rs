//! A typed client of the Bot API methods GAD uses, over reqwest with rustls. Every call has a
//! timeout; the token is part of the URL only, and URLs are stripped from every error, so it
//! never reaches a log line or an error message.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::types::{InlineKeyboard, Message, Update};

/// How GAD formats its messages (user text is escaped for it, see [`crate::text`]).
pub const PARSE_MODE: &str = "HTML";

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotApiError {
    /// Telegram answered `{"ok": false, …}`.
    #[error("Bot API error {code}: {description}")]
    Api { code: u16, description: String, retry_after: Option<u64> },
    /// No usable answer: connection, timeout, or a body that is not the Bot API's.
    #[error("Bot API unreachable: {0}")]
    Transport(String),
}

impl BotApiError {
    /// Seconds Telegram asked to wait (429 `parameters.retry_after`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            Self::Transport(_) => None,
        }
    }

    /// 409: another `getUpdates` is running, or a webhook is set.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Api { code: 409, .. })
    }

    /// Errors that repeating the same request cannot fix (blocked bot, chat not found, bad text).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Api { code: 400 | 403 | 404, .. })
    }

    /// "message is not modified": an edit that changes nothing, which is not a failure.
    pub fn is_not_modified(&self) -> bool {
        matches!(self, Self::Api { code: 400, description, .. } if description.contains("message is not modified"))
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    ok: bool,
    result: Option<T>,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

#[derive(Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
}

/// The Bot API at `base_url` for one bot.
#[derive(Clone)]
pub struct BotApi {
    client: reqwest::Client,
    /// `<base>/bot<token>/`; never logged.
    endpoint: String,
    timeout: Duration,
}

impl std::fmt::Debug for BotApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotApi").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl BotApi {
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> Result<Self, BotApiError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|error| BotApiError::Transport(error.without_url().to_string()))?;
        Ok(Self { client, endpoint: format!("{}/bot{token}/", base_url.trim_end_matches('/')), timeout })
    }

    /// Calls `method` with a JSON body; `extra` extends the timeout (long polling).
    async fn call<T: DeserializeOwned>(&self, method: &str, body: &Value, extra: Duration) -> Result<T, BotApiError> {
        let started = std::time::Instant::now();
        let outcome = self.request(method, body, extra).await;
        let label = match &outcome {
            Ok(_) => "ok",
            Err(BotApiError::Api { code: 429, .. }) => "rate_limited",
            Err(BotApiError::Api { .. }) => "error",
            Err(BotApiError::Transport(_)) => "unreachable",
        };
        metrics::histogram!("telegram_api_call_seconds", "method" => method.to_owned(), "outcome" => label)
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        body: &Value,
        extra: Duration,
    ) -> Result<T, BotApiError> {
        let transport = |error: reqwest::Error| BotApiError::Transport(error.without_url().to_string());
        let response = self
            .client
            .post(format!("{}{method}", self.endpoint))
            .timeout(self.timeout + extra)
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let envelope: Envelope<T> = response.json().await.map_err(|error| {
            BotApiError::Transport(format!(
                "{method} answered {status} without a Bot API body: {}",
                error.without_url()
            ))
        })?;
        match (envelope.ok, envelope.result) {
            (true, Some(result)) => Ok(result),
            _ => Err(BotApiError::Api {
                code: envelope.error_code.unwrap_or(status.as_u16()),
                description: envelope.description.unwrap_or_default(),
                retry_after: envelope.parameters.and_then(|parameters| parameters.retry_after),
            }),
        }
    }

    pub async fn send_message(
        &self,
        chat_id: i64,
        text: &str,
        keyboard: Option<&InlineKeyboard>,
    ) -> Result<Message, BotApiError> {
        let mut body = json!({"chat_id": chat_id, "text": text, "parse_mode": PARSE_MODE});
        if let Some(keyboard) = keyboard {
            body["reply_markup"] = json!({ "inline_keyboard": keyboard });
        }
        self.call("sendMessage", &body, Duration::ZERO).await
    }

    /// Replaces the text (and buttons: none when `keyboard` is `None`) of a message.
    pub async fn edit_message_text(
        &self,
        chat_id: i64,
        message_id: i64,
        text: &str,
        keyboard: Option<&InlineKeyboard>,
    ) -> Result<(), BotApiError> {
        let keyboard = keyboard.map_or_else(Vec::new, Clone::clone);
        let body = json!({
            "chat_id": chat_id, "message_id": message_id, "text": text, "parse_mode": PARSE_MODE,
            "reply_markup": { "inline_keyboard": keyboard },
        });
        match self.call::<Value>("editMessageText", &body, Duration::ZERO).await {
            Err(error) if error.is_not_modified() => Ok(()),
            outcome => outcome.map(drop),
        }
    }

    pub async fn answer_callback_query(&self, id: &str, text: Option<&str>) -> Result<(), BotApiError> {
        let mut body = json!({ "callback_query_id": id });
        if let Some(text) = text {
            body["text"] = json!(crate::text::truncate(text, 200));
        }
        self.call::<bool>("answerCallbackQuery", &body, Duration::ZERO).await.map(drop)
    }

    /// Long polling: waits up to `wait` for updates after `offset`; each with its JSON as received.
    pub async fn get_updates(&self, offset: Option<i64>, wait: Duration) -> Result<Vec<(Update, Value)>, BotApiError> {
        let mut body = json!({ "timeout": wait.as_secs(), "allowed_updates": ["message", "callback_query"] });
        if let Some(offset) = offset {
            body["offset"] = json!(offset);
        }
        // Updates of kinds GAD does not know must not fail the whole batch.
        let raw: Vec<Value> = self.call("getUpdates", &body, wait).await?;
        Ok(raw.into_iter().filter_map(|raw| Some((Update::parse(&raw)?, raw))).collect())
    }

    pub async fn set_webhook(&self, url: &str, secret: &str) -> Result<(), BotApiError> {
        let body = json!({
            "url": url, "secret_token": secret, "allowed_updates": ["message", "callback_query"],
        });
        self.call::<bool>("setWebhook", &body, Duration::ZERO).await.map(drop)
    }

    /// Polling needs no webhook (Telegram refuses `getUpdates` while one is set).
    pub async fn delete_webhook(&self) -> Result<(), BotApiError> {
        self.call::<bool>("deleteWebhook", &json!({}), Duration::ZERO).await.map(drop)
    }
}
