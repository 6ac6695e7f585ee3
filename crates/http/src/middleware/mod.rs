//! The middleware stack of SPEC §2, outermost first: CORS, request id, security headers, the
//! error envelope, the request span, metrics and access log.
//!
//! None of these keeps a clone of the request across the inner call: actix's router needs the
//! request uniquely owned while it matches the path.

mod body_deadline;
mod envelope;
mod metrics;
mod request_id;
mod security_headers;
mod span;

pub(crate) use body_deadline::{BodyDeadline, body_deadline};
pub(crate) use envelope::{ServedMethods, error_envelope};
pub(crate) use metrics::record_metrics;
pub use metrics::{HttpMetrics, LATENCY_BUCKETS};
pub(crate) use request_id::{RequestId, current_request_id, request_id};
pub(crate) use security_headers::SecurityHeaders;
pub(crate) use span::RequestSpan;
