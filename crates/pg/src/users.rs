//! Users in PostgreSQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use gad_domain::error::StoreError;
use gad_domain::users::{CreateUserError, NewUser, User, UserId, UserStore};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::enums::RoleColumn;
use crate::errors::{query_error, violated_unique_constraint};
use crate::pool::{PgPool, connection};
use crate::schema::{telegram_links, users};

#[derive(Clone)]
pub struct PgUserStore {
    pool: PgPool,
}

impl PgUserStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    id: Uuid,
    email: &'a str,
    password_hash: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    role: RoleColumn,
}

/// The columns of `User`, with whether a Telegram chat is linked.
#[derive(Queryable)]
struct UserRow {
    id: Uuid,
    email: String,
    first_name: String,
    last_name: String,
    national_id: Option<String>,
    phone: Option<String>,
    role: RoleColumn,
    is_active: bool,
    telegram_chat: Option<i64>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    last_login_at: Option<OffsetDateTime>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: UserId::from_uuid(row.id),
            email: row.email,
            first_name: row.first_name,
            last_name: row.last_name,
            national_id: row.national_id,
            phone: row.phone,
            role: row.role.0,
            is_active: row.is_active,
            telegram_linked: row.telegram_chat.is_some(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_login_at: row.last_login_at,
        }
    }
}

#[async_trait]
impl UserStore for PgUserStore {
    async fn find(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        users::table
            .left_join(telegram_links::table)
            .filter(users::id.eq(id.as_uuid()))
            .filter(users::erased_at.is_null())
            .select((
                users::id,
                users::email,
                users::first_name,
                users::last_name,
                users::national_id,
                users::phone,
                users::role,
                users::is_active,
                telegram_links::chat_id.nullable(),
                users::created_at,
                users::updated_at,
                users::last_login_at,
            ))
            .first::<UserRow>(&mut conn)
            .await
            .optional()
            .map(|row| row.map(User::from))
            .map_err(query_error)
    }

    async fn insert(&self, user: NewUser) -> Result<(), CreateUserError> {
        let row = NewUserRow {
            id: user.id.as_uuid(),
            email: user.email.as_str(),
            password_hash: user.password_hash.as_str(),
            first_name: user.first_name.as_str(),
            last_name: user.last_name.as_str(),
            role: RoleColumn(user.role),
        };
        let mut conn = connection(&self.pool).await?;
        diesel::insert_into(users::table).values(&row).execute(&mut conn).await.map(drop).map_err(|error| {
            match violated_unique_constraint(&error) {
                Some("users_email_key") => CreateUserError::Duplicate("email"),
                Some("users_national_id_key") => CreateUserError::Duplicate("national_id"),
                _ => CreateUserError::Store(query_error(error)),
            }
        })
    }
}

impl std::fmt::Debug for PgUserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUserStore").finish_non_exhaustive()
    }
}
