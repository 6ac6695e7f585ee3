//! Consent records in PostgreSQL (append-only; the table refuses updates and deletes).

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use gad_domain::audit::{AuditEntry, RequestContext};
use gad_domain::consent::{ConsentRecord, ConsentStore, NewConsent};
use gad_domain::error::StoreError;
use gad_domain::users::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit;
use crate::enums::ConsentTypeColumn;
use crate::errors::query_error;
use crate::pool::{PgPool, connection};
use crate::schema::consents;
use crate::users::live_user_exists;

#[derive(Clone)]
pub struct PgConsentStore {
    pool: PgPool,
}

impl PgConsentStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl std::fmt::Debug for PgConsentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConsentStore").finish_non_exhaustive()
    }
}

type ConsentColumns = (
    consents::id,
    consents::consent_type,
    consents::granted,
    consents::policy_version,
    consents::channel,
    consents::user_agent,
    consents::recorded_at,
);

const CONSENT_COLUMNS: ConsentColumns = (
    consents::id,
    consents::consent_type,
    consents::granted,
    consents::policy_version,
    consents::channel,
    consents::user_agent,
    consents::recorded_at,
);

type ConsentRow = (Uuid, ConsentTypeColumn, bool, String, String, Option<String>, OffsetDateTime);

fn record((id, consent_type, granted, policy_version, channel, user_agent, recorded_at): ConsentRow) -> ConsentRecord {
    ConsentRecord { id, consent_type: consent_type.0, granted, policy_version, channel, user_agent, recorded_at }
}

#[async_trait]
impl ConsentStore for PgConsentStore {
    async fn append(
        &self,
        subject: UserId,
        consent: NewConsent,
        context: &RequestContext,
        entry: AuditEntry,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        let user_agent = context.user_agent.as_deref().map(|agent| agent.chars().take(512).collect::<String>());
        let ip = context.ip.map(ipnet::IpNet::from);
        let mut conn = connection(&self.pool).await?;
        conn.transaction(async |conn| {
            if !live_user_exists(conn, subject.as_uuid()).await? {
                return Ok(None);
            }
            let row: ConsentRow = diesel::insert_into(consents::table)
                .values((
                    consents::id.eq(Uuid::now_v7()),
                    consents::user_id.eq(subject.as_uuid()),
                    consents::consent_type.eq(ConsentTypeColumn(consent.consent_type)),
                    consents::granted.eq(consent.granted),
                    consents::policy_version.eq(consent.policy_version.as_str()),
                    consents::channel.eq(consent.channel.as_str()),
                    consents::user_agent.eq(user_agent.as_deref()),
                    consents::ip.eq(ip),
                ))
                .returning(CONSENT_COLUMNS)
                .get_result(conn)
                .await?;
            audit::append(conn, &entry).await?;
            Ok(Some(record(row)))
        })
        .await
        .map_err(query_error)
    }

    async fn history(&self, subject: UserId) -> Result<Option<Vec<ConsentRecord>>, StoreError> {
        let mut conn = connection(&self.pool).await?;
        if !live_user_exists(&mut conn, subject.as_uuid()).await.map_err(query_error)? {
            return Ok(None);
        }
        consents::table
            .filter(consents::user_id.eq(subject.as_uuid()))
            .order((consents::recorded_at.desc(), consents::id.desc()))
            .select(CONSENT_COLUMNS)
            .load::<ConsentRow>(&mut conn)
            .await
            .map(|rows| Some(rows.into_iter().map(record).collect()))
            .map_err(query_error)
    }
}
