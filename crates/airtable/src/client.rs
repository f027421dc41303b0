//! The client and its handles: [`AirtableClient`] for the process,
//! [`Base`] for one base's metadata and webhooks, [`Table`] for records.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use futures_util::TryStreamExt;
use reqwest::Method;

use crate::base_id::BaseId;
use crate::clock::{Clock, SystemClock};
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::metadata::{
    self, BaseInfo, BaseSchema, FieldChanges, FieldSchema, NewField, NewTable, TableSchema,
};
use crate::metrics::{MetricsSnapshot, RequestKind};
use crate::pacing::{Pacer, Priority};
use crate::records::{
    self, CellFormat, Fields, GetOptions, ListOptions, Page, Record, RecordUpdate, UpdateMode,
    UpsertOutcome, WriteOptions,
};
use crate::transport::{Call, Transport};
use crate::webhooks::{self, CreatedWebhook, PayloadPage, Webhook, WebhookSpecification};

/// A listing's pages; see [`Table::pages`].
pub type PageStream = Pin<Box<dyn Stream<Item = Result<Page>> + Send + 'static>>;

/// A listing's records; see [`Table::records`].
pub type RecordStream = Pin<Box<dyn Stream<Item = Result<Record>> + Send + 'static>>;

/// A webhook's payload pages; see [`Base::webhook_payloads`].
pub type PayloadStream = Pin<Box<dyn Stream<Item = Result<PayloadPage>> + Send + 'static>>;

/// The one way airsync speaks to Airtable.
///
/// Cheap to clone; build one per process and share it, so that every task
/// draws on the same pacing budget. See the crate documentation for an
/// example.
#[derive(Clone)]
pub struct AirtableClient {
    transport: Arc<Transport>,
}

impl fmt::Debug for AirtableClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AirtableClient")
            .field("api_url", &self.transport.api_url.as_str())
            .finish_non_exhaustive()
    }
}

impl AirtableClient {
    /// A client on real time.
    pub fn new(config: ClientConfig) -> Result<Self> {
        Self::with_clock(config, Arc::new(SystemClock::new()))
    }

    /// A client whose pacing, pauses and back-off run on `clock` (a
    /// [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(config: ClientConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| Error::Config(format!("the HTTP client cannot be built: {e}")))?;
        let transport = Transport {
            http,
            api_url: config.api_url,
            token: config.token,
            pacer: Arc::new(match config.budget_store {
                Some(store) => Pacer::new(config.rate_limits.clone()).sharing(store),
                None => Pacer::new(config.rate_limits.clone()),
            }),
            priority: Priority::Normal,
            clock,
            retry: config.retry,
            rate_limit_pause: config.rate_limits.rate_limit_pause,
            metrics: Default::default(),
            max_list_restarts: config.max_list_restarts,
        };
        Ok(AirtableClient {
            transport: Arc::new(transport),
        })
    }

    /// A clone whose requests (and those of its [`Base`] and [`Table`]
    /// handles) go out at `priority`, on the same pacing budget.
    pub fn with_priority(&self, priority: Priority) -> Self {
        let mut transport = (*self.transport).clone();
        transport.priority = priority;
        AirtableClient {
            transport: Arc::new(transport),
        }
    }

    /// The priority of this handle's requests.
    pub fn priority(&self) -> Priority {
        self.transport.priority
    }

    /// A handle on one base.
    pub fn base(&self, base_id: &BaseId) -> Base {
        Base {
            client: self.clone(),
            id: base_id.clone(),
        }
    }

    /// A handle on one table (by id or name) of a base.
    pub fn table(&self, base_id: &BaseId, table: impl Into<String>) -> Table {
        self.base(base_id).table(table)
    }

    /// Every base the token can reach.
    pub async fn list_bases(&self) -> Result<Vec<BaseInfo>> {
        metadata::list_bases(&self.transport).await
    }

    /// The counters and histogram so far, and every base's pause.
    pub fn metrics(&self) -> MetricsSnapshot {
        let now = self.transport.clock.now();
        self.transport
            .metrics
            .snapshot(self.transport.pacer.snapshot(now))
    }
}

/// A handle on one base: its schema and its webhooks.
#[derive(Clone, Debug)]
pub struct Base {
    client: AirtableClient,
    id: BaseId,
}

