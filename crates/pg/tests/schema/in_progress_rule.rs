//! "An officer is in progress on at most one task", enforced by the database under concurrency.

use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::future::join_all;
use gad_test_support::TestDatabase;

use crate::fixtures::{assign, officer, start, task, update_task, user, violated};

const RULE: &str = "task_assignments_one_in_progress_per_officer";

#[tokio::test]
async fn twenty_racing_starts_for_one_officer_let_exactly_one_through() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    let operator = user(&mut conn, "operator").await;
    let officer = officer(&mut conn).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let task = task(&mut conn, operator).await;
        assign(&mut conn, task, officer).await.unwrap();
        tasks.push(task);
    }

    // Twenty connections, each starting a different task of the same officer at once.
    let mut connections = Vec::new();
    for _ in 0..20 {
        connections.push(database.connect().await);
    }
    let attempts = connections.into_iter().zip(tasks.iter().copied()).map(|(mut conn, task)| async move {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| start(conn, task).await).await
    });
    let outcomes = join_all(attempts).await;

    let started = outcomes.iter().filter(|outcome| matches!(outcome, Ok(1))).count();
    assert_eq!(started, 1, "exactly one start wins: {outcomes:?}");
    for outcome in outcomes.into_iter().filter(|outcome| outcome.is_err()) {
        assert_eq!(violated(outcome), RULE);
    }
    let in_progress: i64 =
        diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM tasks WHERE status = 'in_progress'")
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(in_progress, 1);
}

#[tokio::test]
async fn finishing_frees_the_officer_and_pausing_does_too() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    let operator = user(&mut conn, "operator").await;
    let officer = officer(&mut conn).await;
    let (first, second) = (task(&mut conn, operator).await, task(&mut conn, operator).await);
    assign(&mut conn, first, officer).await.unwrap();
    assign(&mut conn, second, officer).await.unwrap();

    start(&mut conn, first).await.unwrap();
    assert_eq!(violated(start(&mut conn, second).await), RULE);

    update_task(&mut conn, first, "status = 'paused', paused_at = now()").await.unwrap();
    start(&mut conn, second).await.expect("a paused task does not hold the officer");

    let resume = "status = 'in_progress', paused_at = NULL";
    assert_eq!(violated(update_task(&mut conn, first, resume).await), RULE, "resuming re-checks the rule");

    update_task(&mut conn, second, "status = 'completed', actual_end = now()").await.unwrap();
    update_task(&mut conn, first, resume).await.expect("free again once the other task is completed");
}

#[tokio::test]
async fn a_busy_officer_cannot_be_added_to_another_running_task() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    let operator = user(&mut conn, "operator").await;
    let officer = officer(&mut conn).await;
    let (busy, running) = (task(&mut conn, operator).await, task(&mut conn, operator).await);
    assign(&mut conn, busy, officer).await.unwrap();
    start(&mut conn, busy).await.unwrap();
    start(&mut conn, running).await.unwrap();
    assert_eq!(violated(assign(&mut conn, running, officer).await), RULE);
}
