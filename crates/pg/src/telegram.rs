//! The Telegram bot's tables: chat links and their codes (stored as SHA-256 hex, hashed here and
//! nowhere else), the inbox of updates, conversations, the notification queue and the poller lock.

use std::time::Duration;

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::{AuditEntry, Outcome, RequestContext};
use gad_domain::error::StoreError;
use gad_domain::telegram::{
    BotBookkeeping, Delivery, LinkedUser, Notification, NotificationKind, NotificationQueue, PollerGuard, PollerLock,
    Redemption, StoredConversation, StoredUpdate, TelegramLinks, UpdateInbox,
};
use gad_domain::users::UserId;
use gad_domain::users::policy::Actor;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit;
use crate::enums::RoleColumn;
use crate::errors::query_error;
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;
use crate::schema::sql_types::UserRole;

/// The name of the notification consumer in `event_consumers`.
const CONSUMER: &str = "telegram";

/// The advisory lock that only the instance polling the Bot API holds.
const POLLER_LOCK: i64 = 0x6761_645f_7467_706c; // "gad_tgpl"

#[derive(Clone)]
pub struct PgTelegramStore {
    pool: PgPool,
    /// For the poller lock's own session, which must outlive any pooled checkout.
    url: String,
}

impl std::fmt::Debug for PgTelegramStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTelegramStore").finish_non_exhaustive()
    }
}

impl PgTelegramStore {
    pub fn new(pool: PgPool, url: &str) -> Self {
        Self { pool, url: url.to_owned() }
    }
}

#[derive(QueryableByName)]
struct RedeemRow {
    #[diesel(sql_type = Nullable<SqlUuid>)]
    user_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<UserRole>)]
    role: Option<RoleColumn>,
    #[diesel(sql_type = Text)]
    outcome: String,
}

#[derive(QueryableByName)]
struct LinkedRow {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = UserRole)]
    role: RoleColumn,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    officer_id: Option<Uuid>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

#[derive(QueryableByName)]
struct ConversationRow {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Bool)]
    expired: bool,
}

#[derive(QueryableByName)]
struct NotificationRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Nullable<BigInt>)]
    chat_id: Option<i64>,
    #[diesel(sql_type = Bool)]
    consented: bool,
    #[diesel(sql_type = Text)]
    task: String,
    #[diesel(sql_type = Timestamptz)]
    committed_at: OffsetDateTime,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