impl Base {
    /// The base's id.
    pub fn id(&self) -> &BaseId {
        &self.id
    }

    /// A handle on one of its tables, by id (stable) or name.
    pub fn table(&self, table: impl Into<String>) -> Table {
        Table {
            client: self.client.clone(),
            base_id: self.id.clone(),
            table: table.into(),
        }
    }

    fn transport(&self) -> &Transport {
        &self.client.transport
    }

    /// The base's tables, fields and views.
    pub async fn schema(&self) -> Result<BaseSchema> {
        metadata::schema(self.transport(), self.id.as_str()).await
    }

    /// Creates a table. Not retried after an ambiguous failure (it could
    /// create the table twice): read the schema before trying again.
    pub async fn create_table(&self, table: &NewTable) -> Result<TableSchema> {
        metadata::create_table(self.transport(), self.id.as_str(), table).await
    }

    /// Creates a field. Not retried after an ambiguous failure.
    pub async fn create_field(&self, table_id: &str, field: &NewField) -> Result<FieldSchema> {
        metadata::create_field(self.transport(), self.id.as_str(), table_id, field).await
    }

    /// Renames a field or changes its description.
    pub async fn update_field(
        &self,
        table_id: &str,
        field_id: &str,
        changes: &FieldChanges,
    ) -> Result<FieldSchema> {
        metadata::update_field(
            self.transport(),
            self.id.as_str(),
            table_id,
            field_id,
            changes,
        )
        .await
    }

    /// Creates a webhook; keep the returned MAC secret to verify pings. Not
    /// retried after an ambiguous failure (it could create two webhooks):
    /// list the webhooks before trying again.
    pub async fn create_webhook(
        &self,
        specification: &WebhookSpecification,
        notification_url: Option<&str>,
    ) -> Result<CreatedWebhook> {
        webhooks::create(
            self.transport(),
            self.id.as_str(),
            specification,
            notification_url,
        )
        .await
    }

    /// The base's webhooks (without their secrets).
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        webhooks::list(self.transport(), self.id.as_str()).await
    }

    /// Extends a webhook's life by seven days; returns the new expiry.
    pub async fn refresh_webhook(&self, webhook_id: &str) -> Result<Option<DateTime<Utc>>> {
        webhooks::refresh(self.transport(), self.id.as_str(), webhook_id).await
    }

    /// Deletes a webhook.
    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<()> {
        webhooks::delete(self.transport(), self.id.as_str(), webhook_id).await
    }

    /// Turns a webhook's notification pings on or off.
    pub async fn set_webhook_notifications(&self, webhook_id: &str, enable: bool) -> Result<()> {
        webhooks::set_notifications(self.transport(), self.id.as_str(), webhook_id, enable).await
    }

    /// A webhook's payloads from `cursor` on (1 for the first ever), one
    /// item per answer, following `mightHaveMore` until none are left.
    /// Store each page's [`PayloadPage::cursor`] once its payloads are
    /// applied, and resume from it.
    pub fn webhook_payloads(&self, webhook_id: &str, cursor: u64) -> PayloadStream {
        Box::pin(webhooks::payloads(
            Arc::clone(&self.client.transport),
            self.id.to_string(),
            webhook_id.to_owned(),
            cursor,
        ))
    }
}

/// A handle on one table: its records.
#[derive(Clone, Debug)]
pub struct Table {
    client: AirtableClient,
    base_id: BaseId,
    table: String,
}

impl Table {
    /// The base's id.
    pub fn base_id(&self) -> &BaseId {
        &self.base_id
    }

    /// The table's id or name, as given.
    pub fn name(&self) -> &str {
        &self.table
    }

    fn transport(&self) -> &Transport {
        &self.client.transport
    }

    /// The records matching `options`, a page per item.
    ///
    /// When Airtable says an offset expired (422
    /// `LIST_RECORDS_ITERATOR_NOT_AVAILABLE`), the listing starts again from
    /// the first page, at most `max_list_restarts` times, and skips the
    /// records it already yielded: each record comes at most once, and a
    /// record that existed throughout the listing comes exactly once. When
    /// the URL would reach Airtable's 16,000-character limit (a long
    /// filter), the pages are read with `POST …/listRecords` instead.
    pub fn pages(&self, options: ListOptions) -> PageStream {
        Box::pin(records::pages(
            Arc::clone(&self.client.transport),
            self.base_id.to_string(),
            self.table.clone(),
            options,
        ))
    }

