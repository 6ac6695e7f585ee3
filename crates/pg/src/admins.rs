//! GAD always keeps an active administrator. Every write that can take one away (erasure, a
//! role change, a deactivation) takes turns under one transaction-level advisory lock and then
//! counts, in its own transaction, what the writes before it committed: two admins demoting or
//! erasing each other at once can never both succeed.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Key of the advisory lock (`pg_advisory_xact_lock`), held until the transaction ends.
const ADMINISTRATORS_LOCK: i64 = 7_305_482_461_944_137_219;

/// Waits for the writes that may take away an administrator before this one; call it first in
/// the transaction, before locking any user row, so that every such write locks in one order.
pub(crate) async fn take_turn(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(ADMINISTRATORS_LOCK)
        .execute(conn)
        .await
        .map(drop)
}

#[derive(QueryableByName)]
struct LastActiveAdmin {
    #[diesel(sql_type = Bool)]
    last: bool,
}

/// Whether the user is an active administrator and no other user is. Meaningful only after
/// [`take_turn`] in the same transaction.
pub(crate) async fn is_last_active_admin(conn: &mut AsyncPgConnection, id: Uuid) -> diesel::QueryResult<bool> {
    let found: LastActiveAdmin = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'admin' AND is_active AND erased_at IS NULL) \
         AND NOT EXISTS (SELECT 1 FROM users WHERE id <> $1 AND role = 'admin' AND is_active AND erased_at IS NULL) \
         AS last",
    )
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await?;
    Ok(found.last)
}