fn not_found_as_none<T>(outcome: diesel::QueryResult<T>) -> diesel::QueryResult<Option<T>> {
    match outcome {
        Ok(value) => Ok(Some(value)),
        Err(diesel::result::Error::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

#[async_trait]
impl TelegramLinks for PgTelegramStore {
    async fn issue_code(
        &self,
        code: &str,
        lifetime: time::Duration,
        entry: AuditEntry,
    ) -> Result<OffsetDateTime, StoreError> {
        let Some((user, _)) = entry.actor else {
            return Err(StoreError::Unexpected("a link code needs its user".into()));
        };
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async |conn| {
            #[derive(QueryableByName)]
            struct Issued {
                #[diesel(sql_type = Timestamptz)]
                expires_at: OffsetDateTime,
            }
            let issued: Issued = diesel::sql_query(
                "INSERT INTO telegram_link_codes (code, user_id, expires_at) \
                 VALUES (encode(sha256(convert_to($1, 'UTF8')), 'hex'), $2, \
                         date_trunc('second', now()) + make_interval(secs => $3)) \
                 RETURNING expires_at",
            )
            .bind::<Text, _>(code)
            .bind::<SqlUuid, _>(user.as_uuid())
            .bind::<Double, _>(lifetime.as_seconds_f64())
            .prepared()
            .get_result(conn)
            .await?;
            audit::append(conn, &entry).await?;
            Ok(issued.expires_at)
        })
        .await
        .map_err(query_error)
    }

    async fn redeem(&self, code: &str, chat_id: i64, username: Option<&str>) -> Result<Redemption, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let username: Option<String> = username.map(|name| name.chars().take(64).collect());
        conn.transaction(async |conn| {
            // The row lock makes a concurrent second redemption see `used_at` set.
            let row: Option<RedeemRow> = not_found_as_none(
                diesel::sql_query(
                    "WITH found AS ( \
                       SELECT c.code, c.user_id, c.used_at, c.expires_at, u.role, \
                              (u.is_active AND u.erased_at IS NULL) AS live \
                       FROM telegram_link_codes c JOIN users u ON u.id = c.user_id \
                       WHERE c.code = encode(sha256(convert_to($1, 'UTF8')), 'hex') FOR UPDATE OF c), \
                     spent AS ( \
                       UPDATE telegram_link_codes SET used_at = now() \
                       WHERE code IN (SELECT code FROM found WHERE used_at IS NULL AND expires_at > now() AND live) \
                       RETURNING user_id) \
                     SELECT f.user_id, f.role, CASE \
                         WHEN EXISTS (SELECT 1 FROM spent) THEN 'linked' \
                         WHEN f.used_at IS NOT NULL THEN 'used' \
                         WHEN NOT f.live THEN 'unknown' \
                         ELSE 'expired' END AS outcome \
                     FROM found f",
                )
                .bind::<Text, _>(code)
                .prepared()
                .get_result(conn)
                .await,
            )?;
            let Some(RedeemRow { user_id: Some(user_id), role: Some(role), outcome }) = row else {
                return Ok(Redemption::Unknown);
            };
            match outcome.as_str() {
                "linked" => {}
                "used" => return Ok(Redemption::Used),
                "expired" => return Ok(Redemption::Expired),
                _ => return Ok(Redemption::Unknown),
            }
            // One chat per user and one user per chat: the newest link replaces older ones.
            diesel::sql_query("DELETE FROM telegram_links WHERE chat_id = $1 OR user_id = $2")
                .bind::<BigInt, _>(chat_id)
                .bind::<SqlUuid, _>(user_id)
                .prepared()
                .execute(conn)
                .await?;
            diesel::sql_query("DELETE FROM telegram_conversations WHERE chat_id = $1")
                .bind::<BigInt, _>(chat_id)
                .prepared()
                .execute(conn)
                .await?;
            diesel::sql_query("INSERT INTO telegram_links (user_id, chat_id, username) VALUES ($1, $2, $3)")
                .bind::<SqlUuid, _>(user_id)
                .bind::<BigInt, _>(chat_id)
                .bind::<Nullable<Text>, _>(username.as_deref())
                .prepared()
                .execute(conn)
                .await?;
            let user = UserId::from_uuid(user_id);
            let entry = AuditEntry {
                actor: Some((user, role.0)),
                action: "telegram.link",
                resource_type: "user",
                resource_id: Some(user_id),
                outcome: Outcome::Success,
                context: RequestContext { user_agent: Some("telegram".into()), ..RequestContext::default() },
            };
            audit::append(conn, &entry).await?;
            Ok(Redemption::Linked(user))
        })
        .await
        .map_err(query_error)
    }

    async fn unlink(&self, user: UserId, entry: AuditEntry) -> Result<bool, StoreError> {
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async |conn| {
            let removed = diesel::sql_query("DELETE FROM telegram_links WHERE user_id = $1")
                .bind::<SqlUuid, _>(user.as_uuid())
                .prepared()
                .execute(conn)
                .await?;
            for statement in [
                "DELETE FROM telegram_link_codes WHERE user_id = $1",
                "DELETE FROM telegram_conversations WHERE user_id = $1",
                "DELETE FROM telegram_outbox WHERE user_id = $1 AND status = 'pending'",
            ] {
                diesel::sql_query(statement).bind::<SqlUuid, _>(user.as_uuid()).prepared().execute(conn).await?;
            }
            if removed > 0 {
                audit::append(conn, &entry).await?;
            }
            Ok(removed > 0)
        })
        .await
        .map_err(query_error)
    }

    async fn linked_user(&self, chat_id: i64) -> Result<Option<LinkedUser>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let row: Option<LinkedRow> = not_found_as_none(
            diesel::sql_query(
                "SELECT u.id AS user_id, u.role, \
                        (SELECT o.id FROM officers o WHERE o.user_id = u.id AND o.deleted_at IS NULL) AS officer_id \
                 FROM telegram_links l JOIN users u ON u.id = l.user_id \
                 WHERE l.chat_id = $1 AND u.is_active AND u.erased_at IS NULL",
            )
            .bind::<BigInt, _>(chat_id)
            .prepared()
            .get_result(&mut conn)
            .await,
        )
        .map_err(query_error)?;
        Ok(row.map(|row| LinkedUser {
            actor: Actor { id: UserId::from_uuid(row.user_id), role: row.role.0 },
            officer_id: row.officer_id,
        }))
    }
}

