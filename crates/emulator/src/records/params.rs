//! Parameters of list-records, from a query string (GET) or a JSON body
//! (POST `listRecords`), with Airtable's encodings.

use serde_json::Value;

use crate::error::ApiError;
use crate::model::SortSpec;

/// Parsed list-records options.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ListParams {
    pub page_size: Option<usize>,
    pub max_records: Option<usize>,
    pub offset: Option<String>,
    pub fields: Option<Vec<String>>,
    pub sort: Vec<SortSpec>,
    pub filter: Option<String>,
    pub view: Option<String>,
    pub cell_format_string: bool,
    pub time_zone: Option<String>,
    pub user_locale: Option<String>,
    pub by_field_id: bool,
    pub comment_count: bool,
}

/// Query parameters as decoded key/value pairs.
pub(crate) type Query = Vec<(String, String)>;

/// Decodes a raw query string (`+` is a space, as airtable.js sends it).
pub(crate) fn parse_query(raw: Option<&str>) -> Query {
    raw.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

/// A boolean as either client sends it: `true`/`false` or `1`/`0`.
pub(crate) fn parse_bool(text: &str) -> Result<bool, ApiError> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::invalid_request()),
    }
}

fn json_bool(v: &Value) -> Result<bool, ApiError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::String(s) => parse_bool(s),
        _ => Err(ApiError::invalid_request()),
    }
}

fn page_size(n: usize) -> Result<usize, ApiError> {
    if (1..=100).contains(&n) {
        Ok(n)
    } else {
        Err(ApiError::invalid_request_because(
            "Invalid request: pageSize must be between 1 and 100",
        ))
    }
}

fn number(text: &str) -> Result<usize, ApiError> {
    text.parse().map_err(|_| ApiError::invalid_request())
}

fn direction(text: &str) -> Result<bool, ApiError> {
    match text {
        "asc" => Ok(false),
        "desc" => Ok(true),
        _ => Err(ApiError::invalid_request_because(format!(
            "Invalid sort direction: {text}"
        ))),
    }
}

fn cell_format(text: &str) -> Result<bool, ApiError> {
    match text {
        "json" => Ok(false),
        "string" => Ok(true),
        _ => Err(ApiError::invalid_request_because(format!(
            "Invalid cellFormat: {text}"
        ))),
    }
}

fn record_metadata(value: &str) -> Result<bool, ApiError> {
    if value == "commentCount" {
        Ok(true)
    } else {
        Err(ApiError::invalid_request())
    }
}

