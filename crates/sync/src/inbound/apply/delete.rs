//! Records deleted in Airtable: the entity's `on_airtable_delete` policy
//! decides what happens to the row. A delete wins over any change the row
//! had meanwhile (docs/architecture.md, "Conflicts").

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{stamp_if_changed, Counts};
use crate::inbound::deferred;
use crate::inbound::schema::{ResolvedBase, ResolvedEntity};
use crate::mapping::{DeletePolicy, FieldKind};
use crate::outbox::{self, Operation};
use crate::rows::quote_ident;
use crate::versions;
use crate::{Error, Result};

/// Applies the deletes of `record_ids` of one entity: the id map forgets
/// them, and their rows are deleted, deactivated or kept per the policy.
/// `at` is when Airtable made the deletes (a payload's time), when known: a
/// delete of a row's earlier record made before the row's current record
/// was created is the team deleting the row (docs/sync.md, "A create tried
/// again").
pub(crate) async fn apply_deletes(
    conn: &mut PgConnection,
    base: &ResolvedBase,
    entity: &ResolvedEntity,
    record_ids: &[String],
    at: Option<DateTime<Utc>>,
    counts: &mut Counts,
) -> Result<()> {
    if record_ids.is_empty() {
        return Ok(());
    }
    let before = counts.rows_changed();
    let forgotten: Vec<(Uuid, String)> = sqlx::query_as(
        "DELETE FROM airtable_id_map WHERE entity = $1 AND airtable_id = ANY($2)
         RETURNING row_id, airtable_id",
    )
    .bind(entity.name())
    .bind(record_ids)
    .fetch_all(&mut *conn)
    .await?;
    let records: Vec<&str> = record_ids.iter().map(String::as_str).collect();
    deferred::clear(conn, &records).await?;
    let earlier = deleted_earlier_records(conn, entity, record_ids, at).await?;
    if !forgotten.is_empty() {
        // Remembered: a row kept (deactivated, ignored) has no record to
        // link to any more, and its links are left out of pushes.
        versions::bury_deleted_in_airtable(&mut *conn, entity.name(), &forgotten).await?;
        let rows: Vec<Uuid> = forgotten.iter().map(|(row, _)| *row).collect();
        apply_policy(conn, base, entity, &rows, counts).await?;
    }
    if !earlier.is_empty() {
        versions::bury_deleted_in_airtable(&mut *conn, entity.name(), &earlier).await?;
        let rows: Vec<Uuid> = earlier.iter().map(|(row, _)| *row).collect();
        apply_policy(conn, base, entity, &rows, counts).await?;
        // The row's current record is still in Airtable: a row deleted
        // takes it along, a row kept sends it its state.
        let kept: Vec<Uuid> = sqlx::query_scalar(&format!(
            "SELECT id FROM {} WHERE id = ANY($1)",
            quote_ident(&entity.mapping.table)
        ))
        .bind(&rows)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let operation = if kept.contains(&row) {
                Operation::Upsert
            } else {
                Operation::Delete
            };
            outbox::enqueue_change(&mut *conn, entity.name(), row, operation).await?;
        }
    }
    stamp_if_changed(conn, entity.name(), counts, before).await
}

/// Of `record_ids`, the earlier records of rows (`sync_earlier_record`)
/// whose delete, made at `at`, came before the row's current record was
/// created: (row, deleted record). Every one of them is forgotten; a delete
/// made after the current record existed removed a duplicate, and the row
/// keeps its record.
async fn deleted_earlier_records(
    conn: &mut PgConnection,
    entity: &ResolvedEntity,
    record_ids: &[String],
    at: Option<DateTime<Utc>>,
) -> Result<Vec<(Uuid, String)>> {
    let noted: Vec<(Uuid, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "WITH gone AS (
             DELETE FROM sync_earlier_record WHERE entity = $1 AND airtable_id = ANY($2)
             RETURNING row_id, airtable_id)
         SELECT gone.row_id, gone.airtable_id, m.record_created_at
           FROM gone LEFT JOIN airtable_id_map m ON m.entity = $1 AND m.row_id = gone.row_id",
    )
    .bind(entity.name())
    .bind(record_ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for (row, record, current_created) in noted {
        match (at, current_created) {
            (Some(at), Some(created)) if at < created => {
                tracing::info!(entity = %entity.name(), row_id = %row, %record,
                    "the team deleted the first record of a create tried again, before the retry made the row's current one; the delete wins");
                out.push((row, record));
            }
            _ => {
                tracing::info!(entity = %entity.name(), row_id = %row, %record,
                    "a duplicate record of a row was deleted; the row keeps its record");
            }
        }
    }
    Ok(out)
}

