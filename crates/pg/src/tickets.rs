//! Single-use WebSocket tickets, stored as SHA-256 hashes.

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{Bytea, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use gad_domain::error::StoreError;
use gad_domain::events::{TicketGrant, TicketStore};
use gad_domain::users::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::enums::RoleColumn;
use crate::errors::query_error;
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;
use crate::schema::sql_types::UserRole;

#[derive(Clone)]
pub struct PgTicketStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgTicketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTicketStore").finish_non_exhaustive()
    }
}

impl PgTicketStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(QueryableByName)]
struct GrantRow {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = UserRole)]
    role: RoleColumn,
    #[diesel(sql_type = SqlUuid)]
    token_jti: Uuid,
    #[diesel(sql_type = SqlUuid)]
    session_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    token_issued_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    token_expires_at: OffsetDateTime,
}

#[async_trait]
impl TicketStore for PgTicketStore {
    async fn insert(&self, hash: [u8; 32], grant: &TicketGrant, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let mut conn = connection(&self.pool).await?;
        // Spent and expired tickets are of no use to anyone: each insert sweeps a few away.
        diesel::sql_query(
            "DELETE FROM ws_tickets WHERE ctid = ANY (ARRAY(SELECT ctid FROM ws_tickets \
             WHERE expires_at < now() - interval '1 minute' LIMIT 100))",
        )
        .prepared()
        .execute(&mut conn)
        .await
        .map_err(query_error)?;
        diesel::sql_query(
            "INSERT INTO ws_tickets (ticket_hash, user_id, expires_at, role, token_jti, session_id, \
                                     token_issued_at, token_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind::<Bytea, _>(hash.as_slice())
        .bind::<SqlUuid, _>(grant.user_id.as_uuid())
        .bind::<Timestamptz, _>(expires_at)
        .bind::<UserRole, _>(RoleColumn(grant.role))
        .bind::<SqlUuid, _>(grant.jti)
        .bind::<SqlUuid, _>(grant.session_id)
        .bind::<Timestamptz, _>(grant.issued_at)
        .bind::<Timestamptz, _>(grant.token_expires_at)
        .prepared()
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(query_error)
    }

    async fn redeem(&self, hash: [u8; 32]) -> Result<Option<TicketGrant>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        // One statement: the row lock makes a second concurrent redemption see `used_at` set.
        let row: Option<GrantRow> = diesel::sql_query(
            "UPDATE ws_tickets SET used_at = now() \
             WHERE ticket_hash = $1 AND used_at IS NULL AND expires_at > now() \
             RETURNING user_id, role, token_jti, session_id, token_issued_at, token_expires_at",
        )
        .bind::<Bytea, _>(hash.as_slice())
        .prepared()
        .get_result(&mut conn)
        .await
        .map(Some)
        .or_else(|error| match error {
            diesel::result::Error::NotFound => Ok(None),
            other => Err(query_error(other)),
        })?;
        Ok(row.map(|row| TicketGrant {
            user_id: UserId::from_uuid(row.user_id),
            role: row.role.0,
            jti: row.token_jti,
            session_id: row.session_id,
            issued_at: row.token_issued_at,
            token_expires_at: row.token_expires_at,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use gad_domain::users::Role;
    use gad_test_support::TestDatabase;

    use super::*;
    use crate::fixtures::{assert_prepared_once, insert_user, one_session};

    /// Every WebSocket connection issues and redeems a ticket: those statements are parsed once
    /// per connection, not prepared and closed again each time.
    #[tokio::test]
    async fn ticket_statements_stay_prepared_on_their_connection() {
        let database = TestDatabase::migrated().await;
        let pool = one_session(&database);
        let store = PgTicketStore::new(pool.clone());
        let user_id = insert_user(&mut connection(&pool).await.unwrap(), "ticket-user@example.org").await;
        let now = OffsetDateTime::now_utc();
        let grant = TicketGrant {
            user_id,
            role: Role::Officer,
            jti: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
            issued_at: now,
            token_expires_at: now + time::Duration::minutes(15),
        };
        for round in 0..3u8 {
            let hash = [round; 32];
            store.insert(hash, &grant, now + time::Duration::seconds(30)).await.unwrap();
            assert_eq!(store.redeem(hash).await.unwrap().map(|redeemed| redeemed.user_id), Some(user_id));
            assert!(store.redeem(hash).await.unwrap().is_none(), "a ticket is spent once");
        }
        assert_prepared_once(&pool, &["DELETE FROM ws_tickets", "INSERT INTO ws_tickets", "UPDATE ws_tickets"]).await;
    }
}
