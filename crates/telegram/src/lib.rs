//! Telegram Bot API adapter: the rate-limited, retrying sender, update handling (webhook and
//! long polling) and the bot's conversations (SPEC §6). Only its settings until the Telegram
//! issue lands.

mod settings;

pub use settings::{TelegramMode, TelegramSettings};
