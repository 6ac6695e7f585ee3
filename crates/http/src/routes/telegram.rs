//! Linking a Telegram chat to the caller (SPEC §6): `POST /api/v1/users/me/telegram-link` hands
//! out a one-time code and its deep link, `/start <code>` in the bot spends it, `DELETE` unlinks.
//! Also the description of `POST /telegram/webhook`, which the app serves with the bot.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, delete, post, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gad_domain::audit::{AuditEntry, Outcome};
use gad_domain::telegram::{LINK_CODE_LIFETIME, TelegramLinks};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody};

/// The link store and the bot's username (for deep links); registered by the app.
#[derive(Clone)]
pub struct TelegramLinking {
    pub links: Arc<dyn TelegramLinks>,
    /// `TELEGRAM_BOT_USERNAME`; without it no deep link can be made.
    pub bot_username: Option<String>,
}

impl std::fmt::Debug for TelegramLinking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramLinking").field("bot_username", &self.bot_username).finish_non_exhaustive()
    }
}

/// A one-time code that links the Telegram chat where it is sent (`/start <code>`) to the caller.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TelegramLinkView {
    /// 43 characters of `A-Z a-z 0-9 _ -` (fits Telegram's start parameter); single use.
    #[schema(example = "Qm9vdHN0cmFwLWNvZGUtZXhhbXBsZS0xMjM0NTY3ODk")]
    code: String,
    /// `https://t.me/<bot>?start=<code>`: opens the bot with the code.
    #[schema(example = "https://t.me/gad_ops_bot?start=Qm9vdHN0cmFwLWNvZGUtZXhhbXBsZS0xMjM0NTY3ODk")]
    deep_link: String,
    /// Ten minutes after issue.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
}

fn audit(principal: &Principal, action: &'static str, req: &HttpRequest) -> AuditEntry {
    AuditEntry {
        actor: Some((principal.user_id, principal.role)),
        action,
        resource_type: "user",
        resource_id: Some(principal.user_id.as_uuid()),
        outcome: Outcome::Success,
        context: request_context(req),
    }
}

fn linking(linking: Option<web::Data<TelegramLinking>>) -> Result<web::Data<TelegramLinking>, ApiError> {
    linking.ok_or_else(|| ApiError::unavailable("Telegram linking is not configured"))
}

/// A code to link a Telegram chat to the caller: valid 10 minutes, once. Earlier codes stay
/// valid until they expire; the newest link replaces any earlier one.
#[utoipa::path(
    tag = "telegram",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "a single-use code, its deep link and its expiry", body = TelegramLinkView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 503, description = "`TELEGRAM_BOT_USERNAME` is not configured, or a dependency is down", body = ErrorBody),
    )
)]
#[post("/api/v1/users/me/telegram-link")]
pub(crate) async fn create_telegram_link(
    req: HttpRequest,
    principal: Principal,
    telegram: Option<web::Data<TelegramLinking>>,
) -> Result<HttpResponse, ApiError> {
    let telegram = linking(telegram)?;
    let Some(bot) = telegram.bot_username.as_deref() else {
        return Err(ApiError::unavailable("Telegram linking needs TELEGRAM_BOT_USERNAME"));
    };
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(ApiError::internal)?;
    let code = URL_SAFE_NO_PAD.encode(secret);
    let expires_at =
        telegram.links.issue_code(&code, LINK_CODE_LIFETIME, audit(&principal, "telegram.link_code", &req)).await?;
    let deep_link = format!("https://t.me/{bot}?start={code}");
    Ok(HttpResponse::Created().json(TelegramLinkView { code, deep_link, expires_at }))
}

/// Unlinks the caller's Telegram chat (and forgets its conversations and unused codes).
/// Idempotent: 204 whether or not a chat was linked.
#[utoipa::path(
    tag = "telegram",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "no chat is linked to the caller any more"),
        (status = 401, description = "not authenticated", body = ErrorBody),
    )
)]
#[delete("/api/v1/users/me/telegram-link")]
pub(crate) async fn delete_telegram_link(
    req: HttpRequest,
    principal: Principal,
    telegram: Option<web::Data<TelegramLinking>>,
) -> Result<HttpResponse, ApiError> {
    let telegram = linking(telegram)?;
    telegram.links.unlink(principal.user_id, audit(&principal, "telegram.unlink", &req)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Bot API updates pushed by Telegram. Served by the bot (`gad-telegram`) when
/// `TELEGRAM_MODE=webhook` (and in polling mode when a webhook secret is set); described here
/// so that the document lists every route. Each `update_id` is processed once; see
/// docs/TELEGRAM.md.
#[utoipa::path(
    post,
    path = "/telegram/webhook",
    tag = "telegram",
    params((
        "X-Telegram-Bot-Api-Secret-Token" = String, Header,
        description = "the configured TELEGRAM_WEBHOOK_SECRET, compared in constant time"
    )),
    request_body(content = Object, description = "a Bot API `Update`", content_type = "application/json"),
    responses(
        (status = 200, description = "processed, or a duplicate or unhandled kind acknowledged (`{}`)"),
        (status = 400, description = "the body is not a JSON update", body = ErrorBody),
        (status = 401, description = "the secret header is missing; nothing is processed", body = ErrorBody),
        (status = 403, description = "the secret header is wrong; nothing is processed", body = ErrorBody),
        (status = 404, description = "the bot receives no updates here (`TELEGRAM_MODE` is `off`, or polling without \
            a webhook secret)", body = ErrorBody),
        (status = 503, description = "the database is unavailable; Telegram delivers the update again", body = ErrorBody),
    )
)]
#[expect(dead_code, reason = "describes the route that gad-telegram serves")]
pub(crate) fn telegram_webhook() {}
