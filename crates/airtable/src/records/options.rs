//! The options of reading records, and how they go on the wire: query-string
//! pairs in Airtable's bracket encoding, or the JSON body of the POST form.

use serde_json::{json, Map, Value};
use url::Url;

use crate::error::{Error, Result};
use crate::formula::Formula;

/// The most records Airtable returns in one page.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The order of a sort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortDirection {
    /// Smallest first (Airtable's default).
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

impl SortDirection {
    fn as_str(self) -> &'static str {
        match self {
            SortDirection::Asc => "asc",
            SortDirection::Desc => "desc",
        }
    }
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The field's name or id.
    pub field: String,
    /// The order.
    pub direction: SortDirection,
}

/// How cell values are rendered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CellFormat {
    /// Airtable's JSON cell values (the default, and what [`Fields`]'
    /// readers expect).
    ///
    /// [`Fields`]: crate::Fields
    #[default]
    Json,
    /// Every cell as display text, which needs a time zone and a locale.
    /// Airtable calls this format unstable: do not parse it.
    String {
        /// An IANA time zone, e.g. `Europe/Paris`.
        time_zone: String,
        /// A locale, e.g. `fr`.
        user_locale: String,
    },
}

/// The options of reading one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Key cells by field id instead of name.
    pub return_fields_by_field_id: bool,
    /// How cells are rendered.
    pub cell_format: CellFormat,
}

/// The options of a listing. All are optional; the default lists every
/// record of the table, 100 to a page.
///
/// ```
/// use airsync_airtable::{formula, ListOptions, SortDirection};
///
/// let options = ListOptions::new()
///     .fields(["Name", "Email"])
///     .filter(formula::field("Email").unwrap().equals(formula::text("ada@example.com")))
///     .sort("Name", SortDirection::Asc)
///     .page_size(50);
/// assert_eq!(options.page_size, Some(50));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListOptions {
    /// Only these fields (names or ids); all when empty.
    pub fields: Vec<String>,
    /// Only records for which this formula is truthy.
    pub filter_by_formula: Option<Formula>,
    /// The order; a view's order (or Airtable's) when empty.
    pub sort: Vec<Sort>,
    /// Only the records of this view (name or id), in its order.
    pub view: Option<String>,
    /// Records per page, 1 to 100 (Airtable's default: 100).
    pub page_size: Option<u32>,
    /// At most this many records in all.
    pub max_records: Option<u64>,
    /// Key cells by field id instead of name.
    pub return_fields_by_field_id: bool,
    /// How cells are rendered.
    pub cell_format: CellFormat,
    /// Also return each record's comment count.
    pub comment_count: bool,
}

impl ListOptions {
    /// Every record, every field.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only these fields.
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Only records matching the formula.
    pub fn filter(mut self, formula: Formula) -> Self {
        self.filter_by_formula = Some(formula);
        self
    }

    /// Adds a sort key after the existing ones.
    pub fn sort(mut self, field: impl Into<String>, direction: SortDirection) -> Self {
        self.sort.push(Sort {
            field: field.into(),
            direction,
        });
        self
    }

    /// Only the records of a view.
    pub fn view(mut self, view: impl Into<String>) -> Self {
        self.view = Some(view.into());
        self
    }

    /// Records per page.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// At most this many records.
    pub fn max_records(mut self, max: u64) -> Self {
        self.max_records = Some(max);
        self
    }

    /// Key cells by field id.
    pub fn by_field_id(mut self) -> Self {
        self.return_fields_by_field_id = true;
        self
    }

    pub(super) fn validate(&self) -> Result<()> {
        if let Some(size) = self.page_size {
            if size == 0 || size > MAX_PAGE_SIZE {
                return Err(Error::InvalidInput(format!(
                    "page size must be 1 to {MAX_PAGE_SIZE}, not {size}"
                )));
            }
        }
        Ok(())
    }

