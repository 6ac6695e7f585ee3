//! Users in PostgreSQL.

use async_trait::async_trait;
use diesel::Insertable;
use diesel_async::RunQueryDsl;
use gad_domain::users::{CreateUserError, NewUser, UserStore};
use uuid::Uuid;

use crate::enums::RoleColumn;
use crate::errors::{query_error, violated_unique_constraint};
use crate::pool::{PgPool, connection};
use crate::schema::users;

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

#[async_trait]
impl UserStore for PgUserStore {
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
