//! What arrives on the wire before any handler: bodies that trickle in, and requests that the
//! HTTP parser itself refuses (docs/API.md §2.6 says which of those actix answers bare).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Options, TestApp};

/// Sends `head` and then one byte of body every 100 ms until the server answers; returns the
/// whole response as text (the server closes the connection after it).
async fn trickle(app: &TestApp, head: &str) -> String {
    let stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let sender = tokio::spawn(async move {
        while writer.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut response))
        .await
        .expect("the server never gave up on the body")
        .unwrap();
    sender.abort();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408_in_the_envelope() {
    let app = TestApp::spawn_configured(Options::default(), |settings| {
        settings.http.body_read_timeout = Duration::from_millis(500);
    })
    .await;
    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: gad\r\nContent-Type: application/json\r\n\
                Content-Length: 1000000\r\nX-Request-Id: slow-1\r\n\r\n{";
    let response = trickle(&app, head).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    let lower = response.to_ascii_lowercase();
    for header in ["connection: close", "x-request-id: slow-1", "x-content-type-options: nosniff"] {
        assert!(lower.contains(header), "no {header} in {response}");
    }
    assert!(response.contains("\"code\":\"request_timeout\""), "{response}");
}
