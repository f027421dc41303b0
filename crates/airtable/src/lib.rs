//! The one way airsync speaks to Airtable: a typed client for its Web API
//! (records, metadata, webhooks) that paces itself under Airtable's rate
//! limits, retries what is worth retrying, and counts what it does.
//!
//! - [`AirtableClient`]: one per process, cheap to clone. Every clone and
//!   task shares one pacer: at most the budget share of 5 requests in any
//!   second to a base (whole requests: 80% is 4) and of 50 for the token;
//!   requests wait for a slot rather than fail, urgent ones first
//!   ([`Priority`], [`AirtableClient::with_priority`]). After a 429 the
//!   whole base pauses for 30 s (or the `Retry-After` Airtable sent), and
//!   a 429 that the client's own requests cannot explain lowers its share
//!   of that base for a while ([`BasePace`]).
//! - [`Table`]: list records as a stream of pages or records
//!   ([`ListOptions`]), get one, and create, update, upsert and delete any
//!   number, ten to a request.
//! - [`Base`]: the base's schema, new tables and fields, and webhooks;
//!   [`verify_content_mac`] checks a webhook notification's signature.
//! - [`formula`]: filters built so that no value can change their meaning.
//! - [`Error`]: one error type; [`Error::is_retryable`] tells transient
//!   failures from permanent ones.
//! - [`AirtableClient::metrics`]: counters and a latency histogram for an
//!   exporter.
//!
//! ```no_run
//! use airsync_airtable::{
//!     formula, AirtableClient, BaseId, ClientConfig, Fields, ListOptions, UpdateMode,
//!     WriteOptions,
//! };
//! use futures_util::TryStreamExt;
//!
//! # async fn run() -> airsync_airtable::Result<()> {
//! let mut config = ClientConfig::new("patXXXXXXXXXXXXXX.secret");
//! config.rate_limits.budget_share = 0.8; // leave a fifth to the team's scripts
//! let client = AirtableClient::new(config)?;
//! let base = BaseId::from_static("appXXXXXXXXXXXXXX");
//! let clients = client.table(&base, "tblXXXXXXXXXXXXXX");
//!
//! // Create idempotently: an upsert on the PostgreSQL id.
//! let rows = vec![Fields::new().with("pg_id", "42").with("Name", "Ada Lovelace")];
//! let outcome = clients
//!     .upsert(&rows, &["pg_id"], UpdateMode::Merge, WriteOptions::default())
//!     .await?;
//! println!("created {:?}, updated {:?}", outcome.created, outcome.updated);
//!
//! // Read with a filter that is safe for any user input.
//! let email = "o'brien@example.com";
//! let filter = formula::field("Email")?.equals(formula::text(email));
//! let mut records = clients.records(ListOptions::new().filter(filter));
//! while let Some(record) = records.try_next().await? {
//!     println!("{} {:?}", record.id, record.fields.text("Name")?);
//! }
//!
//! println!("429s so far: {}", client.metrics().rate_limited);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod base_id;
mod client;
mod clock;
mod config;
mod error;
pub mod formula;
mod histogram;
mod metadata;
mod metrics;
mod pacing;
mod records;
mod transport;
mod webhooks;

pub use base_id::{BaseId, InvalidBaseId};
pub use client::{AirtableClient, Base, PageStream, PayloadStream, RecordStream, Table};
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use config::{ApiToken, ClientConfig, RetryPolicy, DEFAULT_API_URL};
pub use error::{Error, Result, LIST_RECORDS_ITERATOR_NOT_AVAILABLE, RATE_LIMIT_REACHED};
pub use formula::Formula;
pub use histogram::Histogram;
pub use metadata::{
    BaseInfo, BaseSchema, FieldChanges, FieldSchema, FieldType, NewField, NewTable, TableSchema,
    ViewSchema,
};
pub use metrics::{MetricsSnapshot, RequestCount, RequestKind, LATENCY_BUCKETS};
pub use pacing::RateLimits;
pub use pacing::{
    BasePace, BudgetStore, BudgetStoreError, BudgetUpdate, MemoryBudgetStore, Priority,
    RateLimitCause, RateLimitEpisode,
};
pub use records::{
    CellFormat, Fields, GetOptions, ListOptions, Page, Record, RecordUpdate, Sort, SortDirection,
    UpdateMode, UpsertOutcome, WriteOptions, MAX_PAGE_SIZE, MAX_RECORDS_PER_REQUEST, MAX_URL_LEN,
};
pub use webhooks::{
    content_mac, verify_content_mac, ActionMetadata, CellValues, ChangeSource, ChangedRecord,
    CreatedRecord, CreatedWebhook, FieldChange, FieldDefinition, MetadataChange, PayloadPage,
    SpecificationOptions, TableChanged, TableCreated, TableMetadata, ViewChanged, Webhook,
    WebhookFilters, WebhookIncludes, WebhookPayload, WebhookSpecification,
};
