//! Graceful shutdown of the real binary: SIGTERM stops accepting, lets the request in flight
//! finish, and exits cleanly.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A PostgreSQL that accepts connections and never answers: probes take their full timeout,
/// which keeps a readiness request in flight long enough to signal during it.
fn silent_postgres() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("postgres://postgres@{}/gad", listener.local_addr().unwrap());
    (listener, url)
}

fn start(database_url: &str) -> (Child, u16, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gad"))
        .arg("serve")
        .env_clear()
        .env("GAD_ENV", "test")
        .env("GAD_BIND", "127.0.0.1:0")
        .env("DATABASE_URL", database_url)
        .env("GAD__LOG__FORMAT", "json")
        .env("GAD__HEALTH__PROBE_TIMEOUT_MS", "1500")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let port = loop {
        let line = received.recv_timeout(Duration::from_secs(20)).expect("the server logs its port");
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if event["fields"]["message"] == "listening" {
            break u16::try_from(event["fields"]["port"].as_u64().unwrap()).unwrap();
        }
    };
    (child, port, received)
}

fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_cleanly() {
    let (_silent, url) = silent_postgres();
    let (mut child, port, logs) = start(&url);
    let client = reqwest::Client::new();
    let live = client.get(format!("http://127.0.0.1:{port}/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);

    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get(format!("http://127.0.0.1:{port}/health/ready")).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    terminate(&child);

    let response = in_flight.await.unwrap().expect("the in-flight request gets its answer");
    assert_eq!(response.status(), 503, "the probe of the silent database timed out, as expected");

    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    let lines: Vec<String> = logs.try_iter().collect();
    assert!(lines.iter().any(|line| line.contains("shutdown complete")), "{lines:#?}");
    assert!(
        client.get(format!("http://127.0.0.1:{port}/health/live")).send().await.is_err(),
        "nothing listens after exit"
    );
}
