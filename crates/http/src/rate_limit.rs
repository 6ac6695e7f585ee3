//! Rate limits per client address and per user (SPEC §2): the middleware for addresses (with a
//! stricter budget for logins), the check for users inside authentication, the client address
//! behind trusted proxies, and the in-process limiter used without Redis.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};
use async_trait::async_trait;
use gad_domain::error::StoreError;
use gad_domain::limits::{Decision, Rate, RateLimiter};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::auth::{TokenIssuer, VerifiedClaims};
use crate::error::ApiError;

/// The `rate_limit` section of the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests per minute per client and per user (`GAD_RATE_LIMIT_GENERAL`).
    pub general_per_minute: u32,
    /// Login attempts per minute per client (`GAD_RATE_LIMIT_LOGIN`).
    pub login_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` is believed (IP addresses or CIDR blocks).
    pub trusted_proxies: Vec<String>,
}

impl RateLimitSettings {
    /// Everything wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for proxy in &self.trusted_proxies {
            if parse_network(proxy).is_none() {
                problems.push(format!("trusted proxy {proxy:?} must be an IP address or a CIDR block"));
            }
        }
        if self.general_per_minute == 0 || self.login_per_minute == 0 {
            problems.push("rate limits must be at least 1 request per minute".into());
        }
        problems
    }
}

/// An address or a CIDR block.
fn parse_network(raw: &str) -> Option<IpNet> {
    raw.parse::<IpNet>().ok().or_else(|| raw.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The limits and where to count them; shared by every worker.
#[derive(Clone)]
pub struct RateLimitPolicy {
    pub limiter: Arc<dyn RateLimiter>,
    /// Every request of a client address, and every request of an authenticated user.
    pub general: Rate,
    /// Login attempts of a client address.
    pub login: Rate,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Lets the middleware recognise the user of a request, so that both budgets are counted
    /// in one call; authentication proper still happens in the extractor.
    pub tokens: TokenIssuer,
}

impl RateLimitPolicy {
    /// The configured limits, counted by `limiter`.
    pub fn new(settings: &RateLimitSettings, limiter: Arc<dyn RateLimiter>, tokens: TokenIssuer) -> Self {
        Self {
            limiter,
            general: Rate::per_minute(settings.general_per_minute),
            login: Rate::per_minute(settings.login_per_minute),
            trusted_proxies: settings.trusted_proxies.iter().filter_map(|proxy| parse_network(proxy)).collect(),
            tokens,
        }
    }
}

impl std::fmt::Debug for RateLimitPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitPolicy")
            .field("general", &self.general)
            .field("login", &self.login)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

/// Marks a request whose user budget the middleware has already counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserCounted;

/// The client's address as decided once per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

/// The address of the client: the peer, unless the peer is a trusted proxy, in which case the
/// nearest untrusted address of `X-Forwarded-For` (read right to left).
fn client_ip(req: &ServiceRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded = req.headers().get_all("x-forwarded-for").filter_map(|value| value.to_str().ok());
    let hops: Vec<IpAddr> =
        forwarded.flat_map(|value| value.split(',')).filter_map(|hop| hop.trim().parse().ok()).collect();
    Some(hops.into_iter().rev().find(|hop| !is_trusted(hop)).unwrap_or(peer))
}

/// Health, metrics and the static docs are never limited; nor is the Telegram webhook, which
/// Telegram calls from a handful of addresses at the bot's own pace, and which refuses anyone
/// without its secret before doing any work.
fn is_exempt(path: &str) -> bool {
    path == "/telegram/webhook"
        || path.starts_with("/health/")
        || path == "/api/v1/health"
        || path == "/metrics"
        || path == "/docs"
        || path.starts_with("/docs/")
}

fn rate_limit_headers(limit: u32, remaining: u32, reset: Duration) -> [(HeaderName, HeaderValue); 3] {
    [
        (HeaderName::from_static("ratelimit-limit"), HeaderValue::from(limit)),
        (HeaderName::from_static("ratelimit-remaining"), HeaderValue::from(remaining)),
        (HeaderName::from_static("ratelimit-reset"), HeaderValue::from(whole_seconds(reset))),
    ]
}

/// Seconds, rounded up: a client that waits this long is never early.
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// 429 with `Retry-After` and the `RateLimit-*` headers.
pub(crate) fn limited(limit: u32, retry_after: Duration) -> ApiError {
    ApiError::rate_limited(whole_seconds(retry_after)).with_headers(rate_limit_headers(limit, 0, retry_after).into())
}

pub(crate) async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(policy) = req.app_data::<web::Data<RateLimitPolicy>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let ip = client_ip(&req, &policy.trusted_proxies);
    if let Some(ip) = ip {
        req.extensions_mut().insert(ClientIp(ip));
    }
    let path = req.path();
    let (Some(ip), false) = (ip, is_exempt(path)) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let (scope, rate) = if path == "/api/v1/auth/login" { ("login", policy.login) } else { ("ip", policy.general) };
    let mut checks = vec![(format!("{scope}:{ip}"), rate)];
    if scope == "ip"
        && let Some(user) = bearer_subject(&req, &policy.tokens)
    {
        checks.push((format!("user:{user}"), policy.general));
        req.extensions_mut().insert(UserCounted);
    }
    match policy.limiter.check_all(&checks).await {
        Ok(Decision::Limited { retry_after }) => {
            metrics::counter!("rate_limited_total", "scope" => scope).increment(1);
            Ok(req.into_response(limited(rate.limit, retry_after).error_response()))
        }
        Ok(Decision::Allowed { remaining, reset_after }) => {
            let mut response = next.call(req).await?.map_into_boxed_body();
            // A per-user refusal already carries the headers of the budget that ran out.
            if !response.headers().contains_key("ratelimit-limit") {
                for (name, value) in rate_limit_headers(rate.limit, remaining, reset_after) {
                    response.headers_mut().insert(name, value);
                }
            }
            Ok(response)
        }
        Err(error) => Err(ApiError::from(error).into()),
    }
}

/// The subject of a well-signed bearer token, if the request carries one. The verified claims
/// stay with the request for authentication.
fn bearer_subject(req: &ServiceRequest, tokens: &TokenIssuer) -> Option<uuid::Uuid> {
    let header = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "))?;
    let claims = tokens.verify(token.trim())?;
    let subject = claims.sub;
    req.extensions_mut().insert(VerifiedClaims(claims));
    Some(subject)
}

/// Counts the requests of an authenticated user; called by authentication.
pub(crate) async fn check_user(policy: &RateLimitPolicy, user: &str) -> Result<(), ApiError> {
    match policy.limiter.check(&format!("user:{user}"), policy.general).await? {
        Decision::Allowed { .. } => Ok(()),
        Decision::Limited { retry_after } => {
            metrics::counter!("rate_limited_total", "scope" => "user").increment(1);
            Err(limited(policy.general.limit, retry_after))
        }
    }
}

type KeyedGovernor = Governor<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// Limits counted in this process only (one instance, or while Redis is away).
#[derive(Default)]
pub struct InProcessRateLimiter {
    limiters: Mutex<HashMap<Rate, Arc<KeyedGovernor>>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for InProcessRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessRateLimiter").finish_non_exhaustive()
    }
}

/// Stale keys are dropped every this many checks, so memory follows the active clients only.
const RETAIN_EVERY: u64 = 4096;

impl InProcessRateLimiter {
    fn limiter(&self, rate: Rate) -> Arc<KeyedGovernor> {
        let mut limiters = self.limiters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let limiter = limiters.entry(rate).or_insert_with(|| {
            let burst = NonZeroU32::new(rate.limit).unwrap_or(NonZeroU32::MIN);
            let interval = (rate.period / burst.get()).max(Duration::from_nanos(1));
            let quota = Quota::with_period(interval).unwrap_or_else(|| Quota::per_second(burst)).allow_burst(burst);
            Arc::new(Governor::keyed(quota).with_middleware::<StateInformationMiddleware>())
        });
        Arc::clone(limiter)
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn check(&self, key: &str, rate: Rate) -> Result<Decision, StoreError> {
        let limiter = self.limiter(rate);
        if self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(RETAIN_EVERY) {
            limiter.retain_recent();
        }
        let interval = rate.period / rate.limit.max(1);
        Ok(match limiter.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision::Allowed { remaining, reset_after: interval * (rate.limit - remaining) }
            }
            Err(not_until) => {
                Decision::Limited { retry_after: not_until.wait_time_from(DefaultClock::default().now()) }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_in_process_limiter_allows_the_budget_then_limits() {
        let limiter = InProcessRateLimiter::default();
        let rate = Rate::per_minute(3);
        for expected_remaining in [2, 1, 0] {
            let decision = limiter.check("ip:10.0.0.1", rate).await;
            assert!(
                matches!(decision, Ok(Decision::Allowed { remaining, .. }) if remaining == expected_remaining),
                "{decision:?}"
            );
        }
        let Ok(Decision::Limited { retry_after }) = limiter.check("ip:10.0.0.1", rate).await else {
            panic!("the fourth request is limited");
        };
        assert!(retry_after > Duration::from_secs(15) && retry_after <= Duration::from_secs(20), "{retry_after:?}");
        assert!(matches!(limiter.check("ip:10.0.0.2", rate).await, Ok(Decision::Allowed { .. })), "keys are separate");
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
    }
}
