//! A record and its cells: Airtable's cell JSON kept as it is, with typed
//! readers and writers for the common field types.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A record as Airtable returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The record's id (`rec…`).
    pub id: String,
    /// When the record was created.
    #[serde(rename = "createdTime")]
    pub created_time: DateTime<Utc>,
    /// The cells, keyed by field name (or id with `returnFieldsByFieldId`).
    /// Empty cells are absent: an unchecked checkbox, `""`, `[]`.
    #[serde(default)]
    pub fields: Fields,
    /// The number of comments, when asked for with
    /// [`ListOptions::comment_count`](crate::ListOptions::comment_count).
    #[serde(
        rename = "commentCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub comment_count: Option<u64>,
}

/// The cells of a record, keyed by field name or id, as Airtable's JSON.
///
/// Readers return `Ok(None)` (or `false`, or an empty list) for an absent or
/// `null` cell, and [`Error::CellType`] when the cell holds another type,
/// which means the mapping and the base disagree.
///
/// ```
/// use airsync_airtable::Fields;
/// use chrono::NaiveDate;
///
/// let fields = Fields::new()
///     .with("Name", "Ada")
///     .with("Sessions", 3)
///     .with_date("Start", NaiveDate::from_ymd_opt(2024, 5, 1).unwrap())
///     .with_links("Coach", ["recAAAAAAAAAAAAAA"]);
/// assert_eq!(fields.text("Name").unwrap(), Some("Ada"));
/// assert_eq!(fields.number("Sessions").unwrap(), Some(3.0));
/// assert!(!fields.checkbox("Active").unwrap());
/// assert_eq!(fields.links("Coach").unwrap(), vec!["recAAAAAAAAAAAAAA"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fields(Map<String, Value>);

impl Fields {
    /// No cells.
    pub fn new() -> Self {
        Fields(Map::new())
    }

    /// The raw JSON of a cell.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field)
    }

    /// Sets a cell to any JSON value (`null` clears it on write).
    pub fn set(&mut self, field: impl Into<String>, value: impl Into<Value>) -> &mut Self {
        self.0.insert(field.into(), value.into());
        self
    }

    /// [`Fields::set`], by value, for building.
    pub fn with(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(field, value);
        self
    }

    /// Sets a cell to `null`, which clears it when written.
    pub fn clear(&mut self, field: impl Into<String>) -> &mut Self {
        self.set(field, Value::Null)
    }

    /// Removes a cell from this map (a write will then leave it alone, or,
    /// with a destructive update, clear it).
    pub fn remove(&mut self, field: &str) -> Option<Value> {
        self.0.remove(field)
    }

    /// Whether a cell is present.
    pub fn contains(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The number of cells present.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no cell is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The cells, by field.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }

    /// The underlying JSON map.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The underlying JSON map, by value.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// A cell that is neither absent nor `null`.
    fn present(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// A text cell (single line, long text, email, URL, phone, rich text).
    pub fn text(&self, field: &str) -> Result<Option<&str>> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(mismatch(field, "text", other)),
        }
    }

    /// A number cell (number, currency, percent as a fraction, duration in
    /// seconds, rating, count, autonumber). Airtable's `{"specialValue":
    /// "NaN"}` (and `Infinity`) read as the float of that name.
    pub fn number(&self, field: &str) -> Result<Option<f64>> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(Some)
                .ok_or_else(|| mismatch(field, "number", &Value::Number(n.clone()))),
            Some(v @ Value::Object(obj)) => match obj.get("specialValue").and_then(Value::as_str) {
                Some("NaN") => Ok(Some(f64::NAN)),
                Some("Infinity") => Ok(Some(f64::INFINITY)),
                Some("-Infinity") => Ok(Some(f64::NEG_INFINITY)),
                _ => Err(mismatch(field, "number", v)),
            },
            Some(other) => Err(mismatch(field, "number", other)),
        }
    }

    /// A number cell that must hold a whole number.
    pub fn integer(&self, field: &str) -> Result<Option<i64>> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                    _ => Err(mismatch(field, "a whole number", &Value::Number(n.clone()))),
                },
            },
            Some(other) => Err(mismatch(field, "a whole number", other)),
        }
    }

    /// A checkbox: Airtable omits unchecked boxes, so absent means `false`.
    pub fn checkbox(&self, field: &str) -> Result<bool> {
        match self.present(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(mismatch(field, "a checkbox", other)),
        }
    }

    /// A date cell (`"2024-05-01"`).
    pub fn date(&self, field: &str) -> Result<Option<NaiveDate>> {
        let Some(text) = self.text_of(field, "a date")? else {
            return Ok(None);
        };
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| mismatch(field, "a date", &Value::String(text.to_owned())))
    }

    /// A dateTime cell (`"2024-05-01T09:30:00.000Z"`, always UTC).
    pub fn date_time(&self, field: &str) -> Result<Option<DateTime<Utc>>> {
        let Some(text) = self.text_of(field, "a date and time")? else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| mismatch(field, "a date and time", &Value::String(text.to_owned())))
    }

    /// A single select: the choice's name.
    pub fn single_select(&self, field: &str) -> Result<Option<&str>> {
        self.text_of(field, "a single select")
    }

    /// A multiple select: the choices' names (absent means none).
    pub fn multiple_selects(&self, field: &str) -> Result<Vec<&str>> {
        self.strings(field, "a multiple select", |v| v.as_str())
    }

    /// A link field: the linked records' ids (absent means none). Also
    /// reads the `{"id": …}` objects some endpoints return.
    pub fn links(&self, field: &str) -> Result<Vec<&str>> {
        self.strings(field, "record links", |v| match v {
            Value::String(s) => Some(s.as_str()),
            Value::Object(obj) => obj.get("id").and_then(Value::as_str),
            _ => None,
        })
    }

    /// Sets a date cell.
    pub fn with_date(self, field: impl Into<String>, date: NaiveDate) -> Self {
        self.with(field, date.format("%Y-%m-%d").to_string())
    }

    /// Sets a dateTime cell, in UTC with milliseconds.
    pub fn with_date_time(self, field: impl Into<String>, at: DateTime<Utc>) -> Self {
        self.with(field, at.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    /// Sets a link cell to these record ids (replacing every link).
    pub fn with_links<I, S>(self, field: impl Into<String>, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let ids: Vec<Value> = ids.into_iter().map(|id| Value::String(id.into())).collect();
        self.with(field, Value::Array(ids))
    }

    /// Sets a multiple select to these choices (replacing every choice).
    pub fn with_multiple_selects<I, S>(self, field: impl Into<String>, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with_links(field, names)
    }

    fn text_of(&self, field: &str, expected: &'static str) -> Result<Option<&str>> {
        match self.present(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(mismatch(field, expected, other)),
        }
    }

    fn strings<'a>(
        &'a self,
        field: &str,
        expected: &'static str,
        item: impl Fn(&'a Value) -> Option<&'a str>,
    ) -> Result<Vec<&'a str>> {
        match self.present(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| item(v).ok_or_else(|| mismatch(field, expected, v)))
                .collect(),
            Some(other) => Err(mismatch(field, expected, other)),
        }
    }
}

