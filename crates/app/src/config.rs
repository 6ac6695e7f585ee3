//! Typed, layered configuration (SPEC §8).
//!
//! Layers, lowest first: the built-in `config/default.toml`, `<dir>/default.toml` and
//! `<dir>/<env>.toml` from the config directory (`GAD_CONFIG_DIR`, default `config`), the
//! `GAD__SECTION__KEY` environment variables, then the conventional variables (`DATABASE_URL`,
//! `REDIS_URL`, `GAD_BIND`, …), which always win. Secrets are read only from the environment
//! (or from a file named by `<VAR>_FILE`); a secret in a config file is refused as an unknown key.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use gad_domain::consent::retention::RetentionPolicy;
use gad_domain::settings::Secret;
use gad_http::auth::AuthSettings;
use gad_http::rate_limit::RateLimitSettings;
use gad_http::{HealthSettings, HttpSettings, MetricsSettings};
use gad_pg::PgSettings;
use gad_redis::RedisSettings;
use gad_telegram::TelegramSettings;
use gad_ws::WsSettings;
use serde::{Deserialize, Serialize};

const BUILT_IN_DEFAULTS: &str = include_str!("../../../config/default.toml");

/// The environment files ship inside the binary too, so that a deployment without a config
/// directory still gets its environment's settings (bind address, HSTS, log format).
fn built_in_environment_file(environment: Environment) -> &'static str {
    match environment {
        Environment::Local => include_str!("../../../config/local.toml"),
        Environment::Test => include_str!("../../../config/test.toml"),
        Environment::Staging => include_str!("../../../config/staging.toml"),
        Environment::Production => include_str!("../../../config/production.toml"),
    }
}

fn built_in_layers(environment: Environment) -> Figment {
    Figment::from(Toml::string(BUILT_IN_DEFAULTS)).merge(Toml::string(built_in_environment_file(environment)))
}

/// Which deployment this is; decides the config file and how strict validation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Local,
    Test,
    Staging,
    Production,
}

impl Environment {
    fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "local" | "" => Ok(Self::Local),
            "test" => Ok(Self::Test),
            "staging" => Ok(Self::Staging),
            "production" | "prod" => Ok(Self::Production),
            other => {
                anyhow::bail!("GAD_ENV must be local, test, staging or production, not {other:?}")
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Test => "test",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }

    /// Staging and production face real users and data.
    pub fn is_deployed(self) -> bool {
        matches!(self, Self::Staging | Self::Production)
    }
}

/// The whole configuration: each section is the settings type of the adapter that uses it, so
/// every setting is defined once, where it takes effect.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(skip_deserializing, default = "default_environment")]
    pub environment: Environment,
    pub http: HttpSettings,
    pub metrics: MetricsSettings,
    pub database: PgSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub telegram: TelegramSettings,
    pub health: HealthSettings,
    pub log: LogConfig,
    pub ws: WsSettings,
    pub retention: RetentionConfig,
}

fn default_environment() -> Environment {
    Environment::Local
}

/// Human-readable lines locally, JSON lines in staging and production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter (`RUST_LOG` wins).
    pub filter: String,
    pub format: Option<LogFormat>,
}

impl LogConfig {
    pub fn effective_format(&self, environment: Environment) -> LogFormat {
        match (self.format, environment.is_deployed()) {
            (_, true) => LogFormat::Json,
            (Some(format), false) => format,
            (None, false) => LogFormat::Pretty,
        }
    }
}

/// The conventional variables of SPEC §8 and the key each one sets.
const CONVENTIONAL: [(&str, &str); 10] = [
    ("DATABASE_URL", "database.url"),
    ("REDIS_URL", "redis.url"),
    ("GAD_BIND", "http.bind"),
    ("GAD_METRICS_BIND", "metrics.bind"),
    ("GAD_RATE_LIMIT_GENERAL", "rate_limit.general_per_minute"),
    ("GAD_RATE_LIMIT_LOGIN", "rate_limit.login_per_minute"),
    ("TELEGRAM_API_URL", "telegram.api_url"),
    ("TELEGRAM_MODE", "telegram.mode"),
    ("TELEGRAM_BOT_USERNAME", "telegram.bot_username"),
    ("TELEGRAM_WEBHOOK_URL", "telegram.webhook_url"),
];

