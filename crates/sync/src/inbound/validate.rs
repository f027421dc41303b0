//! `airsync validate-backfill`: compares every mapped table between
//! PostgreSQL and Airtable, counts and field by field for every record, and
//! reports per table what is missing on either side and what differs, with
//! examples.

use std::collections::{HashMap, HashSet};
use std::fmt;

use airsync_airtable::{ListOptions, Priority};
use futures_util::TryStreamExt;
use serde_json::Value;
use uuid::Uuid;

use super::cells::row_cell;
use super::context::InboundContext;
use super::reconcile::select;
use super::schema::ResolvedEntity;
use crate::cells::LinkIds;
use crate::id_map;
use crate::mapping::DeletePolicy;
use crate::rows::{load_rows, quote_ident};
use crate::Result;

/// Examples kept per kind of difference and table.
const EXAMPLES: usize = 5;

/// One difference, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The Airtable record, when there is one.
    pub record_id: Option<String>,
    /// The row, when there is one.
    pub row_id: Option<Uuid>,
    /// The field that differs (`None`: the whole record is missing).
    pub field: Option<String>,
    /// Airtable's cell (canonical).
    pub airtable: Value,
    /// PostgreSQL's value (canonical).
    pub postgres: Value,
}

/// The comparison of one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableValidation {
    /// The entity.
    pub entity: String,
    /// Records in Airtable.
    pub airtable_records: u64,
    /// Rows in PostgreSQL.
    pub postgres_rows: u64,
    /// Records with no row.
    pub missing_in_postgres: u64,
    /// Rows with no record.
    pub missing_in_airtable: u64,
    /// Records whose fields differ from their row's.
    pub differing: u64,
    /// A few of each kind.
    pub examples: Vec<Difference>,
}

impl TableValidation {
    /// Whether both sides agree.
    pub fn is_clean(&self) -> bool {
        self.missing_in_postgres == 0 && self.missing_in_airtable == 0 && self.differing == 0
    }
}

/// The comparison of every table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidationReport {
    /// In the mapping's order.
    pub tables: Vec<TableValidation>,
}

impl ValidationReport {
    /// Whether every table agrees.
    pub fn is_clean(&self) -> bool {
        self.tables.iter().all(TableValidation::is_clean)
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for table in &self.tables {
            let verdict = if table.is_clean() { "ok" } else { "DIFFERS" };
            writeln!(
                f,
                "{:<22} {verdict:<7} Airtable {:>7}  PostgreSQL {:>7}  missing in PostgreSQL {:>5}  missing in Airtable {:>5}  differing {:>5}",
                table.entity,
                table.airtable_records,
                table.postgres_rows,
                table.missing_in_postgres,
                table.missing_in_airtable,
                table.differing
            )?;
            for example in &table.examples {
                let record = example.record_id.as_deref().unwrap_or("-");
                let row = example
                    .row_id
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "-".into());
                match &example.field {
                    Some(field) => writeln!(
                        f,
                        "    record {record} (row {row}) field {field:?}: Airtable {} / PostgreSQL {}",
                        example.airtable, example.postgres
                    )?,
                    None if example.record_id.is_some() => {
                        writeln!(f, "    record {record} has no row in PostgreSQL")?
                    }
                    None => writeln!(f, "    row {row} has no record in Airtable")?,
                }
            }
        }
        Ok(())
    }
}

/// Compares the chosen tables (all when `table` is `None`).
pub async fn validate_backfill(
    ctx: &InboundContext,
    table: Option<&str>,
) -> Result<ValidationReport> {
    ctx.forget_schema();
    let base = ctx.schema().await?;
    let mut report = ValidationReport::default();
    let progress = ctx.settings().progress.clone();
    for entity in select(&base, table)? {
        let part = entity.mapping.airtable_table.as_str();
        if let Some(progress) = &progress {
            progress.start(part, None);
        }
        let validated = validate_table(ctx, entity).await?;
        if let Some(progress) = &progress {
            progress.finish(part, validated.airtable_records);
        }
        report.tables.push(validated);
    }
    Ok(report)
}

