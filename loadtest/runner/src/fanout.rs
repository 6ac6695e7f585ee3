//! `fanout`: opens N authenticated WebSocket connections to GAD, subscribes each to a topic,
//! creates tasks through the REST API at a given rate, and reports as JSON: connect times,
//! delivery latency percentiles (event `ts`, i.e. its commit transaction, to receipt), losses
//! and duplicates, and optionally the server's resident memory per connection.
//!
//! See loadtest/README.md for how to run it.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use futures_util::StreamExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Mutex, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::stats::distribution;
use crate::ws::{Frame, Socket, handshake, request};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuthMode {
    /// `Authorization: Bearer` on the upgrade request.
    Bearer,
    /// A single-use ticket from `POST /api/v1/ws/tickets` per connection.
    Ticket,
}

/// Fan-out of events to many idle WebSocket connections (the base URL and the account, an
/// operator or higher that connects and creates the tasks, are the runner's).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Connections to open.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Handshakes in flight at once during the ramp.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    #[arg(long, value_enum, default_value_t = AuthMode::Bearer)]
    auth: AuthMode,
    #[arg(long, default_value = "tasks")]
    topic: String,
    /// Tasks to create once every connection is subscribed (each is one `task.created` event).
    #[arg(long, default_value_t = 10)]
    events: usize,
    /// Tasks created per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds to wait for the last deliveries after the last task was created.
    #[arg(long, default_value_t = 10)]
    drain_s: u64,
    /// Seconds to hold the connections idle before sending events (memory measurement).
    #[arg(long, default_value_t = 0)]
    idle_s: u64,
    /// PID of the server, to report its resident memory before and after the connections.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Fail (exit code 1) when a threshold is missed: connect p95 in ms.
    #[arg(long)]
    max_connect_p95_ms: Option<f64>,
    /// Fail when delivery p99 in ms is above this.
    #[arg(long)]
    max_delivery_p99_ms: Option<f64>,
}

/// What one connection saw.
#[derive(Default)]
struct Seen {
    /// (task id, latency in ms, receipt time) of every `task.created` received.
    deliveries: Vec<(String, f64, OffsetDateTime)>,
    seqs: Vec<i64>,
    closed_early: bool,
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// A connection subscribed to the topic, authenticated as `args.auth` says.
async fn open(http: &reqwest::Client, base: &str, args: &Args, token: &str) -> anyhow::Result<Socket> {
    let request = match args.auth {
        AuthMode::Bearer => request(base, Some(token), None)?,
        AuthMode::Ticket => {
            let response = http.post(format!("{base}/api/v1/ws/tickets")).bearer_auth(token).send().await?;
            if !response.status().is_success() {
                bail!("ticket refused: {}", response.status());
            }
            let body: Value = response.json().await?;
            request(base, None, Some(body["ticket"].as_str().context("no ticket")?))?
        }
    };
    handshake(request, &args.topic).await
}

/// Reads until the socket closes or `stop` resolves, recording deliveries.
async fn read(
    mut socket: Socket,
    seen: Arc<Mutex<Seen>>,
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicUsize>,
) {
    let mut local = Seen::default();
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let received = OffsetDateTime::now_utc();
                    let Ok(frame) = serde_json::from_str::<Frame<'_>>(&text) else { continue };
                    if frame.kind != "task.created" {
                        continue;
                    }
                    let latency = frame.latency_ms(received).unwrap_or(f64::NAN);
                    if let Some(id) = frame.data.and_then(|data| data.id) {
                        local.deliveries.push((id.to_owned(), latency, received));
                    }
                    local.seqs.extend(frame.seq);
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    local.closed_early = true;
                    break;
                }
            },
            _ = stop.changed() => break,
        }
    }
    let _ = socket.close(None).await;
    *seen.lock().await = local;
}

