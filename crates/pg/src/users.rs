//! Users in PostgreSQL.

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gad_domain::audit::AuditEntry;
use gad_domain::error::StoreError;
use gad_domain::users::{
    CreateUserError, NewUser, PasswordHash, UpdateUserError, User, UserId, UserQuery, UserStore, UserUpdate,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::enums::RoleColumn;
use crate::errors::{query_error, violated_unique_constraint};
use crate::pool::{PgPool, connection};
use crate::schema::{refresh_token_families, telegram_links, users};
use crate::{admins, audit};

#[derive(Clone)]
pub struct PgUserStore {
    pool: PgPool,
}

impl PgUserStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl std::fmt::Debug for PgUserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUserStore").finish_non_exhaustive()
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
    national_id: Option<&'a str>,
    phone: Option<&'a str>,
    role: RoleColumn,
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct UserChangeset<'a> {
    email: Option<&'a str>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    national_id: Option<Option<&'a str>>,
    phone: Option<Option<&'a str>>,
    role: Option<RoleColumn>,
    is_active: Option<bool>,
    password_hash: Option<&'a str>,
    tokens_valid_after: Option<Option<OffsetDateTime>>,
    updated_at: OffsetDateTime,
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

/// The columns of `UserRow`, read from users joined with their Telegram link.
type UserColumns = (
    users::id,
    users::email,
    users::first_name,
    users::last_name,
    users::national_id,
    users::phone,
    users::role,
    users::is_active,
    diesel::dsl::Nullable<telegram_links::chat_id>,
    users::created_at,
    users::updated_at,
    users::last_login_at,
);

fn user_columns() -> UserColumns {
    (
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
    )
}

async fn load_user(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .left_join(telegram_links::table)
        .filter(users::id.eq(id))
        .filter(users::erased_at.is_null())
        .select(user_columns())
        .first::<UserRow>(conn)
        .await
        .optional()
        .map(|row| row.map(User::from))
}

/// How an update's transaction ended; a refusal writes nothing.
enum Updated {
    User(User),
    NotFound,
    LastActiveAdmin,
}

/// A unique violation names the field; anything else is the store's problem.
fn duplicate_field(error: &diesel::result::Error) -> Option<&'static str> {
    match violated_unique_constraint(error) {
        Some("users_email_key") => Some("email"),
        Some("users_national_id_key") => Some("national_id"),
        _ => None,
    }
}

/// Whether `id` names a user that exists and was not erased.
pub(crate) async fn live_user_exists(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.filter(users::id.eq(id)).filter(users::erased_at.is_null())))
        .get_result(conn)
        .await
}

