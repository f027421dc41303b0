//! The inbound sync as background tasks of a process (`airsync serve`):
//! the payload reader (woken by notifications, and on a timer), the
//! webhook's lifecycle, the incremental poll, the retries of deferred
//! records, and the scheduled full reconcile in a task of its own so that a
//! long reconcile never holds up the webhook path.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::time::{interval, MissedTickBehavior};

use super::checkpoint::{self, ReconcileCheckpoint};
use super::context::InboundContext;
use super::deferred_retry::retry_deferred;
use super::poll::poll_once;
use super::reader::read_payloads_once;
use super::reconcile::{reconcile_exclusive, ReconcileOptions};
use super::webhook::ensure_webhook;
use crate::Result;

/// After a failed step, the loop waits this long before the next one, so a
/// storm of pings during an outage does not spin.
const PAUSE_AFTER_ERROR: Duration = Duration::from_secs(1);

/// Runs every inbound path until `shutdown` turns true. Step errors (the
/// network, Airtable, the database) are logged and the step runs again on
/// its next turn; nothing here ends the process.
pub async fn run(ctx: InboundContext, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let settings = ctx.settings().clone();
    let reconciler = tokio::spawn(reconcile_loop(ctx.clone(), shutdown.clone()));
    let mut reader = ticker(settings.reader_interval);
    let mut webhook = ticker(settings.webhook_check_interval);
    let mut poll = ticker(settings.poll_interval);
    let mut deferred = ticker(settings.deferred_retry_interval);
    // The webhook first: until it exists the team's changes are seen only
    // as listings show them, without their history (a poll over many
    // tables, slowed by faults, could otherwise run before it). Then the
    // first tick of each fires at once.
    log("webhook", ensure_webhook(&ctx).await.map(|_| ()));
    while !*shutdown.borrow() {
        let ok = tokio::select! {
            _ = ctx.woken() => read(&ctx).await,
            _ = reader.tick() => read(&ctx).await,
            _ = webhook.tick() => log("webhook", ensure_webhook(&ctx).await.map(|_| ())),
            _ = poll.tick(), if settings.poll_enabled => log("incremental poll", poll_once(&ctx).await.map(|_| ())),
            _ = deferred.tick() => log("deferred retry", retry_deferred(&ctx).await.map(|_| ())),
            _ = shutdown.changed() => true,
        };
        if !ok {
            tokio::select! {
                _ = tokio::time::sleep(PAUSE_AFTER_ERROR) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    let _ = reconciler.await;
    Ok(())
}

fn ticker(period: Duration) -> tokio::time::Interval {
    let mut ticker = interval(period.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// Reads payloads; a webhook found broken is recreated right away.
async fn read(ctx: &InboundContext) -> bool {
    match read_payloads_once(ctx).await {
        Ok(report) if report.webhook_broken => {
            log("webhook", ensure_webhook(ctx).await.map(|_| ()))
        }
        Ok(_) => true,
        Err(err) => {
            tracing::error!(error = %err, "reading webhook payloads failed; trying again");
            false
        }
    }
}

fn log(step: &str, result: Result<()>) -> bool {
    match result {
        Ok(()) => true,
        Err(err) => {
            tracing::error!(error = %err, "{step} failed; trying again on its next turn");
            false
        }
    }
}

/// Runs the full reconcile whenever the last one (kept in
/// `sync_checkpoint`, so a restart does not repeat it) is older than the
/// interval, in one process of the deployment at a time. A failed run is
/// tried again after [`InboundSettings::reconcile_retry_after`], doubled
/// after each further failure: a reconcile reads every table, and one
/// that fails at once (Airtable down, the base paused) must not turn into
/// a loop of re-reads.
///
/// [`InboundSettings::reconcile_retry_after`]: super::InboundSettings::reconcile_retry_after
async fn reconcile_loop(ctx: InboundContext, mut shutdown: watch::Receiver<bool>) {
    let settings = ctx.settings().clone();
    if !settings.reconcile_enabled {
        return;
    }
    let mut failures = 0u32;
    while !*shutdown.borrow() {
        let mut wait = match due_in(&ctx).await {
            Ok(wait) => wait,
            Err(err) => {
                tracing::error!(error = %err, "reading the last reconcile failed");
                retry_delay(&settings, 1)
            }
        };
        if wait.is_zero() {
            wait = match reconcile_exclusive(&ctx, &ReconcileOptions::default()).await {
                Ok(Some(report)) => {
                    failures = 0;
                    tracing::info!(
                        records = report.records(),
                        refused = report.refused(),
                        "scheduled reconcile done"
                    );
                    continue;
                }
                Ok(None) => {
                    tracing::info!(
                        "another process of the deployment is running the reconcile; looking again later"
                    );
                    settings.reconcile_retry_after
                }
                Err(err) => {
                    failures += 1;
                    let wait = retry_delay(&settings, failures);
                    tracing::error!(
                        error = %err,
                        failures,
                        retry_in_secs = wait.as_secs(),
                        "scheduled reconcile failed; trying again later"
                    );
                    wait
                }
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.reconciler_woken() => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The wait before the next try after `failures` failed reconciles in a
/// row: the configured delay, doubled per further failure, at most six
/// hours or the interval.
fn retry_delay(settings: &super::InboundSettings, failures: u32) -> Duration {
    let cap = MAX_RECONCILE_RETRY.min(settings.reconcile_interval);
    settings
        .reconcile_retry_after
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
        .min(cap)
}

/// The longest wait between tries of a failing reconcile.
const MAX_RECONCILE_RETRY: Duration = Duration::from_secs(6 * 3600);

/// How long until the next reconcile is due.
async fn due_in(ctx: &InboundContext) -> Result<Duration> {
    let base = ctx.schema().await?;
    let mut oldest = None;
    for entity in &base.entities {
        let last: Option<ReconcileCheckpoint> =
            checkpoint::load(ctx.pool(), &checkpoint::reconcile_name(entity.name())).await?;
        let Some(last) = last else {
            return Ok(Duration::ZERO);
        };
        oldest = Some(oldest.map_or(last.finished_at, |o: chrono::DateTime<Utc>| {
            o.min(last.finished_at)
        }));
    }
    let Some(oldest) = oldest else {
        return Ok(Duration::ZERO);
    };
    let interval = chrono::Duration::from_std(ctx.settings().reconcile_interval)
        .unwrap_or_else(|_| chrono::Duration::days(1));
    Ok((oldest + interval - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::InboundSettings;

    #[test]
    fn a_failing_reconcile_waits_longer_after_each_failure_up_to_a_cap() {
        let settings = InboundSettings::default();
        let waits: Vec<u64> = (1..=11)
            .map(|n| retry_delay(&settings, n).as_secs())
            .collect();
        assert_eq!(
            waits,
            vec![60, 120, 240, 480, 960, 1_920, 3_840, 7_680, 15_360, 21_600, 21_600]
        );
        let hourly = InboundSettings {
            reconcile_interval: Duration::from_secs(3_600),
            ..InboundSettings::default()
        };
        assert_eq!(retry_delay(&hourly, 30), Duration::from_secs(3_600));
    }
}
