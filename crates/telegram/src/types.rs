//! The parts of Bot API objects that GAD reads or writes. Unknown fields are ignored; an update
//! of a kind GAD does not handle parses to [`UpdateKind::Other`] and is acknowledged unanswered.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub struct Chat {
    pub id: i64,
    #[serde(rename = "type", default)]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub horizontal_accuracy: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub message_id: i64,
    pub chat: Chat,
    pub from: Option<User>,
    pub text: Option<String>,
    pub location: Option<Location>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    pub id: String,
    pub from: User,
    /// The message the button belongs to (absent when it is too old for Telegram to say).
    pub message: Option<Message>,
    pub data: Option<String>,
}

#[derive(Debug, Clone)]
pub enum UpdateKind {
    Message(Message),
    CallbackQuery(CallbackQuery),
    /// Edited messages, channel posts, inline queries, …: acknowledged, not answered.
    Other,
}

#[derive(Debug, Clone)]
pub struct Update {
    pub update_id: i64,
    pub kind: UpdateKind,
}

impl Update {
    /// The update, or `None` without a usable `update_id`. A known kind whose body does not
    /// parse is treated as `Other`: it is acknowledged and ignored.
    pub fn parse(raw: &Value) -> Option<Self> {
        let update_id = raw.get("update_id")?.as_i64()?;
        let kind = if let Some(message) = raw.get("message") {
            Message::deserialize(message).map_or(UpdateKind::Other, UpdateKind::Message)
        } else if let Some(query) = raw.get("callback_query") {
            CallbackQuery::deserialize(query).map_or(UpdateKind::Other, UpdateKind::CallbackQuery)
        } else {
            UpdateKind::Other
        };
        Some(Self { update_id, kind })
    }

    /// The chat the update comes from, which orders the processing of its updates.
    pub fn chat_id(&self) -> Option<i64> {
        match &self.kind {
            UpdateKind::Message(message) => Some(message.chat.id),
            UpdateKind::CallbackQuery(query) => {
                Some(query.message.as_ref().map_or(query.from.id, |message| message.chat.id))
            }
            UpdateKind::Other => None,
        }
    }
}

/// One inline button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Button {
    pub text: String,
    pub callback_data: String,
}

/// The rows of an inline keyboard.
pub type InlineKeyboard = Vec<Vec<Button>>;

/// Telegram refuses callback data longer than this.
pub const MAX_CALLBACK_DATA: usize = 64;

impl Button {
    /// A button whose payload fits Telegram's limit; `None` otherwise (a programming error that
    /// must not reach the Bot API).
    pub fn new(text: &str, callback_data: String) -> Option<Self> {
        (callback_data.len() <= MAX_CALLBACK_DATA).then(|| Self { text: text.to_owned(), callback_data })
    }
}
