//! The Telegram bot in the instance: the linking routes' store, and with a bot token the bot
//! itself — `POST /telegram/webhook`, the webhook's registration, the single poller and the
//! notification queue — over the same ports as the REST API.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use gad_domain::background::BackgroundJob;
use gad_domain::limits::RateLimiter;
use gad_http::error::ApiError;
use gad_http::rate_limit::InProcessRateLimiter;
use gad_http::{ExtraRoutes, Services, TelegramLinking};
use gad_pg::{PgPool, PgTelegramStore};
use gad_redis::Redis;
use gad_telegram::types::Update;
use gad_telegram::{Bot, BotApi, BotPorts, Inbox, Notifier, TelegramMode, WebhookSecret};

use crate::config::Settings;

/// The routes to add to the API listener, and the jobs to run.
pub struct TelegramService {
    pub routes: ExtraRoutes,
    pub jobs: Vec<BackgroundJob>,
}

impl std::fmt::Debug for TelegramService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramService").field("jobs", &self.jobs.len()).finish_non_exhaustive()
    }
}

/// The webhook's receiver.
#[derive(Clone, Debug)]
struct Webhook {
    inbox: Inbox,
    secret: WebhookSecret,
}

/// How long a failed `setWebhook` waits before it is tried again.
const REGISTRATION_RETRY: Duration = Duration::from_secs(10);

pub fn service(
    settings: &Settings,
    pg_pool: &PgPool,
    redis: Option<&Redis>,
    services: &Services,
) -> anyhow::Result<TelegramService> {
    let telegram = &settings.telegram;
    let store = PgTelegramStore::new(pg_pool.clone(), &settings.database.url);
    let linking = TelegramLinking { links: Arc::new(store.clone()), bot_username: telegram.bot_username.clone() };
    let mode = telegram.effective_mode();
    let token = telegram.bot_token.as_ref().filter(|_| mode != TelegramMode::Off);
    let Some(token) = token else {
        tracing::info!("Telegram bot off");
        return Ok(TelegramService { routes: linking_routes(linking, None), jobs: Vec::new() });
    };
    let api = BotApi::new(&telegram.api_url, token.expose(), telegram.request_timeout)?;
    let ports = BotPorts {
        links: Arc::new(store.clone()),
        bookkeeping: Arc::new(store.clone()),
        tasks: Arc::clone(&services.tasks),
        officers: Arc::clone(&services.officers),
        stats: Arc::clone(&services.stats),
        clock: Arc::clone(&services.clock),
    };
    let bot = Bot::new(api.clone(), ports);
    let local: Arc<dyn RateLimiter> = Arc::new(InProcessRateLimiter::default());
    let limiter: Arc<dyn RateLimiter> = match redis {
        Some(redis) => Arc::new(redis.rate_limiter(local)),
        None => local,
    };
    let mut jobs = Notifier::new(api.clone(), Arc::new(store.clone()), limiter, telegram.notifications.clone()).jobs();
    let (inbox, processing) = Inbox::new(bot, Arc::new(store.clone()));
    jobs.push(processing);
    if mode == TelegramMode::Polling {
        let poller = gad_telegram::poll(api.clone(), inbox.clone(), Arc::new(store));
        jobs.push(BackgroundJob::new("telegram poller", poller));
    }
    let secret = telegram.webhook_secret.as_ref().map(|secret| WebhookSecret::new(secret.expose()));
    if mode == TelegramMode::Webhook
        && let (Some(url), Some(secret)) = (telegram.webhook_url.clone(), telegram.webhook_secret.as_ref())
    {
        let secret = secret.expose().to_owned();
        jobs.push(BackgroundJob::new("telegram webhook registration", register_webhook(api, url, secret)));
    }
    tracing::info!(mode = ?mode, "Telegram bot on");
    let webhook = secret.map(|secret| Webhook { inbox, secret });
    Ok(TelegramService { routes: linking_routes(linking, webhook), jobs })
}

fn linking_routes(linking: TelegramLinking, webhook: Option<Webhook>) -> ExtraRoutes {
    Arc::new(move |cfg| {
        cfg.app_data(web::Data::new(linking.clone()));
        if let Some(webhook) = &webhook {
            cfg.app_data(web::Data::new(webhook.clone())).route("/telegram/webhook", web::post().to(receive));
        }
    })
}

/// `setWebhook` until Telegram accepts it; GAD serves meanwhile.
async fn register_webhook(api: BotApi, url: String, secret: String) {
    loop {
        match api.set_webhook(&url, &secret).await {
            Ok(()) => {
                tracing::info!("Telegram webhook registered");
                return;
            }
            Err(error) => tracing::warn!(%error, "registering the Telegram webhook failed; retrying"),
        }
        tokio::time::sleep(REGISTRATION_RETRY).await;
    }
}

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// `POST /telegram/webhook`: the secret first (nothing is read before it matches), then the
/// update, stored in one statement and acknowledged at once; it is processed in the background.
/// 503 when it could not be stored, so that Telegram delivers it again.
async fn receive(req: HttpRequest, body: web::Bytes, webhook: web::Data<Webhook>) -> Result<HttpResponse, ApiError> {
    let Some(presented) = req.headers().get(SECRET_HEADER) else {
        return Err(ApiError::unauthenticated("the X-Telegram-Bot-Api-Secret-Token header is missing"));
    };
    if !webhook.secret.matches(presented.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the X-Telegram-Bot-Api-Secret-Token header is wrong",
        ));
    }
    let not_an_update = || ApiError::bad_request("the body is not a JSON update");
    let text = std::str::from_utf8(&body).map_err(|_| not_an_update())?;
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|_| not_an_update())?;
    let update = Update::parse(&raw).ok_or_else(|| ApiError::bad_request("an update needs a numeric update_id"))?;
    webhook.inbox.receive(update, text).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}
