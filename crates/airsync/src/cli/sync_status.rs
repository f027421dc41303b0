//! `airsync sync status`: per entity, what waits, what failed, and when the
//! last push happened.

use airsync_sync::status::outbound_status;

use super::{connect, CliError};
use crate::config::Config;

pub async fn run(config: &Config) -> Result<(), CliError> {
    let mapping = config.load_mapping()?;
    let pool = connect(config).await?;
    let statuses = outbound_status(&pool, &mapping).await?;
    pool.close().await;
    println!(
        "{:<22} {:>8} {:>10} {:>15} {:>13}  last push",
        "entity", "pending", "in flight", "oldest pending", "dead letters"
    );
    for status in statuses {
        let oldest = status
            .oldest_pending_secs
            .map(|s| format!("{s}s"))
            .unwrap_or_else(|| "-".into());
        let last = status
            .last_push
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "never".into());
        println!(
            "{:<22} {:>8} {:>10} {:>15} {:>13}  {}",
            status.entity, status.pending, status.in_flight, oldest, status.dead_letters, last
        );
    }
    Ok(())
}
