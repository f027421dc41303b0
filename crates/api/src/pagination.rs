//! Keyset pagination of growing lists: `?limit=` (1..=200, default 50) and
//! `?cursor=` (opaque, from the previous page's `nextCursor`). A keyset
//! rather than an offset, so that rows added while a client pages through do
//! not shift or repeat items.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use uuid::Uuid;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::IntoParams;

use crate::error::Result;
use crate::extract::{FromQuery, QueryParams};

/// Items per page when the client does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most items per page.
pub const MAX_LIMIT: u32 = 200;

/// Where a page ends: the sort key of its last item (as text) and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: String,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.id, self.key))
    }

    pub fn decode(raw: &str) -> Result<Cursor, String> {
        let invalid = || "is not a cursor this API gave out".to_owned();
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (id, key) = text.split_once('|').ok_or_else(invalid)?;
        let id = Uuid::parse_str(id).map_err(|_| invalid())?;
        Ok(Cursor {
            key: key.to_owned(),
            id,
        })
    }
}

/// A page asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl FromQuery for PageRequest {
    /// Reads `limit` and `cursor` from the query.
    fn from_query(query: &QueryParams) -> Result<PageRequest> {
        let limit = query
            .optional("limit", |raw| match raw.parse::<u32>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
                _ => Err(format!("must be a whole number from 1 to {MAX_LIMIT}")),
            })?
            .unwrap_or(DEFAULT_LIMIT);
        let after = query.optional("cursor", Cursor::decode)?;
        Ok(PageRequest { limit, after })
    }
}

impl IntoParams for PageRequest {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT))
            .default(Some(DEFAULT_LIMIT.into()))
            .examples([20]);
        let cursor = ObjectBuilder::new()
            .schema_type(Type::String)
            .examples([Cursor {
                key: "2024-03-11".into(),
                id: Uuid::nil(),
            }
            .encode()]);
        vec![
            ParameterBuilder::new()
                .name("limit")
                .parameter_in(parameter_in().unwrap_or(ParameterIn::Query))
                .description(Some(format!(
                    "Items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."
                )))
                .schema(Some(limit))
                .build(),
            ParameterBuilder::new()
                .name("cursor")
                .parameter_in(parameter_in().unwrap_or(ParameterIn::Query))
                .description(Some("The previous page's `nextCursor`."))
                .schema(Some(cursor))
                .build(),
        ]
    }
}

impl PageRequest {
    /// Rows to fetch: one more than the limit, to learn whether a next page
    /// exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The cursor's key parsed as `T`; a cursor whose key does not parse
    /// (made for another list) is a 400 on `cursor`.
    pub fn after_key<T: std::str::FromStr>(&self) -> Result<Option<(T, Uuid)>> {
        match &self.after {
            None => Ok(None),
            Some(cursor) => cursor
                .key
                .parse::<T>()
                .map(|key| Some((key, cursor.id)))
                .map_err(|_| {
                    crate::error::Error::invalid("cursor", "is not a cursor of this list")
                }),
        }
    }
}

/// A page of items and the cursor of the next page, if there is one.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Cuts `rows` (fetched with [`PageRequest::fetch_limit`]) to the page
    /// and makes the next cursor from the last item kept.
    pub fn from_rows(
        mut rows: Vec<T>,
        request: &PageRequest,
        cursor_of: impl Fn(&T) -> Cursor,
    ) -> Page<T> {
        let limit = request.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| cursor_of(last).encode())
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_encoding() {
        let cursor = Cursor {
            key: "2024-01-31".into(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        assert!(Cursor::decode("not a cursor").is_err());
    }
}
