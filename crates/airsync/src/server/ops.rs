//! The ops page at `/ops`: a small static page that signs in with the API's
//! own login and then reads and acts through the JSON endpoints below, which
//! answer admins only.

use std::sync::Arc;

use std::collections::HashMap;

use airsync_sync::conflicts::{self, LoggedConflict};
use airsync_sync::dead_letters::{self, Purge};
use airsync_sync::status::outbound_status;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::Services;

const PAGE: &str = include_str!("ops.html");

/// The page itself; it holds no data until an admin signs in.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// None when the request comes from a signed-in admin; the answer to send
/// otherwise.
fn refuse_unless_admin(services: &Services, headers: &HeaderMap) -> Option<Response> {
    match airsync_api::authenticate(&services.api, headers) {
        Ok(Some(user)) if user.is_admin() => None,
        Ok(Some(_)) => Some(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the ops page is for admins",
        )),
        Ok(None) | Err(_) => Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in as an admin",
        )),
    }
}

/// A copy of `value` with every key that names a secret (the webhook's MAC
/// secret lives in its checkpoint) hidden: the page shows positions, never
/// keys.
fn redact_secrets(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, inner)| {
                    let hidden = key.to_ascii_lowercase().contains("secret");
                    let shown = if hidden {
                        Value::String("[redacted]".into())
                    } else {
                        redact_secrets(inner)
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_secrets).collect()),
        other => other.clone(),
    }
}

fn internal(err: impl std::fmt::Display) -> Response {
    tracing::error!(error = %err, "ops endpoint failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the request failed; see the server's log",
    )
}

