//! A deadline for reading a request body. actix bounds the time to receive the headers
//! (`client_request_timeout`, 408) but not the body: a client announcing a large body and
//! trickling it would hold a connection and a worker's attention for as long as it likes. Past
//! the deadline the body stream fails, and whatever the handler made of that failure is replaced
//! by 408 `request_timeout` in the envelope, with `Connection: close`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};
use futures_util::StreamExt;

use crate::error::ApiError;

/// How long a request may take to deliver its whole body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyDeadline(pub(crate) Duration);

pub(crate) async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let deadline = req.app_data::<web::Data<BodyDeadline>>().map(|deadline| deadline.0);
    let Some(deadline) = deadline.filter(|_| announces_body(&req)) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let expired = Rc::new(Cell::new(false));
    let body = within(req.take_payload(), deadline, Rc::clone(&expired));
    req.set_payload(Payload::Stream { payload: Box::pin(body) });
    let response = next.call(req).await?.map_into_boxed_body();
    if !expired.get() {
        return Ok(response);
    }
    let mut timeout = ApiError::request_timeout().error_response();
    timeout.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(response.into_response(timeout))
}

/// A body is announced by `Content-Length` or `Transfer-Encoding`; an upgrade (WebSocket) has
/// none, and its stream must never be cut.
fn announces_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    !headers.contains_key(header::UPGRADE)
        && (headers.contains_key(header::CONTENT_LENGTH) || headers.contains_key(header::TRANSFER_ENCODING))
}

/// `payload`, failing with `TimedOut` (and noting it in `expired`) once `deadline` has passed.
fn within(
    payload: Payload,
    deadline: Duration,
    expired: Rc<Cell<bool>>,
) -> impl futures_util::Stream<Item = Result<web::Bytes, PayloadError>> {
    let timer = Box::pin(tokio::time::sleep(deadline));
    futures_util::stream::unfold(Some((payload, timer)), move |state| {
        let expired = Rc::clone(&expired);
        async move {
            let (mut payload, mut timer) = state?;
            tokio::select! {
                chunk = payload.next() => chunk.map(|chunk| (chunk, Some((payload, timer)))),
                () = &mut timer => {
                    expired.set(true);
                    let error = std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body arrived too slowly");
                    Some((Err(PayloadError::Io(error)), None))
                }
            }
        }
    })
}
