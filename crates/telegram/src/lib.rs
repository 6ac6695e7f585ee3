//! Telegram Bot API adapter (SPEC §6): a typed client of the Bot API, the bot (commands,
//! buttons and the `/crear` conversation, all through the domain's use cases as the linked
//! user), receiving updates by webhook or long polling into a durable inbox processed in the
//! background, and the rate-limited, retrying notification sender fed by the event log.

pub mod api;
mod bot;
mod conversation;
mod inbox;
mod notifier;
mod receiver;
mod render;
mod settings;
pub mod text;
pub mod types;

pub use api::{BotApi, BotApiError};
pub use bot::{Bot, BotPorts};
pub use inbox::{Inbox, Received};
pub use notifier::{Notifier, NotifierSettings};
pub use receiver::{WebhookSecret, poll};
pub use settings::{TelegramMode, TelegramSettings};
