//! The event log's numbers are global, gap-free and follow commit order: events are numbered
//! after they commit, so writers never wait for each other, and an event committed late is
//! numbered after every event already numbered.

use diesel::sql_types::{BigInt, Integer, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::join_all;
use gad_test_support::TestDatabase;
use uuid::Uuid;

async fn append(conn: &mut AsyncPgConnection) -> Result<usize, diesel::result::Error> {
    diesel::sql_query("INSERT INTO event_log (id, event_type, payload) VALUES ($1, 'task.created', '{}'::jsonb)")
        .bind::<SqlUuid, _>(Uuid::now_v7())
        .execute(conn)
        .await
}

async fn number(conn: &mut AsyncPgConnection) -> i32 {
    diesel::dsl::sql::<Integer>("SELECT gad_event_log_number()").get_result(conn).await.unwrap()
}

async fn numbers(conn: &mut AsyncPgConnection) -> Vec<Option<i64>> {
    diesel::dsl::sql::<diesel::sql_types::Nullable<BigInt>>("SELECT seq FROM event_log ORDER BY seq NULLS LAST")
        .load(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn concurrent_writers_and_numberers_leave_no_gaps() {
    let database = TestDatabase::migrated().await;
    let mut connections = Vec::new();
    for _ in 0..40 {
        connections.push(database.connect().await);
    }
    let writers = connections.into_iter().enumerate().map(|(index, mut conn)| async move {
        let outcome = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                append(conn).await?;
                if index % 2 == 1 {
                    // Half of the writers roll back.
                    return Err(diesel::result::Error::RollbackTransaction);
                }
                Ok(())
            })
            .await;
        // Every writer numbers after its commit, all at once.
        number(&mut conn).await;
        outcome
    });
    let outcomes = join_all(writers).await;
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 20);

    let mut conn = database.connect().await;
    let expected: Vec<Option<i64>> = (1..=20).map(Some).collect();
    assert_eq!(numbers(&mut conn).await, expected, "each committed event numbered once, without gaps");
    assert_eq!(number(&mut conn).await, 0, "nothing is left to number");
}

#[tokio::test]
async fn an_event_committed_late_is_numbered_after_those_already_numbered() {
    let database = TestDatabase::migrated().await;
    let (mut slow, mut quick) = (database.connect().await, database.connect().await);
    diesel::sql_query("BEGIN").execute(&mut slow).await.unwrap();
    append(&mut slow).await.unwrap();

    // The second writer neither waits for the first nor sees its event numbered.
    tokio::time::timeout(std::time::Duration::from_secs(5), append(&mut quick))
        .await
        .expect("writers do not wait for each other")
        .unwrap();
    assert_eq!(number(&mut quick).await, 1);
    assert_eq!(numbers(&mut quick).await, vec![Some(1)], "only the committed event is numbered");

    diesel::sql_query("COMMIT").execute(&mut slow).await.unwrap();
    assert_eq!(number(&mut quick).await, 1);
    let late: i64 = diesel::dsl::sql::<BigInt>("SELECT seq FROM event_log ORDER BY id LIMIT 1")
        .get_result(&mut quick)
        .await
        .unwrap();
    assert_eq!(late, 2, "created first, committed last: numbered after the event a reader has seen");
}
