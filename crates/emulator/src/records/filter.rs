//! Formulas and sorting applied to records: the bridge between stored
//! cells and the formula evaluator.

use std::cmp::Ordering;

use serde_json::Value as Json;

use crate::clock::Millis;
use crate::error::ApiError;
use crate::formula::{self, Context, Expr, Value};
use crate::model::{Base, Field, FieldType, Record, SortSpec, Table};
use crate::render;

/// `INVALID_FILTER_BY_FORMULA` with Airtable's prefix.
pub(crate) fn invalid_formula(reason: &str) -> ApiError {
    ApiError::unprocessable(
        "INVALID_FILTER_BY_FORMULA",
        format!("The formula for filtering records is invalid: {reason}"),
    )
}

/// Parses a formula and checks that every field it names exists.
pub(crate) fn compile(table: &Table, src: &str) -> Result<Expr, ApiError> {
    let expr = formula::parse(src).map_err(|e| invalid_formula(&e.0))?;
    let unknown: Vec<String> = expr
        .field_names()
        .into_iter()
        .filter(|name| table.field(name).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(invalid_formula(&format!(
            "Unknown field names: {}",
            unknown.join(", ")
        )));
    }
    Ok(expr)
}

/// A record as a formula sees it.
pub(crate) struct RecordCtx<'a> {
    pub base: &'a Base,
    pub table: &'a Table,
    pub record: &'a Record,
    pub now: Millis,
}

impl Context for RecordCtx<'_> {
    fn field(&self, name: &str) -> Value {
        match self.table.field(name) {
            Some(field) => cell_value(self.base, self.table, field, self.record),
            None => Value::Error("#ERROR!".into()),
        }
    }

    fn record_id(&self) -> String {
        self.record.id.clone()
    }

    fn created_ms(&self) -> i64 {
        self.record.created_ms
    }

    fn last_modified_ms(&self, fields: &[String]) -> Option<i64> {
        let slots: Vec<u32> = fields
            .iter()
            .filter_map(|n| self.table.field(n))
            .map(|f| f.slot)
            .collect();
        self.record.last_modified(&slots)
    }

    fn now_ms(&self) -> i64 {
        self.now
    }
}

/// Whether a record passes a compiled formula.
pub(crate) fn passes(expr: &Expr, ctx: &RecordCtx) -> bool {
    formula::is_truthy(&formula::evaluate(expr, ctx))
}

/// The formula value of a cell.
pub(crate) fn cell_value(base: &Base, table: &Table, field: &Field, record: &Record) -> Value {
    let Some(v) = render::cell_v1(table, field, record) else {
        return Value::Blank;
    };
    match (field.kind, &v) {
        (FieldType::Date, Json::String(d)) => crate::dates::date_to_ms(d)
            .map(Value::Date)
            .unwrap_or(Value::Blank),
        (
            FieldType::DateTime | FieldType::CreatedTime | FieldType::LastModifiedTime,
            Json::String(t),
        ) => crate::dates::parse_datetime(t, chrono_tz::Tz::UTC)
            .map(Value::Date)
            .unwrap_or(Value::Blank),
        (FieldType::MultipleRecordLinks, Json::Array(ids)) => {
            let linked = field
                .option_str("linkedTableId")
                .and_then(|id| base.table_by_id(id));
            Value::Array(
                ids.iter()
                    .filter_map(Json::as_str)
                    .map(|id| Value::Text(render::primary_text(linked, id)))
                    .collect(),
            )
        }
        (FieldType::MultipleAttachments, Json::Array(items)) => Value::Array(
            items
                .iter()
                .map(|a| {
                    let name = a.get("filename").and_then(Json::as_str).unwrap_or("");
                    let url = a.get("url").and_then(Json::as_str).unwrap_or("");
                    Value::Text(format!("{name} ({url})"))
                })
                .collect(),
        ),
        _ => json_to_value(&v),
    }
}

fn json_to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Blank,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(json_to_value).collect()),
        Json::Object(_) => Value::Text(v.to_string()),
    }
}

/// Resolved sort keys: field index and direction.
pub(crate) fn resolve_sort(
    table: &Table,
    sort: &[SortSpec],
) -> Result<Vec<(usize, bool)>, ApiError> {
    sort.iter()
        .map(|s| {
            table
                .field_index(&s.field)
                .map(|i| (i, s.descending))
                .ok_or_else(|| crate::records::write::unknown_field(&s.field))
        })
        .collect()
}

/// Orders two records by the sort keys; empty cells come first ascending.
pub(crate) fn compare_records(
    table: &Table,
    keys: &[(usize, bool)],
    a: &Record,
    b: &Record,
) -> Ordering {
    for (index, descending) in keys {
        let field = &table.fields[*index];
        let x = render::cell_v1(table, field, a);
        let y = render::cell_v1(table, field, b);
        let ord = compare_cells(field, x.as_ref(), y.as_ref());
        let ord = if *descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

fn compare_cells(field: &Field, a: Option<&Json>, b: Option<&Json>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => match (x, y) {
            (Json::Number(m), Json::Number(n)) => m
                .as_f64()
                .partial_cmp(&n.as_f64())
                .unwrap_or(Ordering::Equal),
            (Json::String(s), Json::String(t)) if field.kind == FieldType::SingleSelect => {
                choice_rank(field, s).cmp(&choice_rank(field, t))
            }
            (Json::String(s), Json::String(t)) => s.to_lowercase().cmp(&t.to_lowercase()),
            (Json::Bool(p), Json::Bool(q)) => p.cmp(q),
            _ => x.to_string().cmp(&y.to_string()),
        },
    }
}

/// Selects sort in the order of their choices, as in Airtable's UI.
fn choice_rank(field: &Field, name: &str) -> usize {
    field
        .choices()
        .iter()
        .position(|c| c.get("name").and_then(Json::as_str) == Some(name))
        .unwrap_or(usize::MAX)
}