#[async_trait]
impl BotBookkeeping for PgTelegramStore {
    async fn conversation(
        &self,
        chat_id: i64,
        lifetime: time::Duration,
    ) -> Result<Option<StoredConversation>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let row: Option<ConversationRow> = not_found_as_none(
            diesel::sql_query(
                "SELECT user_id, state::text AS state, updated_at < now() - make_interval(secs => $2) AS expired \
                 FROM telegram_conversations WHERE chat_id = $1",
            )
            .bind::<BigInt, _>(chat_id)
            .bind::<Double, _>(lifetime.as_seconds_f64())
            .prepared()
            .get_result(&mut conn)
            .await,
        )
        .map_err(query_error)?;
        Ok(row.map(|row| StoredConversation {
            user_id: UserId::from_uuid(row.user_id),
            state: row.state,
            expired: row.expired,
        }))
    }

    async fn save_conversation(&self, chat_id: i64, user: UserId, state: &str) -> Result<(), StoreError> {
        let mut conn = connection(&self.pool).await?;
        diesel::sql_query(
            "INSERT INTO telegram_conversations (chat_id, user_id, state, updated_at) VALUES ($1, $2, $3::jsonb, now()) \
             ON CONFLICT (chat_id) DO UPDATE SET user_id = $2, state = $3::jsonb, updated_at = now()",
        )
        .bind::<BigInt, _>(chat_id)
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<Text, _>(state)
        .prepared()
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(query_error)
    }

    async fn end_conversation(&self, chat_id: i64) -> Result<bool, StoreError> {
        let mut conn = connection(&self.pool).await?;
        diesel::sql_query("DELETE FROM telegram_conversations WHERE chat_id = $1")
            .bind::<BigInt, _>(chat_id)
            .prepared()
            .execute(&mut conn)
            .await
            .map(|deleted| deleted > 0)
            .map_err(query_error)
    }
}

#[derive(QueryableByName)]
struct UpdateRow {
    #[diesel(sql_type = BigInt)]
    update_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    chat_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    payload: Option<String>,
}

#[derive(QueryableByName)]
struct Attempts {
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

#[async_trait]
impl UpdateInbox for PgTelegramStore {
    async fn store(&self, update: &StoredUpdate, owner: Uuid, lease: Duration) -> Result<bool, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let inserted = diesel::sql_query(
            "INSERT INTO telegram_processed_updates (update_id, chat_id, payload, lease_owner, lease_until) \
             VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) ON CONFLICT DO NOTHING",
        )
        .bind::<BigInt, _>(update.update_id)
        .bind::<Nullable<BigInt>, _>(update.chat_id)
        .bind::<Nullable<Text>, _>(update.payload.as_deref())
        .bind::<SqlUuid, _>(owner)
        .bind::<Double, _>(lease.as_secs_f64())
        .prepared()
        .execute(&mut conn)
        .await
        .map_err(query_error)?;
        Ok(inserted == 1)
    }