/// `%` and `_` in a search term match themselves.
pub(crate) fn like_pattern(term: &str) -> String {
    let escaped = term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

#[async_trait]
impl UserStore for PgUserStore {
    async fn insert(&self, user: NewUser, entry: AuditEntry) -> Result<User, CreateUserError> {
        let row = NewUserRow {
            id: user.id.as_uuid(),
            email: user.email.as_str(),
            password_hash: user.password_hash.as_str(),
            first_name: user.first_name.as_str(),
            last_name: user.last_name.as_str(),
            national_id: user.national_id.as_ref().map(|id| id.as_str()),
            phone: user.phone.as_ref().map(|phone| phone.as_str()),
            role: RoleColumn(user.role),
        };
        let mut conn = connection(&self.pool).await?;
        let stored = conn
            .transaction(async |conn| {
                diesel::insert_into(users::table).values(&row).execute(conn).await?;
                audit::append(conn, &entry).await?;
                load_user(conn, row.id).await
            })
            .await
            .map_err(|error| match duplicate_field(&error) {
                Some(field) => CreateUserError::Duplicate(field),
                None => CreateUserError::Store(query_error(error)),
            })?;
        stored.ok_or_else(|| CreateUserError::Store(StoreError::Unexpected("inserted user vanished".into())))
    }

    async fn find(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        load_user(&mut conn, id.as_uuid()).await.map_err(query_error)
    }

    async fn list(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
        let mut statement = users::table
            .left_join(telegram_links::table)
            .filter(users::erased_at.is_null())
            .select(user_columns())
            .into_boxed::<Pg>();
        if let Some(role) = query.role {
            statement = statement.filter(users::role.eq(RoleColumn(role)));
        }
        if let Some(is_active) = query.is_active {
            statement = statement.filter(users::is_active.eq(is_active));
        }
        if let Some(term) = query.q.as_deref().filter(|term| !term.is_empty()) {
            let pattern = like_pattern(term);
            statement = statement.filter(
                users::email
                    .ilike(pattern.clone())
                    .or(users::first_name.ilike(pattern.clone()))
                    .or(users::last_name.ilike(pattern)),
            );
        }
        if let Some(before) = query.before {
            statement = statement.filter(users::id.lt(before.as_uuid()));
        }
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let mut conn = connection(&self.pool).await?;
        statement
            .order(users::id.desc())
            .limit(limit)
            .load::<UserRow>(&mut conn)
            .await
            .map(|rows| rows.into_iter().map(User::from).collect())
            .map_err(query_error)
    }

    async fn password_hash(&self, id: UserId) -> Result<Option<PasswordHash>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        users::table
            .find(id.as_uuid())
            .select(users::password_hash)
            .first::<String>(&mut conn)
            .await
            .optional()
            .map(|hash| hash.map(PasswordHash::new))
            .map_err(query_error)
    }

    async fn update(&self, id: UserId, update: UserUpdate, entry: AuditEntry) -> Result<Option<User>, UpdateUserError> {
        let changes = UserChangeset {
            email: update.profile.email.as_ref().map(|email| email.as_str()),
            first_name: update.profile.first_name.as_ref().map(|name| name.as_str()),
            last_name: update.profile.last_name.as_ref().map(|name| name.as_str()),
            national_id: update.profile.national_id.as_ref().map(|id| id.as_ref().map(|id| id.as_str())),
            phone: update.profile.phone.as_ref().map(|phone| phone.as_ref().map(|phone| phone.as_str())),
            role: update.profile.role.map(RoleColumn),
            is_active: update.profile.is_active,
            password_hash: update.password_hash.as_ref().map(PasswordHash::as_str),
            tokens_valid_after: update.revoke_tokens_before.map(Some),
            updated_at: OffsetDateTime::now_utc(),
        };
        let id = id.as_uuid();
        let mut conn = connection(&self.pool).await?;
        let outcome = conn
            .transaction(async |conn| {
                if update.keep_an_active_admin {
                    admins::take_turn(conn).await?;
                    if admins::is_last_active_admin(conn, id).await? {
                        return Ok(Updated::LastActiveAdmin);
                    }
                }
                let changed = diesel::update(users::table.find(id).filter(users::erased_at.is_null()))
                    .set(&changes)
                    .execute(conn)
                    .await?;
                if changed == 0 {
                    return Ok(Updated::NotFound);
                }
                if changes.tokens_valid_after.is_some() {
                    diesel::update(refresh_token_families::table)
                        .filter(refresh_token_families::user_id.eq(id))
                        .filter(refresh_token_families::revoked_at.is_null())
                        .set((
                            refresh_token_families::revoked_at.eq(Some(OffsetDateTime::now_utc())),
                            refresh_token_families::revoke_reason.eq("user_changed"),
                        ))
                        .execute(conn)
                        .await?;
                }
                audit::append(conn, &entry).await?;
                Ok(load_user(conn, id).await?.map_or(Updated::NotFound, Updated::User))
            })
            .await
            .map_err(|error| match duplicate_field(&error) {
                Some(field) => UpdateUserError::Duplicate(field),
                None => UpdateUserError::Store(query_error(error)),
            })?;
        match outcome {
            Updated::User(user) => Ok(Some(user)),
            Updated::NotFound => Ok(None),
            Updated::LastActiveAdmin => Err(UpdateUserError::LastActiveAdmin),
        }
    }
}
