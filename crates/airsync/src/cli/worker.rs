//! `airsync worker`: the outbound worker as a process of its own.

use std::sync::Arc;
use std::time::Duration;

use airsync_sync::airtable_writer::AirtableWriter;
use airsync_sync::bootstrap::schema_view;
use airsync_sync::mapping::{check_against_base, check_against_database};
use airsync_sync::worker::{LaneCheck, Worker};

use super::{connect_patiently, shutdown_signal, CliError};
use crate::config::Config;

/// How long running batches may take to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(20);

pub async fn run(config: &Config) -> Result<(), CliError> {
    let mapping = Arc::new(config.load_mapping()?);
    let client = crate::airtable::client(config)?;
    let base_id = crate::airtable::base_id(config)?;
    let pool = connect_patiently(config).await?;
    check_against_database(&mapping, &pool).await?;

    let settings = crate::airtable::worker_settings(config, base_id);
    tracing::info!(base = %base_id, owner = %settings.owner, "outbound worker starting");
    // The base is checked against the mapping under the lane, each time the
    // worker takes it, so that standby workers' checks never add requests
    // to the lane holder's.
    let check_base = client.base(base_id.as_str());
    let check_mapping = mapping.clone();
    let lane_check: LaneCheck = Box::new(move || {
        let base = check_base.clone();
        let mapping = check_mapping.clone();
        Box::pin(async move {
            let schema = base.schema().await?;
            check_against_base(&mapping, &schema_view(&schema))?;
            Ok(())
        })
    });
    let worker = Worker::new(
        pool.clone(),
        mapping,
        AirtableWriter::new(client, base_id.as_str()),
        settings,
    )
    .with_lane_check(lane_check);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stop requested; finishing what is in flight");
        let _ = stop.send(true);
    });
    worker.run(shutdown, GRACE).await?;
    pool.close().await;
    tracing::info!("outbound worker stopped");
    Ok(())
}
