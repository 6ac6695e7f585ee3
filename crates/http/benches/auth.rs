//! The per-request cost of authentication, authorization and the revocation check: what every
//! authenticated request pays before its handler runs (target: under 50 µs).
//!
//! `cargo bench -p gad-http --bench auth`

use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use gad_domain::error::StoreError;
use gad_domain::limits::{Rate, RateLimiter};
use gad_domain::settings::Secret;
use gad_domain::users::policy::{Actor, may_read_user};
use gad_domain::users::{Revocation, RevocationSet, Revocations, RevokedToken, Role, TokenIdentity, UserId};
use gad_http::auth::{AuthSettings, TokenIssuer, authenticate};
use gad_http::rate_limit::InProcessRateLimiter;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The in-sync path of the revocation hub: a lookup in memory.
struct InMemory(RevocationSet);

#[async_trait]
impl Revocations for InMemory {
    async fn is_revoked(&self, token: &TokenIdentity) -> Result<bool, StoreError> {
        Ok(self.0.is_revoked(token))
    }

    async fn announce(&self, revocation: Revocation) {
        self.0.apply(revocation);
    }
}

fn bench(c: &mut Criterion) {
    let tokens = TokenIssuer::new(&AuthSettings {
        jwt_secret: Some(Secret::new("a-benchmark-signing-key-of-sufficient-length")),
        issuer: "gad".into(),
        audience: "gad-api".into(),
        access_token_ttl: std::time::Duration::from_secs(15 * 60),
        refresh_token_ttl: std::time::Duration::from_secs(14 * 86_400),
    })
    .expect("issuer");
    // A busy revocation list: ten thousand logouts in the last quarter of an hour.
    let revocations = InMemory(RevocationSet::default());
    let expires_at = OffsetDateTime::now_utc() + Duration::minutes(10);
    for _ in 0..10_000 {
        revocations.0.apply(Revocation::Token(RevokedToken {
            jti: Uuid::now_v7(),
            user_id: UserId::generate(),
            expires_at,
        }));
    }
    let user = UserId::generate();
    let access = tokens.issue_access(user, Role::Operator, Uuid::now_v7()).expect("token");
    let limiter: Arc<dyn RateLimiter> = Arc::new(InProcessRateLimiter::default());
    let rate = Rate::per_minute(u32::MAX);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");

    c.bench_function("authenticate + authorize + revocation + user rate limit", |b| {
        b.to_async(&runtime).iter(|| async {
            let principal = authenticate(&tokens, &revocations, Some(black_box(access.token.as_str())))
                .await
                .expect("authenticated");
            let actor = Actor { id: principal.user_id, role: principal.role };
            assert!(may_read_user(actor, principal.user_id));
            limiter.check(&format!("user:{}", principal.user_id), rate).await.expect("counted");
        });
    });
    c.bench_function("authenticate only (signature, claims, revocation)", |b| {
        b.to_async(&runtime).iter(|| async {
            authenticate(&tokens, &revocations, Some(black_box(access.token.as_str()))).await.expect("authenticated")
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
