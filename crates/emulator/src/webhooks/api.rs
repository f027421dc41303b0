//! The webhooks API: `/v0/bases/{baseId}/webhooks[...]`.

use std::collections::VecDeque;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};

use crate::app::Shared;
use crate::clock::format_ms;
use crate::error::parse_body;
use crate::error::ApiError;
use crate::ids;
use crate::records::params::parse_query;
use crate::respond::ok;
use crate::webhooks::{housekeep, Spec, Webhook, MAX_PER_BASE, SEVEN_DAYS_MS};

type Body = Result<Bytes, BytesRejection>;

fn webhook_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Could not find webhook")
}

/// An empty 200 answer, as Airtable gives for delete and enable.
fn empty() -> Response {
    StatusCode::OK.into_response()
}

/// `POST /v0/bases/{base}/webhooks`: create a webhook.
pub(crate) async fn create(
    State(app): State<Shared>,
    Path(base_id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = parse_body(body)?;
    let obj = body.as_object().ok_or_else(ApiError::invalid_request)?;
    if obj
        .keys()
        .any(|k| k != "notificationUrl" && k != "specification")
    {
        return Err(ApiError::invalid_request());
    }
    let notification_url = match obj.get("notificationUrl") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => {
            let parsed = url::Url::parse(u).map_err(|_| {
                ApiError::invalid_request_because("notificationUrl is not a valid URL")
            })?;
            if parsed.scheme() != "https" && parsed.scheme() != "http" {
                return Err(ApiError::invalid_request_because(
                    "notificationUrl must be an http(s) URL",
                ));
            }
            Some(u.clone())
        }
        Some(_) => return Err(ApiError::invalid_request()),
    };
    let specification = obj
        .get("specification")
        .cloned()
        .ok_or_else(ApiError::invalid_request)?;
    let now = app.now();
    let mut state = app.state.write();
    let base = state
        .base_mut(&base_id)
        .ok_or_else(ApiError::model_not_found)?;
    housekeep(&mut base.webhooks, now);
    if base.webhooks.len() >= MAX_PER_BASE {
        return Err(ApiError::unprocessable(
            "TOO_MANY_WEBHOOKS",
            format!("A base can have at most {MAX_PER_BASE} webhooks"),
        ));
    }
    let spec = Spec::parse(&specification, base)?;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let mac_secret_base64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let hook = Webhook {
        id: ids::new_id(ids::WEBHOOK),
        mac_secret_base64: mac_secret_base64.clone(),
        notification_url,
        specification,
        spec,
        created_ms: now,
        expiration_ms: now + SEVEN_DAYS_MS,
        notifications_enabled: true,
        hook_enabled: true,
        next_cursor: 1,
        payloads: VecDeque::new(),
        last_success_ms: None,
        last_result: None,
        ping_pending: false,
        retry_number: 0,
        next_attempt_ms: now,
        in_flight: false,
    };
    let answer = json!({"id": hook.id, "macSecretBase64": mac_secret_base64, "expirationTime": format_ms(hook.expiration_ms)});
    base.webhooks.push(hook);
    drop(state);
    app.after_write(false);
    Ok(ok(&answer))
}

/// `GET /v0/bases/{base}/webhooks`: list webhooks (no secrets).
pub(crate) async fn list(
    State(app): State<Shared>,
    Path(base_id): Path<String>,
) -> Result<Response, ApiError> {
    let now = app.now();
    let mut state = app.state.write();
    let base = state
        .base_mut(&base_id)
        .ok_or_else(ApiError::model_not_found)?;
    housekeep(&mut base.webhooks, now);
    let hooks: Vec<Value> = base.webhooks.iter().map(|w| w.to_json(now)).collect();
    Ok(ok(&json!({ "webhooks": hooks })))
}

