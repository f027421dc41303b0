//! `POST /api/sync/inbound`: Airtable's webhook notifications. The sync
//! engine checks the MAC and records the ping; this only carries the raw
//! bytes in and the status out, answering with an empty body as Airtable
//! expects, well within its 25 s deadline (the payloads are read later).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::Services;

pub async fn receive(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(inbound) = &services.inbound else {
        // No Airtable configured here: nobody can have been promised pings.
        return StatusCode::NOT_FOUND;
    };
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
