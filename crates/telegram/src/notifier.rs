//! Notifications: a consumer of the event log queues them (its position persisted with the
//! queue, in one transaction), and senders on every instance claim and send them within
//! Telegram's limits — about 30 messages per second for the bot (counted across instances
//! through the shared rate limiter) and one per second per chat. Requests never wait for any of
//! this: they only write their event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gad_domain::background::BackgroundJob;
use gad_domain::limits::{Decision, Rate, RateLimiter};
use gad_domain::telegram::{Delivery, Notification, NotificationKind, NotificationQueue};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::api::{BotApi, BotApiError};
use crate::render::{EventTask, priority_label};
use crate::text::{escape, fit};

/// How the queue is worked (the `telegram.notifications` section of the configuration).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierSettings {
    /// Messages per second for the whole bot, shared by every instance.
    pub bot_per_second: u32,
    /// Seconds between two messages to the same chat.
    pub chat_interval_s: u64,
    /// Attempts before a notification is recorded as failed (429 answers do not count).
    pub max_attempts: i32,
    /// First retry delay; doubled at every attempt up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// How often the event log is read when nothing woke the consumer.
    pub poll_interval_ms: u64,
}

impl NotifierSettings {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.bot_per_second == 0 || self.chat_interval_s == 0 || self.max_attempts < 1 {
            problems.push("telegram.notifications rates, interval and attempts must be positive".into());
        }
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms || self.poll_interval_ms == 0 {
            problems.push("telegram.notifications backoff and poll interval must be positive, max ≥ base".into());
        }
        problems
    }

    /// The delay before retry number `attempt` (1-based): base · 2^(attempt-1), capped.
    pub fn backoff(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or_default().min(20);
        Duration::from_millis(self.backoff_base_ms.saturating_mul(1 << exponent).min(self.backoff_max_ms))
    }
}

/// Events consumed per transaction, and notifications claimed at once.
const CONSUME_BATCH: i64 = 500;
const CLAIM_BATCH: i64 = 50;
/// How long a claimed notification is reserved for its sender (then another may take it).
const LEASE: Duration = Duration::from_secs(60);
/// How long workers wait after a storage failure.
const STORE_PAUSE: Duration = Duration::from_secs(1);

/// The notifier of one instance.
#[derive(Clone)]
pub struct Notifier {
    api: BotApi,
    queue: Arc<dyn NotificationQueue>,
    limiter: Arc<dyn RateLimiter>,
    settings: NotifierSettings,
    /// Wakes the sender when the consumer queued something.
    queued: Arc<Notify>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(
        api: BotApi,
        queue: Arc<dyn NotificationQueue>,
        limiter: Arc<dyn RateLimiter>,
        settings: NotifierSettings,
    ) -> Self {
        Self { api, queue, limiter, settings, queued: Arc::new(Notify::new()) }
    }

    /// The consumer and the sender, as background jobs.
    pub fn jobs(self) -> Vec<BackgroundJob> {
        let sender = self.clone();
        vec![
            BackgroundJob::new("telegram notification consumer", self.consume()),
            BackgroundJob::new("telegram notification sender", sender.send()),
        ]
    }

    async fn consume(self) {
        let idle = Duration::from_millis(self.settings.poll_interval_ms);
        loop {
            match self.queue.enqueue_from_log(CONSUME_BATCH).await {
                Ok(0) => tokio::time::sleep(idle).await,
                Ok(_) => self.queued.notify_one(),
                Err(error) => {
                    tracing::warn!(%error, "reading the event log for notifications failed; retrying");
                    tokio::time::sleep(STORE_PAUSE).await;
                }
            }
        }
    }

