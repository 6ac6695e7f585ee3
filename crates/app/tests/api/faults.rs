//! Fault injection: PostgreSQL connections terminated under write load (SPEC §2: a dependency
//! that is unavailable is 503 `unavailable` with `Retry-After`, never 500; nothing acknowledged
//! is lost).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use gad_domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, hours_from_now};

/// Writers that keep creating tasks at once.
const WRITERS: usize = 6;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

// Kept apart from the test: diesel's `RunQueryDsl::load` would shadow the atomics' `load`.

/// Terminates this test's instance's connections to its database (never the caller's own).
async fn terminate_backends(db: &mut diesel_async::AsyncPgConnection) {
    use diesel_async::RunQueryDsl;
    sql_query(
        "SELECT count(pg_terminate_backend(pid)) AS count FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'gad-test'",
    )
    .get_result::<Count>(db)
    .await
    .unwrap();
}

/// How many of the tasks `ids` are stored.
async fn stored_tasks(db: &mut diesel_async::AsyncPgConnection, ids: &[String]) -> i64 {
    use diesel_async::RunQueryDsl;
    sql_query("SELECT count(*) AS count FROM tasks WHERE id::text = ANY(string_to_array($1, ','))")
        .bind::<Text, _>(ids.join(","))
        .get_result::<Count>(db)
        .await
        .unwrap()
        .count
}

#[tokio::test]
async fn terminated_database_connections_under_write_load_give_only_201_or_503() {
    let app = TestApp::spawn().await;
    app.create_user("op@x.org", Role::Operator).await;
    let operator = app.login("op@x.org").await.access_token;
    let done = AtomicBool::new(false);
    let (created, unavailable) = (AtomicUsize::new(0), AtomicUsize::new(0));

    let writer = async || {
        let mut outcomes = Vec::new();
        while !done.load(Ordering::Acquire) {
            let body = json!({"title": "Patrol under faults", "kind": "patrol", "scheduled_start": hours_from_now(1)});
            let response = app.send(Method::POST, "/api/v1/tasks", &operator, Some(body)).await;
            let status = response.status();
            let retry_after = response.headers().contains_key("retry-after");
            let body: Value = response.json().await.unwrap_or(Value::Null);
            match status {
                StatusCode::CREATED => created.fetch_add(1, Ordering::AcqRel),
                StatusCode::SERVICE_UNAVAILABLE => unavailable.fetch_add(1, Ordering::AcqRel),
                _ => 0,
            };
            outcomes.push((status, retry_after, body));
        }
        outcomes
    };
    // Terminates the instance's connections to its database (never this one) until the load
    // has met both outcomes, and a few rounds more.
    let killer = async {
        let mut db = app.db().await;
        let mut rounds = 0;
        while rounds < 200 && (rounds < 10 || unavailable.load(Ordering::Acquire) == 0) {
            let before = created.load(Ordering::Acquire) + unavailable.load(Ordering::Acquire);
            terminate_backends(&mut db).await;
            // Let some requests finish (and the pool reconnect) before the next round.
            while created.load(Ordering::Acquire) + unavailable.load(Ordering::Acquire) < before + WRITERS {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            rounds += 1;
        }
        done.store(true, Ordering::Release);
    };
    let writers = futures_util::future::join_all((0..WRITERS).map(|_| writer()));
    let (outcomes, ()) = tokio::join!(writers, killer);

    let outcomes: Vec<_> = outcomes.into_iter().flatten().collect();
    for (status, retry_after, body) in &outcomes {
        assert!(matches!(*status, StatusCode::CREATED | StatusCode::SERVICE_UNAVAILABLE), "{status}: {body}");
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(retry_after, "503 without Retry-After: {body}");
            assert_eq!(body["error"]["code"], "unavailable");
        }
    }
    assert!(unavailable.load(Ordering::Acquire) > 0, "no request met a terminated connection");
    let acknowledged: Vec<String> = outcomes
        .iter()
        .filter(|(status, ..)| *status == StatusCode::CREATED)
        .map(|(_, _, body)| body["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!acknowledged.is_empty(), "nothing was created between the faults");
    let stored = stored_tasks(&mut app.db().await, &acknowledged).await;
    assert_eq!(stored, i64::try_from(acknowledged.len()).unwrap(), "every acknowledged task is stored");
}