/// How long personal and operational records are kept, and how the purge runs
/// (docs/CONFIGURATION.md, docs/GDPR_DATA_MAPPING.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days of officers' location history.
    pub location_history_days: u32,
    /// Days of audit rows.
    pub audit_days: u32,
    /// Days of event log (at least as long as `ws.replay_retention_h`).
    pub event_log_days: u32,
    /// Days a processed Telegram update id is remembered (an unprocessed update: from receipt).
    pub processed_telegram_updates_days: u32,
    /// Days expired credentials and stored idempotent responses are kept after expiry.
    pub expired_credentials_days: u32,
    /// Seconds between runs of the purge in `gad serve`; 0 leaves it to `gad purge`.
    pub purge_interval_s: u64,
    /// Rows deleted per transaction.
    pub purge_batch_size: u32,
}

impl RetentionConfig {
    pub fn policy(&self) -> RetentionPolicy {
        let days = |days: u32| time::Duration::days(i64::from(days));
        RetentionPolicy {
            location_history: days(self.location_history_days),
            audit_events: days(self.audit_days),
            event_log: days(self.event_log_days),
            processed_telegram_updates: days(self.processed_telegram_updates_days),
            expired_credentials: days(self.expired_credentials_days),
        }
    }

    fn problems(&self, ws: &WsSettings) -> Vec<String> {
        let mut problems = Vec::new();
        let periods = [
            self.location_history_days,
            self.audit_days,
            self.event_log_days,
            self.processed_telegram_updates_days,
            self.expired_credentials_days,
        ];
        if periods.contains(&0) {
            problems.push("retention periods must be at least 1 day".into());
        }
        if u64::from(self.event_log_days) * 24 * 3600 < ws.replay_retention.as_secs() {
            problems.push("retention.event_log_days must cover ws.replay_retention_h".into());
        }
        if !(1..=100_000).contains(&self.purge_batch_size) {
            problems.push("retention.purge_batch_size must be 1..=100000".into());
        }
        problems
    }
}

impl Settings {
    /// Loads and validates the configuration of this process from every layer.
    pub fn load() -> anyhow::Result<Self> {
        let environment = Environment::parse(&var("GAD_ENV").unwrap_or_default())?;
        let dir = PathBuf::from(var("GAD_CONFIG_DIR").unwrap_or_else(|| "config".into()));
        let mut figment = built_in_layers(environment);
        for file in [dir.join("default.toml"), dir.join(format!("{}.toml", environment.as_str()))] {
            if Path::new(&file).is_file() {
                figment = figment.merge(Toml::file(file));
            }
        }
        figment = figment.merge(Env::prefixed("GAD__").split("__"));
        for (variable, key) in CONVENTIONAL {
            if let Some(value) = var(variable).filter(|value| !value.trim().is_empty()) {
                figment = figment.merge((key, conventional_value(key, &value)?));
            }
        }
        let mut settings: Settings = figment.extract()?;
        settings.environment = environment;
        settings.redis.url = settings.redis.url.filter(|url| !url.trim().is_empty());
        settings.auth.jwt_secret = secret("GAD_JWT_SECRET")?;
        settings.metrics.token = secret("GAD_METRICS_TOKEN")?;
        settings.telegram.bot_token = secret("TELEGRAM_BOT_TOKEN")?;
        settings.telegram.webhook_secret = secret("TELEGRAM_WEBHOOK_SECRET")?;
        if let Some(filter) = var("RUST_LOG").filter(|filter| !filter.trim().is_empty()) {
            settings.log.filter = filter;
        }
        settings.validated()
    }

    /// The built-in layers alone, ignoring files and environment (what tests start from).
    pub fn built_in(environment: Environment) -> anyhow::Result<Self> {
        let mut settings: Settings = built_in_layers(environment).extract()?;
        settings.environment = environment;
        Ok(settings)
    }

    /// These settings, or every problem with them at once.
    pub fn validated(self) -> anyhow::Result<Self> {
        let problems = self.problems();
        if !problems.is_empty() {
            anyhow::bail!("invalid configuration:\n  - {}", problems.join("\n  - "));
        }
        Ok(self)
    }