    /// The options as query-string pairs, in Airtable's bracket encoding.
    pub(super) fn query_pairs(&self, offset: Option<&str>) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut add = |k: &str, v: &str| pairs.push((k.to_owned(), v.to_owned()));
        for field in &self.fields {
            add("fields[]", field);
        }
        if let Some(formula) = &self.filter_by_formula {
            add("filterByFormula", formula.as_str());
        }
        if let Some(max) = self.max_records {
            add("maxRecords", &max.to_string());
        }
        if let Some(size) = self.page_size {
            add("pageSize", &size.to_string());
        }
        for (i, sort) in self.sort.iter().enumerate() {
            add(&format!("sort[{i}][field]"), &sort.field);
            add(&format!("sort[{i}][direction]"), sort.direction.as_str());
        }
        if let Some(view) = &self.view {
            add("view", view);
        }
        if self.return_fields_by_field_id {
            add("returnFieldsByFieldId", "true");
        }
        if self.comment_count {
            add("recordMetadata[]", "commentCount");
        }
        if matches!(self.cell_format, CellFormat::String { .. }) {
            add("cellFormat", "string");
        }
        self.locale_pairs(&mut add);
        if let Some(offset) = offset {
            add("offset", offset);
        }
        pairs
    }

    /// `timeZone` and `userLocale` for the string format, which Airtable
    /// reads only from the query string, even for the POST form.
    pub(super) fn locale_pairs(&self, add: &mut impl FnMut(&str, &str)) {
        if let CellFormat::String {
            time_zone,
            user_locale,
        } = &self.cell_format
        {
            add("timeZone", time_zone);
            add("userLocale", user_locale);
        }
    }

    /// The options as the JSON body of `POST …/listRecords`.
    pub(super) fn post_body(&self, offset: Option<&str>) -> Value {
        let mut body = Map::new();
        if !self.fields.is_empty() {
            body.insert("fields".into(), json!(self.fields));
        }
        if let Some(formula) = &self.filter_by_formula {
            body.insert("filterByFormula".into(), json!(formula.as_str()));
        }
        if let Some(max) = self.max_records {
            body.insert("maxRecords".into(), json!(max));
        }
        if let Some(size) = self.page_size {
            body.insert("pageSize".into(), json!(size));
        }
        if !self.sort.is_empty() {
            let sort: Vec<Value> = self
                .sort
                .iter()
                .map(|s| json!({"field": s.field, "direction": s.direction.as_str()}))
                .collect();
            body.insert("sort".into(), Value::Array(sort));
        }
        if let Some(view) = &self.view {
            body.insert("view".into(), json!(view));
        }
        if self.return_fields_by_field_id {
            body.insert("returnFieldsByFieldId".into(), json!(true));
        }
        if self.comment_count {
            body.insert("recordMetadata".into(), json!(["commentCount"]));
        }
        if matches!(self.cell_format, CellFormat::String { .. }) {
            body.insert("cellFormat".into(), json!("string"));
        }
        if let Some(offset) = offset {
            body.insert("offset".into(), json!(offset));
        }
        Value::Object(body)
    }
}

/// Sets a form-encoded query (exactly as it will go on the wire, so its
/// length can be measured), or none.
pub(crate) fn set_query(url: &mut Url, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_use_airtables_bracket_encoding_in_the_query() {
        let options = ListOptions::new()
            .fields(["Name", "Email"])
            .sort("Name", SortDirection::Desc)
            .view("Grid view")
            .page_size(10)
            .max_records(25)
            .by_field_id();
        let mut url =
            Url::parse("https://api.airtable.com/v0/app/tbl").unwrap_or_else(|e| panic!("{e}"));
        set_query(&mut url, &options.query_pairs(Some("itrA/recB")));
        assert_eq!(
            url.query(),
            Some(
                "fields%5B%5D=Name&fields%5B%5D=Email&maxRecords=25&pageSize=10\
                 &sort%5B0%5D%5Bfield%5D=Name&sort%5B0%5D%5Bdirection%5D=desc\
                 &view=Grid+view&returnFieldsByFieldId=true&offset=itrA%2FrecB"
            )
        );
    }

    #[test]
    fn the_post_body_keeps_json_types_and_leaves_locale_to_the_query() {
        let options = ListOptions {
            cell_format: CellFormat::String {
                time_zone: "Europe/Paris".into(),
                user_locale: "fr".into(),
            },
            ..ListOptions::new()
                .page_size(10)
                .sort("Name", SortDirection::Asc)
        };
        let body = options.post_body(Some("itrA/recB"));
        assert_eq!(
            body,
            json!({"pageSize": 10, "sort": [{"field": "Name", "direction": "asc"}],
                   "cellFormat": "string", "offset": "itrA/recB"})
        );
        let pairs = options.query_pairs(None);
        assert!(pairs.contains(&("timeZone".into(), "Europe/Paris".into())));
    }

    #[test]
    fn a_page_size_over_one_hundred_is_refused() {
        assert!(ListOptions::new().page_size(101).validate().is_err());
        assert!(ListOptions::new().page_size(0).validate().is_err());
        assert!(ListOptions::new().page_size(100).validate().is_ok());
    }
}
