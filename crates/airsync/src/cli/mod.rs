//! The command line: one binary, one subcommand per job.

mod airtable;
mod dead_letter;
mod demo;
mod inbound;
mod progress;
mod serve;
mod sync_status;
mod users;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::telemetry;

/// Keeps a PostgreSQL-primary coaching backend and its Airtable base in step,
/// both ways.
///
/// Configuration comes from the environment (see .env.example); a bad value
/// stops the start with a message that names the variable.
#[derive(Debug, Parser)]
#[command(name = "airsync", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the database migrations that DATABASE_URL lacks.
    ///
    /// The migrations are embedded in the binary. Running it again changes
    /// nothing; several processes running it at once are serialised by an
    /// advisory lock.
    Migrate,
    /// Check the configuration in the environment and print it, secrets
    /// hidden.
    ///
    /// Exits 1 and names every bad variable when the configuration cannot be
    /// used.
    Config,
    /// Run everything on this machine with sample data: a throwaway
    /// PostgreSQL (or DATABASE_URL), the Airtable emulator at Airtable's
    /// limits, the API and the worker; prints the URLs and a tour.
    Demo(demo::DemoArgs),
    /// Serve the coaching API, health, metrics and the ops page, with the
    /// outbound worker running beside them.
    Serve(serve::ServeArgs),
    /// Make user accounts.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Run the outbound worker: send every PostgreSQL change to Airtable.
    ///
    /// Checks the mapping against the database and the base, then works the
    /// outbox off until SIGTERM or Ctrl-C, when it finishes or hands back
    /// what it holds. Several workers may run: one holds the base's request
    /// lane, the others stand by. With `--metrics-listen` (or
    /// `WORKER_METRICS_LISTEN`) it serves `/metrics` and `/api/health`.
    Worker(worker::WorkerArgs),
    /// Print the coaching API's OpenAPI 3.1 document (JSON), as the server
    /// serves it at /api/openapi.json; needs no configuration.
    Openapi,
    /// Airtable tools: bootstrap a base's tables, run the emulator.
    #[command(subcommand)]
    Airtable(airtable::AirtableCommand),
    /// Inspect the sync between PostgreSQL and Airtable.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Look at, replay and purge outbound events that gave up.
    ///
    /// An event lands here when Airtable refuses its record (a 4xx other than
    /// 429, with Airtable's error kept) or when its retries run out. Fix the
    /// cause, then replay it.
    #[command(subcommand)]
    DeadLetter(dead_letter::DeadLetterCommand),
    /// Compare every mapped table between PostgreSQL and Airtable, field by
    /// field; print a report per table and exit 1 when anything differs.
    ValidateBackfill(inbound::ValidateArgs),
}

#[derive(Debug, Subcommand)]
enum SyncCommand {
    /// Per entity: pending outbound events, the oldest one's age, dead
    /// letters, and the last push to Airtable.
    Status,
    /// Reconcile with Airtable: read every record of every mapped table (or
    /// one), apply what differs, and apply the deletes found, refusing a
    /// mass delete unless forced. Also the backfill of an empty database.
    Full(inbound::FullArgs),
    /// Poll every mapped table once for the records changed since its
    /// watermark.
    Incremental,
}

/// Errors that end a command; each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Database(#[from] airsync_db::Error),
    #[error(transparent)]
    Sync(#[from] airsync_sync::Error),
    #[error(transparent)]
    Mapping(#[from] airsync_sync::mapping::MappingError),
    #[error(transparent)]
    Bootstrap(#[from] airsync_sync::bootstrap::BootstrapError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Usage(String),
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    // clap prints help, version and usage errors itself (exit 0 or 2).
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    if let Command::Openapi = cli.command {
        let document = serde_json::to_string_pretty(&airsync_api::openapi::document())
            .map_err(|err| CliError::Usage(format!("the OpenAPI document: {err}")))?;
        println!("{document}");
        return Ok(());
    }
    let config = Config::from_env()?;
    telemetry::init(&config.log);
    match cli.command {
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Openapi => Ok(()),
        Command::Migrate => runtime()?.block_on(migrate(&config)),
        Command::Sync(SyncCommand::Status) => runtime()?.block_on(sync_status::run(&config)),
        Command::Sync(SyncCommand::Full(args)) => runtime()?.block_on(inbound::full(&config, args)),
        Command::Sync(SyncCommand::Incremental) => {
            runtime()?.block_on(inbound::incremental(&config))
        }
        Command::ValidateBackfill(args) => runtime()?.block_on(inbound::validate(&config, args)),
        Command::DeadLetter(command) => runtime()?.block_on(dead_letter::run(&config, command)),
        Command::Worker(args) => runtime()?.block_on(worker::run(&config, args)),
        Command::Serve(args) => runtime()?.block_on(serve::run(&config, args)),
        Command::Demo(args) => runtime()?.block_on(demo::run(&config, args)),
        Command::Users(command) => runtime()?.block_on(users::run(&config, command)),
        Command::Airtable(command) => runtime()?.block_on(airtable::run(&config, command)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// A pool on `DATABASE_URL`.
async fn connect(config: &Config) -> Result<airsync_db::PgPool, CliError> {
    let url = config.require_database_url()?;
    Ok(airsync_db::connect(url.expose(), &config.pool_settings()).await?)
}

/// How long `serve` and `worker` wait at start for a database that cannot
/// be reached yet.
const DATABASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// A pool on `DATABASE_URL` for a long-running command: waits up to a minute
/// for a server that is down or starting up.
async fn connect_patiently(config: &Config) -> Result<airsync_db::PgPool, CliError> {
    let url = config.require_database_url()?;
    let settings = config.pool_settings();
    Ok(airsync_db::connect_patiently(url.expose(), &settings, DATABASE_PATIENCE).await?)
}

async fn migrate(config: &Config) -> Result<(), CliError> {
    let pool = connect(config).await?;
    let report = airsync_db::migrate(&pool).await?;
    pool.close().await;
    for name in &report.reworded {
        println!("accepted the reworded comments of {name}");
    }
    if report.applied.is_empty() {
        println!("database is up to date ({} migrations)", report.total);
    } else {
        for name in &report.applied {
            println!("applied {name}");
        }
        println!(
            "applied {} migrations; the database has {}",
            report.applied.len(),
            report.total
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