    /// Everything wrong with these settings; deployed environments refuse unsafe choices.
    pub fn problems(&self) -> Vec<String> {
        let deployed = self.environment.is_deployed();
        let mut problems = self.http.problems(deployed, self.environment.as_str());
        if let Some(bind) = &self.metrics.bind
            && !gad_http::is_socket_address(bind)
        {
            problems.push(format!("GAD_METRICS_BIND must be host:port, not {bind:?}"));
        }
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            problems.push(format!("log filter {:?} is invalid: {error}", self.log.filter));
        }
        problems.extend(self.database.problems());
        problems.extend(self.redis.problems());
        problems.extend(self.rate_limit.problems());
        problems.extend(self.ws.problems());
        problems.extend(self.retention.problems(&self.ws));
        problems.extend(self.auth.problems(deployed));
        problems.extend(self.telegram.problems());
        if deployed && self.database.url == default_database_url() {
            problems.push("DATABASE_URL must be set explicitly".into());
        }
        if self.environment == Environment::Production && self.metrics_are_public() {
            problems.push(
                "/metrics would be public on the API listener: set GAD_METRICS_BIND (a private listener) \
                 or GAD_METRICS_TOKEN"
                    .into(),
            );
        }
        problems
    }

    /// Neither a private metrics listener nor a token: anyone reaching the API reads `/metrics`.
    fn metrics_are_public(&self) -> bool {
        self.metrics.bind.is_none() && self.metrics.token.is_none()
    }

    /// Choices that are allowed but worth an operator's attention; logged at start-up.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if self.environment == Environment::Staging && self.metrics_are_public() {
            warnings.push("/metrics is served on the API listener without a token: set GAD_METRICS_BIND or GAD_METRICS_TOKEN, or block it at the proxy");
        }
        warnings
    }
}

fn default_database_url() -> String {
    Settings::built_in(Environment::Local).map(|settings| settings.database.url).unwrap_or_default()
}

