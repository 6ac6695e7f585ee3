//! `gad-load` (started as `loadtest/run`): GAD's load runner. Without a subcommand it runs the
//! blueprint's HTTP and WebSocket scenarios together over a profile's stages against a running
//! GAD, seeding its own data through the API, and judges the result against thresholds: exit 0
//! when every threshold holds and no event was lost, 1 when not, 2 when it cannot start.
//! `fanout` measures the delivery of events to many idle sockets, and with `--compare` beside a
//! bare-tokio server doing the same writes (`baseline-server`, its child process).
//!
//! See docs/LOAD_TESTING_GUIDE.md.

mod api;
mod baseline;
mod fanout;
mod http_scenario;
mod profile;
mod stats;
mod ws;
mod ws_scenario;

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::api::Api;
use crate::profile::{Profile, Stage};
use crate::stats::{distribution, load};

#[derive(Debug, Parser)]
#[command(
    name = "loadtest/run",
    about = "Load runner for GAD: the HTTP and WebSocket scenarios with thresholds (exit 0 pass, 1 a threshold failed or an event was lost, 2 cannot start)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    scenario: Scenario,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The server and the account, for the scenarios and for `fanout`.
#[derive(Debug, clap::Args)]
struct Target {
    /// Base URL of GAD.
    #[arg(long, env = "GAD_LOAD_BASE", default_value = "http://127.0.0.1:8080", global = true)]
    base: String,
    /// An admin account (the scenarios create users; `fanout` needs operator or higher).
    #[arg(long, env = "GAD_LOAD_EMAIL", global = true)]
    email: Option<String>,
    #[arg(long, env = "GAD_LOAD_PASSWORD", hide_env_values = true, global = true)]
    password: Option<String>,
    /// Seconds before one request counts as failed (timed out).
    #[arg(long, default_value_t = 10, global = true)]
    request_timeout_s: u64,
}

#[derive(Debug, clap::Args)]
struct Scenario {
    /// `smoke` (under a minute, 10 VUs) or `full` (the blueprint's stages up to 100 VUs).
    #[arg(long, value_enum, default_value_t = Profile::Smoke)]
    profile: Profile,
    /// Replace the profile's stages, as k6 writes them: `30s:20,2m:50,30s:0`.
    #[arg(long, value_parser = profile::parse_stages)]
    stages: Option<profile::Stages>,
    /// Pause of a virtual user between iterations, ±50 %.
    #[arg(long, default_value_t = 1000)]
    think_ms: u64,
    /// A virtual user logs in again after this many iterations.
    #[arg(long, default_value_t = 20)]
    relogin_every: u32,
    /// WebSocket subscribers held for the whole run (default: 5 smoke, 50 full).
    #[arg(long)]
    ws_subscribers: Option<usize>,
    /// A fresh WebSocket connection is timed every this many milliseconds (0: never).
    #[arg(long, default_value_t = 1000)]
    ws_probe_interval_ms: u64,
    /// Officers (with a location) seeded through the API.
    #[arg(long, default_value_t = 10)]
    seed_officers: usize,
    /// Tasks seeded through the API for the task detail requests.
    #[arg(long, default_value_t = 30)]
    seed_tasks: usize,
    /// Seconds to wait after the last stage for the last WebSocket deliveries.
    #[arg(long, default_value_t = 10)]
    drain_s: u64,
    /// Threshold: HTTP p95 latency over every request, milliseconds.
    #[arg(long, default_value_t = 500.0)]
    http_p95_ms: f64,
    /// Threshold: HTTP p99 latency, milliseconds.
    #[arg(long, default_value_t = 1000.0)]
    http_p99_ms: f64,
    /// Threshold: failed requests (transport errors and unexpected statuses), percent.
    #[arg(long, default_value_t = 5.0)]
    max_error_percent: f64,
    /// Threshold: WebSocket connect (upgrade, ack, subscribed) p95, milliseconds.
    #[arg(long, default_value_t = 1500.0)]
    ws_connect_p95_ms: f64,
    /// Threshold: WebSocket message latency (event commit to receipt) p95, milliseconds.
    #[arg(long, default_value_t = 300.0)]
    ws_message_p95_ms: f64,
    /// Where the JSON summary goes (default target/loadtest/<profile>.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seconds between progress lines on standard error.
    #[arg(long, default_value_t = 5)]
    progress_s: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fan-out: N idle sockets, events created at a rate, delivery to every socket (JSON on stdout).
    Fanout(fanout::Args),
    /// The bare-tokio fan-out server that `fanout --compare` starts as a child process.
    #[command(hide = true)]
    BaselineServer(baseline::ServerArgs),
}

