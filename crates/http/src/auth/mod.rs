//! Authentication: tokens, and the `Principal` extractor that every protected handler takes.
//! One place decides who the caller is.

mod password;
mod tokens;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use gad_domain::audit::RequestContext;
use gad_domain::users::policy::Actor;
use gad_domain::users::{Revocations, Role, TokenIdentity, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

pub use password::Argon2Hasher;
pub use tokens::{AccessToken, AuthSettings, TokenIssuer};
pub(crate) use tokens::{Claims, refresh_token_hash};

use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::rate_limit::{ClientIp, RateLimitPolicy, UserCounted, check_user};
use crate::state::Services;

/// The authenticated caller of this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    pub jti: Uuid,
    pub session_id: Uuid,
    /// When the token was issued, to the millisecond (`Claims::issued_at`).
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl Principal {
    /// The caller as the domain's policy functions see it.
    pub fn actor(&self) -> Actor {
        Actor { id: self.user_id, role: self.role }
    }

    /// The token as revocations see it.
    pub fn identity(&self) -> TokenIdentity {
        TokenIdentity { jti: self.jti, user_id: self.user_id, session_id: self.session_id, issued_at: self.issued_at }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let services = req.app_data::<web::Data<Services>>().cloned();
        // The middleware counts the user's budget together with the address when it can.
        let rate_limits = req
            .app_data::<web::Data<RateLimitPolicy>>()
            .filter(|_| req.extensions().get::<UserCounted>().is_none())
            .cloned();
        let bearer = bearer_token(req).map(str::to_owned);
        // Taken, not cloned: a second extraction in the same request verifies the token again.
        let verified = req.extensions_mut().remove::<VerifiedClaims>().map(|verified| verified.0);
        let span = req.extensions().get::<tracing_actix_web::RootSpan>().cloned();
        Box::pin(async move {
            let services = services.ok_or_else(|| ApiError::internal("authentication services are not configured"))?;
            let principal = match verified {
                Some(claims) => principal_of(claims, &*services.revocations).await?,
                None => authenticate(&services.tokens, &*services.revocations, bearer.as_deref()).await?,
            };
            if let Some(span) = span {
                span.record("user.id", tracing::field::display(principal.user_id));
            }
            if let Some(rate_limits) = rate_limits {
                check_user(&rate_limits, &principal.user_id.to_string()).await?;
            }
            Ok(principal)
        })
    }
}

/// The token of an `Authorization: Bearer …` header, if the request has one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Who presents this bearer token: a valid signature, every claim checked, not revoked.
pub async fn authenticate(
    tokens: &TokenIssuer,
    revocations: &dyn Revocations,
    bearer: Option<&str>,
) -> Result<Principal, ApiError> {
    let token = bearer.ok_or_else(|| ApiError::unauthenticated("a bearer access token is required"))?;
    let claims = tokens.verify(token).ok_or_else(invalid_token)?;
    principal_of(claims, revocations).await
}

fn invalid_token() -> ApiError {
    ApiError::unauthenticated("the access token is invalid or expired")
}

/// The claims of a token whose signature and claims were checked, carried from the rate limiter
/// to authentication so that a request's token is verified once.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedClaims(pub(crate) Claims);

/// The caller a verified token names, unless the token was revoked.
async fn principal_of(claims: Claims, revocations: &dyn Revocations) -> Result<Principal, ApiError> {
    let issued_at = claims.issued_at().ok_or_else(invalid_token)?;
    let expires_at = OffsetDateTime::from_unix_timestamp(claims.exp).map_err(|_| invalid_token())?;
    let identity =
        TokenIdentity { jti: claims.jti, user_id: UserId::from_uuid(claims.sub), session_id: claims.sid, issued_at };
    if revocations.is_revoked(&identity).await? {
        return Err(ApiError::unauthenticated("the access token has been revoked"));
    }
    Ok(Principal {
        user_id: identity.user_id,
        role: claims.role,
        jti: claims.jti,
        session_id: claims.sid,
        issued_at,
        expires_at,
    })
}

/// Where the request came from, for the audit log.
pub(crate) fn request_context(req: &HttpRequest) -> RequestContext {
    RequestContext {
        request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
        ip: req.extensions().get::<ClientIp>().map(|ip| ip.0).or_else(|| req.peer_addr().map(|addr| addr.ip())),
        user_agent: req.headers().get(header::USER_AGENT).and_then(|value| value.to_str().ok()).map(str::to_owned),
    }
}
