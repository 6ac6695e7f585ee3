//! GAD's REST API as the runner uses it: timed requests, login, and the data a run seeds.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::stats::{HttpRecorder, Outcome};

/// Centre of the seeded area (Madrid): officers and tasks lie within about 5 km of it.
pub const CENTRE: (f64, f64) = (40.4168, -3.7038);

#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// A successful response's JSON body (null when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub body: Value,
}

impl Api {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), http })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and records it under `kind`; `expected` is the status that counts as
    /// success. Transport failures and unexpected statuses are errors, recorded with a sample.
    pub async fn timed(
        &self,
        recorder: &HttpRecorder,
        kind: &'static str,
        request: reqwest::RequestBuilder,
        expected: u16,
    ) -> Option<Reply> {
        let started = Instant::now();
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        }
        .await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok((status, bytes)) => {
                let ok = status == expected;
                recorder.record(kind, latency_ms, &Outcome::Status(status), ok, || {
                    format!("{status} {}", String::from_utf8_lossy(&bytes[..bytes.len().min(200)]))
                });
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                ok.then_some(Reply { body })
            }
            Err(error) => {
                let text = error_chain(&error);
                recorder.record(kind, latency_ms, &Outcome::Transport, false, || text);
                None
            }
        }
    }

    /// Logs in outside any measurement (seeding, WebSocket accounts).
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let reply = self
            .call(
                self.http.post(self.url("/api/v1/auth/login")).json(&json!({"email": email, "password": password})),
                200,
            )
            .await?;
        reply["access_token"].as_str().map(str::to_owned).context("the login response has no access_token")
    }

    /// An unmeasured request that must succeed with `expected`; the error names what came back.
    pub async fn call(&self, request: reqwest::RequestBuilder, expected: u16) -> anyhow::Result<Value> {
        let response = request.send().await.map_err(|error| anyhow::anyhow!(error_chain(&error)))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != expected {
            let hint = if status == 429 {
                " (the server rate-limits this load: start it with GAD_RATE_LIMIT_GENERAL and GAD_RATE_LIMIT_LOGIN raised, see docs/LOAD_TESTING_GUIDE.md)"
            } else {
                ""
            };
            bail!("{status} {}{hint}", &text[..text.len().min(300)]);
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The error and its causes on one line ("error sending request: connection refused").
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}

/// A point within about 5 km of [`CENTRE`].
pub fn random_point() -> (f64, f64) {
    (CENTRE.0 + (fastrand::f64() - 0.5) * 0.09, CENTRE.1 + (fastrand::f64() - 0.5) * 0.12)
}

/// A task creation body (title, kind, priority, schedule and place vary).
pub fn task_body(label: &str) -> Value {
    const KINDS: [&str; 5] = ["patrol", "investigation", "surveillance", "intervention", "administrative"];
    const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
    let (lat, lng) = random_point();
    let start = OffsetDateTime::now_utc() + time::Duration::minutes(fastrand::i64(5..600));
    json!({
        "title": format!("Load {label}"),
        "kind": KINDS[fastrand::usize(..KINDS.len())],
        "priority": PRIORITIES[fastrand::usize(..PRIORITIES.len())],
        "scheduled_start": start.format(&Rfc3339).unwrap_or_default(),
        "location": {"lat": lat, "lng": lng},
        "location_description": "load test",
    })
}

/// What a run seeds through the API before it measures.
#[derive(Debug)]
pub struct Seeded {
    pub task_ids: Vec<String>,
    pub officers: usize,
    /// Operator accounts for the WebSocket clients: (email, password).
    pub ws_accounts: Vec<(String, String)>,
}

/// Seeds officers with a location (each grants its own location consent), tasks, and operator
/// accounts for the WebSocket clients; every name carries `run` so runs never collide.
pub async fn seed(
    api: &Api,
    token: &str,
    run: &str,
    officers: usize,
    tasks: usize,
    ws_accounts: usize,
) -> anyhow::Result<Seeded> {
    let password = format!("load-{run}-{}", fastrand::u64(..));
    let create_user = |role: &'static str, index: usize| {
        let digits = fastrand::u64(100_000_000..999_999_999);
        api.call(
            api.http.post(api.url("/api/v1/users")).bearer_auth(token).json(&json!({
                "email": format!("load-{role}-{run}-{index}@load.gad.local"),
                "password": password,
                "first_name": "Load",
                "last_name": "Runner",
                "national_id": format!("L{run}-{}-{index}", &role[..3]),
                "phone": format!("+34{digits}"),
                "role": role,
            })),
            201,
        )
    };
    for index in 0..officers {
        let user =
            create_user("officer", index).await.context("creating an officer's user (the account must be an admin)")?;
        let user_id = user["id"].as_str().context("no user id")?;
        let officer = api
            .call(
                api.http.post(api.url("/api/v1/officers")).bearer_auth(token).json(&json!({
                    "user_id": user_id, "badge_number": format!("L-{run}-{index}"), "unit": "load",
                })),
                201,
            )
            .await
            .context("creating an officer profile")?;
        let officer_id = officer["id"].as_str().context("no officer id")?;
        let officer_token = api
            .login(user["email"].as_str().unwrap_or_default(), &password)
            .await
            .context("logging in as a seeded officer")?;
        api.call(
            api.http.post(api.url(&format!("/api/v1/users/{user_id}/consents"))).bearer_auth(&officer_token).json(
                &json!({
                    "consent_type": "location_tracking", "granted": true, "policy_version": "load-test",
                }),
            ),
            201,
        )
        .await
        .context("granting the officer's location consent")?;
        let (lat, lng) = random_point();
        api.call(
            api.http
                .put(api.url(&format!("/api/v1/officers/{officer_id}/location")))
                .bearer_auth(&officer_token)
                .json(&json!({"lat": lat, "lng": lng, "accuracy_m": 10.0})),
            200,
        )
        .await
        .context("reporting the officer's location")?;
    }
    let mut task_ids = Vec::with_capacity(tasks);
    for index in 0..tasks {
        let task = api
            .call(
                api.http
                    .post(api.url("/api/v1/tasks"))
                    .bearer_auth(token)
                    .json(&task_body(&format!("seed {run} {index}"))),
                201,
            )
            .await
            .context("creating a seed task")?;
        task_ids.push(task["id"].as_str().context("no task id")?.to_owned());
    }
    let mut accounts = Vec::with_capacity(ws_accounts);
    for index in 0..ws_accounts {
        let user = create_user("operator", index).await.context("creating a WebSocket client's operator account")?;
        accounts.push((user["email"].as_str().unwrap_or_default().to_owned(), password.clone()));
    }
    Ok(Seeded { task_ids, officers, ws_accounts: accounts })
}
