//! Mapping between the domain's enums and PostgreSQL's enum types. The domain knows nothing of
//! diesel, so each enum gets a column wrapper here with `ToSql`/`FromSql` for its SQL type.

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use gad_domain::audit::Outcome;
use gad_domain::consent::ConsentType;
use gad_domain::users::Role;
use std::io::Write;

use crate::schema::sql_types;

/// Declares a column wrapper `$wrapper` for the domain enum `$domain` stored as `$sql`.
macro_rules! pg_enum {
    ($wrapper:ident, $domain:ty, $sql:ty, { $($variant:path => $label:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
        #[diesel(sql_type = $sql)]
        pub(crate) struct $wrapper(pub(crate) $domain);

        impl ToSql<$sql, Pg> for $wrapper {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                let label: &[u8] = match self.0 {
                    $($variant => $label.as_bytes(),)+
                };
                out.write_all(label)?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<$sql, Pg> for $wrapper {
            fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
                match value.as_bytes() {
                    $(bytes if bytes == $label.as_bytes() => Ok(Self($variant)),)+
                    other => Err(format!(
                        concat!("unknown ", stringify!($sql), " value {:?}"),
                        String::from_utf8_lossy(other)
                    )
                    .into()),
                }
            }
        }
    };
}

pg_enum!(RoleColumn, Role, sql_types::UserRole, {
    Role::Admin => "admin",
    Role::Supervisor => "supervisor",
    Role::Operator => "operator",
    Role::Officer => "officer",
});

pg_enum!(OutcomeColumn, Outcome, sql_types::AuditOutcome, {
    Outcome::Success => "success",
    Outcome::Failure => "failure",
    Outcome::Denied => "denied",
});

pg_enum!(ConsentTypeColumn, ConsentType, sql_types::ConsentType, {
    ConsentType::DataProcessing => "data_processing",
    ConsentType::LocationTracking => "location_tracking",
    ConsentType::TelegramNotifications => "telegram_notifications",
    ConsentType::Analytics => "analytics",
});
