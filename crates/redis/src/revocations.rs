//! Revocations announced between instances over Redis pub/sub. Announcements are a fast path
//! only: PostgreSQL holds every revocation, and an instance that lost its subscription asks it
//! directly until it has listened again and caught up.

use futures_util::StreamExt;
use gad_domain::error::StoreError;
use gad_domain::users::{Revocation, RevokedToken, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use redis::aio::ConnectionManager;

#[derive(Clone)]
pub struct RevocationChannel {
    connection: ConnectionManager,
    client: redis::Client,
    channel: String,
}

impl std::fmt::Debug for RevocationChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationChannel").field("channel", &self.channel).finish_non_exhaustive()
    }
}

impl RevocationChannel {
    pub fn new(url: &str, connection: ConnectionManager, key_prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::unexpected)?;
        Ok(Self { connection, client, channel: format!("{key_prefix}revocations") })
    }

    pub async fn publish(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let mut conn = self.connection.clone();
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(encode(revocation))
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(|error| StoreError::Unavailable(error.to_string()))
    }

    /// Subscribes, calls `subscribed` once the subscription is in place, then `received` for
    /// every announcement until the connection ends (an error, or Redis going away).
    pub async fn listen(&self, subscribed: impl FnOnce(), mut received: impl FnMut(Revocation)) -> StoreError {
        let mut pubsub = match self.client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => return StoreError::Unavailable(error.to_string()),
        };
        if let Err(error) = pubsub.subscribe(&self.channel).await {
            return StoreError::Unavailable(error.to_string());
        }
        subscribed();
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            match message.get_payload::<String>().ok().as_deref().and_then(decode) {
                Some(revocation) => received(revocation),
                None => tracing::warn!(channel = %self.channel, "ignored a malformed revocation announcement"),
            }
        }
        StoreError::Unavailable("the revocation subscription ended".into())
    }
}

/// `t <jti> <user> <expires>`, `u <user> <before>`, `s <session> <revoked_at>`; times in Unix
/// nanoseconds.
fn encode(revocation: &Revocation) -> String {
    match revocation {
        Revocation::Token(token) => {
            format!("t {} {} {}", token.jti, token.user_id, token.expires_at.unix_timestamp_nanos())
        }
        Revocation::User { user_id, before } => format!("u {user_id} {}", before.unix_timestamp_nanos()),
        Revocation::Session { session_id, revoked_at } => {
            format!("s {session_id} {}", revoked_at.unix_timestamp_nanos())
        }
    }
}

fn decode(message: &str) -> Option<Revocation> {
    let mut parts = message.split(' ');
    let kind = parts.next()?;
    let first: Uuid = parts.next()?.parse().ok()?;
    let time = |parts: &mut std::str::Split<'_, char>| {
        parts.next()?.parse::<i128>().ok().and_then(|nanos| OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
    };
    let revocation = match kind {
        "t" => {
            let user_id = UserId::from_uuid(parts.next()?.parse().ok()?);
            Revocation::Token(RevokedToken { jti: first, user_id, expires_at: time(&mut parts)? })
        }
        "u" => Revocation::User { user_id: UserId::from_uuid(first), before: time(&mut parts)? },
        "s" => Revocation::Session { session_id: first, revoked_at: time(&mut parts)? },
        _ => return None,
    };
    parts.next().is_none().then_some(revocation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_garbage_is_refused() {
        let now = OffsetDateTime::now_utc();
        let user_id = UserId::generate();
        for revocation in [
            Revocation::Token(RevokedToken { jti: Uuid::now_v7(), user_id, expires_at: now }),
            Revocation::User { user_id, before: now },
            Revocation::Session { session_id: Uuid::now_v7(), revoked_at: now },
        ] {
            assert_eq!(decode(&encode(&revocation)), Some(revocation));
        }
        for garbage in [
            "",
            "x 1 2",
            "t not-a-uuid",
            "u 01a21fd8-571c-7270-bdd0-73249dedb717",
            "s 01a21fd8-571c-7270-bdd0-73249dedb717 1 extra",
        ] {
            assert_eq!(decode(garbage), None, "{garbage:?}");
        }
    }
}
