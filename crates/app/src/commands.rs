//! The subcommands of `gad`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use gad_domain::audit::RequestContext;
use gad_domain::consent::retention::{PurgeMode, PurgeOutcome, RetentionStore};
use gad_domain::users::{CreateUser, CreateUserError, EmailAddress, Password, PersonName, Role, create_user};
use gad_pg::{PgRetentionStore, PgUserStore};

use crate::config::Settings;
use gad_http::auth::Argon2Hasher;

use crate::startup::{Application, pg_pool, shutdown_signal};
use crate::telemetry::init_logging;

fn load_settings() -> anyhow::Result<Settings> {
    let settings = Settings::load()?;
    init_logging(&settings.log, settings.environment)?;
    Ok(settings)
}

/// `gad serve`: runs until SIGTERM/SIGINT, then stops accepting, lets in-flight requests finish
/// (up to `http.shutdown_timeout_s`), stops the background jobs and exits.
pub async fn serve() -> anyhow::Result<()> {
    let settings = load_settings()?;
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let application = Application::build(&settings).await?;
    let stop = application.stop_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; draining in-flight requests");
        stop.stop().await;
    });
    application.run_until_stopped().await?;
    tracing::info!("shutdown complete");
    Ok(())
}

/// `gad migrate`: applies pending migrations (serialised across concurrent runs).
pub async fn migrate() -> anyhow::Result<()> {
    let settings = load_settings()?;
    let applied = gad_pg::migrations::run_pending(&settings.database.url).await?;
    if applied.is_empty() {
        eprintln!("database schema is up to date");
    }
    for version in applied {
        eprintln!("applied migration {version}");
    }
    Ok(())
}

/// `gad create-admin`: creates the first administrator (or another privileged user).
pub async fn create_admin(email: &str, role: Role, first_name: &str, last_name: &str) -> anyhow::Result<()> {
    let settings = load_settings()?;
    let email = EmailAddress::parse(email).map_err(|error| anyhow::anyhow!("--email {error}"))?;
    let first_name = PersonName::parse(first_name).map_err(|error| anyhow::anyhow!("--first-name {error}"))?;
    let last_name = PersonName::parse(last_name).map_err(|error| anyhow::anyhow!("--last-name {error}"))?;
    let password = Password::parse(read_admin_password()?).map_err(|error| anyhow::anyhow!("password {error}"))?;
    let pool = pg_pool(&settings)?;
    let request = CreateUser { email, first_name, last_name, national_id: None, phone: None, role, password };
    let context = RequestContext { user_agent: Some("gad create-admin".into()), ..RequestContext::default() };
    match create_user(&PgUserStore::new(pool), &Argon2Hasher::owasp(), None, request, context).await {
        Ok(user) => {
            eprintln!("created {role} {} with id {}", user.email, user.id);
            Ok(())
        }
        Err(CreateUserError::Duplicate(field)) => anyhow::bail!("a user with this {field} already exists"),
        Err(CreateUserError::Forbidden) => anyhow::bail!("not allowed"),
        Err(CreateUserError::Store(error)) => Err(error).context("cannot store the user"),
    }
}

/// The password from `GAD_ADMIN_PASSWORD`, else the first line of standard input.
fn read_admin_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("GAD_ADMIN_PASSWORD")
        && !password.is_empty()
    {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (12..=128 characters): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password given (set GAD_ADMIN_PASSWORD or pipe it in)");
    Ok(password)
}

/// `gad purge [--dry-run]`: deletes every row past its retention (`[retention]` settings) and
/// prints how many per table; with `--dry-run` only counts them. Refuses, changing nothing,
/// while another instance is purging.
#[expect(clippy::print_stdout, reason = "the per-table counts are this command's output")]
pub async fn purge(dry_run: bool) -> anyhow::Result<()> {
    let settings = load_settings()?;
    let pool = pg_pool(&settings)?;
    let store = PgRetentionStore::new(pool, settings.retention.purge_batch_size);
    let mode = if dry_run { PurgeMode::DryRun } else { PurgeMode::Delete };
    let outcome = store.purge(&settings.retention.policy(), mode).await.context("cannot purge")?;
    let PurgeOutcome::Done(tables) = outcome else {
        anyhow::bail!("another instance is purging right now; nothing was deleted (try again later)");
    };
    let verb = if dry_run { "would delete" } else { "deleted" };
    for table in &tables {
        println!("{:<28} {verb} {} rows", table.table, table.rows);
    }
    let total: u64 = tables.iter().map(|table| table.rows).sum();
    eprintln!("{verb} {total} rows past their retention");
    Ok(())
}

/// `gad openapi`: prints the OpenAPI document served at `/api/v1/openapi.json`.
#[expect(clippy::print_stdout, reason = "the document is this command's output")]
pub fn openapi() -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&gad_http::openapi::document())?);
    Ok(())
}

/// `gad check-config`: loads and validates the configuration, then prints it, secrets redacted.
#[expect(clippy::print_stdout, reason = "the configuration is this command's output")]
pub fn check_config() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    println!("{}", serde_json::to_string_pretty(&settings)?);
    eprintln!("configuration is valid for {}", settings.environment.as_str());
    Ok(())
}