/// Numbers stay numbers so that typed fields parse; everything else is a string.
fn conventional_value(key: &str, raw: &str) -> anyhow::Result<figment::value::Value> {
    if key.starts_with("rate_limit.") {
        let number: u32 =
            raw.trim().parse().map_err(|_| anyhow::anyhow!("{key} must be a whole number, not {raw:?}"))?;
        return Ok(number.into());
    }
    Ok(raw.trim().to_owned().into())
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A secret from `NAME`, or from the file named by `NAME_FILE` (container secrets).
fn secret(name: &str) -> anyhow::Result<Option<Secret>> {
    if let Some(value) = var(name).filter(|value| !value.is_empty()) {
        return Ok(Some(Secret::from(value)));
    }
    match var(&format!("{name}_FILE")) {
        Some(path) => {
            let value = std::fs::read_to_string(&path)
                .map_err(|error| anyhow::anyhow!("cannot read {name}_FILE {path:?}: {error}"))?;
            Ok(Some(Secret::from(value.trim_end().to_owned())))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
#[expect(clippy::result_large_err, reason = "figment's Jail works with figment::Error")]
mod tests {
    use super::*;
    use figment::Jail;

    fn load() -> Result<Settings, figment::Error> {
        Settings::load().map_err(|error| figment::Error::from(format!("{error:#}")))
    }

    #[test]
    fn layers_apply_in_order_files_then_prefixed_env_then_conventional_variables() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_dir("config")?;
            jail.create_file("config/default.toml", "[database]\nmax_connections = 3\n[http]\nworkers = 1")?;
            jail.create_file("config/test.toml", "[database]\nmax_connections = 4\n[http]\nbody_limit_bytes = 10")?;
            jail.set_env("GAD_ENV", "test");
            jail.set_env("GAD__HTTP__BODY_LIMIT_BYTES", "20");
            jail.set_env("GAD__HTTP__BIND", "127.0.0.1:9000");
            jail.set_env("GAD_BIND", "127.0.0.1:9001");
            jail.set_env("GAD_RATE_LIMIT_LOGIN", "7");
            let settings = load()?;
            assert_eq!(settings.environment, Environment::Test);
            assert_eq!(settings.http.workers, Some(1), "default.toml from the config dir");
            assert_eq!(settings.database.max_connections, 4, "<env>.toml beats default.toml");
            assert_eq!(settings.http.body_limit, 20, "GAD__ beats files");
            assert_eq!(settings.http.bind, "127.0.0.1:9001", "GAD_BIND beats GAD__HTTP__BIND");
            assert_eq!(settings.rate_limit.login_per_minute, 7);
            assert_eq!(settings.rate_limit.general_per_minute, 100, "built-in default");
            Ok(())
        });
    }

    #[test]
    fn empty_redis_url_means_single_instance_mode() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("REDIS_URL", "");
            assert!(load()?.redis.url.is_none());
            jail.set_env("REDIS_URL", "redis://127.0.0.1:6379");
            assert_eq!(load()?.redis.url.as_deref(), Some("redis://127.0.0.1:6379"));
            Ok(())
        });
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file_and_never_from_config_files() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("jwt.txt", "s3cret-from-a-file-that-is-long-enough\n")?;
            jail.set_env("GAD_JWT_SECRET_FILE", "jwt.txt");
            let settings = load()?;
            let secret = settings.auth.jwt_secret.as_ref().map(|s| s.expose().to_owned());
            assert_eq!(secret.as_deref(), Some("s3cret-from-a-file-that-is-long-enough"));

            jail.create_dir("config")?;
            jail.create_file("config/local.toml", "[auth]\njwt_secret = \"in-a-file\"")?;
            let error = Settings::load().expect_err("a secret in a config file is refused");
            assert!(format!("{error:#}").contains("jwt_secret"), "{error:#}");
            Ok(())
        });
    }

    #[test]
    fn showing_the_settings_never_reveals_secrets() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("GAD_JWT_SECRET", "super-secret-signing-key-0123456789");
            jail.set_env("TELEGRAM_BOT_TOKEN", "123:bot-token");
            jail.set_env("DATABASE_URL", "postgres://gad:db-password@db/gad");
            let shown = serde_json::to_string(&load()?).map_err(|e| e.to_string())?;
            for secret in ["super-secret-signing-key", "bot-token", "db-password"] {
                assert!(!shown.contains(secret), "{secret} leaked: {shown}");
            }
            assert!(shown.contains("postgres://gad:***@db/gad"));
            Ok(())
        });
    }

    #[test]
    fn production_refuses_unsafe_settings() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("GAD_ENV", "production");
            let error = format!("{:#}", Settings::load().expect_err("unsafe production config"));
            for expected in ["GAD_JWT_SECRET is required", "DATABASE_URL must be set"] {
                assert!(error.contains(expected), "missing {expected:?} in {error}");
            }
            jail.set_env("GAD_JWT_SECRET", "too-short");
            jail.set_env("DATABASE_URL", "postgres://gad@db/gad");
            let error = format!("{:#}", Settings::load().expect_err("public metrics"));
            assert!(error.contains("/metrics would be public"), "{error}");
            jail.set_env("GAD_METRICS_TOKEN", "a-metrics-token-for-the-scraper");
            let error = format!("{:#}", Settings::load().expect_err("short secret"));
            assert!(!error.contains("/metrics"), "a token keeps metrics private: {error}");
            jail.set_env("GAD_METRICS_TOKEN", "");
            jail.set_env("GAD_METRICS_BIND", "127.0.0.1:9100");
            let error = format!("{:#}", Settings::load().expect_err("short secret"));
            assert!(error.contains("at least 32 bytes"), "{error}");
            jail.set_env("GAD_JWT_SECRET", "a-production-signing-key-of-40-bytes-xxxx");
            jail.set_env("GAD__HTTP__CORS_ALLOWED_ORIGINS", "[\"http://ops.example\"]");
            let error = format!("{:#}", Settings::load().expect_err("plain-http origin"));
            assert!(error.contains("must use https"), "{error}");
            jail.set_env("GAD__HTTP__CORS_ALLOWED_ORIGINS", "[\"https://ops.example\"]");
            let settings = load()?;
            assert_eq!(settings.log.effective_format(settings.environment), LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    fn wildcard_cors_and_bad_values_are_refused_everywhere() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("GAD__HTTP__CORS_ALLOWED_ORIGINS", "[\"*\", \"https://ops.example/path\"]");
            jail.set_env("GAD_BIND", "not an address");
            jail.set_env("TELEGRAM_BOT_TOKEN", "123:abc");
            jail.set_env("TELEGRAM_MODE", "webhook");
            let error = format!("{:#}", Settings::load().expect_err("invalid"));
            for expected in ["\"*\" is refused", "GAD_BIND must be host:port", "requires TELEGRAM_WEBHOOK_SECRET"] {
                assert!(error.contains(expected), "missing {expected:?} in {error}");
            }
            jail.set_env("RUST_LOG", "");
            jail.set_env("GAD__HTTP__CORS_ALLOWED_ORIGINS", "[]");
            jail.set_env("TELEGRAM_MODE", "polling");
            jail.set_env("GAD_BIND", "127.0.0.1:8080");
            assert!(Settings::load().is_ok(), "valid once the problems are fixed");
            jail.set_env("GAD_ENV", "qa");
            assert!(Settings::load().is_err(), "unknown environment");
            jail.set_env("GAD_ENV", "local");
            jail.set_env("GAD_RATE_LIMIT_GENERAL", "many");
            assert!(Settings::load().is_err(), "non-numeric limit");
            Ok(())
        });
    }

    #[test]
    fn telegram_mode_follows_the_token() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            assert_eq!(load()?.telegram.effective_mode(), gad_telegram::TelegramMode::Off);
            jail.set_env("TELEGRAM_BOT_TOKEN", "123:abc");
            assert_eq!(load()?.telegram.effective_mode(), gad_telegram::TelegramMode::Polling);
            jail.set_env("TELEGRAM_MODE", "off");
            assert_eq!(load()?.telegram.effective_mode(), gad_telegram::TelegramMode::Off);
            Ok(())
        });
    }
}
