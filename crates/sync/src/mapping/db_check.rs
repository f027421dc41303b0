//! Checking a mapping against the PostgreSQL schema it runs on.

use std::collections::HashMap;

use sqlx::PgPool;

use super::model::{DeletePolicy, EntityMapping, FieldKind, Mapping};
use super::{MappingError, ProblemList};

/// A column's type as `information_schema` names it (`udt_name`).
type Columns = HashMap<String, String>;

/// Checks that every table and column of the mapping exists with a type its
/// conversion can use; every mismatch is reported at once.
pub async fn check_against_database(mapping: &Mapping, pool: &PgPool) -> Result<(), MappingError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, udt_name::text
           FROM information_schema.columns
          WHERE table_schema = current_schema()",
    )
    .fetch_all(pool)
    .await?;
    let mut tables: HashMap<String, Columns> = HashMap::new();
    for (table, column, udt) in rows {
        tables.entry(table).or_default().insert(column, udt);
    }
    let mut problems = ProblemList::new("the PostgreSQL schema");
    for entity in mapping.entities() {
        check_entity(entity, &tables, &mut problems);
    }
    problems.finish()
}

fn check_entity(
    entity: &EntityMapping,
    tables: &HashMap<String, Columns>,
    problems: &mut ProblemList,
) {
    let Some(columns) = tables.get(&entity.table) else {
        problems.entity(
            &entity.name,
            format!("table {} does not exist", entity.table),
        );
        return;
    };
    for needed in ["id", "updated_at"] {
        if !columns.contains_key(needed) {
            problems.entity(
                &entity.name,
                format!("table {} has no {needed} column", entity.table),
            );
        }
    }
    if let Some(key) = &entity.natural_key {
        if !columns.contains_key(key) {
            problems.entity(
                &entity.name,
                format!(
                    "natural key column {key} does not exist in {}",
                    entity.table
                ),
            );
        }
    }
    if entity.on_airtable_delete == DeletePolicy::Deactivate
        && columns.get("active").map(String::as_str) != Some("bool")
    {
        problems.entity(
            &entity.name,
            format!(
                "on_airtable_delete = \"deactivate\" needs a boolean column active in {}",
                entity.table
            ),
        );
    }
    for field in &entity.fields {
        if let Some(column) = &field.column {
            match columns.get(column) {
                None => problems.field(
                    &entity.name,
                    &field.field,
                    format!("column {}.{column} does not exist", entity.table),
                ),
                Some(udt) if !column_fits(field.kind, udt) => problems.field(
                    &entity.name,
                    &field.field,
                    format!(
                        "column {}.{column} is {udt}, which a {:?} field cannot hold",
                        entity.table, field.kind
                    ),
                ),
                Some(_) => {}
            }
        }
        if let Some(join) = &field.join {
            let Some(join_columns) = tables.get(&join.table) else {
                problems.field(
                    &entity.name,
                    &field.field,
                    format!("join table {} does not exist", join.table),
                );
                continue;
            };
            for column in [&join.column, &join.target] {
                if join_columns.get(column).map(String::as_str) != Some("uuid") {
                    problems.field(
                        &entity.name,
                        &field.field,
                        format!(
                            "join column {}.{column} is missing or not a uuid",
                            join.table
                        ),
                    );
                }
            }
            if let Some(order) = &join.order {
                if !matches!(
                    join_columns.get(order).map(String::as_str),
                    Some("int2" | "int4" | "int8")
                ) {
                    problems.field(
                        &entity.name,
                        &field.field,
                        format!(
                            "order column {}.{order} is missing or not an integer",
                            join.table
                        ),
                    );
                }
            }
        }
    }
}

/// Whether a column of type `udt` can hold a field of `kind`.
fn column_fits(kind: FieldKind, udt: &str) -> bool {
    match kind {
        FieldKind::Text | FieldKind::LongText | FieldKind::SingleSelect => {
            matches!(udt, "text" | "varchar" | "bpchar" | "citext")
        }
        FieldKind::Number => matches!(
            udt,
            "numeric" | "float4" | "float8" | "int2" | "int4" | "int8"
        ),
        FieldKind::Integer => matches!(udt, "int2" | "int4" | "int8"),
        FieldKind::Boolean => udt == "bool",
        FieldKind::Date => udt == "date",
        FieldKind::DateTime => matches!(udt, "timestamptz" | "timestamp"),
        FieldKind::MultiSelect | FieldKind::List => matches!(udt, "_text" | "_varchar"),
        FieldKind::Link | FieldKind::PgId => udt == "uuid",
        FieldKind::Links => false,
    }
}