    async fn take(&self, update_id: i64, owner: Uuid, lease: Duration) -> Result<Option<i32>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        not_found_as_none(
            diesel::sql_query(
                "UPDATE telegram_processed_updates \
                 SET lease_owner = $2, lease_until = now() + make_interval(secs => $3), attempts = attempts + 1 \
                 WHERE update_id = $1 AND processed_at IS NULL AND (lease_owner = $2 OR lease_until < now()) \
                 RETURNING attempts",
            )
            .bind::<BigInt, _>(update_id)
            .bind::<SqlUuid, _>(owner)
            .bind::<Double, _>(lease.as_secs_f64())
            .prepared()
            .get_result::<Attempts>(&mut conn)
            .await,
        )
        .map(|row| row.map(|row| row.attempts))
        .map_err(query_error)
    }

    async fn take_over(&self, limit: i64, owner: Uuid, lease: Duration) -> Result<Vec<StoredUpdate>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let mut rows: Vec<UpdateRow> = diesel::sql_query(
            "UPDATE telegram_processed_updates u \
             SET lease_owner = $2, lease_until = now() + make_interval(secs => $3) \
             FROM (SELECT update_id FROM telegram_processed_updates \
                   WHERE processed_at IS NULL AND lease_until < now() \
                   ORDER BY update_id LIMIT $1 FOR UPDATE SKIP LOCKED) due \
             WHERE u.update_id = due.update_id \
             RETURNING u.update_id, u.chat_id, u.payload",
        )
        .bind::<BigInt, _>(limit)
        .bind::<SqlUuid, _>(owner)
        .bind::<Double, _>(lease.as_secs_f64())
        .prepared()
        .load(&mut conn)
        .await
        .map_err(query_error)?;
        // RETURNING keeps no order: each chat's updates are handed on oldest first.
        rows.sort_unstable_by_key(|row| row.update_id);
        Ok(rows
            .into_iter()
            .map(|row| StoredUpdate { update_id: row.update_id, chat_id: row.chat_id, payload: row.payload })
            .collect())
    }

    async fn finish(&self, update_id: i64) -> Result<(), StoreError> {
        let mut conn = connection(&self.pool).await?;
        diesel::sql_query(
            "UPDATE telegram_processed_updates \
             SET processed_at = now(), payload = NULL, chat_id = NULL, lease_owner = NULL, lease_until = NULL \
             WHERE update_id = $1 AND processed_at IS NULL",
        )
        .bind::<BigInt, _>(update_id)
        .prepared()
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(query_error)
    }

    async fn retry_later(&self, update_id: i64, owner: Uuid, after: Duration) -> Result<(), StoreError> {
        let mut conn = connection(&self.pool).await?;
        diesel::sql_query(
            "UPDATE telegram_processed_updates SET lease_until = now() + make_interval(secs => $3) \
             WHERE update_id = $1 AND lease_owner = $2 AND processed_at IS NULL",
        )
        .bind::<BigInt, _>(update_id)
        .bind::<SqlUuid, _>(owner)
        .bind::<Double, _>(after.as_secs_f64())
        .prepared()
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(query_error)
    }
}

/// Turns a batch of events into notifications for linked users:
/// - `task.created` (not emergencies, whose alert says it) and `task.assigned`: every assigned
///   officer not already told of this assignment since their last unassignment;
/// - `task.unassigned`: the audience members whose officer is no longer on the task;
/// - `alert.emergency`: the dispatched officer.
const ENQUEUE: &str = "\
WITH batch AS ( \
  SELECT seq, event_type, task_id, officer_id, audience, payload, created_at FROM event_log \
  WHERE seq > $1 ORDER BY seq LIMIT $2), \
wanted AS ( \
  SELECT b.seq, u AS user_id, b.task_id, 'assigned' AS kind, b.payload AS task, b.created_at \
  FROM batch b CROSS JOIN LATERAL unnest(b.audience) AS u \
  WHERE b.event_type = 'task.assigned' OR (b.event_type = 'task.created' AND b.payload->>'kind' <> 'emergency') \
  UNION ALL \
  SELECT b.seq, u, b.task_id, 'unassigned', b.payload, b.created_at \
  FROM batch b CROSS JOIN LATERAL unnest(b.audience) AS u \
  WHERE b.event_type = 'task.unassigned' AND NOT EXISTS ( \
    SELECT 1 FROM officers o WHERE o.user_id = u \
      AND o.id::text IN (SELECT jsonb_array_elements_text(b.payload->'officer_ids'))) \
  UNION ALL \
  SELECT b.seq, o.user_id, b.task_id, 'emergency', b.payload->'task', b.created_at \
  FROM batch b JOIN officers o ON o.id = b.officer_id WHERE b.event_type = 'alert.emergency'), \
first AS ( \
  SELECT DISTINCT ON (task_id, user_id, kind) * FROM wanted ORDER BY task_id, user_id, kind, seq), \
inserted AS ( \
  INSERT INTO telegram_outbox (event_seq, user_id, task_id, kind, task, committed_at) \
  SELECT f.seq, f.user_id, f.task_id, f.kind, f.task, f.created_at FROM first f \
  WHERE EXISTS (SELECT 1 FROM telegram_links l WHERE l.user_id = f.user_id) \
    AND NOT (f.kind = 'assigned' AND EXISTS ( \
      SELECT 1 FROM telegram_outbox told WHERE told.task_id = f.task_id AND told.user_id = f.user_id \
        AND told.kind = 'assigned' AND told.event_seq > coalesce(( \
          SELECT max(gone.event_seq) FROM telegram_outbox gone \
          WHERE gone.task_id = f.task_id AND gone.user_id = f.user_id AND gone.kind = 'unassigned'), 0))) \
  ORDER BY f.seq ON CONFLICT DO NOTHING RETURNING 1), \
advanced AS ( \
  UPDATE event_consumers SET last_seq = (SELECT max(seq) FROM batch), updated_at = now() \
  WHERE name = 'telegram' AND EXISTS (SELECT 1 FROM batch) RETURNING 1) \
SELECT count(*) AS count FROM batch";

