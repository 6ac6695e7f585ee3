use time::OffsetDateTime;

use super::{Role, UserId};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub national_id: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub telegram_linked: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub last_login_at: Option<OffsetDateTime>,
}