impl ListParams {
    /// From a GET query string. Unknown parameters are refused.
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        let mut p = ListParams::default();
        let mut sort: Vec<(usize, Option<String>, Option<bool>)> = Vec::new();
        for (key, value) in query {
            match key.as_str() {
                "pageSize" => p.page_size = Some(page_size(number(value)?)?),
                "maxRecords" => p.max_records = Some(number(value)?),
                "offset" => p.offset = Some(value.clone()).filter(|o| !o.is_empty()),
                "fields[]" => p.fields.get_or_insert_with(Vec::new).push(value.clone()),
                "filterByFormula" => p.filter = Some(value.clone()).filter(|f| !f.is_empty()),
                "view" => p.view = Some(value.clone()),
                "cellFormat" => p.cell_format_string = cell_format(value)?,
                "timeZone" => p.time_zone = Some(value.clone()),
                "userLocale" => p.user_locale = Some(value.clone()),
                "returnFieldsByFieldId" => p.by_field_id = parse_bool(value)?,
                "recordMetadata[]" => p.comment_count = record_metadata(value)?,
                other => {
                    let (index, part) = sort_key(other).ok_or_else(ApiError::invalid_request)?;
                    let entry = match sort.iter_mut().find(|(i, _, _)| *i == index) {
                        Some(e) => e,
                        None => {
                            sort.push((index, None, None));
                            sort.last_mut().ok_or_else(ApiError::invalid_request)?
                        }
                    };
                    match part {
                        SortPart::Field => entry.1 = Some(value.clone()),
                        SortPart::Direction => entry.2 = Some(direction(value)?),
                    }
                }
            }
        }
        sort.sort_by_key(|(i, _, _)| *i);
        for (_, field, descending) in sort {
            let field = field.ok_or_else(ApiError::invalid_request)?;
            p.sort.push(SortSpec {
                field,
                descending: descending.unwrap_or(false),
            });
        }
        Ok(p)
    }

    /// From a POST `listRecords` body; `timeZone` and `userLocale` are only
    /// read from the query string, as in Airtable.
    pub fn from_body(body: &Value, query: &Query) -> Result<Self, ApiError> {
        let obj = body.as_object().ok_or_else(ApiError::invalid_request)?;
        let mut p = ListParams::default();
        for (key, value) in obj {
            let text = || {
                value
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(ApiError::invalid_request)
            };
            let count = || {
                value
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(ApiError::invalid_request)
            };
            match key.as_str() {
                "pageSize" => p.page_size = Some(page_size(count()?)?),
                "maxRecords" => p.max_records = Some(count()?),
                "offset" => p.offset = Some(text()?).filter(|o| !o.is_empty()),
                "fields" => {
                    let list = value.as_array().ok_or_else(ApiError::invalid_request)?;
                    let names: Option<Vec<String>> =
                        list.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                    p.fields = Some(names.ok_or_else(ApiError::invalid_request)?);
                }
                "filterByFormula" => p.filter = Some(text()?).filter(|f| !f.is_empty()),
                "view" => p.view = Some(text()?),
                "cellFormat" => p.cell_format_string = cell_format(&text()?)?,
                "returnFieldsByFieldId" => p.by_field_id = json_bool(value)?,
                "recordMetadata" => {
                    let list = value.as_array().ok_or_else(ApiError::invalid_request)?;
                    for v in list {
                        p.comment_count = record_metadata(v.as_str().unwrap_or(""))?;
                    }
                }
                "sort" => {
                    let list = value.as_array().ok_or_else(ApiError::invalid_request)?;
                    for item in list {
                        let field = item
                            .get("field")
                            .and_then(Value::as_str)
                            .ok_or_else(ApiError::invalid_request)?;
                        let descending = match item.get("direction") {
                            None | Some(Value::Null) => false,
                            Some(Value::String(d)) => direction(d)?,
                            Some(_) => return Err(ApiError::invalid_request()),
                        };
                        p.sort.push(SortSpec {
                            field: field.to_owned(),
                            descending,
                        });
                    }
                }
                _ => return Err(ApiError::invalid_request()),
            }
        }
        for (key, value) in query {
            match key.as_str() {
                "timeZone" => p.time_zone = Some(value.clone()),
                "userLocale" => p.user_locale = Some(value.clone()),
                _ => return Err(ApiError::invalid_request()),
            }
        }
        Ok(p)
    }

    /// What an offset is bound to: the options that decide which records
    /// come back in which order.
    pub fn signature(&self) -> String {
        format!("{:?}|{:?}|{:?}", self.filter, self.view, self.sort)
    }
}

enum SortPart {
    Field,
    Direction,
}

/// `sort[3][field]` -> (3, Field).
fn sort_key(key: &str) -> Option<(usize, SortPart)> {
    let rest = key.strip_prefix("sort[")?;
    let (index, rest) = rest.split_once(']')?;
    let index: usize = index.parse().ok()?;
    let part = match rest {
        "[field]" => SortPart::Field,
        "[direction]" => SortPart::Direction,
        _ => return None,
    };
    Some((index, part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_decode_brackets_sort_and_both_boolean_spellings() {
        let q = parse_query(Some(
            "fields%5B%5D=Name&fields[]=Age&sort%5B0%5D%5Bfield%5D=Age&sort[0][direction]=desc&returnFieldsByFieldId=1&filterByFormula=%7BName%7D+%3D+%27a%27",
        ));
        let p = ListParams::from_query(&q).expect("valid");
        assert_eq!(p.fields, Some(vec!["Name".into(), "Age".into()]));
        assert_eq!(
            p.sort,
            vec![SortSpec {
                field: "Age".into(),
                descending: true
            }]
        );
        assert!(p.by_field_id);
        assert_eq!(p.filter.as_deref(), Some("{Name} = 'a'"));
        let p = ListParams::from_query(&parse_query(Some("returnFieldsByFieldId=false")))
            .expect("valid");
        assert!(!p.by_field_id);
    }

    #[test]
    fn unknown_parameters_and_oversized_pages_are_refused() {
        assert!(ListParams::from_query(&parse_query(Some("bogus=1"))).is_err());
        assert!(ListParams::from_query(&parse_query(Some("pageSize=101"))).is_err());
        assert!(ListParams::from_query(&parse_query(Some("pageSize=0"))).is_err());
    }
}