/// The run could not start: nothing was measured.
const CANNOT_START: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::BaselineServer(args)) = cli.command {
        return match baseline::serve(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("baseline-server: {error:#}");
                ExitCode::from(CANNOT_START)
            }
        };
    }
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("loadtest: cannot start: {error:#}");
            ExitCode::from(CANNOT_START)
        }
    }
}

/// `Err` means the run could not start; a finished run returns its verdict.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let target = cli.target;
    let api = Api::new(&target.base, Duration::from_secs(target.request_timeout_s))?;
    let (Some(email), Some(password)) = (target.email, target.password) else {
        anyhow::bail!("give the account with --email and --password (or GAD_LOAD_EMAIL and GAD_LOAD_PASSWORD)");
    };
    api.call(api.http.get(api.url("/health/live")).timeout(Duration::from_secs(5)), 200)
        .await
        .map_err(|error| anyhow::anyhow!("{} does not answer: {error}", target.base))?;
    let token = api.login(&email, &password).await.map_err(|error| anyhow::anyhow!("login as {email}: {error}"))?;
    if let Some(Command::Fanout(args)) = cli.command {
        let code = fanout::run(&api, &token, args).await?;
        return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
    }
    scenarios(api, token, email, password, cli.scenario).await
}

async fn scenarios(
    api: Api,
    token: String,
    email: String,
    password: String,
    options: Scenario,
) -> anyhow::Result<ExitCode> {
    let stages = options.stages.clone().map_or_else(|| options.profile.stages(), |stages| stages.0);
    let subscribers = options.ws_subscribers.unwrap_or_else(|| options.profile.ws_subscribers());
    // The server caps sockets per user; five subscribers share an account, the probe has its own.
    let ws_accounts = subscribers.div_ceil(5) + 1;
    let run_id = format!("{:06x}", fastrand::u32(..0x100_0000));
    eprintln!(
        "loadtest: seeding {} officers, {} tasks, {ws_accounts} WebSocket accounts (run {run_id})",
        options.seed_officers, options.seed_tasks
    );
    let seeded = api::seed(&api, &token, &run_id, options.seed_officers, options.seed_tasks, ws_accounts).await?;
    let mut ws_tokens = Vec::with_capacity(seeded.ws_accounts.len());
    for (account, account_password) in &seeded.ws_accounts {
        ws_tokens.push(api.login(account, account_password).await?);
    }

    let ws_recorder = Arc::new(ws_scenario::WsRecorder::default());
    let (stop, stopped) = watch::channel(false);
    let subscriber_tasks: Vec<_> = (0..subscribers)
        .map(|index| {
            let task = ws_scenario::subscriber(
                api.base.clone(),
                ws_tokens[index / 5].clone(),
                Arc::clone(&ws_recorder),
                stopped.clone(),
            );
            tokio::spawn(task)
        })
        .collect();
    // Every subscriber is in (or has failed) before the first event, so each must see all.
    let subscribe_deadline = Instant::now() + Duration::from_secs(15);
    while connections_settled(&ws_recorder) < subscribers && Instant::now() < subscribe_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let probe = (options.ws_probe_interval_ms > 0).then(|| {
        let probe_token = ws_tokens.last().cloned().unwrap_or_default();
        let interval = Duration::from_millis(options.ws_probe_interval_ms);
        tokio::spawn(ws_scenario::probe(
            api.base.clone(),
            probe_token,
            interval,
            Arc::clone(&ws_recorder),
            stopped.clone(),
        ))
    });

    let shared = Arc::new(http_scenario::Shared {
        api,
        email,
        password,
        stages: stages.clone(),
        think: Duration::from_millis(options.think_ms),
        relogin_every: options.relogin_every.max(1),
        task_ids: seeded.task_ids.clone(),
        recorder: stats::HttpRecorder::default(),
        created: tokio::sync::Mutex::new(Vec::new()),
    });
    let total = profile::total(&stages);
    eprintln!(
        "loadtest: {} profile, {} s, up to {} virtual users, {subscribers} WebSocket subscribers",
        profile_name(options.profile),
        total.as_secs(),
        profile::peak(&stages)
    );
    let started = Instant::now();
    let users: Vec<_> = (0..profile::peak(&stages))
        .map(|index| tokio::spawn(http_scenario::virtual_user(Arc::clone(&shared), index, started)))
        .collect();
    let progress = tokio::spawn(progress(
        Arc::clone(&shared),
        Arc::clone(&ws_recorder),
        started,
        Duration::from_secs(options.progress_s.max(1)),
    ));
    for user in users {
        let _ = user.await;
    }
    let http_elapsed = started.elapsed().as_secs_f64();
    progress.abort();

    // Drain: wait until every subscriber has every created task, or the drain time is over.
    let created: HashSet<String> = shared.created.lock().await.iter().cloned().collect();
    let expected_events = created.len() * subscribers;
    let drain_deadline = Instant::now() + Duration::from_secs(options.drain_s);
    while Instant::now() < drain_deadline && (load(&ws_recorder.events) as usize) < expected_events {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // `events` counts every event (transitions too); give the last ones a moment once the
    // count says the created ones may all be in.
    tokio::time::sleep(Duration::from_millis(500).min(drain_deadline.saturating_duration_since(Instant::now()))).await;
    stop.send_replace(true);
    if let Some(probe) = probe {
        let _ = probe.await;
    }
    let mut seen = Vec::with_capacity(subscribers);
    for task in subscriber_tasks {
        seen.push(task.await.unwrap_or_else(|_| ws_scenario::Seen { lost_connection: true, ..Default::default() }));
    }

    let summary = summarise(&options, &stages, &shared, &ws_recorder, &seen, &created, &seeded, http_elapsed);
    let out = options.out.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned()))
            .join("loadtest")
            .join(format!("{}.json", profile_name(options.profile)))
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&summary)?)?;
    report(&summary, &out)?;
    Ok(if summary["passed"] == json!(true) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn profile_name(profile: Profile) -> String {
    clap::ValueEnum::to_possible_value(&profile).map(|value| value.get_name().to_owned()).unwrap_or_default()
}

fn connections_settled(recorder: &ws_scenario::WsRecorder) -> usize {
    let lock = |mutex: &std::sync::Mutex<Vec<_>>| mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len();
    recorder.connect_ms.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len() + lock(&recorder.connect_errors)
}

/// One line on standard error every `every`: where the run is and how it goes.
async fn progress(
    shared: Arc<http_scenario::Shared>,
    ws: Arc<ws_scenario::WsRecorder>,
    started: Instant,
    every: Duration,
) {
    let total = profile::total(&shared.stages).as_secs();
    let mut last_requests = 0;
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let elapsed = started.elapsed();
        let requests = load(&shared.recorder.requests);
        let errors = load(&shared.recorder.errors);
        let p95 = shared.recorder.take_recent_p95().map_or_else(|| "-".to_owned(), |p95| format!("{p95:.1} ms"));
        eprintln!(
            "[{:>4}s/{total}s] vus {:>3}  requests {requests} ({:.1}/s)  errors {errors} ({:.2} %)  p95 {p95}  ws events {}",
            elapsed.as_secs(),
            profile::target_at(&shared.stages, elapsed),
            (requests - last_requests) as f64 / every.as_secs_f64(),
            100.0 * errors as f64 / requests.max(1) as f64,
            load(&ws.events),
        );
        last_requests = requests;
    }
}