    /// The records matching `options`, one per item; see [`Table::pages`].
    pub fn records(&self, options: ListOptions) -> RecordStream {
        Box::pin(
            self.pages(options)
                .map_ok(|page| futures_util::stream::iter(page.records.into_iter().map(Ok)))
                .try_flatten(),
        )
    }

    /// Every record matching `options`, collected.
    pub async fn list_all(&self, options: ListOptions) -> Result<Vec<Record>> {
        let pages: Vec<Page> = self.pages(options).try_collect().await?;
        Ok(pages.into_iter().flat_map(|p| p.records).collect())
    }

    /// One record by id. Airtable finds any record of the base this way,
    /// whichever table the handle names.
    pub async fn get(&self, record_id: &str, options: &GetOptions) -> Result<Record> {
        let mut url = self
            .transport()
            .url(&["v0", self.base_id.as_str(), &self.table, record_id]);
        let mut pairs = Vec::new();
        if options.return_fields_by_field_id {
            pairs.push(("returnFieldsByFieldId".to_owned(), "true".to_owned()));
        }
        if let CellFormat::String {
            time_zone,
            user_locale,
        } = &options.cell_format
        {
            pairs.push(("cellFormat".to_owned(), "string".to_owned()));
            pairs.push(("timeZone".to_owned(), time_zone.clone()));
            pairs.push(("userLocale".to_owned(), user_locale.clone()));
        }
        records::set_query(&mut url, &pairs);
        let call = Call::new(RequestKind::GetRecord, Method::GET, url)
            .on(self.base_id.as_str(), Some(&self.table));
        self.transport().send_json(&call).await
    }

    /// Creates records, ten to a request, in input order; returns them with
    /// their ids, in input order.
    ///
    /// A create is not idempotent, so a batch is retried only when the
    /// failed attempt provably did nothing (a 429, a 503, a refused
    /// connection). After an ambiguous failure (a timeout once sent, a 500)
    /// the error is returned with [`Error::may_have_been_applied`] true and
    /// the caller must find out before trying again. The sync engine avoids
    /// the question by creating with [`Table::upsert`] on its `pg_id` field.
    /// When a later batch fails, [`Error::PartiallyApplied`] lists the ids
    /// already created.
    pub async fn create(&self, records: &[Fields], options: WriteOptions) -> Result<Vec<Record>> {
        records::create(
            self.transport(),
            self.base_id.as_str(),
            &self.table,
            records,
            options,
        )
        .await
    }

    /// Updates records by id, ten to a request: [`UpdateMode::Merge`]
    /// (`PATCH`) keeps unlisted fields, [`UpdateMode::Replace`] (`PUT`)
    /// clears them. Retried on every transient failure (an update is
    /// idempotent).
    pub async fn update(
        &self,
        updates: &[RecordUpdate],
        mode: UpdateMode,
        options: WriteOptions,
    ) -> Result<Vec<Record>> {
        records::update(
            self.transport(),
            self.base_id.as_str(),
            &self.table,
            updates,
            mode,
            options,
        )
        .await
    }

    /// Creates or updates records matched on `merge_on` (1 to 3 fields that
    /// every record must carry), ten to a request; returns the records and
    /// which were created or updated. Idempotent, so retried on every
    /// transient failure: the safe way to create.
    pub async fn upsert<S: AsRef<str>>(
        &self,
        records: &[Fields],
        merge_on: &[S],
        mode: UpdateMode,
        options: WriteOptions,
    ) -> Result<UpsertOutcome> {
        let merge_on: Vec<String> = merge_on.iter().map(|s| s.as_ref().to_owned()).collect();
        records::upsert(
            self.transport(),
            self.base_id.as_str(),
            &self.table,
            records,
            &merge_on,
            mode,
            options,
        )
        .await
    }

    /// Deletes records by id, ten to a request; returns the ids deleted.
    /// Retried on transient failures: a retry of a delete that did go
    /// through may then fail on the records already gone.
    pub async fn delete<S: AsRef<str>>(&self, record_ids: &[S]) -> Result<Vec<String>> {
        let ids: Vec<String> = record_ids.iter().map(|s| s.as_ref().to_owned()).collect();
        records::delete(self.transport(), self.base_id.as_str(), &self.table, &ids).await
    }
}
