//! GAD's WebSocket protocol as the runner speaks it: the handshake up to `subscribed`, and the
//! frames it reads.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    #[serde(borrow)]
    pub ts: Option<&'a str>,
    pub seq: Option<i64>,
    #[serde(borrow)]
    pub data: Option<Data<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct Data<'a> {
    #[serde(borrow)]
    pub id: Option<&'a str>,
}

impl Frame<'_> {
    /// Milliseconds from the event's `ts` (its commit) to `received`.
    pub fn latency_ms(&self, received: OffsetDateTime) -> Option<f64> {
        let ts = OffsetDateTime::parse(self.ts?, &Rfc3339).ok()?;
        Some((received - ts).as_seconds_f64() * 1000.0)
    }
}

/// The upgrade request for `base` (http[s]://…), authenticated with a bearer token, or with a
/// ticket in the query when `bearer` is `None`.
pub fn request(base: &str, bearer: Option<&str>, ticket: Option<&str>) -> anyhow::Result<Request> {
    let ws_base = base.replacen("http", "ws", 1);
    let url = match ticket {
        Some(ticket) => format!("{ws_base}/ws/connect?ticket={ticket}"),
        None => format!("{ws_base}/ws/connect"),
    };
    let mut request = url.into_client_request()?;
    if let Some(token) = bearer {
        request.headers_mut().insert("authorization", HeaderValue::from_str(&format!("Bearer {token}"))?);
    }
    // A non-browser client: no Origin, so the server's origin allow-list does not apply.
    request.headers_mut().remove("origin");
    Ok(request)
}

/// Connects, waits for `connection_ack`, subscribes to `topic` and waits for `subscribed`.
pub async fn handshake(request: Request, topic: &str) -> anyhow::Result<Socket> {
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.context("upgrade")?;
    let mut acked = false;
    while let Some(frame) = socket.next().await {
        if let Message::Text(text) = frame? {
            let frame: Frame<'_> = serde_json::from_str(&text)?;
            match frame.kind {
                "connection_ack" if !acked => {
                    acked = true;
                    socket.send(Message::text(json!({"type": "subscribe", "topics": [topic]}).to_string())).await?;
                }
                "subscribed" => return Ok(socket),
                other => bail!("unexpected {other} during the handshake: {text}"),
            }
        }
    }
    bail!("closed during the handshake")
}