    async fn send(self) {
        let idle = Duration::from_millis(self.settings.poll_interval_ms);
        let mut depth_sampled = Instant::now() - Duration::from_secs(60);
        loop {
            if depth_sampled.elapsed() >= Duration::from_secs(1) {
                depth_sampled = Instant::now();
                if let Ok(depth) = self.queue.depth().await {
                    metrics::gauge!("telegram_queue_depth").set(depth as f64);
                }
            }
            let claimed = match self.queue.claim(CLAIM_BATCH, LEASE).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "claiming notifications failed; retrying");
                    tokio::time::sleep(STORE_PAUSE).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    () = self.queued.notified() => {}
                    () = tokio::time::sleep(idle) => {}
                }
                continue;
            }
            for notification in claimed {
                let id = notification.id;
                let delivery = self.deliver(notification).await;
                if let Err(error) = self.queue.settle(id, delivery).await {
                    // The lease runs out and another sender takes it: possibly sent twice,
                    // never lost.
                    tracing::warn!(%error, notification = id, "recording a delivery failed");
                }
            }
        }
    }

    /// Sends one notification if the user still wants it, within the limits.
    async fn deliver(&self, notification: Notification) -> Delivery {
        let outcome = |label: &'static str| metrics::counter!("telegram_sends_total", "outcome" => label).increment(1);
        let Some(chat) = notification.chat_id else {
            outcome("skipped");
            return Delivery::Skipped("not linked");
        };
        if !notification.consented {
            outcome("skipped");
            return Delivery::Skipped("no telegram_notifications consent");
        }
        let chat_rate = Rate { limit: 1, period: Duration::from_secs(self.settings.chat_interval_s) };
        if let Decision::Limited { retry_after } = self.check(&format!("telegram:chat:{chat}"), chat_rate).await {
            outcome("deferred");
            return Delivery::Retry { after: retry_after, error: None };
        }
        let bot_rate = Rate { limit: self.settings.bot_per_second, period: Duration::from_secs(1) };
        while let Decision::Limited { retry_after } = self.check("telegram:bot", bot_rate).await {
            tokio::time::sleep(retry_after).await;
        }
        let Some(text) = render(&notification) else {
            outcome("failed");
            return Delivery::Failed("the event carried no readable task".into());
        };
        match self.api.send_message(chat, &text, None).await {
            Ok(_) => {
                outcome("sent");
                let latency = time::OffsetDateTime::now_utc() - notification.committed_at;
                metrics::histogram!("telegram_delivery_latency_seconds").record(latency.as_seconds_f64().max(0.0));
                Delivery::Sent
            }
            Err(error) => self.failed(&notification, &error, &outcome),
        }
    }

    fn failed(&self, notification: &Notification, error: &BotApiError, outcome: &dyn Fn(&'static str)) -> Delivery {
        if let Some(seconds) = error.retry_after() {
            outcome("rate_limited");
            return Delivery::Retry { after: Duration::from_secs(seconds), error: None };
        }
        let attempt = notification.attempts + 1;
        if error.is_permanent() || attempt >= self.settings.max_attempts {
            outcome("failed");
            tracing::warn!(%error, notification = notification.id, attempt, "notification given up");
            return Delivery::Failed(error.to_string());
        }
        outcome("retried");
        Delivery::Retry { after: self.settings.backoff(attempt), error: Some(error.to_string()) }
    }

    /// A shared counter that cannot be reached falls back inside the limiter; if even that
    /// fails, sending goes on (Telegram's own 429 remains the last word).
    async fn check(&self, key: &str, rate: Rate) -> Decision {
        self.limiter.check(key, rate).await.unwrap_or(Decision::Allowed { remaining: 0, reset_after: Duration::ZERO })
    }
}

/// The message of a notification; emergencies stand out.
fn render(notification: &Notification) -> Option<String> {
    let task: EventTask = serde_json::from_str(&notification.task).ok()?;
    let what = format!("<b>{}</b> · {}", escape(&task.code), escape(&task.title));
    let place = match (&task.location_description, &task.location) {
        (Some(place), _) => format!("\nLugar: {}", escape(place)),
        (None, Some(point)) => format!("\nUbicación: {:.5}, {:.5}", point.lat, point.lng),
        (None, None) => String::new(),
    };
    Some(fit(match notification.kind {
        NotificationKind::Emergency => format!(
            "🚨🚨 <b>EMERGENCIA</b> 🚨🚨\nSe te ha asignado la emergencia {what}\nPrioridad: {}{place}\n\
             Usa /mis_tareas para iniciarla.",
            priority_label(task.priority)
        ),
        NotificationKind::Assigned => format!(
            "📋 Nueva tarea asignada: {what}\nPrioridad: {}{place}\nUsa /mis_tareas para verla.",
            priority_label(task.priority)
        ),
        NotificationKind::Unassigned => format!("Ya no estás asignado a la tarea {what}."),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let settings = NotifierSettings {
            bot_per_second: 30,
            chat_interval_s: 1,
            max_attempts: 5,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            poll_interval_ms: 100,
        };
        let delays: Vec<u64> = (1..=8).map(|attempt| settings.backoff(attempt).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