/// Runs the fan-out and prints its report; the exit status is 1 on a loss, a duplicate, a
/// failed connection or a missed threshold.
pub async fn run(api: &crate::api::Api, token: &str, args: Args) -> anyhow::Result<i32> {
    let (http, token, base) = (api.http.clone(), token.to_owned(), api.base.clone());
    let rss_before = args.server_pid.and_then(rss_kb);

    // Ramp: open every connection, `concurrency` handshakes at a time.
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let args = Arc::new(args);
    let ramp_started = Instant::now();
    let opening = (0..args.connections).map(|_| {
        let (permits, http, args, token, base) =
            (Arc::clone(&permits), http.clone(), Arc::clone(&args), token.clone(), base.clone());
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let started = Instant::now();
            let socket = open(&http, &base, &args, &token).await;
            (socket, started.elapsed().as_secs_f64() * 1000.0)
        })
    });
    let mut sockets = Vec::with_capacity(args.connections);
    let mut connect_ms = Vec::with_capacity(args.connections);
    let mut connect_errors: Vec<String> = Vec::new();
    for outcome in futures_util::future::join_all(opening).await {
        match outcome {
            Ok((Ok(socket), elapsed)) => {
                sockets.push(socket);
                connect_ms.push(elapsed);
            }
            Ok((Err(error), _)) => connect_errors.push(error.to_string()),
            Err(error) => connect_errors.push(error.to_string()),
        }
    }
    let ramp_s = ramp_started.elapsed().as_secs_f64();
    let (stop, stopped) = watch::channel(false);
    let delivered = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|socket| {
            let seen = Arc::new(Mutex::new(Seen::default()));
            let handle = tokio::spawn(read(socket, Arc::clone(&seen), stopped.clone(), Arc::clone(&delivered)));
            (seen, handle)
        })
        .collect();
    if args.idle_s > 0 {
        tokio::time::sleep(Duration::from_secs(args.idle_s)).await;
    }
    let rss_connected = args.server_pid.and_then(rss_kb);

    // Events: tasks created at `rate` per second.
    let mut created: Vec<String> = Vec::with_capacity(args.events);
    let mut responded: std::collections::HashMap<String, OffsetDateTime> = std::collections::HashMap::new();
    let mut create_errors = 0usize;
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pending = Vec::with_capacity(args.events);
    let scheduled_start = OffsetDateTime::now_utc().format(&Rfc3339)?;
    for index in 0..args.events {
        ticker.tick().await;
        let (http, token, scheduled_start, base) = (http.clone(), token.clone(), scheduled_start.clone(), base.clone());
        pending.push(tokio::spawn(async move {
            let body = json!({"title": format!("Load task {index}"), "kind": "patrol",
                              "scheduled_start": scheduled_start});
            let response =
                http.post(format!("{base}/api/v1/tasks")).bearer_auth(&token).json(&body).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let task: Value = response.json().await.ok()?;
            let at = OffsetDateTime::now_utc();
            task["id"].as_str().map(|id| (id.to_owned(), at))
        }));
    }
    for task in pending {
        match task.await.ok().flatten() {
            Some((id, at)) => {
                responded.insert(id.clone(), at);
                created.push(id);
            }
            None => create_errors += 1,
        }
    }
    // Wait for every delivery, or the drain timeout.
    let deadline = Instant::now() + Duration::from_secs(args.drain_s);
    let wanted = created.len() * connect_ms.len();
    while delivered.load(Ordering::Relaxed) < wanted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send_replace(true);
    let expected: HashSet<&str> = created.iter().map(String::as_str).collect();
    let mut after_response = Vec::new();
    let (mut latencies, mut losses, mut duplicates, mut closed_early, mut unordered) =
        (Vec::new(), 0usize, 0usize, 0usize, 0usize);
    for (seen, handle) in readers {
        let _ = handle.await;
        let seen = seen.lock().await;
        let mut distinct = HashSet::new();
        for (id, latency, received) in &seen.deliveries {
            if !expected.contains(id.as_str()) {
                continue;
            }
            if distinct.insert(id.as_str()) {
                latencies.push(*latency);
                if let Some(responded) = responded.get(id) {
                    after_response.push(((*received - *responded).as_seconds_f64() * 1000.0).max(0.0));
                }
            } else {
                duplicates += 1;
            }
        }
        losses += expected.len() - distinct.len();
        unordered += seen.seqs.windows(2).filter(|pair| pair[1] <= pair[0]).count();
        closed_early += usize::from(seen.closed_early);
    }
    let connected = connect_ms.len();
    let report = json!({
        "connections": { "requested": args.connections, "open": connected, "failed": connect_errors.len(),
                         "first_errors": connect_errors.iter().take(5).collect::<Vec<_>>(),
                         "ramp_s": ramp_s, "closed_early": closed_early },
        "connect_ms": distribution(connect_ms.clone()),
        "events": { "created": created.len(), "create_errors": create_errors, "rate_per_s": args.rate },
        "deliveries": { "expected": created.len() * connected, "received": latencies.len(),
                        "losses": losses, "duplicates": duplicates, "out_of_order": unordered },
        "delivery_latency_ms": distribution(latencies.clone()),
        "after_http_response_ms": distribution(after_response),
        "server_rss_kb": { "before": rss_before, "connected": rss_connected,
                           "per_connection_bytes": match (rss_before, rss_connected) {
                               (Some(before), Some(after)) if connected > 0 =>
                                   Some((after.saturating_sub(before) * 1024) / connected as u64),
                               _ => None,
                           } },
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?;
    let mut failed = losses > 0 || duplicates > 0 || !connect_errors.is_empty();
    if let Some(limit) = args.max_connect_p95_ms {
        failed |= report["connect_ms"]["p95"].as_f64().is_none_or(|p95| p95 > limit);
    }
    if let Some(limit) = args.max_delivery_p99_ms {
        failed |= report["delivery_latency_ms"]["p99"].as_f64().is_none_or(|p99| p99 > limit);
    }
    Ok(i32::from(failed))
}
