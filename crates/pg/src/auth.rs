//! Logins, refresh-token families and access-token revocations in PostgreSQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Interval, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::AuditEntry;
use gad_domain::error::StoreError;
use gad_domain::users::{
    EmailAddress, LOCKOUT, LoginRecord, LoginStore, MAX_FAILED_LOGINS, NewSession, PasswordHash, Revocation,
    RevocationLog, RevokedToken, Rotation, SessionStore, TokenIdentity, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit;
use crate::enums::RoleColumn;
use crate::errors::query_error;
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;
use crate::schema::{refresh_token_families, refresh_tokens, revoked_access_tokens, users};

#[derive(Clone)]
pub struct PgAuthStore {
    pool: PgPool,
}

impl PgAuthStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The catch-up that keeps every instance's `RevocationSet` complete even when an announcement
/// was missed, and the authoritative check meanwhile.
#[async_trait]
impl RevocationLog for PgAuthStore {
    async fn revocations_since(&self, since: OffsetDateTime) -> Result<Vec<Revocation>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        let tokens: Vec<(Uuid, Uuid, OffsetDateTime)> = revoked_access_tokens::table
            .filter(revoked_access_tokens::revoked_at.gt(since))
            .filter(revoked_access_tokens::expires_at.gt(diesel::dsl::now))
            .select((revoked_access_tokens::jti, revoked_access_tokens::user_id, revoked_access_tokens::expires_at))
            .load(&mut conn)
            .await
            .map_err(query_error)?;
        let users: Vec<(Uuid, Option<OffsetDateTime>)> = users::table
            .filter(users::tokens_valid_after.gt(since))
            .select((users::id, users::tokens_valid_after))
            .load(&mut conn)
            .await
            .map_err(query_error)?;
        let sessions: Vec<(Uuid, Option<OffsetDateTime>)> = refresh_token_families::table
            .filter(refresh_token_families::revoked_at.gt(since))
            .select((refresh_token_families::id, refresh_token_families::revoked_at))
            .load(&mut conn)
            .await
            .map_err(query_error)?;
        let sessions = sessions.into_iter().filter_map(|(session_id, revoked_at)| {
            revoked_at.map(|revoked_at| Revocation::Session { session_id, revoked_at })
        });
        let tokens = tokens.into_iter().map(|(jti, user_id, expires_at)| {
            Revocation::Token(RevokedToken { jti, user_id: UserId::from_uuid(user_id), expires_at })
        });
        let users = users.into_iter().filter_map(|(user_id, before)| {
            before.map(|before| Revocation::User { user_id: UserId::from_uuid(user_id), before })
        });
        Ok(tokens.chain(users).chain(sessions).collect())
    }

    async fn is_revoked(&self, token: &TokenIdentity) -> Result<bool, StoreError> {
        #[derive(QueryableByName)]
        struct Revoked {
            #[diesel(sql_type = Bool)]
            revoked: bool,
        }
        let mut conn = connection(&self.pool).await?;
        diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) \
                 OR EXISTS (SELECT 1 FROM users WHERE id = $2 AND tokens_valid_after >= $3) \
                 OR EXISTS (SELECT 1 FROM refresh_token_families WHERE id = $4 AND revoked_at IS NOT NULL) AS revoked",
        )
        .bind::<SqlUuid, _>(token.jti)
        .bind::<SqlUuid, _>(token.user_id.as_uuid())
        .bind::<Timestamptz, _>(token.issued_at)
        .bind::<SqlUuid, _>(token.session_id)
        .prepared()
        .get_result::<Revoked>(&mut conn)
        .await
        .map(|row| row.revoked)
        .map_err(query_error)
    }
}

impl std::fmt::Debug for PgAuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAuthStore").finish_non_exhaustive()
    }
}

async fn open_session(conn: &mut AsyncPgConnection, user: UserId, session: &NewSession) -> QueryResult<()> {
    diesel::insert_into(refresh_token_families::table)
        .values((refresh_token_families::id.eq(session.family_id), refresh_token_families::user_id.eq(user.as_uuid())))
        .execute(conn)
        .await?;
    store_refresh_token(conn, session.family_id, session).await
}

async fn store_refresh_token(conn: &mut AsyncPgConnection, family: Uuid, session: &NewSession) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(session.token_id),
            refresh_tokens::family_id.eq(family),
            refresh_tokens::token_hash.eq(session.refresh_token_hash.as_slice()),
            refresh_tokens::expires_at.eq(session.expires_at),
        ))
        .execute(conn)
        .await
        .map(drop)
}

async fn revoke_family(conn: &mut AsyncPgConnection, family: Uuid, reason: &str) -> QueryResult<()> {
    diesel::update(refresh_token_families::table)
        .filter(refresh_token_families::id.eq(family))
        .filter(refresh_token_families::revoked_at.is_null())
        .set((
            refresh_token_families::revoked_at.eq(diesel::dsl::now),
            refresh_token_families::revoke_reason.eq(reason),
        ))
        .execute(conn)
        .await
        .map(drop)
}

