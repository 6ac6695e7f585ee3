//! The retention purge: rows past their retention go in small batches, each its own short
//! transaction that skips rows someone else has locked, so that neither writers nor readers
//! ever wait on it for long. One instance purges at a time (a session-level advisory lock on
//! the connection doing the work; a crashed purger's lock goes with its connection).

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gad_domain::consent::retention::{PurgeMode, PurgeOutcome, PurgedRows, RetentionPolicy};
use time::{Duration, OffsetDateTime};

/// Held by the instance that is purging (`pg_try_advisory_lock`).
const PURGE_LOCK: i64 = 7_305_482_461_944_137_220;

/// What is past retention in one table: `$1` is the cut-off instant.
struct Rule {
    table: &'static str,
    condition: &'static str,
    kept_for: fn(&RetentionPolicy) -> Duration,
}

/// In dependency order: tokens before the families they belong to.
const RULES: &[Rule] = &[
    Rule { table: "officer_locations", condition: "received_at < $1", kept_for: |policy| policy.location_history },
    Rule { table: "audit_events", condition: "at < $1", kept_for: |policy| policy.audit_events },
    Rule {
        table: "event_log",
        // Never an event that a registered consumer has not read yet, nor one still unnumbered.
        condition: "created_at < $1 AND seq IS NOT NULL \
                    AND seq <= coalesce((SELECT min(last_seq) FROM event_consumers), seq)",
        kept_for: |policy| policy.event_log,
    },
    Rule {
        table: "telegram_processed_updates",
        // Pending ones too: an update never processed in that long will not be (and Telegram
        // stops redelivering after a day), and its payload is personal data.
        condition: "(processed_at < $1 OR (processed_at IS NULL AND received_at < $1))",
        kept_for: |policy| policy.processed_telegram_updates,
    },
    Rule {
        table: "telegram_outbox",
        condition: "settled_at < $1",
        kept_for: |policy| policy.processed_telegram_updates,
    },
    Rule { table: "idempotency_keys", condition: "expires_at < $1", kept_for: |policy| policy.expired_credentials },
    Rule { table: "refresh_tokens", condition: "expires_at < $1", kept_for: |policy| policy.expired_credentials },
    Rule {
        table: "refresh_token_families",
        condition: "created_at < $1 AND NOT EXISTS \
                    (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_token_families.id)",
        kept_for: |policy| policy.expired_credentials,
    },
    Rule {
        table: "revoked_access_tokens",
        condition: "expires_at < $1",
        kept_for: |policy| policy.expired_credentials,
    },
    Rule { table: "ws_tickets", condition: "expires_at < $1", kept_for: |policy| policy.expired_credentials },
    Rule { table: "telegram_link_codes", condition: "expires_at < $1", kept_for: |policy| policy.expired_credentials },
];

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

pub(super) async fn purge(
    conn: &mut AsyncPgConnection,
    policy: &RetentionPolicy,
    mode: PurgeMode,
    batch_size: u32,
) -> diesel::QueryResult<PurgeOutcome> {
    let now = OffsetDateTime::now_utc();
    if mode == PurgeMode::DryRun {
        let mut counts = Vec::with_capacity(RULES.len());
        for rule in RULES {
            let count: Count =
                diesel::sql_query(format!("SELECT count(*) AS count FROM {} WHERE {}", rule.table, rule.condition))
                    .bind::<Timestamptz, _>(now - (rule.kept_for)(policy))
                    .get_result(conn)
                    .await?;
            counts.push(PurgedRows { table: rule.table, rows: u64::try_from(count.count).unwrap_or_default() });
        }
        return Ok(PurgeOutcome::Done(counts));
    }
    let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<BigInt, _>(PURGE_LOCK)
        .get_result(conn)
        .await?;
    if !lock.locked {
        return Ok(PurgeOutcome::Busy);
    }
    let outcome = delete_in_batches(conn, policy, now, batch_size).await;
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(PURGE_LOCK).execute(conn).await;
    let deleted = outcome?;
    unlocked?;
    Ok(PurgeOutcome::Done(deleted))
}

async fn delete_in_batches(
    conn: &mut AsyncPgConnection,
    policy: &RetentionPolicy,
    now: OffsetDateTime,
    batch_size: u32,
) -> diesel::QueryResult<Vec<PurgedRows>> {
    let mut deleted = Vec::with_capacity(RULES.len());
    for rule in RULES {
        let cutoff = now - (rule.kept_for)(policy);
        let statement = format!(
            "DELETE FROM {table} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table} WHERE {condition} \
             LIMIT {batch_size} FOR UPDATE SKIP LOCKED))",
            table = rule.table,
            condition = rule.condition,
        );
        let mut rows = 0u64;
        loop {
            let batch = conn
                .transaction(async |conn| {
                    // Append-only tables accept deletions only from the privacy maintenance.
                    diesel::sql_query("SET LOCAL gad.privacy_maintenance = 'on'").execute(conn).await?;
                    diesel::sql_query(&statement).bind::<Timestamptz, _>(cutoff).execute(conn).await
                })
                .await?;
            rows += batch as u64;
            if batch < batch_size as usize {
                break;
            }
        }
        if rows > 0 {
            tracing::info!(table = rule.table, rows, "purged rows past their retention");
        }
        deleted.push(PurgedRows { table: rule.table, rows });
    }
    Ok(deleted)
}
