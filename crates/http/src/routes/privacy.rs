//! `/api/v1/users/{id}/data-export` and `/api/v1/users/{id}/gdpr-delete` (SPEC §7): the rights
//! of access, portability and erasure, for the subject or an admin.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, delete, get, web};
use async_trait::async_trait;
use gad_domain::consent::erasure::{ErasedRecords, ErasureError, ErasureReceipt, Treatment, erase_personal_data};
use gad_domain::consent::export::{
    ExportError, ExportSink, ExportStopped, PersonalDataStore, ReaderGone, begin_export,
};
use gad_domain::users::UserId;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Principal, request_context};
use crate::error::{ApiError, ErrorBody};
use crate::state::Services;

/// Chunks in flight between the database and the client: the export's memory bound.
const EXPORT_CHUNKS_IN_FLIGHT: usize = 4;

type Chunk = Result<Bytes, std::io::Error>;

/// Hands the store's chunks to the response body; waits while the client is slow.
struct ChannelSink(mpsc::Sender<Chunk>);

#[async_trait]
impl ExportSink for ChannelSink {
    async fn write(&mut self, chunk: String) -> Result<(), ReaderGone> {
        self.0.send(Ok(Bytes::from(chunk))).await.map_err(|_| ReaderGone)
    }
}

/// Reads the export into the channel; a failure half-way aborts the response, so that a client
/// never takes a truncated document for a complete one.
async fn stream_export(store: Arc<dyn PersonalDataStore>, subject: UserId, sender: mpsc::Sender<Chunk>) {
    let mut sink = ChannelSink(sender.clone());
    match store.export(subject, &mut sink).await {
        Ok(()) | Err(ExportStopped::ReaderGone(_)) => {}
        Err(ExportStopped::Store(error)) => {
            tracing::error!(error = %error, "the data export failed half-way");
            let _ = sender.send(Err(std::io::Error::other("the export failed"))).await;
        }
    }
}

/// The export document: a JSON object whose `tables` hold, per table of the data map
/// (docs/GDPR_DATA_MAPPING.md), every row about the subject with every column but credentials.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DataExport {
    /// `gad-personal-data-export`.
    format: String,
    version: u32,
    subject_id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    generated_at: String,
    /// Where the tables and their columns are explained.
    data_map: String,
    /// Table name → rows (objects keyed by column; positions as GeoJSON).
    #[schema(value_type = Object)]
    tables: serde_json::Value,
}

/// Download every piece of personal data held about a user (the subject, or an admin).
#[utoipa::path(
    tag = "privacy",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    responses(
        (status = 200, description = "the export, as an attachment (`Content-Disposition`), streamed", body = DataExport,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"gad-personal-data-<id>.json\""))),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "another user's data, and the caller is not an admin", body = ErrorBody),
        (status = 404, description = "no such user, or already erased", body = ErrorBody),
    )
)]
#[get("/api/v1/users/{id}/data-export")]
pub(crate) async fn get_data_export(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<HttpResponse, ApiError> {
    let subject = UserId::from_uuid(*id);
    begin_export(&*services.personal_data, principal.actor(), subject, request_context(&req)).await.map_err(
        |error| match error {
            ExportError::NotFound => ApiError::not_found(),
            ExportError::Forbidden => ApiError::forbidden(),
            ExportError::Store(error) => error.into(),
        },
    )?;
    let (sender, receiver) = mpsc::channel(EXPORT_CHUNKS_IN_FLIGHT);
    tokio::spawn(stream_export(Arc::clone(&services.personal_data), subject, sender));
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(format!("gad-personal-data-{subject}.json"))],
        })
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErasedRecordsView {
    table: String,
    #[schema(value_type = String, example = "pseudonymised")]
    treatment: Treatment,
    rows: u64,
}

/// The proof of an erasure.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErasureReceiptView {
    user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    erased_at: OffsetDateTime,
    /// `true` when an earlier request erased the user; the receipt is that request's.
    already_erased: bool,
    /// Per table: deleted or pseudonymised, and how many rows.
    records: Vec<ErasedRecordsView>,
}

impl From<ErasureReceipt> for ErasureReceiptView {
    fn from(receipt: ErasureReceipt) -> Self {
        Self {
            user_id: receipt.subject.as_uuid(),
            erased_at: receipt.erased_at,
            already_erased: receipt.already_erased,
            records: receipt
                .records
                .into_iter()
                .map(|ErasedRecords { table, treatment, rows }| ErasedRecordsView { table, treatment, rows })
                .collect(),
        }
    }
}

/// Erase a user's personal data (the subject, or an admin): erased or irreversibly
/// pseudonymised everywhere in one transaction; the user's tokens and live sockets are revoked
/// on every instance. Repeating it returns the first receipt.
#[utoipa::path(
    tag = "privacy",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "user id")),
    responses(
        (status = 200, description = "erased (or erased before: `already_erased`)", body = ErasureReceiptView),
        (status = 401, description = "not authenticated", body = ErrorBody),
        (status = 403, description = "another user, and the caller is not an admin", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 409, description = "`conflict`: the last active administrator cannot be erased", body = ErrorBody),
    )
)]
#[delete("/api/v1/users/{id}/gdpr-delete")]
pub(crate) async fn delete_personal_data(
    req: HttpRequest,
    principal: Principal,
    id: web::Path<Uuid>,
    services: web::Data<Services>,
) -> Result<web::Json<ErasureReceiptView>, ApiError> {
    let (receipt, revocation) =
        erase_personal_data(&*services.personal_data, principal.actor(), UserId::from_uuid(*id), request_context(&req))
            .await
            .map_err(|error| match error {
                ErasureError::NotFound => ApiError::not_found(),
                ErasureError::Forbidden => ApiError::forbidden(),
                ErasureError::LastActiveAdmin => ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string()),
                ErasureError::Store(error) => error.into(),
            })?;
    if let Some(revocation) = revocation {
        services.revocations.announce(revocation).await;
    }
    Ok(web::Json(ErasureReceiptView::from(receipt)))
}
