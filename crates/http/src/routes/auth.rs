//! `/api/v1/auth`: login, refresh, logout and the current user (SPEC §3).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use gad_domain::audit::{AuditEntry, Outcome};
use gad_domain::users::{LoginAttempt, LoginError, Revocation, RevokedToken, Rotation, login};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::{Principal, refresh_token_hash, request_context};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, form_body_error, json_body, media_type};
use crate::routes::users::UserView;
use crate::state::Services;

/// Credentials as JSON.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LoginRequest {
    #[schema(example = "ana.garcia@example.org")]
    email: String,
    #[schema(example = "correct horse battery staple")]
    password: String,
}

/// Credentials as an OAuth2 password-flow form (`username` is the e-mail).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RefreshRequest {
    refresh_token: String,
}

/// A new access token and the refresh token that replaces the previous one.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenPair {
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    refresh_token: String,
    /// Seconds until the refresh token expires.
    refresh_expires_in: i64,
}

/// Reads `{email, password}` from a JSON body or `username`/`password` from a form.
fn credentials(req: &HttpRequest, body: &[u8]) -> Result<(String, String), ApiError> {
    match media_type(req).as_str() {
        "application/json" => {
            let request: LoginRequest = json_body(req, body)?;
            Ok((request.email, request.password))
        }
        "application/x-www-form-urlencoded" => {
            let form: LoginForm = serde_urlencoded::from_bytes(body).map_err(|error| form_body_error(&error))?;
            Ok((form.username, form.password))
        }
        _ => Err(ApiError::unsupported_media_type()),
    }
}

fn issue(
    services: &Services,
    user: gad_domain::users::UserId,
    role: gad_domain::users::Role,
    session: uuid::Uuid,
    refresh_token: String,
) -> Result<TokenPair, ApiError> {
    let access = services.tokens.issue_access(user, role, session).map_err(ApiError::internal)?;
    Ok(TokenPair {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token,
        refresh_expires_in: services.tokens.refresh_ttl().whole_seconds(),
    })
}

/// Log in with e-mail and password. Unknown e-mail and wrong password are indistinguishable;
/// five consecutive failures lock the account for 15 minutes.
#[utoipa::path(
    tag = "auth",
    request_body(content(
        (LoginRequest = "application/json"),
        (LoginForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "logged in", body = TokenPair),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "wrong e-mail or password", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "neither JSON nor a form", body = ErrorBody),
        (status = 422, description = "a field is missing or has the wrong type", body = ErrorBody),
        (status = 429, description = "`account_locked` (with `Retry-After`)", body = ErrorBody),
        (status = 503, description = "a dependency is down", body = ErrorBody),
    )
)]
#[post("/api/v1/auth/login")]
pub(crate) async fn post_login(
    req: HttpRequest,
    body: web::Bytes,
    services: web::Data<Services>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let (email, password) = credentials(&req, &body)?;
    let refresh = services.tokens.mint_refresh(None).map_err(ApiError::internal)?;
    let session = refresh.session.family_id;
    let attempt = LoginAttempt { email, password, session: refresh.session, context: request_context(&req) };
    let now = OffsetDateTime::now_utc();
    match login(&*services.logins, &*services.hasher, attempt, now).await {
        Ok((user, role)) => {
            metrics::counter!("auth_logins_total", "outcome" => "success").increment(1);
            Ok(web::Json(issue(&services, user, role, session, refresh.token)?))
        }
        Err(LoginError::InvalidCredentials) => {
            metrics::counter!("auth_logins_total", "outcome" => "invalid").increment(1);
            Err(ApiError::unauthenticated("invalid e-mail or password"))
        }
        Err(LoginError::Locked { until }) => {
            metrics::counter!("auth_logins_total", "outcome" => "locked").increment(1);
            Err(ApiError::account_locked(u64::try_from((until - now).whole_seconds()).unwrap_or(1)))
        }
        Err(LoginError::Store(error)) => Err(error.into()),
    }
}

/// Exchange a refresh token for a new pair. Refresh tokens rotate: each works once, and
/// presenting a spent one revokes its whole session.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "a new pair", body = TokenPair),
        (status = 401, description = "unknown, expired, revoked or already used", body = ErrorBody),
        (status = 422, description = "`refresh_token` missing", body = ErrorBody),
        (status = 503, description = "a dependency is down", body = ErrorBody),
    )
)]
#[post("/api/v1/auth/refresh")]
pub(crate) async fn post_refresh(
    req: HttpRequest,
    body: Json<RefreshRequest>,
    services: web::Data<Services>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let next = services.tokens.mint_refresh(None).map_err(ApiError::internal)?;
    let audit = AuditEntry {
        actor: None,
        action: "auth.refresh",
        resource_type: "user",
        resource_id: None,
        outcome: Outcome::Failure,
        context: request_context(&req),
    };
    let presented = refresh_token_hash(body.refresh_token.trim());
    match services.sessions.rotate(presented, next.session, audit).await? {
        Rotation::Rotated { user_id, role, family_id } => {
            Ok(web::Json(issue(&services, user_id, role, family_id, next.token)?))
        }
        Rotation::Reused { family_id, .. } => {
            let revoked_at = OffsetDateTime::now_utc();
            services.revocations.announce(Revocation::Session { session_id: family_id, revoked_at }).await;
            Err(ApiError::unauthenticated("the refresh token was already used; the session has been revoked"))
        }
        Rotation::Invalid => Err(ApiError::unauthenticated("the refresh token is invalid or expired")),
    }
}

/// End the session: this access token and its refresh tokens stop working at once, everywhere.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "logged out"),
        (status = 401, description = "missing, invalid or revoked token", body = ErrorBody),
        (status = 503, description = "a dependency is down", body = ErrorBody),
    )
)]
#[post("/api/v1/auth/logout")]
pub(crate) async fn post_logout(
    req: HttpRequest,
    principal: Principal,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let token = RevokedToken { jti: principal.jti, user_id: principal.user_id, expires_at: principal.expires_at };
    let audit = AuditEntry {
        actor: Some((principal.user_id, principal.role)),
        action: "auth.logout",
        resource_type: "user",
        resource_id: Some(principal.user_id.as_uuid()),
        outcome: Outcome::Success,
        context: request_context(&req),
    };
    services.sessions.logout(token, principal.session_id, audit).await?;
    let revoked_at = OffsetDateTime::now_utc();
    services.revocations.announce(Revocation::Token(token)).await;
    services.revocations.announce(Revocation::Session { session_id: principal.session_id, revoked_at }).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The authenticated user.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the current user", body = UserView),
        (status = 401, description = "missing, invalid or revoked token", body = ErrorBody),
        (status = 503, description = "a dependency is down", body = ErrorBody),
    )
)]
#[get("/api/v1/auth/me")]
pub(crate) async fn get_me(
    principal: Principal,
    services: web::Data<Services>,
) -> Result<web::Json<UserView>, ApiError> {
    let user = services
        .users
        .find(principal.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account no longer exists"))?;
    Ok(web::Json(UserView::from(user)))
}
