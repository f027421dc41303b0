//! The webhooks API: create, list, refresh, delete, turn notifications on
//! or off, and read payloads from a cursor; plus the verification of a
//! notification's MAC.

mod mac;
mod payload;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::Result;
use crate::metrics::RequestKind;
use crate::transport::{Call, Replay, Transport};

pub use mac::{content_mac, verify_content_mac};
pub use payload::{
    ActionMetadata, CellValues, ChangeSource, ChangedRecord, CreatedRecord, FieldChange,
    FieldDefinition, MetadataChange, TableChanged, TableCreated, TableMetadata, ViewChanged,
    WebhookPayload,
};

/// What a webhook watches: Airtable's `specification` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSpecification {
    /// The options.
    pub options: SpecificationOptions,
}

impl WebhookSpecification {
    /// Record changes (created, changed, destroyed) in one table. Set
    /// `options.includes` to have cells come with every change.
    pub fn table_data(table_id: impl Into<String>) -> Self {
        WebhookSpecification {
            options: SpecificationOptions {
                filters: WebhookFilters {
                    data_types: vec!["tableData".into()],
                    record_change_scope: Some(table_id.into()),
                    ..WebhookFilters::default()
                },
                includes: None,
            },
        }
    }
}

/// The filters and includes of a specification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpecificationOptions {
    /// What to report.
    pub filters: WebhookFilters,
    /// Extra context in payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<WebhookIncludes>,
}

/// What a webhook reports. Ids only, never names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookFilters {
    /// Any of `tableData`, `tableFields`, `tableMetadata` (required).
    pub data_types: Vec<String>,
    /// One table (`tbl…`) or view (`viw…`) instead of the whole base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_change_scope: Option<String>,
    /// Any of `add`, `remove`, `update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_types: Option<Vec<String>>,
    /// Only changes from these sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_sources: Option<Vec<ChangeSource>>,
    /// Per-source options (form view or page ids), as Airtable's JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_options: Option<Value>,
    /// Only data changes in these fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_data_in_field_ids: Option<Vec<String>>,
    /// Only schema changes of these fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_schemas_of_field_ids: Option<Vec<String>>,
}

/// Extra context a webhook puts in its payloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookIncludes {
    /// Field ids whose values come with every change, or `"all"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_cell_values_in_field_ids: Option<Value>,
    /// Include cells' previous values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_previous_cell_values: Option<bool>,
    /// Include fields' previous definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_previous_field_definitions: Option<bool>,
}

/// A webhook just created. The MAC secret is shown only now: keep it to
/// verify notifications. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    /// The webhook's id (`ach…`).
    pub id: String,
    /// The base64 key of the notifications' HMAC.
    pub mac_secret_base64: String,
    /// When the webhook expires unless refreshed (none for legacy keys).
    #[serde(default)]
    pub expiration_time: Option<DateTime<Utc>>,
}

impl fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedWebhook")
            .field("id", &self.id)
            .field("mac_secret_base64", &"<redacted>")
            .field("expiration_time", &self.expiration_time)
            .finish()
    }
}

/// A webhook as listed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// The webhook's id.
    pub id: String,
    /// Whether pings are being sent.
    #[serde(default)]
    pub are_notifications_enabled: bool,
    /// The number the next payload will get.
    #[serde(default)]
    pub cursor_for_next_payload: u64,
    /// False once the specification became invalid.
    #[serde(default)]
    pub is_hook_enabled: bool,
    /// When it expires unless refreshed.
    #[serde(default)]
    pub expiration_time: Option<DateTime<Utc>>,
    /// Where pings go.
    #[serde(default)]
    pub notification_url: Option<String>,
    /// When a ping last succeeded.
    #[serde(default)]
    pub last_successful_notification_time: Option<DateTime<Utc>>,
    /// How the last ping went, as Airtable sends it.
    #[serde(default)]
    pub last_notification_result: Option<Value>,
    /// What it watches, as Airtable sends it.
    #[serde(default)]
    pub specification: Option<Value>,
}

/// One answer of the payloads endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadPage {
    /// The payloads, oldest first.
    pub payloads: Vec<WebhookPayload>,
    /// The cursor to read from next: store it once these payloads are
    /// applied (the last payload's number plus one).
    pub cursor: u64,
    /// Whether more payloads are waiting.
    pub might_have_more: bool,
}

impl PayloadPage {
    /// The payloads with their own cursor numbers (the first is the cursor
    /// the page was read from).
    pub fn numbered(&self) -> impl Iterator<Item = (u64, &WebhookPayload)> {
        let first = self.cursor.saturating_sub(self.payloads.len() as u64);
        (first..).zip(self.payloads.iter())
    }
}

