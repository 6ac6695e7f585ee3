//! Consents and audit events can only be appended, except by the privacy maintenance paths.

use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::{AsyncConnection, RunQueryDsl};
use gad_test_support::TestDatabase;

use crate::fixtures::{audit_event, failure_message, user};

#[tokio::test]
async fn records_cannot_be_rewritten_or_removed() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    let subject = user(&mut conn, "officer").await;
    diesel::sql_query(
        "INSERT INTO consents (id, user_id, consent_type, granted, policy_version, channel) \
         VALUES ($1, $2, 'location_tracking', true, '1.0', 'api')",
    )
    .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
    .bind::<SqlUuid, _>(subject)
    .execute(&mut conn)
    .await
    .unwrap();
    audit_event(&mut conn, subject).await;

    for statement in [
        "UPDATE consents SET granted = false",
        "DELETE FROM consents",
        "UPDATE audit_events SET outcome = 'failure'",
        "DELETE FROM audit_events",
    ] {
        let message = failure_message(diesel::sql_query(statement).execute(&mut conn).await);
        assert!(message.contains("append-only"), "{statement}: {message}");
    }
}

#[tokio::test]
async fn privacy_maintenance_may_erase_inside_its_own_transaction_only() {
    let database = TestDatabase::migrated().await;
    let mut conn = database.connect().await;
    let subject = user(&mut conn, "officer").await;
    audit_event(&mut conn, subject).await;

    let erased = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::sql_query("SET LOCAL gad.privacy_maintenance = 'on'").execute(conn).await?;
            diesel::sql_query("UPDATE audit_events SET ip = NULL").execute(conn).await
        })
        .await
        .unwrap();
    assert_eq!(erased, 1);

    let after = diesel::sql_query("DELETE FROM audit_events").execute(&mut conn).await;
    assert!(failure_message(after).contains("append-only"), "the permission ended with the transaction");
}
