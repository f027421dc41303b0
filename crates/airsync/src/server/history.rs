//! The last hour of the sync, sampled in the process every [`STEP`] for
//! the ops page's charts: the outbox's depth and oldest age, records sent
//! and received, Airtable's requests and 429s, and the inbound lag. Kept in
//! memory (a ring of [`KEPT`] points): a restart starts the charts afresh.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airsync_sync::status::outbound_status;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::Services;

/// How often a point is taken.
pub const STEP: Duration = Duration::from_secs(10);
/// Points kept: an hour.
pub const KEPT: usize = 360;

/// The sync at one moment. Counters are totals since the process started
/// (the page draws their rate); `None` where the process does not run the
/// part.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    pub at: DateTime<Utc>,
    pub outbox_pending: i64,
    pub oldest_pending_seconds: i64,
    pub sent: Option<u64>,
    pub received: Option<u64>,
    pub airtable_requests: Option<u64>,
    pub rate_limited: Option<u64>,
    pub inbound_lag_seconds: Option<f64>,
}

/// The ring of points.
#[derive(Debug, Default)]
pub struct History {
    points: Mutex<VecDeque<Point>>,
}

impl History {
    /// Every point kept, oldest first.
    pub fn points(&self) -> Vec<Point> {
        self.lock().iter().cloned().collect()
    }

    /// Adds a point, forgetting the oldest past [`KEPT`].
    pub fn record(&self, point: Point) {
        let mut points = self.lock();
        if points.len() == KEPT {
            points.pop_front();
        }
        points.push_back(point);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Point>> {
        self.points
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The sync now, or `None` when the database does not answer within a
/// second (the chart then shows a gap).
pub async fn sample(services: &Services) -> Option<Point> {
    let statuses = tokio::time::timeout(
        Duration::from_secs(1),
        outbound_status(&services.pool, &services.mapping),
    )
    .await
    .ok()?
    .ok()?;
    let lag = match tokio::time::timeout(
        Duration::from_secs(1),
        super::metrics::inbound_positions(&services.pool, &services.mapping),
    )
    .await
    {
        Ok(Ok(positions)) => positions
            .iter()
            .filter_map(|(_, lag, _)| *lag)
            .reduce(f64::max),
        _ => None,
    };
    let airtable = services.airtable.as_ref().map(|client| client.metrics());
    Some(Point {
        at: Utc::now(),
        outbox_pending: statuses.iter().map(|s| s.pending).sum(),
        oldest_pending_seconds: statuses
            .iter()
            .filter_map(|s| s.oldest_pending_secs)
            .max()
            .unwrap_or(0),
        sent: services.worker.as_ref().map(|w| w.snapshot().sent),
        received: services.inbound.as_ref().map(|ctx| {
            let s = ctx.metrics().snapshot();
            s.rows_created + s.rows_updated + s.rows_deleted + s.rows_deactivated
        }),
        airtable_requests: airtable
            .as_ref()
            .map(|m| m.requests.iter().map(|r| r.count).sum()),
        rate_limited: airtable.as_ref().map(|m| m.rate_limited),
        inbound_lag_seconds: lag,
    })
}

/// Takes a point every `step` ([`STEP`] in `serve`; tests take them
/// faster) until `stop` turns true.
pub async fn run(services: Arc<Services>, step: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(step);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stop.borrow() {
        tokio::select! {
            _ = ticker.tick() => {
                if let Some(point) = sample(&services).await {
                    services.history.record(point);
                }
            }
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(n: i64) -> Point {
        Point {
            at: Utc::now(),
            outbox_pending: n,
            oldest_pending_seconds: 0,
            sent: None,
            received: None,
            airtable_requests: None,
            rate_limited: None,
            inbound_lag_seconds: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_hour_oldest_first() {
        let history = History::default();
        for n in 0..(KEPT as i64 + 5) {
            history.record(point(n));
        }
        let points = history.points();
        assert_eq!(points.len(), KEPT);
        assert_eq!(points[0].outbox_pending, 5);
        assert_eq!(points[KEPT - 1].outbox_pending, KEPT as i64 + 4);
    }
}