/// Everything the page shows, in one answer.
pub async fn state(State(services): State<Arc<Services>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_unless_admin(&services, &headers) {
        return refusal;
    }
    let outbound = match outbound_status(&services.pool, &services.mapping).await {
        Ok(statuses) => statuses,
        Err(err) => return internal(err),
    };
    let letters = match dead_letters::list(&services.pool, None, 100).await {
        Ok(letters) => letters,
        Err(err) => return internal(err),
    };
    let checkpoints: Vec<(String, Value, chrono::DateTime<chrono::Utc>)> =
        match sqlx::query_as("SELECT name, value, updated_at FROM sync_checkpoint ORDER BY name")
            .fetch_all(&services.pool)
            .await
        {
            Ok(rows) => rows,
            Err(err) => return internal(err),
        };
    let recent = match conflicts::recent(&services.pool, PAGE_CONFLICTS).await {
        Ok(recent) => recent,
        Err(err) => return internal(err),
    };
    let waiting: Vec<WaitingUser> = match sqlx::query_as(
        "SELECT u.id, u.email, u.name, u.created_at,
                max(t.created_at) AS invited_at,
                max(t.expires_at) FILTER (WHERE t.used_at IS NULL) AS invitation_expires_at
           FROM users_pg u LEFT JOIN auth_setup_tokens t ON t.user_id = u.id
          WHERE u.password_hash IS NULL
          GROUP BY u.id ORDER BY u.created_at DESC LIMIT 100",
    )
    .fetch_all(&services.pool)
    .await
    {
        Ok(rows) => rows,
        Err(err) => return internal(err),
    };
    let waiting_count: i64 =
        match sqlx::query_scalar("SELECT count(*) FROM users_pg WHERE password_hash IS NULL")
            .fetch_one(&services.pool)
            .await
        {
            Ok(count) => count,
            Err(err) => return internal(err),
        };
    // Per table: seconds since Airtable was last read, and when its last
    // full reconcile ended.
    let positions: HashMap<String, (Option<f64>, Option<f64>)> =
        match super::metrics::inbound_positions(&services.pool, &services.mapping).await {
            Ok(rows) => rows
                .into_iter()
                .map(|(entity, lag, reconciled)| (entity, (lag, reconciled)))
                .collect(),
            Err(err) => return internal(err),
        };
    // Per table: when a change from Airtable last reached its rows (the
    // inbound sync's `inbound:changed:<entity>` checkpoints).
    let changed: HashMap<String, chrono::DateTime<chrono::Utc>> = match sqlx::query_as(
        "SELECT substr(name, length('inbound:changed:') + 1), updated_at
           FROM sync_checkpoint WHERE name LIKE 'inbound:changed:%'",
    )
    .fetch_all(&services.pool)
    .await
    {
        Ok(rows) => rows.into_iter().collect(),
        Err(err) => return internal(err),
    };
    let last_notification: Option<chrono::DateTime<chrono::Utc>> =
        match sqlx::query_scalar("SELECT max(received_at) FROM sync_inbox_events")
            .fetch_one(&services.pool)
            .await
        {
            Ok(at) => at,
            Err(err) => return internal(err),
        };
    let webhook = checkpoints
        .iter()
        .find(|(name, _, _)| name.starts_with("inbound:webhook:"))
        .map(|(_, value, _)| {
            json!({
                "expiresAt": value.get("expiration_time"),
                "lastReadAt": value.get("last_read_at"),
                "broken": value.get("broken"),
                "lastNotificationAt": last_notification,
            })
        });
    let reconciles = services
        .inbound
        .as_ref()
        .map(|ctx| ctx.metrics().reconcile_progress())
        .unwrap_or_default();
    let shadow = services.api.shadow_differences();
    let pace = services
        .airtable
        .as_ref()
        .map(|client| client.metrics().bases)
        .unwrap_or_default();
    Json(json!({
        "airtableBases": pace.iter().map(base_pace_json).collect::<Vec<_>>(),
        "recentConflicts": recent.iter().map(conflict_json).collect::<Vec<_>>(),
        "stoppedParts": services.stopped.list(),
        "tables": outbound.iter().map(|s| {
            let (lag, reconciled) = positions.get(&s.entity).copied().unwrap_or_default();
            let reconcile = reconciles.get(&s.entity);
            json!({
                "entity": s.entity,
                "pending": s.pending,
                "inFlight": s.in_flight,
                "oldestPendingSeconds": s.oldest_pending_secs,
                "deadLetters": s.dead_letters,
                "lastPush": s.last_push,
                "lastInboundChange": changed.get(&s.entity),
                "lastReadSecondsAgo": lag,
                "lastReconcileAt": reconciled
                    .and_then(|secs| chrono::DateTime::from_timestamp(secs as i64, 0)),
                "reconcileRunning": reconcile.is_some_and(|r| r.running),
                "reconcileRecordsSeen": reconcile.map(|r| r.records_seen),
            })
        }).collect::<Vec<_>>(),
        "webhook": webhook,
        "inbound": checkpoints.iter().map(|(name, value, at)| json!({
            "name": name, "value": redact_secrets(value), "updatedAt": at,
        })).collect::<Vec<_>>(),
        "deadLetters": letters.iter().map(|l| json!({
            "id": l.id,
            "entity": l.entity,
            "rowId": l.row_id,
            "reason": l.reason,
            "attempts": l.attempts,
            "httpStatus": l.http_status,
            "airtableErrorType": l.airtable_error_type,
            "airtableErrorMessage": l.airtable_error_message,
            "lastError": l.last_error,
            "failedAt": l.failed_at,
        })).collect::<Vec<_>>(),
        "shadowReads": {
            "compared": shadow.compared,
            "differences": shadow.differences.iter().map(|((endpoint, field), count)| json!({
                "endpoint": endpoint, "field": field, "count": count,
            })).collect::<Vec<_>>(),
        },
        "backends": services.backends.iter().map(|(group, mode)| json!({
            "group": group.as_str(), "mode": mode.as_str(),
        })).collect::<Vec<_>>(),
        "history": services.history.points(),
        "invitations": {
            "transport": services.invitations.transport(),
            "automatic": services.invitations.automatic(),
        },
        "usersWithoutPasswordCount": waiting_count,
        "usersWithoutPassword": waiting.iter().map(|u| json!({
            "id": u.id, "email": u.email, "name": u.name, "createdAt": u.created_at,
            "invitedAt": u.invited_at, "invitationExpiresAt": u.invitation_expires_at,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// A base's share of Airtable's requests and its 429 episodes.
fn base_pace_json(pace: &airsync_airtable::BasePace) -> Value {
    json!({
        "baseId": pace.base_id,
        "sharePercent": pace.share * 100.0,
        "budgetPercent": pace.budget * 100.0,
        "requestsPerWindow": pace.requests_per_window,
        "windowMs": pace.window.as_millis() as u64,
        "recoveryStepSeconds": pace.recovery_step.as_secs(),
        "budgetKeptBy": super::health::budget_kept_by(pace),
        "pausedForSeconds": pace.paused_for.as_secs_f64(),
        "episodesByOthers": pace.episodes_by_others,
        "episodesByAirsync": pace.episodes_by_airsync,
        "recentEpisodes": pace.recent_episodes.iter().rev().map(|e| json!({
            "at": chrono::DateTime::<chrono::Utc>::from(e.at),
            "ownRequests": e.own_requests,
            "cause": e.cause.as_str(),
            "othersAtLeast": match e.cause {
                airsync_airtable::RateLimitCause::Others { at_least } => Some(at_least),
                airsync_airtable::RateLimitCause::Airsync => None,
            },
            "sharePercentBefore": e.share_before * 100.0,
            "sharePercentAfter": e.share_after * 100.0,
        })).collect::<Vec<_>>(),
    })
}

/// Conflicts the page shows; `/ops/api/conflicts` gives up to
/// [`MAX_CONFLICTS`].
const PAGE_CONFLICTS: i64 = 20;
const MAX_CONFLICTS: i64 = 500;

fn conflict_json(c: &LoggedConflict) -> Value {
    json!({
        "id": c.id,
        "entity": c.entity,
        "rowId": c.row_id,
        "airtableId": c.airtable_id,
        "field": c.field,
        "postgresValue": c.postgres_value,
        "airtableValue": c.airtable_value,
        "winner": c.winner,
        "at": c.at,
    })
}

/// The inbound sync's recent conflicts, newest first: `?limit=N` (1 to
/// 500, default 20).
pub async fn conflicts(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = refuse_unless_admin(&services, &headers) {
        return refusal;
    }
    let limit = match query.get("limit") {
        None => PAGE_CONFLICTS,
        Some(raw) => match raw.parse::<i64>() {
            Ok(limit) if (1..=MAX_CONFLICTS).contains(&limit) => limit,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_limit",
                    &format!("limit is a whole number from 1 to {MAX_CONFLICTS}"),
                )
            }
        },
    };
    match conflicts::recent(&services.pool, limit).await {
        Ok(recent) => Json(json!({
            "conflicts": recent.iter().map(conflict_json).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(err) => internal(err),
    }
}

/// What the page can do to one dead letter.
#[derive(Clone, Copy)]
enum LetterAction {
    Replay,
    Purge,
}

async fn act_on_letter(
    services: &Services,
    headers: &HeaderMap,
    raw_id: &str,
    action: LetterAction,
) -> Response {
    if let Some(refusal) = refuse_unless_admin(services, headers) {
        return refusal;
    }
    let Some(id) = raw_id.parse::<i64>().ok().filter(|id| *id > 0) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "a dead letter's id is a positive whole number",
        );
    };
    let (done, key) = match action {
        LetterAction::Replay => (
            dead_letters::replay(&services.pool, Some(id)).await,
            "replayed",
        ),
        LetterAction::Purge => (
            dead_letters::purge(&services.pool, Purge::One(id)).await,
            "purged",
        ),
    };
    match done {
        Ok(0) => error(StatusCode::NOT_FOUND, "not_found", "no such dead letter"),
        Ok(_) => {
            tracing::info!(
                dead_letter = id,
                action = key,
                "dead letter handled from the ops page"
            );
            Json(json!({ key: id })).into_response()
        }
        Err(err) => internal(err),
    }
}

/// A user without a password, for the page's invitations.
#[derive(sqlx::FromRow)]
struct WaitingUser {
    id: uuid::Uuid,
    email: String,
    name: String,
    created_at: chrono::DateTime<chrono::Utc>,
    invited_at: Option<chrono::DateTime<chrono::Utc>>,
    invitation_expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Invites a user without a password: a new setup link, sent through the
/// transport when there is one, and answered so that the admin can hand it
/// over (it is shown once, never stored).
pub async fn invite(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refusal) = refuse_unless_admin(&services, &headers) {
        return refusal;
    }
    let Ok(user) = id.parse::<uuid::Uuid>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            "a user's id is a UUID",
        );
    };
    match services.invitations.invite(&services.pool, user).await {
        Ok(invitation) => {
            tracing::info!(%user, transport = services.invitations.transport(), "user invited from the ops page");
            Json(json!({
                "email": invitation.email,
                "setupUrl": invitation.setup_url,
                "setupToken": invitation.setup_token,
                "expiresAt": invitation.expires_at,
                "sent": services.invitations.transport() != "none",
            }))
            .into_response()
        }
        Err(crate::invitations::InviteError::NoSuchUser(_)) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no user with this id is waiting for a password",
        ),
        Err(crate::invitations::InviteError::Send(reason)) => error(
            StatusCode::BAD_GATEWAY,
            "invitation_not_sent",
            &format!("the invitation could not be sent, so no link was made: {reason}"),
        ),
        Err(err) => internal(err),
    }
}

/// Puts one dead letter back in the outbox.
pub async fn replay(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    act_on_letter(&services, &headers, &id, LetterAction::Replay).await
}

/// Deletes one dead letter for good.
pub async fn purge(
    State(services): State<Arc<Services>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    act_on_letter(&services, &headers, &id, LetterAction::Purge).await
}

#[cfg(test)]
mod tests {
    use super::redact_secrets;
    use serde_json::json;

    #[test]
    fn checkpoint_secrets_are_hidden_from_the_page() {
        let value = json!({"webhook_id": "achX", "mac_secret_base64": "c2VjcmV0", "nested": [{"webhookSecret": 1}]});
        assert_eq!(
            redact_secrets(&value),
            json!({"webhook_id": "achX", "mac_secret_base64": "[redacted]", "nested": [{"webhookSecret": "[redacted]"}]})
        );
    }
}
