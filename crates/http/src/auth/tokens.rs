//! Access tokens (HS256 JWTs, every claim verified) and opaque refresh tokens (stored hashed).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gad_domain::settings::{self, Secret};
use gad_domain::users::{NewSession, Role, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The `auth` section of the configuration: what signing and checking tokens needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `GAD_JWT_SECRET` (secret, at least 32 bytes outside local and test); never in a file.
    #[serde(skip_deserializing, serialize_with = "settings::redacted")]
    pub jwt_secret: Option<Secret>,
    pub issuer: String,
    pub audience: String,
    #[serde(rename = "access_token_ttl_s", with = "settings::seconds")]
    pub access_token_ttl: std::time::Duration,
    #[serde(rename = "refresh_token_ttl_s", with = "settings::seconds")]
    pub refresh_token_ttl: std::time::Duration,
}

impl AuthSettings {
    /// Everything wrong with this section; `deployed` environments need a real signing key.
    pub fn problems(&self, deployed: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if self.access_token_ttl.is_zero() || self.refresh_token_ttl <= self.access_token_ttl {
            problems.push("auth token lifetimes must be positive and refresh longer than access".into());
        }
        match &self.jwt_secret {
            Some(secret) if secret.expose().len() < 32 && deployed => {
                problems.push("GAD_JWT_SECRET must be at least 32 bytes".into());
            }
            None if deployed => problems.push("GAD_JWT_SECRET is required".into()),
            _ => {}
        }
        problems
    }

    /// How long an access token lives.
    pub fn access_ttl(&self) -> Duration {
        Duration::try_from(self.access_token_ttl).unwrap_or(Duration::MAX)
    }

    fn refresh_ttl(&self) -> Duration {
        Duration::try_from(self.refresh_token_ttl).unwrap_or(Duration::MAX)
    }
}

/// The claims of an access token. `sid` is the refresh-token family (the session).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) sub: Uuid,
    pub(crate) role: Role,
    pub(crate) jti: Uuid,
    pub(crate) sid: Uuid,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) iss: String,
    pub(crate) aud: String,
}

impl Claims {
    /// When the token was issued, to the millisecond. `iat` has whole seconds; `jti` is a
    /// UUID v7 minted in the same instant, whose timestamp keeps the milliseconds. Without them
    /// a token issued in the same second as a user-wide revocation (a role change, then a new
    /// login) would count as issued before it and be refused.
    pub(crate) fn issued_at(&self) -> Option<OffsetDateTime> {
        let whole = OffsetDateTime::from_unix_timestamp(self.iat).ok()?;
        let precise = self.jti.get_timestamp().and_then(|timestamp| {
            let (seconds, nanos) = timestamp.to_unix();
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(seconds) * 1_000_000_000 + i128::from(nanos)).ok()
        });
        Some(precise.filter(|precise| precise.unix_timestamp() == self.iat).unwrap_or(whole))
    }
}

/// Signs and verifies access tokens; mints refresh tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A freshly issued access token.
#[derive(Debug)]
pub struct AccessToken {
    pub token: String,
    /// Seconds.
    pub expires_in: i64,
}

/// A freshly minted refresh token: the secret for the client, the rest for the store.
#[derive(Debug)]
pub(crate) struct RefreshToken {
    pub(crate) token: String,
    pub(crate) session: NewSession,
}

