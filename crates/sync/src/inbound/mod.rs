//! The inbound sync: Airtable's changes reach PostgreSQL (docs/architecture.md,
//! "Inbound" and "Conflicts").
//!
//! Three paths feed one way of applying a record ([`apply`]):
//!
//! - **Webhooks** ([`receive_notification`], [`read_payloads_once`],
//!   [`ensure_webhook`]): a notification ping is verified, recorded and
//!   wakes the payload reader, which pages the webhook's payloads from the
//!   cursor kept in `sync_checkpoint` and applies them in order, advancing
//!   the cursor in the same transaction. The webhook is created, refreshed
//!   and recreated by the lifecycle step; every gap is covered by an
//!   incremental catch-up.
//! - **Incremental poll** ([`poll_once`]): per table, the records modified
//!   since the table's watermark, with an overlap window.
//! - **Full reconcile** ([`reconcile`]): every record of every mapped table,
//!   and the deletes that only a full listing can see.
//!
//! Applying is a per-field three-way merge between Airtable's value, the
//! row's value and the value last agreed (`airtable_id_map.synced_fields`):
//! a field changed on one side takes that side; changed on both, Airtable
//! wins for reference data and the later change wins otherwise. Inbound
//! writes run with `SET LOCAL airsync.origin = 'inbound'`, so the capture
//! triggers enqueue nothing; where PostgreSQL's value must reach Airtable
//! again, an outbox event is enqueued explicitly.
//!
//! [`run`] runs every path as the background tasks of a process;
//! [`validate_backfill`] compares both sides field by field.

mod apply;
mod cells;
mod checkpoint;
mod context;
mod deferred;
mod deferred_retry;
mod links;
mod listing;
mod merge;
mod metrics;
mod notification;
mod observe;
mod poll;
mod reader;
mod reconcile;
mod rows;
mod runner;
mod schema;
mod times;
mod validate;
mod webhook;

pub use cells::{canonical_cell, cell_to_column, CellConversionError};
pub use context::{InboundContext, InboundSettings};
pub use deferred_retry::{retry_deferred, DeferredReport};
pub use metrics::{
    InboundMetrics, InboundMetricsSnapshot, ReconcileProgress, USER_PROVISIONING_BUCKETS,
};
pub use notification::{receive_notification, NotificationOutcome};
pub use poll::{poll_once, PollReport};
pub use reader::{read_payloads_once, ReadReport};
pub use reconcile::{
    reconcile, reconcile_exclusive, ReconcileOptions, ReconcileReport, TableReconcile,
};
pub use runner::run;
pub use validate::{validate_backfill, Difference, TableValidation, ValidationReport};
pub(crate) use webhook::history_since;
pub use webhook::{ensure_webhook, WebhookAction};
