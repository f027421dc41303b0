//! `airsync sync full`, `airsync sync incremental` and
//! `airsync validate-backfill`: the inbound sync's listing paths on demand.

use std::sync::Arc;

use airsync_sync::inbound::{
    poll_once, reconcile_exclusive, validate_backfill, InboundContext, ReconcileOptions,
};
use airsync_sync::mapping::check_against_database;
use clap::Args;

use super::{connect, CliError};
use crate::config::Config;

/// `airsync sync full`
#[derive(Debug, Args)]
pub struct FullArgs {
    /// Only this table: an entity name (e.g. user), an Airtable table (name
    /// or id) or a PostgreSQL table.
    #[arg(long)]
    pub table: Option<String>,
    /// Apply the deletes found even when they exceed the mass-delete guard
    /// (check first why so many records are gone).
    #[arg(long)]
    pub force: bool,
}

/// `airsync validate-backfill`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only this table (as for `sync full`).
    #[arg(long)]
    pub table: Option<String>,
}

/// The inbound context of a command, after checking the mapping against
/// the database.
async fn context(config: &Config, progress: bool) -> Result<InboundContext, CliError> {
    let mapping = Arc::new(config.load_mapping()?);
    crate::airtable::check_client(config)?;
    let base_id = crate::airtable::base_id(config)?;
    let pool = connect(config).await?;
    let client = crate::airtable::shared_client(config, &pool)?;
    check_against_database(&mapping, &pool).await?;
    let mut settings = crate::airtable::inbound_settings(config);
    if progress {
        settings.progress = Some(std::sync::Arc::new(
            super::progress::CommandProgress::for_stderr(),
        ));
    }
    Ok(InboundContext::new(
        pool,
        client,
        base_id.clone(),
        mapping,
        settings,
    ))
}

/// Reconciles every mapped table (or one) with Airtable.
pub async fn full(config: &Config, args: FullArgs) -> Result<(), CliError> {
    let ctx = context(config, true).await?;
    let options = ReconcileOptions {
        table: args.table,
        force: args.force,
    };
    let Some(report) = reconcile_exclusive(&ctx, &options).await? else {
        ctx.pool().close().await;
        return Err(CliError::Usage(
            "another process of this deployment is running a full reconcile of the base; run this again once it has finished".into(),
        ));
    };
    ctx.pool().close().await;
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>10} {:>9} {:>8} {:>9}",
        "entity", "records", "created", "updated", "unchanged", "deferred", "deleted", "seconds"
    );
    for table in &report.tables {
        let deleted = if table.refused_deletes > 0 {
            format!("refused {}", table.refused_deletes)
        } else {
            table.deleted.to_string()
        };
        println!(
            "{:<22} {:>8} {:>8} {:>8} {:>10} {:>9} {:>8} {:>9.1}",
            table.entity,
            table.records,
            table.created,
            table.updated,
            table.unchanged,
            table.deferred,
            deleted,
            table.seconds
        );
    }
    if report.refused() {
        return Err(CliError::Usage(
            "the reconcile found more deletes than the guard allows and applied none of them; \
             check why the records are gone, then run it again with --force"
                .into(),
        ));
    }
    Ok(())
}

/// One incremental poll of every mapped table.
pub async fn incremental(config: &Config) -> Result<(), CliError> {
    let ctx = context(config, false).await?;
    let report = poll_once(&ctx).await?;
    ctx.pool().close().await;
    println!(
        "polled {} tables; {} records changed since their watermarks",
        report.tables, report.records
    );
    Ok(())
}

/// Compares both sides field by field; exits 1 when anything differs.
pub async fn validate(config: &Config, args: ValidateArgs) -> Result<(), CliError> {
    let ctx = context(config, true).await?;
    let report = validate_backfill(&ctx, args.table.as_deref()).await?;
    ctx.pool().close().await;
    print!("{report}");
    let differing = report.tables.iter().filter(|t| !t.is_clean()).count();
    if differing > 0 {
        return Err(CliError::Usage(format!(
            "PostgreSQL and Airtable differ in {differing} table(s)"
        )));
    }
    println!("PostgreSQL and Airtable agree");
    Ok(())
}