#[async_trait]
impl LoginStore for PgAuthStore {
    async fn begin_attempt(&self, email: &EmailAddress) -> Result<Option<LoginRecord>, StoreError> {
        #[derive(QueryableByName)]
        struct Counted {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
            #[diesel(sql_type = crate::schema::sql_types::UserRole)]
            role: RoleColumn,
            #[diesel(sql_type = Text)]
            password_hash: String,
            #[diesel(sql_type = Bool)]
            is_active: bool,
            #[diesel(sql_type = Integer)]
            failed_login_attempts: i32,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            locked_until: Option<OffsetDateTime>,
        }
        let mut conn = connection(&self.pool).await?;
        // One statement: the row lock serialises concurrent attempts, so each gets its own
        // number. A lock that has run out starts the count again at 1.
        let counted: Option<Counted> = diesel::sql_query(
            "UPDATE users SET \
                failed_login_attempts = CASE WHEN locked_until <= now() THEN 1 \
                                             ELSE failed_login_attempts + 1 END, \
                locked_until = CASE \
                    WHEN locked_until > now() THEN locked_until \
                    WHEN (CASE WHEN locked_until <= now() THEN 1 ELSE failed_login_attempts + 1 END) >= $2 \
                    THEN now() + $3 \
                    ELSE NULL END \
             WHERE lower(email) = $1 AND erased_at IS NULL \
             RETURNING id, role, password_hash, is_active, failed_login_attempts, locked_until",
        )
        .bind::<Text, _>(email.as_str())
        .bind::<Integer, _>(MAX_FAILED_LOGINS)
        .bind::<Interval, _>(diesel::data_types::PgInterval::from_microseconds(LOCKOUT.whole_microseconds() as i64))
        .prepared()
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(query_error)?;
        Ok(counted.map(|row| LoginRecord {
            user_id: UserId::from_uuid(row.id),
            role: row.role.0,
            password_hash: PasswordHash::new(row.password_hash),
            is_active: row.is_active,
            attempt: row.failed_login_attempts,
            locked_until: row.locked_until,
        }))
    }

    async fn record_failure(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let conn = connection(&self.pool).await?;
        audit::append(&conn, &entry).await.map_err(query_error)
    }

    async fn record_success(
        &self,
        user: UserId,
        rehash: Option<PasswordHash>,
        session: NewSession,
        entry: AuditEntry,
    ) -> Result<(), StoreError> {
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async move |conn| {
            diesel::update(users::table.find(user.as_uuid()))
                .set((
                    users::failed_login_attempts.eq(0),
                    users::locked_until.eq(None::<OffsetDateTime>),
                    users::last_login_at.eq(Some(OffsetDateTime::now_utc())),
                ))
                .execute(conn)
                .await?;
            if let Some(hash) = rehash {
                diesel::update(users::table.find(user.as_uuid()))
                    .set(users::password_hash.eq(hash.as_str()))
                    .execute(conn)
                    .await?;
            }
            open_session(conn, user, &session).await?;
            audit::append(conn, &entry).await
        })
        .await
        .map_err(query_error)
    }
}

#[derive(Queryable)]
struct PresentedToken {
    token_id: Uuid,
    family_id: Uuid,
    used_at: Option<OffsetDateTime>,
    expires_at: OffsetDateTime,
    family_revoked_at: Option<OffsetDateTime>,
    user_id: Uuid,
    role: RoleColumn,
    is_active: bool,
}

#[async_trait]
impl SessionStore for PgAuthStore {
    async fn rotate(
        &self,
        presented: [u8; 32],
        next: NewSession,
        mut entry: AuditEntry,
    ) -> Result<Rotation, StoreError> {
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async move |conn| {
            let found: Option<PresentedToken> = refresh_tokens::table
                .inner_join(refresh_token_families::table.inner_join(users::table))
                .filter(refresh_tokens::token_hash.eq(presented.as_slice()))
                .select((
                    refresh_tokens::id,
                    refresh_tokens::family_id,
                    refresh_tokens::used_at,
                    refresh_tokens::expires_at,
                    refresh_token_families::revoked_at,
                    users::id,
                    users::role,
                    users::is_active,
                ))
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some(token) = found else {
                audit::append(conn, &entry).await?;
                return Ok(Rotation::Invalid);
            };
            let user_id = UserId::from_uuid(token.user_id);
            entry.actor = Some((user_id, token.role.0));
            entry.resource_id = Some(token.user_id);
            if token.used_at.is_some() {
                revoke_family(conn, token.family_id, "reuse_detected").await?;
                audit::append(conn, &entry).await?;
                return Ok(Rotation::Reused { user_id, family_id: token.family_id });
            }
            let now = OffsetDateTime::now_utc();
            if token.family_revoked_at.is_some() || token.expires_at <= now || !token.is_active {
                audit::append(conn, &entry).await?;
                return Ok(Rotation::Invalid);
            }
            diesel::update(refresh_tokens::table.find(token.token_id))
                .set(refresh_tokens::used_at.eq(Some(now)))
                .execute(conn)
                .await?;
            store_refresh_token(conn, token.family_id, &next).await?;
            entry.outcome = gad_domain::audit::Outcome::Success;
            audit::append(conn, &entry).await?;
            Ok(Rotation::Rotated { user_id, role: token.role.0, family_id: token.family_id })
        })
        .await
        .map_err(query_error)
    }

    async fn logout(&self, revoked: RevokedToken, family_id: Uuid, entry: AuditEntry) -> Result<(), StoreError> {
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async move |conn| {
            diesel::insert_into(revoked_access_tokens::table)
                .values((
                    revoked_access_tokens::jti.eq(revoked.jti),
                    revoked_access_tokens::user_id.eq(revoked.user_id.as_uuid()),
                    revoked_access_tokens::expires_at.eq(revoked.expires_at),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            revoke_family(conn, family_id, "logout").await?;
            audit::append(conn, &entry).await
        })
        .await
        .map_err(query_error)
    }
}
