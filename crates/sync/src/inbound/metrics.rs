//! Counters of the inbound sync, for the metrics endpoint, the health page
//! and tests: totals, the user provisioning histogram, and each table's
//! reconcile progress.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use airsync_airtable::Histogram;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Counters of everything the inbound sync did since the process
        /// started.
        #[derive(Debug, Default)]
        pub struct InboundMetrics {
            $($name: AtomicU64,)*
            user_provisioning: UserProvisioning,
            reconcile: Mutex<BTreeMap<String, ReconcileProgress>>,
        }

        /// A copy of the counters at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct InboundMetricsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl InboundMetrics {
            /// The counters now.
            pub fn snapshot(&self) -> InboundMetricsSnapshot {
                InboundMetricsSnapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }

            /// Adds a batch's counts.
            pub(crate) fn add(&self, delta: &InboundMetricsSnapshot) {
                $(if delta.$name > 0 {
                    self.$name.fetch_add(delta.$name, Ordering::Relaxed);
                })*
            }
        }
    };
}

counters! {
    /// Notifications with a valid MAC, recorded and acted on.
    notifications_accepted,
    /// Notifications seen before (a redelivery or a replay), dropped.
    notifications_duplicate,
    /// Notifications without a valid MAC, refused.
    notifications_rejected,
    /// Webhook payloads applied.
    payloads_applied,
    /// Rows created from Airtable records.
    rows_created,
    /// Rows changed by Airtable records.
    rows_updated,
    /// Records that matched their row already (an echo, a repeat).
    rows_unchanged,
    /// Records of a listing left unapplied because a side changed them
    /// after the listing was read (a push, a payload, an app write while
    /// Airtable's change time was asked); a later read brings them.
    stale_listings_skipped,
    /// Rows deleted because their record was deleted in Airtable.
    rows_deleted,
    /// Rows kept and deactivated because their record was deleted.
    rows_deactivated,
    /// Records set aside to be tried again (a missing link, a refused row).
    records_deferred,
    /// Linked records fetched because they were not known yet.
    links_fetched,
    /// Fields changed on both sides where Airtable's later value overwrote
    /// PostgreSQL's.
    conflicts_airtable_won,
    /// Fields changed on both sides where PostgreSQL's later value was kept
    /// (and pushed to Airtable again).
    conflicts_postgres_won,
    /// Outbox events enqueued so that PostgreSQL's value reaches Airtable.
    pushes_enqueued,
    /// Webhooks created (first start, expiry, error, loss).
    webhooks_created,
    /// Webhooks refreshed before expiry.
    webhooks_refreshed,
    /// Incremental polls of one table.
    table_polls,
    /// Full reconciles of one table.
    table_reconciles,
    /// Reconciles that refused a mass delete.
    mass_deletes_refused,
}

/// Upper bounds, in seconds, of the user provisioning histogram's buckets
/// (a last bucket takes the slower ones). Dense around the 15 s objective,
/// so that a p95 near it is read from neighbouring buckets, and wide enough
/// to tell a slow webhook (a minute) from a user that waited for a
/// reconcile (hours).
pub const USER_PROVISIONING_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0,
    3600.0, 21600.0,
];

/// The user provisioning histogram, in the buckets of
/// [`USER_PROVISIONING_BUCKETS`].
#[derive(Debug)]
struct UserProvisioning(Mutex<Histogram>);

impl Default for UserProvisioning {
    fn default() -> Self {
        UserProvisioning(Mutex::new(Histogram::new(USER_PROVISIONING_BUCKETS)))
    }
}

/// The full reconcile of one table, as far as this process saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileProgress {
    /// Records read by reconciles of the table since the process started,
    /// counted as each page arrives.
    pub records_seen: u64,
    /// Whether a reconcile of the table is running now.
    pub running: bool,
}

impl InboundMetrics {
    /// Time from users' creation in Airtable to the commit of their row,
    /// in the buckets of [`USER_PROVISIONING_BUCKETS`].
    pub fn user_provisioning(&self) -> Histogram {
        self.user_provisioning
            .0
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| Histogram::new(USER_PROVISIONING_BUCKETS))
    }

    /// Each table's reconcile progress, by entity.
    pub fn reconcile_progress(&self) -> BTreeMap<String, ReconcileProgress> {
        self.reconcile.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub(crate) fn observe_user_provisioning(&self, seconds: f64) {
        if let Ok(mut histogram) = self.user_provisioning.0.lock() {
            histogram.observe(seconds);
        }
    }

    fn with_reconcile(&self, entity: &str, change: impl FnOnce(&mut ReconcileProgress)) {
        if let Ok(mut tables) = self.reconcile.lock() {
            change(tables.entry(entity.to_owned()).or_default());
        }
    }

    /// Marks a table's reconcile as running until the guard drops, however
    /// the reconcile ends.
    pub(crate) fn reconcile_running(&self, entity: &str) -> ReconcileRunning<'_> {
        self.with_reconcile(entity, |p| p.running = true);
        ReconcileRunning {
            metrics: self,
            entity: entity.to_owned(),
        }
    }

    pub(crate) fn reconcile_records_seen(&self, entity: &str, records: u64) {
        self.with_reconcile(entity, |p| p.records_seen += records);
    }
}

/// A running reconcile of one table; see [`InboundMetrics::reconcile_running`].
pub(crate) struct ReconcileRunning<'a> {
    metrics: &'a InboundMetrics,
    entity: String,
}

impl Drop for ReconcileRunning<'_> {
    fn drop(&mut self) {
        self.metrics
            .with_reconcile(&self.entity, |p| p.running = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisioning_times_fall_in_the_first_bucket_that_holds_them() {
        let metrics = InboundMetrics::default();
        for seconds in [0.2, 15.0, 15.01, -3.0, f64::NAN, 1e9] {
            metrics.observe_user_provisioning(seconds);
        }
        let h = metrics.user_provisioning();
        assert_eq!(h.bounds(), USER_PROVISIONING_BUCKETS);
        let at = |bound: f64| h.counts()[h.bounds().iter().position(|b| *b == bound).unwrap()];
        assert_eq!(at(0.5), 3, "0.2 s, and the negative and NaN times as 0");
        assert_eq!(at(15.0), 1);
        assert_eq!(at(17.5), 1);
        assert_eq!(h.counts().last(), Some(&1));
        assert_eq!(h.count(), 6);
        assert!((h.sum_seconds() - (0.2 + 15.0 + 15.01 + 1e9)).abs() < 1e-3);
    }

    #[test]
    fn a_reconcile_is_running_until_its_guard_drops() {
        let metrics = InboundMetrics::default();
        {
            let _running = metrics.reconcile_running("user");
            metrics.reconcile_records_seen("user", 100);
            assert!(metrics.reconcile_progress()["user"].running);
        }
        metrics.reconcile_records_seen("user", 5);
        assert_eq!(
            metrics.reconcile_progress()["user"],
            ReconcileProgress {
                records_seen: 105,
                running: false
            }
        );
    }
}
