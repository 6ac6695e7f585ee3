//! `gad`: the one binary of GAD. See `gad --help`.

use std::process::ExitCode;

/// mimalloc hands freed memory back to the system; glibc's allocator keeps the 19 MiB blocks of
/// password hashing in per-thread arenas for good (docs/BASELINE_PERFORMANCE.md, "Login bursts").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use gad_app::commands;
use gad_domain::users::Role;

#[derive(Debug, Parser)]
#[command(name = "gad", version, about = "GAD: dispatch of field work")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (and the metrics listener when GAD_METRICS_BIND is set).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Create a user with full rights (password from GAD_ADMIN_PASSWORD, else standard input).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "admin", value_parser = parse_role)]
        role: Role,
        #[arg(long, default_value = "System")]
        first_name: String,
        #[arg(long, default_value = "Administrator")]
        last_name: String,
    },
    /// Delete every row past its retention period, in small batches.
    Purge {
        /// Only print, per table, how many rows would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
}

fn parse_role(raw: &str) -> Result<Role, String> {
    raw.parse().map_err(|error: gad_domain::users::InvalidValue| error.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve => commands::serve().await,
        Command::Migrate => commands::migrate().await,
        Command::CreateAdmin { email, role, first_name, last_name } => {
            commands::create_admin(&email, role, &first_name, &last_name).await
        }
        Command::Purge { dry_run } => commands::purge(dry_run).await,
        Command::Openapi => commands::openapi(),
        Command::CheckConfig => commands::check_config(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gad: {error:#}");
            ExitCode::FAILURE
        }
    }
}
