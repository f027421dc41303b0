//! Writing the plans of a batch: a few statements for the whole batch, and
//! record by record when one of them is refused.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::plan::{inbound_columns, RecordPlan};
use super::Counts;
use crate::conflicts::{self, NewConflict};
use crate::inbound::deferred;
use crate::inbound::merge::{Push, Winner};
use crate::inbound::schema::ResolvedEntity;
use crate::rows::quote_ident;
use crate::versions;
use crate::{Error, Result};

/// Writes the plans; a record the database refuses is set aside with the
/// database's reason and the others are written.
pub(crate) async fn write_plans(
    conn: &mut PgConnection,
    entity: &ResolvedEntity,
    plans: Vec<RecordPlan>,
    counts: &mut Counts,
) -> Result<()> {
    if plans.is_empty() {
        return Ok(());
    }
    savepoint(conn, "SAVEPOINT inbound_batch").await?;
    match write_batch(conn, entity, &plans).await {
        Ok(pushes) => {
            counts.pushes_enqueued += pushes;
            savepoint(conn, "RELEASE SAVEPOINT inbound_batch").await?;
            plans.iter().for_each(|p| count(entity, p, counts));
            return Ok(());
        }
        Err(err) if refused_row(&err).is_some() => {
            savepoint(conn, "ROLLBACK TO SAVEPOINT inbound_batch").await?;
            savepoint(conn, "RELEASE SAVEPOINT inbound_batch").await?;
        }
        Err(err) => return Err(err),
    }
    for plan in plans {
        savepoint(conn, "SAVEPOINT inbound_record").await?;
        match write_batch(conn, entity, std::slice::from_ref(&plan)).await {
            Ok(pushes) => {
                counts.pushes_enqueued += pushes;
                savepoint(conn, "RELEASE SAVEPOINT inbound_record").await?;
                count(entity, &plan, counts);
            }
            Err(err) => {
                let Some(reason) = refused_row(&err) else {
                    return Err(err);
                };
                savepoint(conn, "ROLLBACK TO SAVEPOINT inbound_record").await?;
                savepoint(conn, "RELEASE SAVEPOINT inbound_record").await?;
                tracing::warn!(entity = %entity.name(), record = %plan.record_id, %reason,
                    "PostgreSQL refused the record; set aside to try again");
                deferred::park(conn, entity.name(), &plan.record_id, &reason).await?;
                counts.records_deferred += 1;
            }
        }
    }
    Ok(())
}

async fn savepoint(conn: &mut PgConnection, statement: &str) -> Result<()> {
    sqlx::query(statement).execute(&mut *conn).await?;
    Ok(())
}

/// The database's reason when it refused a row (a constraint, a value the
/// column cannot take, a rule raised by a trigger); `None` for any other
/// failure, which ends the batch.
fn refused_row(err: &Error) -> Option<String> {
    let Error::Database(sqlx::Error::Database(db)) = err else {
        return None;
    };
    let code = db.code()?;
    if !(code.starts_with("23") || code.starts_with("22")) {
        return None;
    }
    Some(match db.constraint() {
        Some(constraint) => format!("{} ({constraint})", db.message()),
        None => db.message().to_owned(),
    })
}

fn count(entity: &ResolvedEntity, plan: &RecordPlan, counts: &mut Counts) {
    if plan.insert.is_some() {
        counts.rows_created += 1;
        if let Some(created_at) = plan.user_created_at {
            counts.user_inserted(created_at);
        }
    } else if plan.update.is_some() {
        counts.rows_updated += 1;
    } else {
        counts.rows_unchanged += 1;
    }
    for conflict in &plan.conflicts {
        match conflict.winner {
            Winner::Airtable => {
                counts.conflicts_airtable_won += 1;
                tracing::info!(entity = %entity.name(), record = %plan.record_id, row_id = %plan.row_id,
                    field = %conflict.field, airtable = %conflict.airtable, postgres = %conflict.postgres,
                    "conflict: Airtable's later change overwrote PostgreSQL's value");
            }
            Winner::Postgres => {
                counts.conflicts_postgres_won += 1;
                tracing::info!(entity = %entity.name(), record = %plan.record_id, row_id = %plan.row_id,
                    field = %conflict.field, airtable = %conflict.airtable, postgres = %conflict.postgres,
                    "conflict: PostgreSQL's later change kept; Airtable's value will be overwritten");
            }
        }
    }
}

