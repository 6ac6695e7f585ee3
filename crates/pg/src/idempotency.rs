//! Idempotency keys in PostgreSQL: the primary key (owner, scope, key) makes the claim atomic.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{Binary, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::error::StoreError;
use gad_domain::idempotency::{Begin, IdempotencyStore, KEY_LIFETIME, KeyScope, StoredResponse};
use time::OffsetDateTime;

use crate::errors::query_error;
use crate::pool::{PgPool, connection};
use crate::prepared::Prepare;

#[derive(Clone)]
pub struct PgIdempotencyStore {
    pool: PgPool,
}

impl PgIdempotencyStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl std::fmt::Debug for PgIdempotencyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgIdempotencyStore").finish_non_exhaustive()
    }
}

#[derive(QueryableByName)]
struct Claim {
    #[diesel(sql_type = Binary)]
    request_hash: Vec<u8>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    response_status: Option<i16>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    response_headers: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Binary>)]
    response_body: Option<Vec<u8>>,
    /// Whether this statement inserted (or renewed) the row.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    claimed: bool,
}

#[async_trait]
impl IdempotencyStore for PgIdempotencyStore {
    async fn begin(&self, key: KeyScope<'_>, request_hash: [u8; 32]) -> Result<Begin, StoreError> {
        let mut conn = connection(&self.pool).await?;
        // A concurrent first request may commit its claim after this statement's snapshot was
        // taken: then neither branch sees a row, and the next attempt (a new snapshot) does.
        for _ in 0..3 {
            if let Some(claim) = claim(&mut conn, key, request_hash).await? {
                return Ok(decide(claim, request_hash));
            }
        }
        Err(StoreError::Unexpected("the idempotency key kept changing".into()))
    }

    async fn complete(&self, key: KeyScope<'_>, response: StoredResponse) -> Result<(), StoreError> {
        let mut conn = connection(&self.pool).await?;
        let headers = serde_json::to_value(&response.headers).map_err(StoreError::unexpected)?;
        diesel::sql_query(
            "UPDATE idempotency_keys SET response_status = $4, response_headers = $5, response_body = $6 \
             WHERE owner_id = $1 AND scope = $2 AND key = $3",
        )
        .bind::<SqlUuid, _>(key.owner.as_uuid())
        .bind::<Text, _>(key.scope)
        .bind::<Text, _>(key.key)
        .bind::<SmallInt, _>(i16::try_from(response.status).unwrap_or(500))
        .bind::<Jsonb, _>(headers)
        .bind::<Binary, _>(response.body)
        .prepared()
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(query_error)
    }

    async fn abandon(&self, key: KeyScope<'_>) -> Result<(), StoreError> {
        let mut conn = connection(&self.pool).await?;
        diesel::sql_query(
            "DELETE FROM idempotency_keys WHERE owner_id = $1 AND scope = $2 AND key = $3 AND response_status IS NULL",
        )
        .bind::<SqlUuid, _>(key.owner.as_uuid())
        .bind::<Text, _>(key.scope)
        .bind::<Text, _>(key.key)
        .prepared()
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(query_error)
    }
}

/// Claims the key (inserting it, or taking over an expired row) or reads it as it stands.
async fn claim(
    conn: &mut AsyncPgConnection,
    key: KeyScope<'_>,
    request_hash: [u8; 32],
) -> Result<Option<Claim>, StoreError> {
    let now = OffsetDateTime::now_utc();
    // Insert, or take over an expired row; otherwise return the row as it stands.
    diesel::sql_query(
            "WITH claimed AS ( \
                 INSERT INTO idempotency_keys (owner_id, scope, key, request_hash, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (owner_id, scope, key) DO UPDATE \
                     SET request_hash = EXCLUDED.request_hash, expires_at = EXCLUDED.expires_at, created_at = now(), \
                         response_status = NULL, response_headers = NULL, response_body = NULL \
                     WHERE idempotency_keys.expires_at <= $6 \
                 RETURNING request_hash, response_status, response_headers, response_body, true AS claimed) \
             SELECT * FROM claimed \
             UNION ALL \
             SELECT request_hash, response_status, response_headers, response_body, false AS claimed \
             FROM idempotency_keys WHERE owner_id = $1 AND scope = $2 AND key = $3 AND NOT EXISTS (SELECT 1 FROM claimed)",
        )
        .bind::<SqlUuid, _>(key.owner.as_uuid())
        .bind::<Text, _>(key.scope)
        .bind::<Text, _>(key.key)
        .bind::<Binary, _>(request_hash.as_slice())
        .bind::<Timestamptz, _>(now + KEY_LIFETIME)
        .bind::<Timestamptz, _>(now)
        .prepared()
        .get_result(conn)
        .await
        .optional()
        .map_err(query_error)
}

fn decide(claim: Claim, request_hash: [u8; 32]) -> Begin {
    if claim.claimed {
        return Begin::Started;
    }
    if claim.request_hash != request_hash {
        return Begin::Mismatch;
    }
    match (claim.response_status, claim.response_body) {
        (Some(status), Some(body)) => Begin::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(200),
            headers: claim
                .response_headers
                .and_then(|headers| serde_json::from_value(headers).ok())
                .unwrap_or_default(),
            body,
        }),
        _ => Begin::InProgress,
    }
}
