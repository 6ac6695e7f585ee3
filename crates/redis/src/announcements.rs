//! Commit announcements between instances over Redis pub/sub: `<origin> <seq>` on the channel
//! `<key_prefix>events`. Each instance ignores its own; the others read the event log at once
//! instead of waiting for their next wake-up.

use futures_util::StreamExt;
use gad_domain::error::StoreError;
use gad_domain::events::CommitAnnouncements;
use redis::aio::ConnectionManager;
use uuid::Uuid;

#[derive(Clone)]
pub struct RedisCommitAnnouncements {
    connection: ConnectionManager,
    client: redis::Client,
    channel: String,
    origin: Uuid,
}

impl std::fmt::Debug for RedisCommitAnnouncements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCommitAnnouncements")
            .field("channel", &self.channel)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl RedisCommitAnnouncements {
    /// `origin` identifies this instance in its announcements.
    pub fn new(url: &str, connection: ConnectionManager, key_prefix: &str, origin: Uuid) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::unexpected)?;
        Ok(Self { connection, client, channel: format!("{key_prefix}events"), origin })
    }
}

#[async_trait::async_trait]
impl CommitAnnouncements for RedisCommitAnnouncements {
    async fn announce(&self, seq: i64) -> Result<(), StoreError> {
        let mut conn = self.connection.clone();
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(format!("{} {seq}", self.origin))
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(|error| StoreError::Unavailable(error.to_string()))
    }

    async fn listen(&self, heard: &(dyn Fn(i64) + Send + Sync)) -> StoreError {
        let mut pubsub = match self.client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => return StoreError::Unavailable(error.to_string()),
        };
        if let Err(error) = pubsub.subscribe(&self.channel).await {
            return StoreError::Unavailable(error.to_string());
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: Option<String> = message.get_payload().ok();
            match payload.as_deref().and_then(decode) {
                Some((origin, _)) if origin == self.origin => {}
                Some((_, seq)) => heard(seq),
                None => tracing::warn!(channel = %self.channel, "ignored a malformed commit announcement"),
            }
        }
        StoreError::Unavailable("the commit announcement subscription ended".into())
    }
}

fn decode(message: &str) -> Option<(Uuid, i64)> {
    let (origin, seq) = message.split_once(' ')?;
    Some((origin.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_decode_and_garbage_is_refused() {
        let origin = Uuid::now_v7();
        assert_eq!(decode(&format!("{origin} 42")), Some((origin, 42)));
        for garbage in ["", "42", "not-a-uuid 1", &format!("{origin} x"), &format!("{origin} 1 2")] {
            assert_eq!(decode(garbage), None, "{garbage:?}");
        }
    }
}
