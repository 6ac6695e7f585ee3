//! `TestApp::spawn()`: the real application on a random port, with its own database (cloned from
//! the migrated template) and its own Redis key prefix, plus typed request helpers.

use std::time::Duration;

use gad_app::config::{Environment, Settings};
use gad_app::startup::{Application, StopHandle};
use gad_test_support::{TestDatabase, TestRedis};
use reqwest::StatusCode;
use serde_json::Value;

/// An address where nothing listens: connections are refused at once.
pub const REFUSED_POSTGRES: &str = "postgres://postgres@127.0.0.1:1/gad";
pub const REFUSED_REDIS: &str = "redis://127.0.0.1:1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Migrated,
    /// Exists, but `gad migrate` never ran.
    Empty,
    Unreachable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redis {
    Isolated,
    /// `REDIS_URL` unset: single-instance mode.
    Absent,
    Unreachable,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub database: Database,
    pub redis: Redis,
    pub separate_metrics_listener: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { database: Database::Migrated, redis: Redis::Isolated, separate_metrics_listener: false }
    }
}

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub metrics_address: Option<String>,
    pub database: Option<TestDatabase>,
    _redis: Option<TestRedis>,
    client: reqwest::Client,
    stop: StopHandle,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        let mut settings = Settings::built_in(Environment::Test).unwrap();
        if std::env::var_os("TEST_LOG").is_some() {
            settings.log.filter = "info".into();
            gad_app::telemetry::init_logging(&settings.log, settings.environment).unwrap();
        }
        settings.http.bind = "127.0.0.1:0".into();
        settings.http.workers = Some(1);
        settings.http.shutdown_timeout_s = 1;
        settings.database.acquire_timeout_ms = 1000;
        settings.database.connect_timeout_ms = 1000;
        settings.health.probe_timeout_ms = 1500;
        settings.metrics.bind = options.separate_metrics_listener.then(|| "127.0.0.1:0".into());

        let database = match options.database {
            Database::Migrated => Some(TestDatabase::migrated().await),
            Database::Empty => Some(TestDatabase::empty().await),
            Database::Unreachable => None,
        };
        settings.database.url = database.as_ref().map_or(REFUSED_POSTGRES.into(), |db| db.url().to_owned());
        let redis = (options.redis == Redis::Isolated).then(TestRedis::new);
        settings.redis.url = match options.redis {
            Redis::Isolated => redis.as_ref().map(|redis| redis.url().to_owned()),
            Redis::Absent => None,
            Redis::Unreachable => Some(REFUSED_REDIS.into()),
        };
        if let Some(redis) = &redis {
            settings.redis.key_prefix = redis.prefix().to_owned();
        }
        let settings = settings.validated().unwrap();

        let application = Application::build(&settings).await.unwrap();
        let address = format!("http://127.0.0.1:{}", application.port());
        let metrics_address = application.metrics_port().map(|port| format!("http://127.0.0.1:{port}"));
        let stop = application.stop_handle();
        tokio::spawn(application.run_until_stopped());
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        Self { address, metrics_address, database, _redis: redis, client, stop }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.unwrap()
    }

    /// GET returning the status and the JSON body.
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub async fn get_text(&self, base: &str, path: &str) -> (StatusCode, String) {
        let response = self.client.get(format!("{base}{path}")).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Requested now; the servers drain on their own threads.
        drop(self.stop.stop());
    }
}
