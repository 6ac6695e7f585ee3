//! Translation of diesel and pool errors into the domain's error contract, at the seam.

use deadpool::managed::HookError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ManagerError;
use diesel_async::pooled_connection::deadpool::PoolError;
use gad_domain::error::StoreError;

/// Pool failures: a timeout, a refused connection or a connection that fails its set-up means
/// the database is unavailable.
pub(crate) fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Timeout(kind) => StoreError::Unavailable(format!("database pool timeout ({kind:?})")),
        PoolError::Backend(ManagerError::ConnectionError(error)) => {
            StoreError::Unavailable(format!("database connection failed: {error}"))
        }
        PoolError::Backend(ManagerError::QueryError(error))
        | PoolError::PostCreateHook(HookError::Backend(ManagerError::QueryError(error))) => query_error(error),
        PoolError::PostCreateHook(HookError::Backend(ManagerError::ConnectionError(error))) => {
            StoreError::Unavailable(format!("database connection failed: {error}"))
        }
        other => StoreError::unexpected(other),
    }
}

/// Query failures: a connection lost mid-request (closed, reset, terminated by the server), a
/// server shutting down and server-side timeouts are outages; the rest is unexpected.
pub(crate) fn query_error(error: DieselError) -> StoreError {
    if is_outage(&error) {
        StoreError::Unavailable(format!("database unavailable: {error}"))
    } else {
        StoreError::unexpected(error)
    }
}

fn is_outage(error: &DieselError) -> bool {
    match error {
        // diesel-async reports a connection that closed or broke without a server message
        // (`connection closed`, `error communicating with the server`) as "unable to send".
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _) => {
            true
        }
        DieselError::DatabaseError(_, info) => is_outage_state(info.message()),
        // A transaction whose connection died cannot be rolled back or committed.
        DieselError::BrokenTransactionManager => true,
        DieselError::RollbackErrorOnCommit { rollback_error, commit_error } => {
            is_outage(commit_error) || is_outage(rollback_error)
        }
        _ => false,
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

/// Server messages of an outage (diesel keeps the message, not the SQLSTATE): statement timeout
/// (57014), administrator or crash shutdown (57P01, 57P02), start-up or shutdown in progress
/// (57P03), no connection slot left (53300).
fn is_outage_state(message: &str) -> bool {
    message.contains("canceling statement due to statement timeout")
        || message.contains("terminating connection")
        || message.contains("the database system is")
        || message.contains("too many clients")
        || message.contains("remaining connection slots are reserved")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unable_to_send(message: &str) -> DieselError {
        DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, Box::new(message.to_owned()))
    }

    #[test]
    fn lost_connections_are_outages_and_other_failures_are_not() {
        for lost in [
            unable_to_send("connection closed"),
            unable_to_send("error communicating with the server: Connection reset by peer (os error 104)"),
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new(String::new())),
            DieselError::BrokenTransactionManager,
            DieselError::RollbackErrorOnCommit {
                rollback_error: Box::new(unable_to_send("connection closed")),
                commit_error: Box::new(DieselError::NotFound),
            },
        ] {
            assert!(matches!(query_error(lost), StoreError::Unavailable(_)));
        }
        let foreign_key = DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, Box::new(String::new()));
        for other in [DieselError::NotFound, foreign_key] {
            assert!(matches!(query_error(other), StoreError::Unexpected(_)));
        }
    }
}
