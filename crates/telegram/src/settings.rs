//! The `telegram` section of the configuration.

use std::time::Duration;

use gad_domain::settings::{self, Secret};
use serde::{Deserialize, Serialize};

use crate::notifier::NotifierSettings;

/// How the bot receives updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    Webhook,
    Polling,
    Off,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    /// `TELEGRAM_MODE`; defaults to `polling` with a token and `off` without one.
    pub mode: Option<TelegramMode>,
    /// `TELEGRAM_API_URL`.
    pub api_url: String,
    /// `TELEGRAM_BOT_USERNAME`, for deep links.
    pub bot_username: Option<String>,
    /// `TELEGRAM_WEBHOOK_URL`: the public URL of `POST /telegram/webhook`; when set in webhook
    /// mode, GAD registers it (`setWebhook`) at start-up.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Upper bound of one Bot API call (long polling waits this much longer).
    #[serde(rename = "request_timeout_ms", with = "settings::millis")]
    pub request_timeout: Duration,
    pub notifications: NotifierSettings,
    /// `TELEGRAM_BOT_TOKEN` (secret).
    #[serde(skip_deserializing, serialize_with = "settings::redacted")]
    pub bot_token: Option<Secret>,
    /// `TELEGRAM_WEBHOOK_SECRET` (secret), checked against `X-Telegram-Bot-Api-Secret-Token`.
    #[serde(skip_deserializing, serialize_with = "settings::redacted")]
    pub webhook_secret: Option<Secret>,
}

impl TelegramSettings {
    pub fn effective_mode(&self) -> TelegramMode {
        match (self.mode, &self.bot_token) {
            (_, None) => TelegramMode::Off,
            (Some(mode), Some(_)) => mode,
            (None, Some(_)) => TelegramMode::Polling,
        }
    }

    /// Everything wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.effective_mode() == TelegramMode::Webhook && self.webhook_secret.is_none() {
            problems.push("TELEGRAM_MODE=webhook requires TELEGRAM_WEBHOOK_SECRET".into());
        }
        if let Some(url) = &self.webhook_url
            && !url.starts_with("https://")
            && !url.starts_with("http://")
        {
            problems.push("TELEGRAM_WEBHOOK_URL must be an http(s) URL".into());
        }
        if self.request_timeout.is_zero() {
            problems.push("telegram.request_timeout_ms must be positive".into());
        }
        problems.extend(self.notifications.problems());
        problems
    }
}
