//! `fanout`: opens N authenticated WebSocket connections to GAD, subscribes each to a topic,
//! creates tasks through the REST API at a given rate, and reports as JSON: connect times,
//! delivery latency percentiles (event `ts`, i.e. its commit transaction, to receipt), losses
//! and duplicates, and optionally the server's resident memory per connection.
//!
//! With `--compare N` it also measures the bare-tokio baseline (`crate::baseline`) in the same
//! run, interleaved with GAD, and reports the ratio of the delivery p99s.
//!
//! See docs/LOAD_TESTING_GUIDE.md for how to run it.

use std::collections::{HashMap, HashSet};
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
    /// Rounds of the bare-tokio baseline and GAD, interleaved (baseline, GAD, …), each on
    /// freshly opened sockets; prints both delivery distributions and the ratio of their p99s
    /// (see docs/LOAD_TESTING_GUIDE.md). 0: GAD only.
    #[arg(long, default_value_t = 0)]
    compare: usize,
    /// With `--compare`: writer tasks of the baseline server (the sockets are divided among them).
    #[arg(long, default_value_t = 1)]
    baseline_writers: usize,
    /// With `--compare`: fail when GAD's p99 is above this many times the baseline's.
    #[arg(long)]
    max_ratio: Option<f64>,
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

/// CPU time the process `pid` has used (user and system, every thread), in milliseconds
/// (`/proc` counts in USER_HZ, 100 per second).
fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) * 10)
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
async fn read(mut socket: Socket, seen: Arc<Mutex<Seen>>, mut stop: watch::Receiver<bool>, counters: Arc<Counters>) {
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
                    counters.frame_bytes.fetch_max(text.len(), Ordering::Relaxed);
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
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

/// What every reader of a set of sockets adds to.
#[derive(Default)]
struct Counters {
    /// `task.created` frames received.
    delivered: AtomicUsize,
    /// The largest `task.created` message seen, in bytes (the baseline sends this size).
    frame_bytes: AtomicUsize,
}

/// Sockets opened by a ramp.
struct Opened {
    sockets: Vec<Socket>,
    connect_ms: Vec<f64>,
    errors: Vec<String>,
    ramp_s: f64,
}

/// Opens `count` sockets, `concurrency` handshakes at a time, each with `open`.
async fn open_all<F, Fut>(count: usize, concurrency: usize, open: F) -> Opened
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<Socket>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let opening = (0..count).map(|_| {
        let (permits, opening) = (Arc::clone(&permits), open());
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let started = Instant::now();
            let socket = opening.await;
            (socket, started.elapsed().as_secs_f64() * 1000.0)
        })
    });
    let mut opened =
        Opened { sockets: Vec::with_capacity(count), connect_ms: Vec::new(), errors: Vec::new(), ramp_s: 0.0 };
    for outcome in futures_util::future::join_all(opening).await {
        match outcome {
            Ok((Ok(socket), elapsed)) => {
                opened.sockets.push(socket);
                opened.connect_ms.push(elapsed);
            }
            Ok((Err(error), _)) => opened.errors.push(format!("{error:#}")),
            Err(error) => opened.errors.push(error.to_string()),
        }
    }
    opened.ramp_s = started.elapsed().as_secs_f64();
    opened
}

/// A reader per socket, until [`Readers::finish`].
struct Readers {
    readers: Vec<(Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>)>,
    stop: watch::Sender<bool>,
    counters: Arc<Counters>,
}

impl Readers {
    fn spawn(sockets: Vec<Socket>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let readers = sockets
            .into_iter()
            .map(|socket| {
                let seen = Arc::new(Mutex::new(Seen::default()));
                let handle = tokio::spawn(read(socket, Arc::clone(&seen), stopped.clone(), Arc::clone(&counters)));
                (seen, handle)
            })
            .collect();
        Self { readers, stop, counters }
    }

    /// Waits until `wanted` deliveries arrived or `drain` passed.
    async fn wait_for(&self, wanted: usize, drain: Duration) {
        let deadline = Instant::now() + drain;
        while self.counters.delivered.load(Ordering::Relaxed) < wanted && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every reader (closing its socket) and returns what each saw.
    async fn finish(self) -> Vec<Seen> {
        self.stop.send_replace(true);
        let mut seen = Vec::with_capacity(self.readers.len());
        for (recorded, handle) in self.readers {
            let _ = handle.await;
            seen.push(std::mem::take(&mut *recorded.lock().await));
        }
        seen
    }
}

/// Deliveries of the expected events, per socket, summed.
#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    after_response: Vec<f64>,
    losses: usize,
    duplicates: usize,
    out_of_order: usize,
    closed_early: usize,
}