impl TokenIssuer {
    /// Signs with `GAD_JWT_SECRET`, or without one (allowed only locally and in tests) with a
    /// random key: tokens then die with this process.
    pub fn new(settings: &AuthSettings) -> std::io::Result<Self> {
        let secret = match &settings.jwt_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                tracing::warn!("GAD_JWT_SECRET is unset: signing with a random key; tokens die with this process");
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key).map_err(std::io::Error::other)?;
                key
            }
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub", "jti"]);
        validation.leeway = 0;
        validation.validate_nbf = false;
        Ok(Self {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: settings.access_ttl(),
            refresh_ttl: settings.refresh_ttl(),
        })
    }

    pub(crate) fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    pub fn issue_access(
        &self,
        user: UserId,
        role: Role,
        session: Uuid,
    ) -> Result<AccessToken, jsonwebtoken::errors::Error> {
        // `iat` is taken from the id so that both name the same instant (see `issued_at`).
        let jti = Uuid::now_v7();
        let now = jti
            .get_timestamp()
            .and_then(|timestamp| i64::try_from(timestamp.to_unix().0).ok())
            .unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp());
        let ttl = self.access_ttl.whole_seconds();
        let claims = Claims {
            sub: user.as_uuid(),
            role,
            jti,
            sid: session,
            iat: now,
            exp: now + ttl,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(AccessToken { token, expires_in: ttl })
    }

    /// The claims of a well-signed, unexpired token for this issuer and audience. `iat` must
    /// not lie in the future (beyond a second of clock skew), and the token may not live longer
    /// than this service issues tokens for: a longer one was not issued here (or was issued
    /// under a longer lifetime that has since been shortened, which then takes effect at once).
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?.claims;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let lifetime = claims.exp - claims.iat;
        (claims.iat <= now + 1 && lifetime > 0 && lifetime <= self.access_ttl.whole_seconds()).then_some(claims)
    }

    /// A new refresh token for `family` (a new session when `None`).
    pub(crate) fn mint_refresh(&self, family: Option<Uuid>) -> Result<RefreshToken, getrandom::Error> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)?;
        let token = URL_SAFE_NO_PAD.encode(secret);
        let session = NewSession {
            family_id: family.unwrap_or_else(Uuid::now_v7),
            token_id: Uuid::now_v7(),
            refresh_token_hash: refresh_token_hash(&token),
            expires_at: OffsetDateTime::now_utc() + self.refresh_ttl,
        };
        Ok(RefreshToken { token, session })
    }
}

/// How refresh tokens are stored and looked up.
pub(crate) fn refresh_token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn issuer(secret: &str, audience: &str) -> TokenIssuer {
        TokenIssuer::new(&AuthSettings {
            jwt_secret: Some(Secret::new(secret)),
            issuer: "gad".into(),
            audience: audience.into(),
            access_token_ttl: std::time::Duration::from_secs(15 * 60),
            refresh_token_ttl: std::time::Duration::from_secs(14 * 86_400),
        })
        .unwrap()
    }

    #[test]
    fn a_token_verifies_with_every_claim() {
        let tokens = issuer("a-test-secret-of-sufficient-length", "gad-api");
        let (user, session) = (UserId::generate(), Uuid::now_v7());
        let access = tokens.issue_access(user, Role::Operator, session).unwrap();
        assert_eq!(access.expires_in, 900);
        let claims = tokens.verify(&access.token).unwrap();
        assert_eq!((claims.sub, claims.role, claims.sid), (user.as_uuid(), Role::Operator, session));
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn foreign_keys_audiences_algorithms_and_expired_tokens_are_refused() {
        let tokens = issuer("a-test-secret-of-sufficient-length", "gad-api");
        let access = tokens.issue_access(UserId::generate(), Role::Admin, Uuid::now_v7()).unwrap();
        assert!(issuer("another-secret-of-sufficient-length", "gad-api").verify(&access.token).is_none());
        assert!(issuer("a-test-secret-of-sufficient-length", "other-api").verify(&access.token).is_none());

        let claims = tokens.verify(&access.token).unwrap();
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        assert!(tokens.verify(&unsigned).is_none(), "alg none");

        let now = OffsetDateTime::now_utc().unix_timestamp();
        let expired = Claims { iat: now - 1000, exp: now - 100, ..claims.clone() };
        let key = EncodingKey::from_secret(b"a-test-secret-of-sufficient-length");
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &expired, &key).unwrap();
        assert!(tokens.verify(&token).is_none(), "expired");
        let future = Claims { iat: now + 600, exp: now + 1200, ..claims.clone() };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &future, &key).unwrap();
        assert!(tokens.verify(&token).is_none(), "issued in the future");
        let longest = Claims { iat: now - 10, exp: now - 10 + 900, ..claims.clone() };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &longest, &key).unwrap();
        assert!(tokens.verify(&token).is_some(), "exactly the configured lifetime");
        let longer = Claims { iat: now - 10, exp: now - 10 + 901, ..claims };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &longer, &key).unwrap();
        assert!(tokens.verify(&token).is_none(), "longer than this service issues");
        assert!(tokens.verify("not.a.token").is_none());
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_only_as_hashes() {
        let tokens = issuer("a-test-secret-of-sufficient-length", "gad-api");
        let first = tokens.mint_refresh(None).unwrap();
        let second = tokens.mint_refresh(Some(first.session.family_id)).unwrap();
        assert_ne!(first.token, second.token);
        assert_eq!(first.session.family_id, second.session.family_id);
        assert_eq!(first.session.refresh_token_hash, refresh_token_hash(&first.token));
        assert_eq!(first.token.len(), 43, "32 random bytes, base64url");
    }
}
