//! The event log's sequence is global, gap-free and follows commit order.

use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::future::join_all;
use gad_test_support::TestDatabase;

async fn append(conn: &mut diesel_async::AsyncPgConnection) -> Result<usize, diesel::result::Error> {
    diesel::sql_query("INSERT INTO event_log (id, event_type, payload) VALUES ($1, 'task.created', '{}'::jsonb)")
        .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
        .execute(conn)
        .await
}

#[tokio::test]
async fn concurrent_writers_with_rollbacks_leave_no_gaps() {
    let database = TestDatabase::migrated().await;
    let mut connections = Vec::new();
    for _ in 0..40 {
        connections.push(database.connect().await);
    }
    let writers = connections.into_iter().enumerate().map(|(index, mut conn)| async move {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            append(conn).await?;
            if index % 2 == 1 {
                // Half of the writers roll back after taking a number.
                return Err(diesel::result::Error::RollbackTransaction);
            }
            Ok(())
        })
        .await
    });
    let outcomes = join_all(writers).await;
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 20);

    let mut conn = database.connect().await;
    let seqs: Vec<i64> =
        diesel::dsl::sql::<BigInt>("SELECT seq FROM event_log ORDER BY seq").load(&mut conn).await.unwrap();
    assert_eq!(seqs, (1..=20).collect::<Vec<i64>>(), "numbers of rolled-back writers are reused");
}

#[tokio::test]
async fn a_later_writer_waits_for_the_earlier_one_to_commit() {
    let database = TestDatabase::migrated().await;
    let (mut first, mut second) = (database.connect().await, database.connect().await);
    diesel::sql_query("BEGIN").execute(&mut first).await.unwrap();
    append(&mut first).await.unwrap();

    let second_writer = tokio::spawn(async move {
        append(&mut second).await.unwrap();
        second
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!second_writer.is_finished(), "the second writer must wait for the first to end");

    diesel::sql_query("COMMIT").execute(&mut first).await.unwrap();
    let _ = second_writer.await.unwrap();
    let seqs: Vec<i64> =
        diesel::dsl::sql::<BigInt>("SELECT seq FROM event_log ORDER BY seq").load(&mut first).await.unwrap();
    assert_eq!(seqs, vec![1, 2], "the waiter took the next number after the commit");
}
