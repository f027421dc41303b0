//! A webhook's specification: parsed, validated against the base, and
//! matched against changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::model::Base;

/// Which cell values to add to changed records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum IncludeCells {
    None,
    All,
    Fields(Vec<String>),
}

/// The parsed `specification.options`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub data_types: Vec<String>,
    pub scope: Option<String>,
    pub change_types: Option<Vec<String>>,
    pub from_sources: Option<Vec<String>>,
    pub watch_data: Option<Vec<String>>,
    pub watch_schemas: Option<Vec<String>>,
    pub include_cells: IncludeCells,
    pub include_previous_cells: bool,
    pub include_previous_fields: bool,
}

const DATA_TYPES: [&str; 3] = ["tableData", "tableFields", "tableMetadata"];
const CHANGE_TYPES: [&str; 3] = ["add", "remove", "update"];
const SOURCES: [&str; 9] = [
    "client",
    "publicApi",
    "formSubmission",
    "formPageSubmission",
    "automation",
    "system",
    "sync",
    "anonymousUser",
    "unknown",
];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("INVALID_WEBHOOK_SPECIFICATION", message)
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, ApiError> {
    v.as_array()
        .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| invalid(format!("{what} must be an array of strings")))
}

fn check_keys(
    obj: &serde_json::Map<String, Value>,
    allowed: &[&str],
    what: &str,
) -> Result<(), ApiError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!("unknown key {k} in {what}"))),
        None => Ok(()),
    }
}

impl Spec {
    /// Parses and validates `specification` against the base: the scope and
    /// every watched field must exist.
    pub fn parse(specification: &Value, base: &Base) -> Result<Spec, ApiError> {
        let spec = specification
            .as_object()
            .ok_or_else(|| invalid("specification must be an object"))?;
        check_keys(spec, &["options"], "specification")?;
        let options = spec
            .get("options")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("specification.options is required"))?;
        check_keys(options, &["filters", "includes"], "options")?;
        let filters = options
            .get("filters")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("options.filters is required"))?;
        check_keys(
            filters,
            &[
                "dataTypes",
                "recordChangeScope",
                "changeTypes",
                "fromSources",
                "sourceOptions",
                "watchDataInFieldIds",
                "watchSchemasOfFieldIds",
            ],
            "filters",
        )?;
        let data_types = strings(
            filters.get("dataTypes").unwrap_or(&Value::Null),
            "dataTypes",
        )?;
        if data_types.is_empty() || data_types.iter().any(|d| !DATA_TYPES.contains(&d.as_str())) {
            return Err(invalid(
                "dataTypes must list tableData, tableFields or tableMetadata",
            ));
        }
        let scope = match filters.get("recordChangeScope") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => {
                let known = base
                    .tables
                    .iter()
                    .any(|t| t.id == *id || t.views.iter().any(|v| v.id == *id));
                if !known {
                    return Err(invalid(format!(
                        "recordChangeScope {id} is not a table or view of this base"
                    )));
                }
                Some(id.clone())
            }
            Some(_) => return Err(invalid("recordChangeScope must be a table or view id")),
        };
        let list = |key: &str, allowed: Option<&[&str]>| -> Result<Option<Vec<String>>, ApiError> {
            match filters.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    let items = strings(v, key)?;
                    // An empty list filters nothing (clients send `[]` for unset).
                    if items.is_empty() {
                        return Ok(None);
                    }
                    if let Some(allowed) = allowed {
                        if let Some(bad) = items.iter().find(|i| !allowed.contains(&i.as_str())) {
                            return Err(invalid(format!("{bad} is not a valid value of {key}")));
                        }
                    }
                    Ok(Some(items))
                }
            }
        };
        let change_types = list("changeTypes", Some(&CHANGE_TYPES))?;
        let from_sources = list("fromSources", Some(&SOURCES))?;
        let watch_data = list("watchDataInFieldIds", None)?;
        let watch_schemas = list("watchSchemasOfFieldIds", None)?;
        for id in watch_data.iter().chain(watch_schemas.iter()).flatten() {
            if !base.tables.iter().any(|t| t.field_by_id(id).is_some()) {
                return Err(invalid(format!("field {id} does not exist in this base")));
            }
        }
        let mut out = Spec {
            data_types,
            scope,
            change_types,
            from_sources,
            watch_data,
            watch_schemas,
            include_cells: IncludeCells::None,
            include_previous_cells: false,
            include_previous_fields: false,
        };
        if let Some(includes) = options.get("includes").filter(|v| !v.is_null()) {
            let includes = includes
                .as_object()
                .ok_or_else(|| invalid("options.includes must be an object"))?;
            check_keys(
                includes,
                &[
                    "includeCellValuesInFieldIds",
                    "includePreviousCellValues",
                    "includePreviousFieldDefinitions",
                ],
                "includes",
            )?;
            out.include_cells = match includes.get("includeCellValuesInFieldIds") {
                None | Some(Value::Null) => IncludeCells::None,
                Some(Value::String(s)) if s == "all" => IncludeCells::All,
                Some(v) => IncludeCells::Fields(strings(v, "includeCellValuesInFieldIds")?),
            };
            let flag = |key: &str| includes.get(key).and_then(Value::as_bool).unwrap_or(false);
            out.include_previous_cells = flag("includePreviousCellValues");
            out.include_previous_fields = flag("includePreviousFieldDefinitions");
        }
        Ok(out)
    }

    pub fn wants(&self, data_type: &str) -> bool {
        self.data_types.iter().any(|d| d == data_type)
    }

    pub fn allows_change(&self, change: &str) -> bool {
        self.change_types
            .as_ref()
            .is_none_or(|c| c.iter().any(|x| x == change))
    }

    pub fn allows_source(&self, source: &str) -> bool {
        self.from_sources
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == source))
    }

    /// Whether a deleted field or table breaks this specification.
    pub fn broken_by(&self, table_id: &str, field_id: Option<&str>, base: &Base) -> bool {
        if let Some(field_id) = field_id {
            let watched = |l: &Option<Vec<String>>| {
                l.as_ref().is_some_and(|l| l.iter().any(|f| f == field_id))
            };
            return watched(&self.watch_data) || watched(&self.watch_schemas);
        }
        match &self.scope {
            Some(scope) => {
                scope == table_id
                    || base
                        .table_by_id(table_id)
                        .is_some_and(|t| t.views.iter().any(|v| v.id == *scope))
            }
            None => false,
        }
    }
}
