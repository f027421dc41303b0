//! Counters of the inbound sync, for the metrics endpoint, the health page
//! and tests.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Counters of everything the inbound sync did since the process
        /// started.
        #[derive(Debug, Default)]
        pub struct InboundMetrics {
            $($name: AtomicU64,)*
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