/// Runs `f` on one webhook of a base.
fn with_hook<T>(
    app: &Shared,
    base_id: &str,
    hook_id: &str,
    f: impl FnOnce(&mut Webhook, i64) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let now = app.now();
    let mut state = app.state.write();
    let base = state
        .base_mut(base_id)
        .ok_or_else(ApiError::model_not_found)?;
    housekeep(&mut base.webhooks, now);
    let hook = base
        .webhooks
        .iter_mut()
        .find(|w| w.id == hook_id)
        .ok_or_else(webhook_not_found)?;
    let out = f(hook, now)?;
    drop(state);
    app.after_write(false);
    Ok(out)
}

/// `DELETE /v0/bases/{base}/webhooks/{hook}`.
pub(crate) async fn delete(
    State(app): State<Shared>,
    Path((base_id, hook_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let now = app.now();
    {
        let mut state = app.state.write();
        let base = state
            .base_mut(&base_id)
            .ok_or_else(ApiError::model_not_found)?;
        housekeep(&mut base.webhooks, now);
        let before = base.webhooks.len();
        base.webhooks.retain(|w| w.id != hook_id);
        if base.webhooks.len() == before {
            return Err(webhook_not_found());
        }
    }
    app.after_write(false);
    Ok(empty())
}

/// `POST /v0/bases/{base}/webhooks/{hook}/refresh`: expiry = now + 7 days.
pub(crate) async fn refresh(
    State(app): State<Shared>,
    Path((base_id, hook_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    with_hook(&app, &base_id, &hook_id, |hook, now| {
        if !hook.is_active(now) {
            return Err(ApiError::unprocessable(
                "CANNOT_REFRESH_DISABLED_WEBHOOK",
                "Only an active webhook can be refreshed",
            ));
        }
        hook.expiration_ms = now + SEVEN_DAYS_MS;
        Ok(ok(
            &json!({"expirationTime": format_ms(hook.expiration_ms)}),
        ))
    })
}

/// `POST /v0/bases/{base}/webhooks/{hook}/enableNotifications`.
pub(crate) async fn enable_notifications(
    State(app): State<Shared>,
    Path((base_id, hook_id)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let body = parse_body(body)?;
    let enable = match body.as_object().map(|o| (o.len(), o.get("enable"))) {
        Some((1, Some(Value::Bool(b)))) => *b,
        _ => return Err(ApiError::invalid_request()),
    };
    with_hook(&app, &base_id, &hook_id, |hook, _| {
        hook.notifications_enabled = enable;
        hook.retry_number = 0;
        if !enable {
            hook.ping_pending = false;
        }
        Ok(empty())
    })
}

/// `GET /v0/bases/{base}/webhooks/{hook}/payloads?cursor=&limit=`. Reading
/// payloads also extends an active webhook's life by 7 days.
pub(crate) async fn payloads(
    State(app): State<Shared>,
    Path((base_id, hook_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut cursor: u64 = 1;
    let mut limit: usize = 50;
    for (key, value) in parse_query(query.as_deref()) {
        match key.as_str() {
            "cursor" => cursor = value.parse().map_err(|_| ApiError::invalid_request())?,
            "limit" => limit = value.parse().map_err(|_| ApiError::invalid_request())?,
            _ => return Err(ApiError::invalid_request()),
        }
    }
    if !(1..=50).contains(&limit) || cursor == 0 {
        return Err(ApiError::invalid_request());
    }
    with_hook(&app, &base_id, &hook_id, |hook, now| {
        if hook.is_active(now) {
            hook.expiration_ms = now + SEVEN_DAYS_MS;
        }
        let mut selected = hook.payloads.iter().filter(|p| p.cursor >= cursor);
        let page: Vec<&crate::webhooks::StoredPayload> = selected.by_ref().take(limit).collect();
        let might_have_more = selected.next().is_some();
        let next_cursor = page.last().map_or(cursor, |p| p.cursor + 1);
        let bodies: Vec<Value> = page.iter().map(|p| p.body.clone()).collect();
        Ok(ok(
            &json!({"cursor": next_cursor, "mightHaveMore": might_have_more, "payloads": bodies}),
        ))
    })
}
