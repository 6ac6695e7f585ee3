//! `Idempotency-Key` for creating requests: the first request runs and its successful response
//! is stored; a retry with the same key and body gets that response again (same status and
//! body, plus `Idempotent-Replayed: true`); the same key with another body is 422, and a retry
//! while the first is still running is 409. Failed requests are forgotten, so a retry runs.

use actix_web::body::to_bytes;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use gad_domain::idempotency::{Begin, KeyScope, StoredResponse};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::error::{ApiError, FieldError};
use crate::state::Services;

const HEADER: &str = "idempotency-key";
/// The longest key, in bytes (a key is visible ASCII).
pub(crate) const MAX_KEY_LEN: usize = 255;
/// Response headers worth replaying.
const REPLAYED_HEADERS: [&str; 3] = ["content-type", "location", "etag"];

fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().map(str::trim).filter(|key| (1..=MAX_KEY_LEN).contains(&key.len()));
    key.map(|key| Some(key.to_owned())).ok_or_else(|| {
        ApiError::validation(vec![FieldError {
            field: "Idempotency-Key".into(),
            message: "must be 1 to 255 visible ASCII characters".into(),
        }])
    })
}

/// Runs `handle` at most once per key and body for this caller and `scope`.
pub(crate) async fn idempotent(
    req: &HttpRequest,
    principal: &Principal,
    services: &Services,
    scope: &str,
    body: &[u8],
    handle: impl Future<Output = Result<HttpResponse, ApiError>>,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = key_of(req)? else {
        return handle.await;
    };
    let claim = KeyScope { owner: principal.user_id, scope, key: &key };
    let hash: [u8; 32] = Sha256::digest(body).into();
    match services.idempotency.begin(claim, hash).await? {
        Begin::Started => {}
        Begin::Replay(stored) => return Ok(replay(&stored)),
        Begin::Mismatch => {
            return Err(ApiError::validation(vec![FieldError {
                field: "Idempotency-Key".into(),
                message: "was already used with a different body".into(),
            }]));
        }
        Begin::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "a request with this Idempotency-Key is still being processed",
            ));
        }
    }
    let outcome = handle.await;
    match outcome {
        Ok(response) if response.status().is_success() => {
            let (response, stored) = capture(response).await?;
            services.idempotency.complete(claim, stored).await?;
            Ok(response)
        }
        other => {
            services.idempotency.abandon(claim).await?;
            other
        }
    }
}

/// Splits a response into what is sent now and what is stored for replays.
async fn capture(response: HttpResponse) -> Result<(HttpResponse, StoredResponse), ApiError> {
    let status = response.status();
    let headers: Vec<(String, String)> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = response.headers().get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect();
    let body =
        to_bytes(response.into_body()).await.map_err(|_| ApiError::internal("could not read the response body"))?;
    let stored = StoredResponse { status: status.as_u16(), headers, body: body.to_vec() };
    Ok((build(&stored), stored))
}

fn build(stored: &StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            response.insert_header((name, value));
        }
    }
    response.body(stored.body.clone())
}

fn replay(stored: &StoredResponse) -> HttpResponse {
    let mut response = build(stored);
    response.headers_mut().insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("true"));
    response
}