#[async_trait]
impl NotificationQueue for PgTelegramStore {
    async fn enqueue_from_log(&self, limit: i64) -> Result<usize, StoreError> {
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async |conn| {
            // A new consumer starts at the head: enabling the bot does not replay old news.
            diesel::sql_query(
                "INSERT INTO event_consumers (name, last_seq) SELECT $1, last_seq FROM event_log_head \
                 ON CONFLICT DO NOTHING",
            )
            .bind::<Text, _>(CONSUMER)
            .prepared()
            .execute(conn)
            .await?;
            // Instances take turns: the position's row lock is held until the commit.
            #[derive(QueryableByName)]
            struct Position {
                #[diesel(sql_type = BigInt)]
                last_seq: i64,
            }
            let position: Position =
                diesel::sql_query("SELECT last_seq FROM event_consumers WHERE name = $1 FOR UPDATE")
                    .bind::<Text, _>(CONSUMER)
                    .prepared()
                    .get_result(conn)
                    .await?;
            let consumed: Count = diesel::sql_query(ENQUEUE)
                .bind::<BigInt, _>(position.last_seq)
                .bind::<BigInt, _>(limit)
                .prepared()
                .get_result(conn)
                .await?;
            Ok(usize::try_from(consumed.count).unwrap_or_default())
        })
        .await
        .map_err(query_error)
    }

    /// Each user's notifications leave in order: only the oldest pending one of a user is due.
    async fn claim(&self, limit: i64, lease: Duration) -> Result<Vec<Notification>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let rows: Vec<NotificationRow> = diesel::sql_query(
            "UPDATE telegram_outbox o SET claimed_until = now() + make_interval(secs => $2) \
             FROM (SELECT id FROM telegram_outbox t WHERE status = 'pending' AND next_attempt_at <= now() \
                     AND (claimed_until IS NULL OR claimed_until < now()) \
                     AND NOT EXISTS (SELECT 1 FROM telegram_outbox earlier WHERE earlier.user_id = t.user_id \
                                       AND earlier.status = 'pending' AND earlier.id < t.id) \
                   ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) due \
             WHERE o.id = due.id \
             RETURNING o.id, o.kind, o.user_id, \
               (SELECT l.chat_id FROM telegram_links l WHERE l.user_id = o.user_id) AS chat_id, \
               coalesce((SELECT c.granted FROM consents c WHERE c.user_id = o.user_id \
                           AND c.consent_type = 'telegram_notifications' \
                         ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1), false) AS consented, \
               o.task::text AS task, o.committed_at, o.attempts",
        )
        .bind::<BigInt, _>(limit)
        .bind::<Double, _>(lease.as_secs_f64())
        .prepared()
        .load(&mut conn)
        .await
        .map_err(query_error)?;
        rows.into_iter()
            .map(|row| {
                let kind = NotificationKind::parse(&row.kind)
                    .ok_or_else(|| StoreError::Unexpected(format!("unknown notification kind {}", row.kind).into()))?;
                Ok(Notification {
                    id: row.id,
                    kind,
                    user_id: UserId::from_uuid(row.user_id),
                    chat_id: row.chat_id,
                    consented: row.consented,
                    task: row.task,
                    committed_at: row.committed_at,
                    attempts: row.attempts,
                })
            })
            .collect()
    }

    async fn settle(&self, id: i64, delivery: Delivery) -> Result<(), StoreError> {
        let mut conn = connection(&self.pool).await?;
        let updated = match delivery {
            Delivery::Sent => diesel::sql_query(
                "UPDATE telegram_outbox SET status = 'sent', settled_at = now(), claimed_until = NULL WHERE id = $1",
            )
            .bind::<BigInt, _>(id)
            .prepared()
            .execute(&mut conn)
            .await,
            Delivery::Skipped(why) => {
                diesel::sql_query(
                    "UPDATE telegram_outbox SET status = 'skipped', last_error = $2, settled_at = now(), \
                 claimed_until = NULL WHERE id = $1",
                )
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(why)
                .prepared()
                .execute(&mut conn)
                .await
            }
            Delivery::Retry { after, error } => diesel::sql_query(
                "UPDATE telegram_outbox SET next_attempt_at = now() + make_interval(secs => $2), claimed_until = NULL, \
                 attempts = attempts + CASE WHEN $3::text IS NULL THEN 0 ELSE 1 END, \
                 last_error = coalesce(left($3, 500), last_error) WHERE id = $1",
            )
            .bind::<BigInt, _>(id)
            .bind::<Double, _>(after.as_secs_f64())
            .bind::<Nullable<Text>, _>(error)
            .prepared()
            .execute(&mut conn)
            .await,
            Delivery::Failed(error) => diesel::sql_query(
                "UPDATE telegram_outbox SET status = 'failed', attempts = attempts + 1, last_error = left($2, 500), \
                 settled_at = now(), claimed_until = NULL WHERE id = $1",
            )
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(error)
            .prepared()
            .execute(&mut conn)
            .await,
        };
        updated.map(drop).map_err(query_error)
    }

    async fn depth(&self) -> Result<i64, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let depth: Count = diesel::sql_query("SELECT count(*) AS count FROM telegram_outbox WHERE status = 'pending'")
            .prepared()
            .get_result(&mut conn)
            .await
            .map_err(query_error)?;
        Ok(depth.count)
    }
}

