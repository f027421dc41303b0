//! `POST /api/sync/inbound`: Airtable's webhook notifications. The sync
//! engine checks the MAC and records the ping; this only carries the raw
//! bytes in and the status out, answering with an empty body as Airtable
//! expects, well within its 25 s deadline (the payloads are read later).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};

use super::Services;

/// Largest notification read. Airtable's pings are a few hundred bytes (the
/// payloads are fetched separately), so anything near this is not one.
pub const MAX_NOTIFICATION_BYTES: usize = 16 * 1024;

/// Whether the request says its body is JSON, as Airtable's pings do
/// (`application/json`, perhaps with parameters such as a charset).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

pub async fn receive(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(inbound) = &services.inbound else {
        // No Airtable configured here: nobody can have been promised pings.
        return StatusCode::NOT_FOUND;
    };
    if !is_json(&headers) {
        // Nothing is read or stored: not a ping of Airtable's.
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    let mac = headers
        .get("x-airtable-content-mac")
        .and_then(|v| v.to_str().ok());
    match airsync_sync::inbound::receive_notification(inbound, mac, &body).await {
        Ok(outcome) => StatusCode::from_u16(outcome.http_status()).unwrap_or(StatusCode::OK),
        Err(err) => {
            tracing::error!(error = %err, "recording a webhook notification failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}
