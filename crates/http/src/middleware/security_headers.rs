//! Security headers on every response (SPEC §2). The docs UI needs scripts and styles of its
//! own, so its pages get a relaxed policy that still allows nothing from elsewhere.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};

const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
const DOCS_CSP: &str = "default-src 'none'; script-src 'self' 'unsafe-inline'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    frame-ancestors 'none'";

/// Whether responses say `Strict-Transport-Security` (only when served over TLS).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecurityHeaders {
    pub(crate) hsts: bool,
}

impl SecurityHeaders {
    pub(crate) async fn apply(
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<impl MessageBody>, Error> {
        let hsts = req.app_data::<web::Data<SecurityHeaders>>().is_some_and(|settings| settings.hsts);
        let is_docs = req.path() == "/docs" || req.path().starts_with("/docs/");
        let mut response = next.call(req).await?;
        let headers = response.headers_mut();
        let fixed: [(HeaderName, &'static str); 5] = [
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, if is_docs { DOCS_CSP } else { API_CSP }),
            (header::CACHE_CONTROL, "no-store"),
        ];
        for (name, value) in fixed {
            headers.insert(name, HeaderValue::from_static(value));
        }
        if hsts {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=63072000; includeSubDomains"),
            );
        }
        headers.remove(header::SERVER);
        Ok(response)
    }
}
