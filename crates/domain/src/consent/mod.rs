//! The subject's rights (SPEC §7). Consents: an append-only history per subject; the newest
//! record of each type is the current state, and a type never recorded is not granted. The
//! other rights live in the submodules: access and portability ([`export`]), erasure
//! ([`erasure`]) and storage limitation ([`retention`]).

pub mod erasure;
pub mod export;
pub mod retention;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::{AuditEntry, Outcome, RequestContext};
use crate::error::StoreError;
use crate::users::policy::{Actor, may_read_consents, may_record_consent};
use crate::users::{InvalidValue, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentType {
    DataProcessing,
    LocationTracking,
    TelegramNotifications,
    Analytics,
}

impl ConsentType {
    pub const ALL: [ConsentType; 4] =
        [Self::DataProcessing, Self::LocationTracking, Self::TelegramNotifications, Self::Analytics];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DataProcessing => "data_processing",
            Self::LocationTracking => "location_tracking",
            Self::TelegramNotifications => "telegram_notifications",
            Self::Analytics => "analytics",
        }
    }
}

impl std::str::FromStr for ConsentType {
    type Err = InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or(InvalidValue("must be one of data_processing, location_tracking, telegram_notifications, analytics"))
    }
}

/// The version of the policy text a consent refers to: 1..=32 printable characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion(String);

impl PolicyVersion {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = raw.trim();
        if value.is_empty() || raw.chars().count() > 32 || value.chars().any(char::is_control) {
            return Err(InvalidValue("must be 1 to 32 printable characters"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a consent was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Api,
    Telegram,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Telegram => "telegram",
        }
    }
}

/// One record of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub id: Uuid,
    pub consent_type: ConsentType,
    pub granted: bool,
    pub policy_version: String,
    pub channel: String,
    pub user_agent: Option<String>,
    pub recorded_at: OffsetDateTime,
}

/// A record to append.
#[derive(Debug, Clone)]
pub struct NewConsent {
    pub consent_type: ConsentType,
    pub granted: bool,
    pub policy_version: PolicyVersion,
    pub channel: Channel,
}

/// Consent records. Error contract: outages are [`StoreError::Unavailable`]; a subject that
/// does not exist is `Ok(None)` on `append`.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Appends a record and its audit row in one transaction.
    async fn append(
        &self,
        subject: UserId,
        consent: NewConsent,
        context: &RequestContext,
        audit: AuditEntry,
    ) -> Result<Option<ConsentRecord>, StoreError>;

    /// The whole history of the subject, newest first; `None` when the subject does not exist.
    async fn history(&self, subject: UserId) -> Result<Option<Vec<ConsentRecord>>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The subject does not exist, or the caller may not see it.
    #[error("not found")]
    NotFound,
    /// Visible, but consent is the subject's own to give.
    #[error("only the subject records consent")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The state of one consent type: the newest record, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentConsent {
    pub consent_type: ConsentType,
    pub latest: Option<ConsentRecord>,
}

impl CurrentConsent {
    pub fn granted(&self) -> bool {
        self.latest.as_ref().is_some_and(|record| record.granted)
    }
}

/// Current state per type, derived from a newest-first history.
pub fn current_state(history: &[ConsentRecord]) -> Vec<CurrentConsent> {
    ConsentType::ALL
        .into_iter()
        .map(|consent_type| CurrentConsent {
            consent_type,
            latest: history.iter().find(|record| record.consent_type == consent_type).cloned(),
        })
        .collect()
}

pub async fn record_consent(
    store: &dyn ConsentStore,
    actor: Actor,
    subject: UserId,
    consent: NewConsent,
    context: RequestContext,
) -> Result<ConsentRecord, ConsentError> {
    if !may_record_consent(actor, subject) {
        return Err(ConsentError::Forbidden);
    }
    let audit = AuditEntry {
        actor: Some((actor.id, actor.role)),
        action: if consent.granted { "consent.grant" } else { "consent.withdraw" },
        resource_type: "consent",
        resource_id: Some(subject.as_uuid()),
        outcome: Outcome::Success,
        context: context.clone(),
    };
    store.append(subject, consent, &context, audit).await?.ok_or(ConsentError::NotFound)
}

/// The history of a subject the actor may read, newest first.
pub async fn consent_history(
    store: &dyn ConsentStore,
    actor: Actor,
    subject: UserId,
) -> Result<Vec<ConsentRecord>, ConsentError> {
    if !may_read_consents(actor, subject) {
        return Err(ConsentError::Forbidden);
    }
    store.history(subject).await?.ok_or(ConsentError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(consent_type: ConsentType, granted: bool, minutes_ago: i64) -> ConsentRecord {
        ConsentRecord {
            id: Uuid::now_v7(),
            consent_type,
            granted,
            policy_version: "1.0".into(),
            channel: "api".into(),
            user_agent: None,
            recorded_at: OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago),
        }
    }

    #[test]
    fn the_newest_record_decides_and_unrecorded_types_are_not_granted() {
        let history = vec![
            record(ConsentType::LocationTracking, false, 1),
            record(ConsentType::LocationTracking, true, 5),
            record(ConsentType::Analytics, true, 3),
        ];
        let state = current_state(&history);
        let granted = |kind| state.iter().find(|s| s.consent_type == kind).map(CurrentConsent::granted);
        assert_eq!(granted(ConsentType::LocationTracking), Some(false), "withdrawn after granting");
        assert_eq!(granted(ConsentType::Analytics), Some(true));
        assert_eq!(granted(ConsentType::DataProcessing), Some(false), "never recorded");
        assert_eq!(state.len(), 4);
    }

    #[test]
    fn types_and_versions_parse_strictly() {
        for kind in ConsentType::ALL {
            assert_eq!(kind.as_str().parse::<ConsentType>(), Ok(kind));
        }
        assert!("marketing".parse::<ConsentType>().is_err());
        assert!(PolicyVersion::parse("2026-11").is_ok());
        assert!(PolicyVersion::parse("").is_err());
        assert!(PolicyVersion::parse(&"v".repeat(33)).is_err());
    }
}
