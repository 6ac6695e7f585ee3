//! `TestApp::spawn()`: the real application on a random port, with its own database (cloned from
//! the migrated template) and its own Redis key prefix, plus typed request helpers.

use std::time::Duration;

use gad_app::config::{Environment, Settings};
use gad_app::startup::{Application, StopHandle};
use gad_domain::users::{CreateUser, EmailAddress, Password, PersonName, Role, UserId, create_user};
use gad_http::auth::Argon2Hasher;
use gad_pg::PgUserStore;
use gad_test_support::{TestDatabase, TestRedis};
use reqwest::StatusCode;
use serde_json::Value;

/// An address where nothing listens: connections are refused at once.
pub const REFUSED_POSTGRES: &str = "postgres://postgres@127.0.0.1:1/gad";
pub const REFUSED_REDIS: &str = "redis://127.0.0.1:1";

/// An RFC 3339 instant (UTC, whole seconds) `hours` away from now: test data is built relative to
/// the clock, never on calendar dates, so the suite passes whatever day it runs.
pub fn hours_from_now(hours: i64) -> String {
    let now = time::OffsetDateTime::now_utc();
    let at = now - time::Duration::nanoseconds(i64::from(now.nanosecond())) + time::Duration::hours(hours);
    at.format(&time::format_description::well_known::Rfc3339).expect("a UTC instant formats as RFC 3339")
}

/// The body of a successful login or refresh.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
}

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
    /// Requests per minute; tests that are not about limits get room to spare.
    pub general_per_minute: u32,
    pub login_per_minute: u32,
    pub trusted_proxies: &'static [&'static str],
}

impl Default for Options {
    fn default() -> Self {
        Self {
            database: Database::Migrated,
            redis: Redis::Isolated,
            separate_metrics_listener: false,
            general_per_minute: 100_000,
            login_per_minute: 10_000,
            trusted_proxies: &[],
        }
    }
}

/// Signs the tokens of every test instance, so that peers accept each other's tokens.
pub const JWT_SECRET: &str = "test-signing-key-that-is-long-enough-for-hs256";
/// A password that passes the rules, for users created by tests.
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub metrics_address: Option<String>,
    pub database: Option<TestDatabase>,
    _redis: Option<TestRedis>,
    settings: Settings,
    client: reqwest::Client,
    stop: StopHandle,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        Self::spawn_configured(options, |_| {}).await
    }

    /// Like `spawn_with`, with a last say on the settings (real-time limits, timeouts, …).
    pub async fn spawn_configured(options: Options, configure: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = Settings::built_in(Environment::Test).unwrap();
        if std::env::var_os("TEST_LOG").is_some() {
            settings.log.filter = "info".into();
            gad_app::telemetry::init_logging(&settings.log, settings.environment).unwrap();
        }
        settings.http.bind = "127.0.0.1:0".into();
        settings.http.workers = Some(1);
        settings.http.shutdown_timeout = Duration::from_secs(1);
        settings.database.acquire_timeout = Duration::from_millis(1000);
        settings.database.connect_timeout = Duration::from_millis(1000);
        settings.health.probe_timeout = Duration::from_millis(1500);
        settings.metrics.bind = options.separate_metrics_listener.then(|| "127.0.0.1:0".into());
        settings.rate_limit.general_per_minute = options.general_per_minute;
        settings.rate_limit.login_per_minute = options.login_per_minute;
        settings.rate_limit.trusted_proxies = options.trusted_proxies.iter().map(|proxy| (*proxy).to_owned()).collect();

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
        settings.auth.jwt_secret = Some(JWT_SECRET.to_owned().into());
        configure(&mut settings);
        Self::start(settings.validated().unwrap(), database, redis).await
    }

    /// A second instance on the same database and Redis namespace (a multi-instance deployment).
    pub async fn spawn_peer(&self) -> Self {
        Self::start(self.settings.clone(), None, None).await
    }

    async fn start(settings: Settings, database: Option<TestDatabase>, redis: Option<TestRedis>) -> Self {
        let application = Application::build(&settings).await.unwrap();
        let address = format!("http://127.0.0.1:{}", application.port());
        let metrics_address = application.metrics_port().map(|port| format!("http://127.0.0.1:{port}"));
        let stop = application.stop_handle();
        tokio::spawn(application.run_until_stopped());
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).user_agent("gad-tests").build().unwrap();
        Self { address, metrics_address, database, _redis: redis, settings, client, stop }
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

    /// `ws://…/ws/connect` of this instance.
    pub fn ws_url(&self) -> String {
        format!("{}/ws/connect", self.address.replacen("http://", "ws://", 1))
    }

    pub fn database_url(&self) -> &str {
        &self.settings.database.url
    }

    /// Creates a user directly through the domain (as `gad create-admin` does).
    pub async fn create_user(&self, email: &str, role: Role) -> UserId {
        let pool = gad_app::startup::pg_pool(&self.settings).unwrap();
        let request = CreateUser {
            email: EmailAddress::parse(email).unwrap(),
            first_name: PersonName::parse("Test").unwrap(),
            last_name: PersonName::parse("User").unwrap(),
            national_id: None,
            phone: None,
            role,
            password: Password::parse(PASSWORD.into()).unwrap(),
        };
        create_user(&PgUserStore::new(pool), &Argon2Hasher::owasp(), None, request, Default::default())
            .await
            .unwrap()
            .id
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.address)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, format!("{}{path}", self.address)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).bearer_auth(token).send().await.unwrap()
    }

    /// Logs in and returns the token pair; panics unless the login succeeds.
    pub async fn login(&self, email: &str) -> Tokens {
        let response = self
            .post_json("/api/v1/auth/login", &serde_json::json!({ "email": email, "password": PASSWORD }), None)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// A direct connection to this instance's database, for arranging and inspecting.
    pub async fn db(&self) -> diesel_async::AsyncPgConnection {
        use diesel_async::AsyncConnection;
        diesel_async::AsyncPgConnection::establish(self.database_url()).await.unwrap()
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