/// Writes the plans; answers how many pushes it enqueued.
async fn write_batch(
    conn: &mut PgConnection,
    entity: &ResolvedEntity,
    plans: &[RecordPlan],
) -> Result<u64> {
    let mut pushes = 0;
    let table = quote_ident(&entity.mapping.table);
    let columns: Vec<String> = std::iter::once("id")
        .chain(inbound_columns(entity))
        .map(quote_ident)
        .collect();
    let list = columns.join(", ");

    let inserts: Vec<Value> = plans
        .iter()
        .filter_map(|p| p.insert.clone().map(Value::Object))
        .collect();
    if !inserts.is_empty() {
        sqlx::query(&format!(
            "INSERT INTO {table} ({list}) SELECT {list} FROM jsonb_populate_recordset(NULL::{table}, $1)"
        ))
        .bind(Value::Array(inserts))
        .execute(&mut *conn)
        .await?;
    }

    let updates: Vec<Value> = plans
        .iter()
        .filter_map(|p| p.update.clone().map(Value::Object))
        .collect();
    if !updates.is_empty() && columns.len() > 1 {
        let set: Vec<String> = columns[1..]
            .iter()
            .map(|c| format!("{c} = r.{c}"))
            .collect();
        sqlx::query(&format!(
            "UPDATE {table} t SET {} FROM jsonb_populate_recordset(NULL::{table}, $1) r WHERE t.id = r.id",
            set.join(", ")
        ))
        .bind(Value::Array(updates))
        .execute(&mut *conn)
        .await?;
    }

    write_links(conn, entity, plans).await?;
    let stamps: Vec<(Uuid, serde_json::Map<String, Value>)> = plans
        .iter()
        .filter_map(|p| {
            let at = p.taken_at?;
            let changed: serde_json::Map<String, Value> =
                p.taken.iter().map(|k| (k.clone(), json!(at))).collect();
            (!changed.is_empty()).then_some((p.row_id, changed))
        })
        .collect();
    versions::stamp(conn, entity.name(), &stamps).await?;

    let mappings: Vec<Value> = plans
        .iter()
        .filter_map(|p| {
            p.synced.as_ref().map(
                |synced| json!({"row_id": p.row_id, "airtable_id": p.record_id, "synced": synced}),
            )
        })
        .collect();
    if !mappings.is_empty() {
        sqlx::query(
            "INSERT INTO airtable_id_map (entity, row_id, airtable_id, synced_fields, agreed_at)
             SELECT $1, x.row_id, x.airtable_id, x.synced, clock_timestamp()
               FROM jsonb_to_recordset($2) AS x(row_id uuid, airtable_id text, synced jsonb)
             ON CONFLICT (entity, row_id) DO UPDATE
                SET airtable_id = EXCLUDED.airtable_id, synced_fields = EXCLUDED.synced_fields,
                    agreed_at = EXCLUDED.agreed_at",
        )
        .bind(entity.name())
        .bind(Value::Array(mappings))
        .execute(&mut *conn)
        .await?;
    }

    let ids = |wanted: Push| -> Vec<Uuid> {
        plans
            .iter()
            .filter(|p| p.push == wanted)
            .map(|p| p.row_id)
            .collect()
    };
    let always = ids(Push::Always);
    if !always.is_empty() {
        sqlx::query("SELECT sync_enqueue_change($1, x, 'upsert') FROM unnest($2::uuid[]) x")
            .bind(entity.name())
            .bind(&always)
            .execute(&mut *conn)
            .await?;
        pushes += always.len() as u64;
    }
    // Normally the capture trigger enqueued PostgreSQL's change already; an
    // event is added only when none is waiting or in flight.
    let if_none = ids(Push::IfNoEvent);
    if !if_none.is_empty() {
        let enqueued: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (
                 SELECT sync_enqueue_change($1, x, 'upsert') FROM unnest($2::uuid[]) x
                  WHERE NOT EXISTS (SELECT 1 FROM sync_outbox o WHERE o.entity = $1 AND o.row_id = x)
             ) enqueued",
        )
        .bind(entity.name())
        .bind(&if_none)
        .fetch_one(&mut *conn)
        .await?;
        pushes += u64::try_from(enqueued).unwrap_or(0);
    }
    let deletes: Vec<Uuid> = plans
        .iter()
        .filter(|p| p.push_delete)
        .map(|p| p.row_id)
        .collect();
    if !deletes.is_empty() {
        // A record of a deleted row that the id map does not know (an orphan
        // of a create whose answer was lost) is mapped to the row, so that
        // the worker knows what to delete.
        let records: Vec<&str> = plans
            .iter()
            .filter(|p| p.push_delete)
            .map(|p| p.record_id.as_str())
            .collect();
        sqlx::query(
            "INSERT INTO airtable_id_map (entity, row_id, airtable_id)
             SELECT $1, x.row_id, x.record FROM unnest($2::uuid[], $3::text[]) AS x(row_id, record)
             ON CONFLICT DO NOTHING",
        )
        .bind(entity.name())
        .bind(&deletes)
        .bind(&records)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "SELECT sync_enqueue_change($1, x, 'delete') FROM unnest($2::uuid[]) x
              WHERE NOT EXISTS (SELECT 1 FROM sync_outbox o WHERE o.entity = $1 AND o.row_id = x)",
        )
        .bind(entity.name())
        .bind(&deletes)
        .execute(&mut *conn)
        .await?;
    }

    let conflicts: Vec<NewConflict<'_>> = plans
        .iter()
        .flat_map(|p| {
            p.conflicts.iter().map(|c| NewConflict {
                row_id: p.row_id,
                airtable_id: &p.record_id,
                field: &c.field,
                postgres: &c.postgres,
                airtable: &c.airtable,
                winner: match c.winner {
                    Winner::Airtable => "airtable",
                    Winner::Postgres => "postgres",
                },
            })
        })
        .collect();
    conflicts::record(conn, entity.name(), &conflicts).await?;

    let records: Vec<&str> = plans.iter().map(|p| p.record_id.as_str()).collect();
    deferred::clear(conn, &records).await?;
    Ok(pushes)
}

