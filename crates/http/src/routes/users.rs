//! Users as the API shows them.

use gad_domain::users::{Role, User};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A user (SPEC §3). Times are RFC 3339 in UTC.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    id: Uuid,
    email: String,
    first_name: String,
    last_name: String,
    national_id: Option<String>,
    phone: Option<String>,
    #[schema(value_type = String, example = "operator")]
    role: Role,
    is_active: bool,
    telegram_linked: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    last_login_at: Option<OffsetDateTime>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
            national_id: user.national_id,
            phone: user.phone,
            role: user.role,
            is_active: user.is_active,
            telegram_linked: user.telegram_linked,
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
        }
    }
}
