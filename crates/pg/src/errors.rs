//! Translation of diesel and pool errors into the domain's error contract, at the seam.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ManagerError;
use diesel_async::pooled_connection::deadpool::PoolError;
use gad_domain::error::StoreError;

/// Pool failures: a timeout or a refused connection means the database is unavailable.
pub(crate) fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Timeout(kind) => StoreError::Unavailable(format!("database pool timeout ({kind:?})")),
        PoolError::Backend(ManagerError::ConnectionError(error)) => {
            StoreError::Unavailable(format!("database connection failed: {error}"))
        }
        PoolError::Backend(ManagerError::QueryError(error)) => query_error(error),
        other => StoreError::unexpected(other),
    }
}

/// Query failures: lost connections and server-side timeouts are outages, the rest unexpected.
pub(crate) fn query_error(error: DieselError) -> StoreError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
            StoreError::Unavailable("database connection closed".into())
        }
        DieselError::DatabaseError(_, ref info) if is_outage_state(info.message()) => {
            StoreError::Unavailable("database is shutting down or timed out".into())
        }
        other => StoreError::unexpected(other),
    }
}

/// A row that does not make a valid domain value, reported as a failed read of that row.
pub(crate) fn corrupt_row(error: &StoreError) -> DieselError {
    DieselError::DeserializationError(Box::new(std::io::Error::other(error.to_string())))
}

/// The unique constraint a statement violated, if that is why it failed.
pub(crate) fn violated_unique_constraint(error: &DieselError) -> Option<&str> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => info.constraint_name(),
        _ => None,
    }
}

/// The foreign key a statement violated, if that is why it failed.
pub(crate) fn violated_foreign_key(error: &DieselError) -> Option<&str> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => info.constraint_name(),
        _ => None,
    }
}

fn is_outage_state(message: &str) -> bool {
    message.contains("canceling statement due to statement timeout")
        || message.contains("terminating connection")
        || message.contains("the database system is")
}
