//! The blueprint's HTTP scenario: virtual users that each log in and then loop over a realistic
//! mix — own profile, task list and a task's detail, nearest officers, statistics, and every
//! other iteration a task created and taken through start and complete — with a think time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use crate::api::{Api, random_point, task_body};
use crate::profile::{Stage, target_at};
use crate::stats::HttpRecorder;

/// What every virtual user shares.
#[derive(Debug)]
pub struct Shared {
    pub api: Api,
    pub email: String,
    pub password: String,
    pub stages: Vec<Stage>,
    pub think: Duration,
    /// A virtual user logs in again after this many iterations (a session that ends).
    pub relogin_every: u32,
    pub task_ids: Vec<String>,
    pub recorder: HttpRecorder,
    /// Ids of the tasks created during the run: every WebSocket subscriber must see each.
    pub created: Mutex<Vec<String>>,
}

/// Virtual user `index` runs while the stages want more than `index` users, from `started`
/// until the stages end.
pub async fn virtual_user(shared: Arc<Shared>, index: u32, started: Instant) {
    let end = started + crate::profile::total(&shared.stages);
    let mut token: Option<String> = None;
    let mut iteration = 0u32;
    while Instant::now() < end {
        if target_at(&shared.stages, started.elapsed()) <= index {
            // Idle: this user is not part of the current stage (a real user that left).
            token = None;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if token.is_none() || iteration.is_multiple_of(shared.relogin_every) {
            token = login(&shared).await;
        }
        if let Some(token) = &token {
            iteration_of(&shared, token, iteration).await;
        } else {
            // A failed login was recorded; wait before the next attempt as a user would.
            tokio::time::sleep(shared.think).await;
        }
        iteration += 1;
        let jitter = 0.5 + fastrand::f64();
        let pause = shared.think.mul_f64(jitter).min(end.saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
    }
}

async fn login(shared: &Shared) -> Option<String> {
    let api = &shared.api;
    let request =
        api.http.post(api.url("/api/v1/auth/login")).json(&json!({"email": shared.email, "password": shared.password}));
    let reply = api.timed(&shared.recorder, "login", request, 200).await?;
    reply.body["access_token"].as_str().map(str::to_owned)
}

async fn iteration_of(shared: &Shared, token: &str, iteration: u32) {
    let (api, recorder) = (&shared.api, &shared.recorder);
    api.timed(recorder, "own_profile", api.http.get(api.url("/api/v1/auth/me")).bearer_auth(token), 200).await;
    api.timed(recorder, "task_list", api.http.get(api.url("/api/v1/tasks?limit=20")).bearer_auth(token), 200).await;
    if !shared.task_ids.is_empty() {
        let id = &shared.task_ids[fastrand::usize(..shared.task_ids.len())];
        api.timed(
            recorder,
            "task_detail",
            api.http.get(api.url(&format!("/api/v1/tasks/{id}"))).bearer_auth(token),
            200,
        )
        .await;
    }
    let (lat, lng) = random_point();
    let nearest = api.url(&format!("/api/v1/officers/nearest?lat={lat:.5}&lng={lng:.5}&limit=5"));
    api.timed(recorder, "nearest_officers", api.http.get(nearest).bearer_auth(token), 200).await;
    api.timed(recorder, "statistics", api.http.get(api.url("/api/v1/stats/overview")).bearer_auth(token), 200).await;
    if iteration.is_multiple_of(2) {
        create_and_work(shared, token, iteration).await;
    }
}

/// Creates a task, then starts and completes it: three writes and three events.
async fn create_and_work(shared: &Shared, token: &str, iteration: u32) {
    let (api, recorder) = (&shared.api, &shared.recorder);
    let body = task_body(&format!("vu task {iteration}"));
    let Some(reply) = api
        .timed(recorder, "task_create", api.http.post(api.url("/api/v1/tasks")).bearer_auth(token).json(&body), 201)
        .await
    else {
        return;
    };
    let Some(id) = reply.body["id"].as_str().map(str::to_owned) else { return };
    shared.created.lock().await.push(id.clone());
    let transitions = api.url(&format!("/api/v1/tasks/{id}/transitions"));
    for action in ["start", "complete"] {
        let request = api.http.post(&transitions).bearer_auth(token).json(&json!({"action": action}));
        if api.timed(recorder, "task_transition", request, 200).await.is_none() {
            return;
        }
    }
}