impl From<Map<String, Value>> for Fields {
    fn from(map: Map<String, Value>) -> Self {
        Fields(map)
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for Fields {
    fn from_iter<T: IntoIterator<Item = (K, Value)>>(iter: T) -> Self {
        Fields(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

fn mismatch(field: &str, expected: &'static str, found: &Value) -> Error {
    let found = match found {
        Value::Null => "nothing".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(_) => "a number".to_owned(),
        Value::String(_) => "text".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(obj) => match obj.get("error") {
            Some(Value::String(e)) => format!("the formula error {e}"),
            _ => "an object".to_owned(),
        },
    };
    Error::CellType {
        field: field.to_owned(),
        expected,
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        serde_json::from_value(value).unwrap_or_default()
    }

    #[test]
    fn a_record_reads_from_airtables_json() {
        let record: Record = serde_json::from_value(json!({
            "id": "rec560UJdUtocSouk",
            "createdTime": "2022-09-12T21:03:48.000Z",
            "fields": {"Name": "Union Square", "Visited": true}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            record.fields.text("Name").ok().flatten(),
            Some("Union Square")
        );
        assert!(record.fields.checkbox("Visited").unwrap_or(false));
        assert_eq!(record.comment_count, None);
    }

    #[test]
    fn absent_and_null_cells_read_as_empty() {
        let f = fields(json!({"Gone": null}));
        assert_eq!(f.text("Gone").ok(), Some(None));
        assert_eq!(f.number("Missing").ok(), Some(None));
        assert_eq!(f.checkbox("Missing").ok(), Some(false));
        assert_eq!(f.links("Missing").ok(), Some(vec![]));
        assert_eq!(f.multiple_selects("Gone").ok(), Some(vec![]));
    }

    #[test]
    fn dates_and_date_times_parse_and_round_trip() {
        let day = NaiveDate::from_ymd_opt(2022, 9, 5).unwrap_or_default();
        let at = DateTime::parse_from_rfc3339("2022-09-05T07:00:00.400Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let f = Fields::new().with_date("Day", day).with_date_time("At", at);
        assert_eq!(f.get("At"), Some(&json!("2022-09-05T07:00:00.400Z")));
        assert_eq!(f.date("Day").ok().flatten(), Some(day));
        assert_eq!(f.date_time("At").ok().flatten(), Some(at));
    }

    #[test]
    fn a_cell_of_another_type_is_an_error_naming_the_field() {
        let f = fields(json!({"Age": "forty", "Calc": {"error": "#ERROR!"}}));
        let err = f.number("Age").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("field \"Age\" holds text, not number"));
        assert!(f.number("Calc").is_err());
        assert!(f.date("Age").is_err());
    }

    #[test]
    fn special_values_read_as_floats_and_integers_must_be_whole() {
        let f = fields(json!({"Avg": {"specialValue": "NaN"}, "N": 4.0, "X": 4.5}));
        assert!(f.number("Avg").ok().flatten().is_some_and(f64::is_nan));
        assert_eq!(f.integer("N").ok().flatten(), Some(4));
        assert!(f.integer("X").is_err());
    }

    #[test]
    fn links_read_plain_ids_and_id_objects() {
        let f = fields(json!({"A": ["recA", {"id": "recB"}], "S": ["x", "y"]}));
        assert_eq!(f.links("A").ok(), Some(vec!["recA", "recB"]));
        assert_eq!(f.multiple_selects("S").ok(), Some(vec!["x", "y"]));
    }
}
