//! A transaction whose `BEGIN` costs no round trip of its own: it leaves in the same write as
//! the transaction's first statement. Every round trip is a send and a wake-up on both sides of
//! the socket, and the hot writes (creating a task, a transition) are only three or four of them.
//!
//! Order on the wire is what makes this sound: the driver sends requests in the order they are
//! issued, and `BEGIN` (a simple query, nothing to prepare) is issued before the work is first
//! polled, so every statement of the work follows it. The work runs on a shared reference, so
//! that independent statements inside it can be pipelined too.

use diesel::result::Error;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures_util::future::{BoxFuture, join};

use crate::pool::PgConnection;

/// Runs `work` in one transaction on `conn`: committed when it succeeds, rolled back when it
/// fails. A connection whose transaction may still be open (the caller went away mid-way, or the
/// closing statement failed) never goes back to the pool: it is closed, and PostgreSQL rolls the
/// transaction back.
pub(crate) async fn transaction<T, E>(
    conn: PgConnection,
    work: impl for<'c> FnOnce(&'c AsyncPgConnection) -> BoxFuture<'c, Result<T, E>>,
) -> Result<T, E>
where
    E: From<Error>,
{
    let mut open = Open(Some(conn));
    let shared: &AsyncPgConnection = open.connection();
    let (begun, outcome) = join(simple(shared, "BEGIN"), work(shared)).await;
    let succeeded = begun.is_ok() && outcome.is_ok();
    let ended = simple(shared, if succeeded { "COMMIT" } else { "ROLLBACK" }).await;
    if ended.is_ok() {
        open.closed();
    }
    begun?;
    let value = outcome?;
    ended?;
    Ok(value)
}

/// A statement of the simple query protocol: sent the moment it is first polled, with nothing
/// to prepare first.
async fn simple(mut conn: &AsyncPgConnection, statement: &str) -> Result<(), Error> {
    conn.batch_execute(statement).await
}

/// A pooled connection inside a transaction until [`Open::closed`]; dropped before that, it is
/// taken out of the pool and closed.
struct Open(Option<PgConnection>);

impl Open {
    fn connection(&mut self) -> &AsyncPgConnection {
        self.0.as_deref().expect("the connection is held until the transaction ends")
    }

    /// The transaction ended: the connection may serve the next caller.
    fn closed(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(deadpool::managed::Object::take(conn));
        }
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    use gad_test_support::TestDatabase;

    use super::*;
    use crate::pool::{PgPool, PgSettings, build_pool, connection};

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }

    async fn setup() -> (TestDatabase, PgPool) {
        let database = TestDatabase::empty().await;
        let mut conn = database.connect().await;
        diesel::sql_query("CREATE TABLE probe (n int PRIMARY KEY)").execute(&mut conn).await.unwrap();
        let pool = build_pool(&PgSettings::for_tests(database.url(), 1), "transaction-test").unwrap();
        (database, pool)
    }

    async fn insert(mut conn: &AsyncPgConnection, n: i32) -> Result<(), Error> {
        diesel::sql_query(format!("INSERT INTO probe VALUES ({n})")).execute(&mut conn).await.map(drop)
    }

    async fn rows(database: &TestDatabase) -> i64 {
        let mut conn = database.connect().await;
        diesel::sql_query("SELECT count(*) AS count FROM probe").get_result::<Count>(&mut conn).await.unwrap().count
    }

    /// Whether the pool's connection is outside any transaction block, where a savepoint is
    /// refused.
    async fn outside_a_transaction(pool: &PgPool) -> bool {
        let mut conn = connection(pool).await.unwrap();
        conn.batch_execute("SAVEPOINT probe").await.is_err()
    }

    #[tokio::test]
    async fn commits_what_succeeds_and_rolls_back_what_fails() {
        let (database, pool) = setup().await;
        let committed: Result<(), Error> = transaction(connection(&pool).await.unwrap(), |conn| {
            Box::pin(async move {
                insert(conn, 1).await?;
                insert(conn, 2).await
            })
        })
        .await;
        committed.unwrap();
        assert_eq!(rows(&database).await, 2);

        let failed: Result<(), Error> = transaction(connection(&pool).await.unwrap(), |conn| {
            Box::pin(async move {
                insert(conn, 3).await?;
                insert(conn, 1).await
            })
        })
        .await;
        assert!(failed.is_err(), "the duplicate fails the transaction");
        assert_eq!(rows(&database).await, 2, "the first insert is rolled back with it");
        assert_eq!(pool.status().size, 1, "a rolled-back connection is kept");
        assert!(outside_a_transaction(&pool).await);
    }

    #[tokio::test]
    async fn a_transaction_abandoned_mid_way_never_reaches_the_next_caller() {
        let (database, pool) = setup().await;
        let (inserted_tx, inserted_rx) = tokio::sync::oneshot::channel();
        let abandoned = transaction(connection(&pool).await.unwrap(), move |conn| {
            Box::pin(async move {
                insert(conn, 1).await?;
                let _ = inserted_tx.send(());
                std::future::pending::<Result<(), Error>>().await
            })
        });
        tokio::select! {
            _ = abandoned => unreachable!("the work never finishes"),
            signalled = inserted_rx => signalled.unwrap(),
        }
        assert_eq!(pool.status().size, 0, "the connection left the pool");
        assert_eq!(rows(&database).await, 0, "its transaction was never committed");
        assert!(outside_a_transaction(&pool).await, "the next caller gets a fresh connection");
    }
}
