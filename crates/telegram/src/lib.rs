//! Telegram Bot API adapter: the rate-limited, retrying sender, update handling (webhook and
//! long polling) and the bot's conversations (SPEC §6). Empty until the Telegram issue lands.
