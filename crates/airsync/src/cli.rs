//! The command line: one binary, one subcommand per job.

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
}

/// Errors that end a command; each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Database(#[from] airsync_db::Error),
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
    let config = Config::from_env()?;
    telemetry::init(&config.log);
    match cli.command {
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Migrate => runtime()?.block_on(migrate(&config)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

async fn migrate(config: &Config) -> Result<(), CliError> {
    let url = config.require_database_url()?;
    let pool = airsync_db::connect(url.expose(), &config.pool_settings()).await?;
    let report = airsync_db::migrate(&pool).await?;
    pool.close().await;
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