#[async_trait]
impl PollerLock for PgTelegramStore {
    async fn try_acquire(&self) -> Result<Option<Box<dyn PollerGuard>>, StoreError> {
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .map_err(|error| StoreError::Unavailable(format!("cannot open the poller lock session: {error}")))?;
        let acquired: Flag = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS flag")
            .bind::<BigInt, _>(POLLER_LOCK)
            .prepared()
            .get_result(&mut conn)
            .await
            .map_err(query_error)?;
        Ok(acquired.flag.then(|| Box::new(PgPollerGuard { conn }) as Box<dyn PollerGuard>))
    }
}

/// The session that holds the poller lock; dropping it (or losing it) releases the lock.
struct PgPollerGuard {
    conn: AsyncPgConnection,
}

#[async_trait]
impl PollerGuard for PgPollerGuard {
    async fn still_held(&mut self) -> bool {
        diesel::sql_query("SELECT true AS flag")
            .prepared()
            .get_result::<Flag>(&mut self.conn)
            .await
            .is_ok_and(|row| row.flag)
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use gad_test_support::TestDatabase;

    use super::*;
    use crate::fixtures::{assert_prepared_once, insert_user, one_session};

    /// The bot runs the same statements for every message and every delivery: each is parsed
    /// once per connection, not prepared and closed again every time (a round trip more each).
    #[tokio::test]
    async fn the_bot_statements_stay_prepared_on_their_connection() {
        let database = TestDatabase::migrated().await;
        let pool = one_session(&database);
        let store = PgTelegramStore::new(pool.clone(), database.url());
        let user = insert_user(&mut connection(&pool).await.unwrap(), "bot-user@example.org").await;
        for _ in 0..3 {
            store.save_conversation(42, user, "{}").await.unwrap();
            assert!(store.conversation(42, time::Duration::minutes(5)).await.unwrap().is_some());
            assert!(store.end_conversation(42).await.unwrap());
            assert!(store.linked_user(42).await.unwrap().is_none());
            assert_eq!(store.enqueue_from_log(10).await.unwrap(), 0);
            assert!(store.claim(10, Duration::from_secs(30)).await.unwrap().is_empty());
            store.settle(-1, Delivery::Sent).await.unwrap();
            assert_eq!(store.depth().await.unwrap(), 0);
        }
        assert_prepared_once(
            &pool,
            &[
                "INSERT INTO telegram_conversations",
                "SELECT user_id, state",
                "DELETE FROM telegram_conversations",
                "SELECT u.id AS user_id",
                "INSERT INTO event_consumers",
                "SELECT last_seq FROM event_consumers",
                "WITH batch AS",
                "UPDATE telegram_outbox o SET claimed_until",
                "UPDATE telegram_outbox SET status = 'sent'",
                "SELECT count(*) AS count FROM telegram_outbox",
            ],
        )
        .await;
    }
}