#[derive(Deserialize)]
struct WebhooksAnswer {
    webhooks: Vec<Webhook>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshAnswer {
    #[serde(default)]
    expiration_time: Option<DateTime<Utc>>,
}

fn webhook_url(transport: &Transport, base: &str, rest: &[&str]) -> url::Url {
    let mut segments = vec!["v0", "bases", base, "webhooks"];
    segments.extend_from_slice(rest);
    transport.url(&segments)
}

/// Creates a webhook. Not replayed after an ambiguous failure (it would
/// make a second webhook).
pub(crate) async fn create(
    transport: &Transport,
    base: &str,
    specification: &WebhookSpecification,
    notification_url: Option<&str>,
) -> Result<CreatedWebhook> {
    let mut body = json!({ "specification": specification });
    if let Some(url) = notification_url {
        body["notificationUrl"] = json!(url);
    }
    let call = Call::new(
        RequestKind::Webhooks,
        Method::POST,
        webhook_url(transport, base, &[]),
    )
    .on(base, None)
    .json(&body)?;
    transport.send_json(&call).await
}

/// Lists a base's webhooks.
pub(crate) async fn list(transport: &Transport, base: &str) -> Result<Vec<Webhook>> {
    let call = Call::new(
        RequestKind::Webhooks,
        Method::GET,
        webhook_url(transport, base, &[]),
    )
    .on(base, None);
    let answer: WebhooksAnswer = transport.send_json(&call).await?;
    Ok(answer.webhooks)
}

/// Extends a webhook's life by seven days; returns the new expiry.
pub(crate) async fn refresh(
    transport: &Transport,
    base: &str,
    webhook_id: &str,
) -> Result<Option<DateTime<Utc>>> {
    let url = webhook_url(transport, base, &[webhook_id, "refresh"]);
    let call = Call::new(RequestKind::Webhooks, Method::POST, url)
        .on(base, None)
        .replay(Replay::Safe);
    let answer: RefreshAnswer = transport.send_json(&call).await?;
    Ok(answer.expiration_time)
}

/// Deletes a webhook.
pub(crate) async fn delete(transport: &Transport, base: &str, webhook_id: &str) -> Result<()> {
    let url = webhook_url(transport, base, &[webhook_id]);
    let call = Call::new(RequestKind::Webhooks, Method::DELETE, url).on(base, None);
    transport.send(&call).await.map(|_| ())
}

/// Turns a webhook's pings on or off.
pub(crate) async fn set_notifications(
    transport: &Transport,
    base: &str,
    webhook_id: &str,
    enable: bool,
) -> Result<()> {
    let url = webhook_url(transport, base, &[webhook_id, "enableNotifications"]);
    let call = Call::new(RequestKind::Webhooks, Method::POST, url)
        .on(base, None)
        .json(&json!({ "enable": enable }))?
        .replay(Replay::Safe);
    transport.send(&call).await.map(|_| ())
}

/// The payloads from `cursor` on, a page per answer, following
/// `mightHaveMore` until Airtable has nothing more.
pub(crate) fn payloads(
    transport: Arc<Transport>,
    base: String,
    webhook_id: String,
    cursor: u64,
) -> impl Stream<Item = Result<PayloadPage>> + Send + 'static {
    let state = Some(cursor);
    futures_util::stream::try_unfold(state, move |cursor| {
        let transport = Arc::clone(&transport);
        let base = base.clone();
        let webhook_id = webhook_id.clone();
        async move {
            let Some(cursor) = cursor else {
                return Ok(None);
            };
            let mut url = webhook_url(&transport, &base, &[&webhook_id, "payloads"]);
            url.query_pairs_mut()
                .append_pair("cursor", &cursor.max(1).to_string());
            let call = Call::new(RequestKind::WebhookPayloads, Method::GET, url).on(&base, None);
            let page: PayloadPage = transport.send_json(&call).await?;
            // A page that claims more but did not move the cursor would loop
            // forever; stop and let the next read pick up from here.
            let next = (page.might_have_more && page.cursor > cursor).then_some(page.cursor);
            Ok(Some((page, next)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_data_specification_serializes_as_airtable_expects() {
        let spec = WebhookSpecification::table_data("tblA");
        assert_eq!(
            serde_json::to_value(&spec).unwrap_or_default(),
            json!({"options": {"filters": {"dataTypes": ["tableData"], "recordChangeScope": "tblA"}}})
        );
    }

    #[test]
    fn the_mac_secret_is_kept_out_of_debug_output() {
        let created = CreatedWebhook {
            id: "achA".into(),
            mac_secret_base64: "c2VjcmV0".into(),
            expiration_time: None,
        };
        assert!(!format!("{created:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn payloads_of_a_page_are_numbered_from_the_cursor_they_were_read_at() {
        let page: PayloadPage = serde_json::from_value(json!({
            "cursor": 7, "mightHaveMore": false,
            "payloads": [{"baseTransactionNumber": 1}, {"baseTransactionNumber": 2}]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let numbers: Vec<u64> = page.numbered().map(|(n, _)| n).collect();
        assert_eq!(numbers, vec![5, 6]);
    }
}