fn tally(seen: &[Seen], expected: &HashSet<&str>, responded: &HashMap<String, OffsetDateTime>) -> Tally {
    let mut tally = Tally::default();
    for seen in seen {
        let mut distinct = HashSet::new();
        for (id, latency, received) in &seen.deliveries {
            if !expected.contains(id.as_str()) {
                continue;
            }
            if distinct.insert(id.as_str()) {
                tally.latencies.push(*latency);
                if let Some(responded) = responded.get(id) {
                    tally.after_response.push(((*received - *responded).as_seconds_f64() * 1000.0).max(0.0));
                }
            } else {
                tally.duplicates += 1;
            }
        }
        tally.losses += expected.len() - distinct.len();
        tally.out_of_order += seen.seqs.windows(2).filter(|pair| pair[1] <= pair[0]).count();
        tally.closed_early += usize::from(seen.closed_early);
    }
    tally
}

/// Creates `events` tasks at `rate` per second; returns their ids and when each `POST` answered.
async fn create_tasks(
    api: &crate::api::Api,
    token: &str,
    events: usize,
    rate: f64,
) -> anyhow::Result<(Vec<String>, HashMap<String, OffsetDateTime>, usize)> {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pending = Vec::with_capacity(events);
    let scheduled_start = OffsetDateTime::now_utc().format(&Rfc3339)?;
    for index in 0..events {
        ticker.tick().await;
        let (http, token, scheduled_start, base) =
            (api.http.clone(), token.to_owned(), scheduled_start.clone(), api.base.clone());
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
    let (mut created, mut responded, mut errors) = (Vec::with_capacity(events), HashMap::new(), 0);
    for task in pending {
        match task.await.ok().flatten() {
            Some((id, at)) => {
                responded.insert(id.clone(), at);
                created.push(id);
            }
            None => errors += 1,
        }
    }
    Ok((created, responded, errors))
}

/// Runs the fan-out and prints its report; the exit status is 1 on a loss, a duplicate, a
/// failed connection or a missed threshold.
pub async fn run(api: &crate::api::Api, token: &str, args: Args) -> anyhow::Result<i32> {
    if args.compare > 0 {
        return compare(api, token, args).await;
    }
    let rss_before = args.server_pid.and_then(rss_kb);
    let args = Arc::new(args);
    let opened = open_all(args.connections, args.concurrency, || {
        let (http, base, args, token) = (api.http.clone(), api.base.clone(), Arc::clone(&args), token.to_owned());
        async move { open(&http, &base, &args, &token).await }
    })
    .await;
    let (connect_ms, connect_errors) = (opened.connect_ms, opened.errors);
    let readers = Readers::spawn(opened.sockets);
    if args.idle_s > 0 {
        tokio::time::sleep(Duration::from_secs(args.idle_s)).await;
    }
    let rss_connected = args.server_pid.and_then(rss_kb);

    let (created, responded, create_errors) = create_tasks(api, token, args.events, args.rate).await?;
    readers.wait_for(created.len() * connect_ms.len(), Duration::from_secs(args.drain_s)).await;
    let seen = readers.finish().await;
    let expected: HashSet<&str> = created.iter().map(String::as_str).collect();
    let tally = tally(&seen, &expected, &responded);
    let connected = connect_ms.len();
    let report = json!({
        "connections": { "requested": args.connections, "open": connected, "failed": connect_errors.len(),
                         "first_errors": connect_errors.iter().take(5).collect::<Vec<_>>(),
                         "ramp_s": opened.ramp_s, "closed_early": tally.closed_early },
        "connect_ms": distribution(connect_ms.clone()),
        "events": { "created": created.len(), "create_errors": create_errors, "rate_per_s": args.rate },
        "deliveries": { "expected": created.len() * connected, "received": tally.latencies.len(),
                        "losses": tally.losses, "duplicates": tally.duplicates, "out_of_order": tally.out_of_order },
        "delivery_latency_ms": distribution(tally.latencies.clone()),
        "after_http_response_ms": distribution(tally.after_response),
        "server_rss_kb": { "before": rss_before, "connected": rss_connected,
                           "per_connection_bytes": match (rss_before, rss_connected) {
                               (Some(before), Some(after)) if connected > 0 =>
                                   Some((after.saturating_sub(before) * 1024) / connected as u64),
                               _ => None,
                           } },
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?;
    let mut failed = tally.losses > 0 || tally.duplicates > 0 || !connect_errors.is_empty();
    if let Some(limit) = args.max_connect_p95_ms {
        failed |= report["connect_ms"]["p95"].as_f64().is_none_or(|p95| p95 > limit);
    }
    if let Some(limit) = args.max_delivery_p99_ms {
        failed |= report["delivery_latency_ms"]["p99"].as_f64().is_none_or(|p99| p99 > limit);
    }
    Ok(i32::from(failed))
}

/// Which server a round of `--compare` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Baseline,
    Gad,
}

/// `--compare N`: N rounds of the bare-tokio baseline and of GAD, interleaved, each on freshly
/// opened sockets (both sets at once would exceed the usual 20,000 descriptors of one process),
/// then both distributions and the ratio of their p99s. Exit 1 on a loss or duplicate, or when
/// GAD's p99 is above `--max-ratio` times the baseline's.
async fn compare(api: &crate::api::Api, token: &str, args: Args) -> anyhow::Result<i32> {
    let mut baseline = crate::baseline::Baseline::start(args.baseline_writers)?;
    let args = Arc::new(args);
    let open_gad = || {
        let (http, base, args, token) = (api.http.clone(), api.base.clone(), Arc::clone(&args), token.to_owned());
        async move { open(&http, &base, &args, &token).await }
    };
    let baseline_base = baseline.base.clone();
    let open_baseline = || {
        let (base, topic) = (baseline_base.clone(), args.topic.clone());
        async move { handshake(request(&base, None, None)?, &topic).await }
    };

    // The size of GAD's frame, learnt from one event on one socket.
    let probe = open_all(1, 1, open_gad).await;
    if !probe.errors.is_empty() {
        bail!("cannot open a socket to GAD: {}", probe.errors.join("; "));
    }
    let readers = Readers::spawn(probe.sockets);
    let (created, _, _) = create_tasks(api, token, 1, 1.0).await?;
    readers.wait_for(created.len(), Duration::from_secs(args.drain_s)).await;
    let frame_bytes = readers.counters.frame_bytes.load(Ordering::Relaxed);
    readers.finish().await;
    if frame_bytes == 0 {
        bail!("GAD delivered no task.created to the probe socket");
    }
    eprintln!("fanout: GAD's task.created message is {frame_bytes} bytes; the baseline sends the same size");

    let mut rounds = Vec::new();
    let (mut all_baseline, mut all_gad) = (Vec::new(), Vec::new());
    let mut failed = false;
    let mut seq = 0i64;
    // Server CPU (ms) and frames delivered, over the rounds that could read it.
    let (mut cpu_baseline, mut cpu_gad) = ((0u64, 0usize), (0u64, 0usize));
    for round in 1..=args.compare {
        for server in [Server::Baseline, Server::Gad] {
            let opened = match server {
                Server::Baseline => open_all(args.connections, args.concurrency, open_baseline).await,
                Server::Gad => open_all(args.connections, args.concurrency, open_gad).await,
            };
            let (open_count, ramp_s, errors) = (opened.sockets.len(), opened.ramp_s, opened.errors);
            let readers = Readers::spawn(opened.sockets);
            tokio::time::sleep(Duration::from_secs(args.idle_s.max(1))).await;
            let pid = match server {
                Server::Baseline => Some(baseline.pid()),
                Server::Gad => args.server_pid,
            };
            let cpu_before = pid.and_then(cpu_ms);
            let (ids, responded) = match server {
                Server::Baseline => {
                    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
                    let mut ticker = tokio::time::interval(interval);
                    let mut ids = Vec::with_capacity(args.events);
                    for index in 0..args.events {
                        ticker.tick().await;
                        seq += 1;
                        let id = format!("baseline-{round}-{index}");
                        baseline.event(seq, &id, frame_bytes)?;
                        ids.push(id);
                    }
                    (ids, HashMap::new())
                }
                Server::Gad => {
                    let (created, responded, _) = create_tasks(api, token, args.events, args.rate).await?;
                    (created, responded)
                }
            };
            readers.wait_for(ids.len() * open_count, Duration::from_secs(args.drain_s)).await;
            // The server's CPU over the events, from the first to the last delivery.
            let cpu = match (cpu_before, pid.and_then(cpu_ms)) {
                (Some(before), Some(after)) => Some(after.saturating_sub(before)),
                _ => None,
            };
            let seen = readers.finish().await;
            let expected: HashSet<&str> = ids.iter().map(String::as_str).collect();
            let tally = tally(&seen, &expected, &responded);
            failed |= tally.losses > 0 || tally.duplicates > 0 || !errors.is_empty() || ids.len() < args.events;
            let name = if server == Server::Baseline { "baseline" } else { "gad" };
            let latency = distribution(tally.latencies.clone());
            let cpu_us_per_frame =
                cpu.filter(|_| !tally.latencies.is_empty()).map(|ms| ms as f64 * 1000.0 / tally.latencies.len() as f64);
            eprintln!(
                "fanout: round {round} {name:<8} {open_count} sockets, {} of {} delivered, p50 {} ms, p99 {} ms, max {} ms, server CPU {} µs per frame",
                tally.latencies.len(),
                ids.len() * open_count,
                latency["p50"],
                latency["p99"],
                latency["max"],
                cpu_us_per_frame.map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"))
            );
            rounds.push(json!({
                "round": round, "server": name, "open": open_count, "failed": errors.len(),
                "first_errors": errors.iter().take(3).collect::<Vec<_>>(), "ramp_s": ramp_s,
                "events": ids.len(), "received": tally.latencies.len(), "losses": tally.losses,
                "duplicates": tally.duplicates, "out_of_order": tally.out_of_order,
                "delivery_latency_ms": latency, "server_cpu_ms": cpu,
                "server_cpu_us_per_frame": cpu_us_per_frame.map(crate::stats::round),
            }));
            let totals = match server {
                Server::Baseline => &mut cpu_baseline,
                Server::Gad => &mut cpu_gad,
            };
            if let Some(cpu) = cpu {
                totals.0 += cpu;
                totals.1 += tally.latencies.len();
            }
            match server {
                Server::Baseline => all_baseline.extend(tally.latencies),
                Server::Gad => all_gad.extend(tally.latencies),
            }
            // The closed sockets' teardown is not part of the next round.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    // Each GAD round against the baseline round just before it: less exposed to a burst of the
    // machine's other work than the pooled figures.
    let p99_of = |round: &Value| round["delivery_latency_ms"]["p99"].as_f64();
    let mut pair_ratios: Vec<f64> = rounds
        .chunks(2)
        .filter_map(|pair| match pair {
            [bare, gad] => match (p99_of(gad), p99_of(bare)) {
                (Some(gad), Some(bare)) if bare > 0.0 => Some(crate::stats::round(gad / bare)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let rounds_in_order = pair_ratios.clone();
    pair_ratios.sort_by(f64::total_cmp);
    let median_pair_ratio = crate::stats::percentile(&pair_ratios, 50.0);
    let (baseline_latency, gad_latency) = (distribution(all_baseline), distribution(all_gad));
    let per_frame = |(ms, frames): (u64, usize)| (frames > 0).then(|| ms as f64 * 1000.0 / frames as f64);
    let (baseline_cpu, gad_cpu) = (per_frame(cpu_baseline), per_frame(cpu_gad));
    let ratio = match (gad_latency["p99"].as_f64(), baseline_latency["p99"].as_f64()) {
        (Some(gad), Some(bare)) if bare > 0.0 => Some(crate::stats::round(gad / bare)),
        _ => None,
    };
    let report = json!({
        "connections": args.connections, "events_per_round": args.events, "rate_per_s": args.rate,
        "frame_bytes": frame_bytes, "baseline_writers": args.baseline_writers, "rounds": rounds,
        "baseline_delivery_latency_ms": baseline_latency,
        "gad_delivery_latency_ms": gad_latency,
        "p99_ratio_gad_to_baseline": ratio,
        "p99_ratio_per_round": rounds_in_order,
        "p99_ratio_per_round_median": median_pair_ratio,
        "server_cpu_us_per_frame": { "baseline": baseline_cpu.map(crate::stats::round), "gad": gad_cpu.map(crate::stats::round),
                                     "ratio": baseline_cpu.zip(gad_cpu).filter(|(bare, _)| *bare > 0.0)
                                         .map(|(bare, gad)| crate::stats::round(gad / bare)) },
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?;
    writeln!(
        stdout,
        "fan-out to {} sockets: baseline p99 {} ms, GAD p99 {} ms, ratio {} (per round {:?}, median {})",
        args.connections,
        baseline_latency["p99"],
        gad_latency["p99"],
        ratio.map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.2}")),
        rounds_in_order,
        median_pair_ratio.map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.2}"))
    )?;
    if let Some(limit) = args.max_ratio {
        failed |= ratio.is_none_or(|ratio| ratio > limit);
    }
    Ok(i32::from(failed))
}