/// The JSON summary, with every threshold's verdict and the overall one.
#[expect(clippy::too_many_arguments, reason = "one place that reads every measurement of the run")]
fn summarise(
    options: &Scenario,
    stages: &[Stage],
    shared: &http_scenario::Shared,
    ws: &ws_scenario::WsRecorder,
    seen: &[ws_scenario::Seen],
    created: &HashSet<String>,
    seeded: &api::Seeded,
    http_elapsed: f64,
) -> Value {
    let (by_kind, all, errors) = shared.recorder.summary(http_elapsed);
    let requests = all.len();
    let error_percent = 100.0 * errors as f64 / requests.max(1) as f64;
    let http_latency = distribution(all);
    let take =
        |mutex: &std::sync::Mutex<Vec<f64>>| mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let connect = distribution(take(&ws.connect_ms));
    let message = distribution(take(&ws.message_ms));
    let connect_errors = ws.connect_errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let lost: usize = seen.iter().map(|subscriber| created.difference(&subscriber.created).count()).sum();
    let duplicated: u64 = seen.iter().map(|subscriber| subscriber.duplicates).sum();
    let out_of_order: u64 = seen.iter().map(|subscriber| subscriber.out_of_order).sum();
    let lost_connections = seen.iter().filter(|subscriber| subscriber.lost_connection).count();

    // A missing percentile (nothing measured) fails its threshold: no evidence is no pass.
    let at_most = |name: &str, value: &Value, limit: f64| {
        let passed = value.as_f64().is_some_and(|value| value <= limit);
        json!({"name": name, "value": value, "limit": limit, "passed": passed})
    };
    let thresholds = vec![
        at_most("http p95 ms", &http_latency["p95"], options.http_p95_ms),
        at_most("http p99 ms", &http_latency["p99"], options.http_p99_ms),
        at_most("http errors %", &json!(stats::round(error_percent)), options.max_error_percent),
        at_most("ws connect p95 ms", &connect["p95"], options.ws_connect_p95_ms),
        at_most("ws message p95 ms", &message["p95"], options.ws_message_p95_ms),
        at_most("ws events lost", &json!(lost), 0.0),
        at_most("ws events duplicated", &json!(duplicated), 0.0),
        at_most("ws subscribers disconnected", &json!(lost_connections), 0.0),
    ];
    let passed = thresholds.iter().all(|threshold| threshold["passed"] == json!(true)) && requests > 0;
    json!({
        "profile": profile_name(options.profile),
        "base": shared.api.base,
        "finished_at": api::now_rfc3339(),
        "stages": stages.iter().map(|stage| json!({"duration_s": stage.duration.as_secs(), "target_vus": stage.target})).collect::<Vec<_>>(),
        "seeded": {"officers": seeded.officers, "tasks": seeded.task_ids.len(), "ws_accounts": seeded.ws_accounts.len()},
        "http": {
            "duration_s": stats::round(http_elapsed),
            "requests": requests,
            "rate_per_s": stats::round(requests as f64 / http_elapsed.max(0.001)),
            "errors": errors,
            "error_percent": stats::round(error_percent),
            "latency_ms": http_latency,
            "by_kind": by_kind,
        },
        "ws": {
            "subscribers": seen.len(),
            "connect_ms": connect,
            "connect_failures": connect_errors.len(),
            "first_connect_errors": connect_errors.iter().take(3).collect::<Vec<_>>(),
            "message_latency_ms": message,
            "events_received": load(&ws.events),
            "tasks_created": created.len(),
            "expected_task_created_deliveries": created.len() * seen.len(),
            "lost": lost,
            "duplicated": duplicated,
            "out_of_order": out_of_order,
            "disconnected": lost_connections,
        },
        "thresholds": thresholds,
        "passed": passed,
    })
}

