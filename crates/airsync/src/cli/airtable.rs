//! `airsync airtable ...`: the emulator, and creating a base's tables.

use clap::Subcommand;

use airsync_emulator::cli::EmulatorArgs;
use airsync_sync::bootstrap::bootstrap;

use super::CliError;
use crate::config::Config;

/// `airsync airtable ...`
#[derive(Debug, Subcommand)]
pub enum AirtableCommand {
    /// Create in the base every table and field the mapping needs and the
    /// base lacks; running it again changes nothing.
    ///
    /// Uses AIRTABLE_API_URL, AIRTABLE_TOKEN, AIRTABLE_BASE_ID and the
    /// mapping (SYNC_MAPPING_PATH or the built-in one). Afterwards the base
    /// is checked against the mapping, every mismatch reported.
    Bootstrap,
    /// Run the Airtable emulator: Airtable's Web API, locally, with its
    /// limits, for tests, benchmarks and the demo.
    Emulator(EmulatorArgs),
}

pub async fn run(config: &Config, command: AirtableCommand) -> Result<(), CliError> {
    match command {
        AirtableCommand::Emulator(args) => airsync_emulator::cli::run(args)
            .await
            .map_err(|err| CliError::Usage(format!("the emulator stopped: {err}"))),
        AirtableCommand::Bootstrap => {
            let mapping = config.load_mapping()?;
            let client = crate::airtable::client(config)?;
            let base_id = crate::airtable::base_id(config)?;
            let report = bootstrap(&client.base(base_id), &mapping).await?;
            if report.is_empty() {
                println!("base {base_id} already has every table and field of the mapping");
            } else {
                for table in &report.tables {
                    println!("created table {table:?}");
                }
                for (table, field) in &report.fields {
                    println!("created field {table:?}.{field:?}");
                }
                println!(
                    "base {base_id}: created {} tables and {} fields; it matches the mapping",
                    report.tables.len(),
                    report.fields.len()
                );
            }
            Ok(())
        }
    }
}