/// Replaces the join-table rows of the `links` fields taken from Airtable.
async fn write_links(
    conn: &mut PgConnection,
    entity: &ResolvedEntity,
    plans: &[RecordPlan],
) -> Result<()> {
    let mut by_field: BTreeMap<usize, Vec<(Uuid, &Vec<Uuid>)>> = BTreeMap::new();
    for plan in plans {
        for (index, targets) in &plan.links {
            by_field
                .entry(*index)
                .or_default()
                .push((plan.row_id, targets));
        }
    }
    for (index, owners) in by_field {
        let Some(join) = entity
            .fields
            .get(index)
            .and_then(|f| f.mapping.join.as_ref())
        else {
            continue;
        };
        let table = quote_ident(&join.table);
        let owner = quote_ident(&join.column);
        let target = quote_ident(&join.target);
        let owner_ids: Vec<Uuid> = owners.iter().map(|(id, _)| *id).collect();
        sqlx::query(&format!("DELETE FROM {table} WHERE {owner} = ANY($1)"))
            .bind(&owner_ids)
            .execute(&mut *conn)
            .await?;
        let mut left = Vec::new();
        let mut right = Vec::new();
        let mut positions = Vec::new();
        for (row_id, targets) in &owners {
            for (position, linked) in targets.iter().enumerate() {
                left.push(*row_id);
                right.push(*linked);
                positions.push(i32::try_from(position).unwrap_or(i32::MAX));
            }
        }
        if left.is_empty() {
            continue;
        }
        match &join.order {
            Some(order) => {
                sqlx::query(&format!(
                    "INSERT INTO {table} ({owner}, {target}, {}) SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int4[])",
                    quote_ident(order)
                ))
                .bind(&left)
                .bind(&right)
                .bind(&positions)
                .execute(&mut *conn)
                .await?;
            }
            None => {
                sqlx::query(&format!(
                    "INSERT INTO {table} ({owner}, {target}) SELECT * FROM unnest($1::uuid[], $2::uuid[])"
                ))
                .bind(&left)
                .bind(&right)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}