/// The verdict for a person: per request kind, the WebSocket figures, each threshold.
fn report(summary: &Value, out: &std::path::Path) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let http = &summary["http"];
    writeln!(
        stdout,
        "\n{:<18} {:>7} {:>8} {:>9} {:>9} {:>9} {:>7}",
        "request", "count", "rate/s", "p50 ms", "p95 ms", "p99 ms", "errors"
    )?;
    let number = |value: &Value| value.as_f64().map_or_else(|| "-".to_owned(), |value| format!("{value:.1}"));
    if let Some(kinds) = http["by_kind"].as_object() {
        for (name, kind) in kinds {
            writeln!(
                stdout,
                "{name:<18} {:>7} {:>8} {:>9} {:>9} {:>9} {:>7}",
                kind["count"].to_string(),
                number(&kind["rate_per_s"]),
                number(&kind["p50"]),
                number(&kind["p95"]),
                number(&kind["p99"]),
                kind["errors"].to_string()
            )?;
        }
    }
    let latency = &http["latency_ms"];
    writeln!(
        stdout,
        "{:<18} {:>7} {:>8} {:>9} {:>9} {:>9} {:>7}",
        "all",
        http["requests"].to_string(),
        number(&http["rate_per_s"]),
        number(&latency["p50"]),
        number(&latency["p95"]),
        number(&latency["p99"]),
        http["errors"].to_string()
    )?;
    let ws = &summary["ws"];
    writeln!(
        stdout,
        "\nwebsocket: {} subscribers, connect p95 {} ms ({} samples, {} failed), message p95 {} ms, {} events, lost {}, duplicated {}, out of order {}",
        ws["subscribers"],
        number(&ws["connect_ms"]["p95"]),
        ws["connect_ms"]["count"],
        ws["connect_failures"],
        number(&ws["message_latency_ms"]["p95"]),
        ws["events_received"],
        ws["lost"],
        ws["duplicated"],
        ws["out_of_order"],
    )?;
    writeln!(stdout, "\nthresholds:")?;
    for threshold in summary["thresholds"].as_array().into_iter().flatten() {
        let verdict = if threshold["passed"] == json!(true) { "ok  " } else { "FAIL" };
        writeln!(
            stdout,
            "  {verdict} {:<28} {} (limit {})",
            threshold["name"].as_str().unwrap_or_default(),
            threshold["value"],
            threshold["limit"]
        )?;
    }
    let verdict = if summary["passed"] == json!(true) { "PASSED" } else { "FAILED" };
    writeln!(stdout, "\nloadtest: {verdict}; summary in {}", out.display())
}
