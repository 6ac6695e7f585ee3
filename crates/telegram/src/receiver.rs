//! Receiving updates: the webhook's secret check, and long polling by exactly one instance at a
//! time. Either way an update goes into the inbox, which processes it once.

use std::sync::Arc;
use std::time::Duration;

use gad_domain::telegram::{PollerGuard, PollerLock};
use sha2::{Digest, Sha256};

use crate::api::BotApi;
use crate::inbox::Inbox;

/// `X-Telegram-Bot-Api-Secret-Token`, compared in constant time.
#[derive(Clone)]
pub struct WebhookSecret([u8; 32]);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    pub fn new(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `presented` is the secret. Both sides are hashed first, so the comparison takes
    /// the same time whatever the length or the first differing byte.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        presented.iter().zip(self.0.iter()).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
    }
}

/// How long one `getUpdates` waits for news.
const LONG_POLL: Duration = Duration::from_secs(25);
/// How often an instance that is not polling asks for the lock again.
const LOCK_RETRY: Duration = Duration::from_secs(2);
/// The longest pause after failures.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Polls for ever, whenever this instance holds the poller lock.
pub async fn poll(api: BotApi, inbox: Inbox, lock: Arc<dyn PollerLock>) {
    loop {
        match lock.try_acquire().await {
            Ok(Some(guard)) => {
                tracing::info!("this instance polls the Bot API");
                poll_while_held(&api, &inbox, guard).await;
                tracing::info!("this instance stopped polling the Bot API");
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot ask for the poller lock"),
        }
        tokio::time::sleep(LOCK_RETRY).await;
    }
}

/// `getUpdates` with the offset after the last update stored, until the lock is lost. An update
/// that could not be stored (storage down) is not confirmed: the same batch is asked for again,
/// and what was already stored is recognised by its `update_id`.
async fn poll_while_held(api: &BotApi, inbox: &Inbox, mut guard: Box<dyn PollerGuard>) {
    let mut offset: Option<i64> = None;
    let mut failures = 0u32;
    if let Err(error) = api.delete_webhook().await {
        tracing::warn!(%error, "could not remove a webhook before polling");
    }
    while guard.still_held().await {
        let pause = match api.get_updates(offset, LONG_POLL).await {
            Ok(updates) => {
                let mut stalled = false;
                for (update, raw) in updates {
                    let update_id = update.update_id;
                    match inbox.receive(update, &raw.to_string()).await {
                        Ok(_) => offset = Some(update_id + 1),
                        Err(error) => {
                            tracing::warn!(%error, update_id, "update not stored; asking again");
                            stalled = true;
                            break;
                        }
                    }
                }
                if stalled { Some(()) } else { None }
            }
            Err(error) if error.is_conflict() => {
                tracing::warn!(%error, "another consumer of this bot's updates is running");
                Some(())
            }
            Err(error) => {
                tracing::warn!(%error, "getUpdates failed");
                Some(())
            }
        };
        if pause.is_some() {
            failures = failures.saturating_add(1);
            let delay = Duration::from_millis(250u64.saturating_mul(1 << failures.min(8))).min(MAX_PAUSE);
            tokio::time::sleep(delay).await;
        } else {
            failures = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_matches() {
        let secret = WebhookSecret::new("s3cret-token");
        assert!(secret.matches(b"s3cret-token"));
        for wrong in [&b""[..], b"s3cret-tokeN", b"s3cret-token ", b"s3cret"] {
            assert!(!secret.matches(wrong));
        }
        assert!(!format!("{secret:?}").contains("s3cret"));
    }
}
