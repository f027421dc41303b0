//! The state of the sync per entity, for `airsync sync status`, the health
//! endpoint and the ops page.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::mapping::Mapping;
use crate::Result;

/// The outbound state of one entity.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EntityStatus {
    /// The entity.
    pub entity: String,
    /// Events waiting or in flight.
    pub pending: i64,
    /// Events claimed by a worker now.
    pub in_flight: i64,
    /// Age in seconds of the oldest waiting change.
    pub oldest_pending_secs: Option<i64>,
    /// Dead letters.
    pub dead_letters: i64,
    /// When a record of this entity was last pushed to Airtable.
    pub last_push: Option<DateTime<Utc>>,
}

/// The outbound state of every mapped entity, in the mapping's order, plus
/// any entity that has events but is no longer mapped.
pub async fn outbound_status(pool: &PgPool, mapping: &Mapping) -> Result<Vec<EntityStatus>> {
    let mut statuses: Vec<EntityStatus> = sqlx::query_as(
        "WITH entities AS (
             SELECT unnest($1::text[]) AS entity
             UNION SELECT DISTINCT entity FROM sync_outbox
             UNION SELECT DISTINCT entity FROM sync_dead_letter
         )
         SELECT e.entity,
                (SELECT count(*) FROM sync_outbox o WHERE o.entity = e.entity) AS pending,
                (SELECT count(*) FROM sync_outbox o WHERE o.entity = e.entity AND o.state = 'leased') AS in_flight,
                (SELECT extract(epoch FROM now() - min(o.created_at))::bigint FROM sync_outbox o
                  WHERE o.entity = e.entity) AS oldest_pending_secs,
                (SELECT count(*) FROM sync_dead_letter d WHERE d.entity = e.entity) AS dead_letters,
                (SELECT max(m.last_pushed_at) FROM airtable_id_map m WHERE m.entity = e.entity) AS last_push
           FROM entities e",
    )
    .bind(mapping.entities().iter().map(|e| e.name.clone()).collect::<Vec<_>>())
    .fetch_all(pool)
    .await?;
    let position = |name: &str| {
        mapping
            .entities()
            .iter()
            .position(|e| e.name == name)
            .unwrap_or(usize::MAX)
    };

    statuses
        .sort_by(|a, b| (position(&a.entity), &a.entity).cmp(&(position(&b.entity), &b.entity)));
    Ok(statuses)
}
