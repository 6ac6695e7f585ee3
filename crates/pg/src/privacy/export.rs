//! The export document, written from the data map while it is read.
//!
//! One read-only, repeatable-read transaction gives every table the same snapshot. Each table's
//! rows come through a server-side cursor, a thousand at a time, and leave as chunks of about
//! 64 KiB: memory stays flat however long the subject's history is.

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use gad_domain::consent::export::{ExportSink, ExportStopped, ReaderGone};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::data_map::{DATA_MAP, Table, subject_condition};
use crate::errors::query_error;

/// Rows fetched from the cursor per round trip.
const FETCH_ROWS: usize = 1000;
/// A chunk is handed to the sink once it grows past this.
const CHUNK_BYTES: usize = 64 * 1024;

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    json: String,
}

/// Why the transaction stopped: the database, or the reader.
enum Stop {
    Query(diesel::result::Error),
    ReaderGone,
}

impl From<diesel::result::Error> for Stop {
    fn from(error: diesel::result::Error) -> Self {
        Self::Query(error)
    }
}

impl From<ReaderGone> for Stop {
    fn from(_: ReaderGone) -> Self {
        Self::ReaderGone
    }
}

/// Collects output and hands it to the sink in chunks.
struct Chunker<'a> {
    sink: &'a mut dyn ExportSink,
    buffer: String,
}

impl Chunker<'_> {
    async fn push(&mut self, text: &str) -> Result<(), ReaderGone> {
        self.buffer.push_str(text);
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ReaderGone> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, String::with_capacity(CHUNK_BYTES + 4096));
        self.sink.write(chunk).await
    }
}

/// The select list of an export: credentials left out, geographies as GeoJSON.
fn select_list(table: &Table) -> String {
    table
        .exported_columns()
        .map(|column| {
            if column.geography {
                format!("ST_AsGeoJSON({name})::json AS {name}", name = column.name)
            } else {
                column.name.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn write_export(
    conn: &mut AsyncPgConnection,
    subject: Uuid,
    sink: &mut dyn ExportSink,
) -> Result<(), ExportStopped> {
    let mut out = Chunker { sink, buffer: String::with_capacity(CHUNK_BYTES + 4096) };
    let outcome = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            let generated_at = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
            out.push(&format!(
                "{{\"format\":\"gad-personal-data-export\",\"version\":1,\"subject_id\":\"{subject}\",\
                 \"generated_at\":\"{generated_at}\",\"data_map\":\"docs/GDPR_DATA_MAPPING.md\",\"tables\":{{"
            ))
            .await?;
            let mut first_table = true;
            for table in DATA_MAP {
                let Some(condition) = subject_condition(table, subject) else {
                    continue;
                };
                let separator = if first_table { "" } else { "," };
                first_table = false;
                out.push(&format!("{separator}\"{}\":[", table.name)).await?;
                write_rows(conn, &mut out, table, &condition).await?;
                out.push("]").await?;
            }
            out.push("}}").await?;
            Ok::<_, Stop>(())
        })
        .await;
    match outcome {
        Ok(()) => Ok(out.flush().await?),
        Err(Stop::ReaderGone) => Err(ExportStopped::ReaderGone(ReaderGone)),
        Err(Stop::Query(error)) => Err(ExportStopped::Store(query_error(error))),
    }
}

/// Streams one table's rows about the subject as JSON objects separated by commas.
async fn write_rows(
    conn: &mut AsyncPgConnection,
    out: &mut Chunker<'_>,
    table: &Table,
    condition: &str,
) -> Result<(), Stop> {
    // The subject's id is a formatted `Uuid` and every other part comes from the data map: the
    // statement holds no outside text.
    diesel::sql_query(format!(
        "DECLARE export_rows NO SCROLL CURSOR FOR SELECT row_to_json(r)::text AS json FROM \
         (SELECT {columns} FROM {name} WHERE {condition} ORDER BY {order}) r",
        columns = select_list(table),
        name = table.name,
        order = table.order_by,
    ))
    .execute(conn)
    .await?;
    let mut first_row = true;
    loop {
        let rows: Vec<JsonRow> = diesel::sql_query(format!("FETCH {FETCH_ROWS} FROM export_rows")).load(conn).await?;
        for row in &rows {
            if !first_row {
                out.push(",").await?;
            }
            first_row = false;
            out.push(&row.json).await?;
        }
        if rows.len() < FETCH_ROWS {
            break;
        }
    }
    diesel::sql_query("CLOSE export_rows").execute(conn).await?;
    Ok(())
}