async fn validate_table(ctx: &InboundContext, entity: &ResolvedEntity) -> Result<TableValidation> {
    let mut out = TableValidation {
        entity: entity.name().to_owned(),
        ..Default::default()
    };
    let mut seen_rows: HashSet<Uuid> = HashSet::new();
    let mut pages = ctx
        .client()
        .with_priority(Priority::Background)
        .table(ctx.base_id(), entity.table_id.as_str())
        .pages(ListOptions::new().fields(entity.field_ids()).by_field_id());
    let (mut missing_examples, mut differing_examples) = (0, 0);
    while let Some(page) = pages.try_next().await? {
        out.airtable_records += page.records.len() as u64;
        if let Some(progress) = &ctx.settings().progress {
            progress.advance(&entity.mapping.airtable_table, out.airtable_records);
        }
        let ids: Vec<String> = page.records.iter().map(|r| r.id.clone()).collect();
        let mapped: HashMap<String, Uuid> = sqlx::query_as::<_, (String, Uuid)>(
            "SELECT airtable_id, row_id FROM airtable_id_map WHERE entity = $1 AND airtable_id = ANY($2)",
        )
        .bind(entity.name())
        .bind(&ids)
        .fetch_all(ctx.pool())
        .await?
        .into_iter()
        .collect();
        let row_ids: Vec<Uuid> = mapped.values().copied().collect();
        let rows = load_rows(ctx.pool(), &entity.mapping, &row_ids).await?;
        let links = linked_record_ids(ctx, entity, rows.values()).await?;
        for record in &page.records {
            let Some(row) = mapped.get(&record.id).and_then(|id| rows.get(id)) else {
                out.missing_in_postgres += 1;
                if missing_examples < EXAMPLES {
                    missing_examples += 1;
                    out.examples.push(Difference {
                        record_id: Some(record.id.clone()),
                        row_id: mapped.get(&record.id).copied(),
                        field: None,
                        airtable: Value::Null,
                        postgres: Value::Null,
                    });
                }
                continue;
            };
            seen_rows.insert(row.id);
            let mut differs = false;
            for field in &entity.fields {
                let theirs = field.airtable_value(record.fields.get(&field.id));
                let ours = row_cell(&field.mapping, row, &links);
                if theirs == ours {
                    continue;
                }
                differs = true;
                if differing_examples < EXAMPLES {
                    differing_examples += 1;
                    out.examples.push(Difference {
                        record_id: Some(record.id.clone()),
                        row_id: Some(row.id),
                        field: Some(field.key().to_owned()),
                        airtable: theirs,
                        postgres: ours,
                    });
                }
            }
            out.differing += u64::from(differs);
        }
    }

    // Rows no record showed. A row deactivated because the team deleted its
    // record has no record on purpose.
    let table = quote_ident(&entity.mapping.table);
    let keep_deactivated = if entity.mapping.on_airtable_delete == DeletePolicy::Deactivate {
        "AND (t.active OR EXISTS (SELECT 1 FROM airtable_id_map m WHERE m.entity = $2 AND m.row_id = t.id))"
    } else {
        "AND $2::text IS NOT NULL"
    };
    let seen: Vec<Uuid> = seen_rows.into_iter().collect();
    let (count, extra): (i64, Vec<Uuid>) = sqlx::query_as(&format!(
        "WITH extra AS (SELECT t.id FROM {table} t WHERE NOT (t.id = ANY($1)) {keep_deactivated})
         SELECT (SELECT count(*) FROM extra), coalesce((SELECT array_agg(id) FROM (SELECT id FROM extra LIMIT {EXAMPLES}) e), '{{}}')"
    ))
    .bind(&seen)
    .bind(entity.name())
    .fetch_one(ctx.pool())
    .await?;
    out.missing_in_airtable = u64::try_from(count).unwrap_or(0);
    out.examples.extend(extra.into_iter().map(|row| Difference {
        record_id: None,
        row_id: Some(row),
        field: None,
        airtable: Value::Null,
        postgres: Value::Null,
    }));
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(ctx.pool())
        .await?;
    out.postgres_rows = u64::try_from(total).unwrap_or(0);
    Ok(out)
}

async fn linked_record_ids<'r>(
    ctx: &InboundContext,
    entity: &ResolvedEntity,
    rows: impl Iterator<Item = &'r crate::rows::RowState>,
) -> Result<LinkIds> {
    let mut wanted: HashMap<&str, Vec<Uuid>> = HashMap::new();
    for row in rows {
        for (target, id) in row.linked_rows(&entity.mapping) {
            wanted.entry(target).or_default().push(id);
        }
    }
    let mut out = LinkIds::new();
    for (target, ids) in wanted {
        for (row_id, record) in id_map::airtable_ids(ctx.pool(), target, &ids).await? {
            out.insert((target.to_owned(), row_id), record);
        }
    }
    Ok(out)
}