/// What the entity's `on_airtable_delete` policy does to rows whose record
/// the team deleted.
async fn apply_policy(
    conn: &mut PgConnection,
    base: &ResolvedBase,
    entity: &ResolvedEntity,
    rows: &[Uuid],
    counts: &mut Counts,
) -> Result<()> {
    let table = quote_ident(&entity.mapping.table);
    match entity.mapping.on_airtable_delete {
        DeletePolicy::Ignore => {
            tracing::info!(entity = %entity.name(), rows = rows.len(), "records deleted in Airtable; rows kept (policy ignore)");
        }
        DeletePolicy::Deactivate => {
            let done = sqlx::query(&format!(
                "UPDATE {table} SET active = false WHERE id = ANY($1) AND active"
            ))
            .bind(rows)
            .execute(&mut *conn)
            .await?;
            counts.rows_deactivated += done.rows_affected();
        }
        DeletePolicy::Delete => {
            delete_rows(conn, entity, &table, rows, counts).await?;
            versions::forget(&mut *conn, entity.name(), rows).await?;
            enqueue_cascaded_deletes(conn, base, entity).await?;
        }
    }
    Ok(())
}

/// Deletes the rows; a row that others still reference (a method with
/// usages) is deactivated instead when it has an `active` column, and kept
/// otherwise.
async fn delete_rows(
    conn: &mut PgConnection,
    entity: &ResolvedEntity,
    table: &str,
    rows: &[Uuid],
    counts: &mut Counts,
) -> Result<()> {
    sqlx::query("SAVEPOINT inbound_delete")
        .execute(&mut *conn)
        .await?;
    let all = sqlx::query(&format!("DELETE FROM {table} WHERE id = ANY($1)"))
        .bind(rows)
        .execute(&mut *conn)
        .await;
    match all {
        Ok(done) => {
            sqlx::query("RELEASE SAVEPOINT inbound_delete")
                .execute(&mut *conn)
                .await?;
            counts.rows_deleted += done.rows_affected();
            return Ok(());
        }
        Err(err) if is_still_referenced(&err) => {
            undo(conn).await?;
        }
        Err(err) => return Err(err.into()),
    }
    for row in rows {
        sqlx::query("SAVEPOINT inbound_delete")
            .execute(&mut *conn)
            .await?;
        let one = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
            .bind(row)
            .execute(&mut *conn)
            .await;
        match one {
            Ok(done) => {
                counts.rows_deleted += done.rows_affected();
                sqlx::query("RELEASE SAVEPOINT inbound_delete")
                    .execute(&mut *conn)
                    .await?;
                continue;
            }
            Err(err) if is_still_referenced(&err) => {
                sqlx::query("ROLLBACK TO SAVEPOINT inbound_delete")
                    .execute(&mut *conn)
                    .await?;
            }
            Err(err) => return Err(err.into()),
        }
        let deactivated = sqlx::query(&format!(
            "UPDATE {table} SET active = false WHERE id = $1 AND active"
        ))
        .bind(row)
        .execute(&mut *conn)
        .await;
        match deactivated {
            Ok(done) => {
                counts.rows_deactivated += done.rows_affected();
                tracing::info!(entity = %entity.name(), row_id = %row, "record deleted in Airtable; its row is still referenced, so it was deactivated");
                sqlx::query("RELEASE SAVEPOINT inbound_delete")
                    .execute(&mut *conn)
                    .await?;
            }
            Err(_) => {
                tracing::warn!(entity = %entity.name(), row_id = %row, "record deleted in Airtable; its row is still referenced and has no active column, so it was kept");
                undo(conn).await?;
            }
        }
    }
    Ok(())
}

/// Rolls back to the savepoint and releases it.
async fn undo(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("ROLLBACK TO SAVEPOINT inbound_delete")
        .execute(&mut *conn)
        .await?;
    sqlx::query("RELEASE SAVEPOINT inbound_delete")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn is_still_referenced(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("23503"))
}

/// Rows deleted in PostgreSQL by a cascade of this transaction (a
/// program's schedule days) were not captured, because inbound writes are
/// not; their Airtable records must go too. Enqueues a delete for every row
/// of an entity linking (directly or not) to `entity` that has a record but
/// no longer a row.
async fn enqueue_cascaded_deletes(
    conn: &mut PgConnection,
    base: &ResolvedBase,
    entity: &ResolvedEntity,
) -> Result<()> {
    let mut reached: BTreeSet<String> = BTreeSet::new();
    let mut frontier = vec![entity.name().to_owned()];
    while let Some(name) = frontier.pop() {
        for child in &base.entities {
            let links_here = child.fields.iter().any(|f| {
                f.kind() == FieldKind::Link && f.mapping.target.as_deref() == Some(name.as_str())
            });
            if links_here && reached.insert(child.name().to_owned()) {
                frontier.push(child.name().to_owned());
            }
        }
    }
    let children: Vec<(String, String)> = base
        .entities
        .iter()
        .filter(|e| reached.contains(e.name()) && e.mapping.syncs_outbound())
        .map(|e| (e.name().to_owned(), quote_ident(&e.mapping.table)))
        .collect();
    for (child, table) in children {
        sqlx::query(&format!(
            "SELECT sync_enqueue_change($1, m.row_id, 'delete') FROM airtable_id_map m
              WHERE m.entity = $1
                AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = m.row_id)
                AND NOT EXISTS (SELECT 1 FROM sync_outbox o WHERE o.entity = $1 AND o.row_id = m.row_id)"
        ))
        .bind(&child)
        .execute(&mut *conn)
        .await
        .map_err(Error::from)?;
    }
    Ok(())
}
