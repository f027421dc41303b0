//! Reading requests: JSON bodies and query strings are taken field by field,
//! so that every 400 names the field at fault, and unknown fields are refused
//! (a typo such as `start_date` should not be silently ignored).
//!
//! Each body is read into its own type ([`FromBody`]) and each set of query
//! parameters likewise ([`FromQuery`]); the OpenAPI document is derived from
//! those same types, and a test holds every type's reader to its schema.

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::domain::parse_date;
use crate::error::{Error, Result};

/// Largest request body read.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request body of the API, read from a [`JsonObject`]. The type also
/// derives its schema, which is what the OpenAPI document shows.
pub trait FromBody: Sized {
    fn from_body(body: &mut JsonObject) -> Result<Self>;
}

/// A set of query parameters, read from [`QueryParams`].
pub trait FromQuery: Sized {
    fn from_query(query: &QueryParams) -> Result<Self>;
}

/// JSON in both directions: a request body read as `T` (any field `T` did
/// not read is refused), and an answer serialized from `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: FromBody> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let mut body = JsonObject::from_request(req, state).await?;
        let value = T::from_body(&mut body)?;
        body.finish()?;
        Ok(Json(value))
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON object body, consumed field by field.
#[derive(Debug)]
pub struct JsonObject {
    fields: Map<String, Value>,
    raw: Value,
    /// The fields asked for, for the tests that hold each body type's
    /// reader to its schema.
    #[cfg(test)]
    read: Vec<String>,
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| Error::BadRequest("the request body could not be read".into()))?;
        if bytes.len() > MAX_BODY_BYTES {
            return Err(Error::BadRequest("the request body is too large".into()));
        }
        JsonObject::from_bytes(&bytes)
    }
}

impl JsonObject {
    /// Parses a body; an empty body counts as an empty object.
    pub fn from_bytes(bytes: &[u8]) -> Result<JsonObject> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject::from_map(Map::new()));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => Ok(JsonObject::from_map(fields)),
            Ok(_) => Err(Error::BadRequest(
                "the request body must be a JSON object".into(),
            )),
            Err(_) => Err(Error::BadRequest(
                "the request body is not valid JSON".into(),
            )),
        }
    }

    fn from_map(fields: Map<String, Value>) -> JsonObject {
        let raw = Value::Object(fields.clone());
        JsonObject {
            fields,
            raw,
            #[cfg(test)]
            read: Vec::new(),
        }
    }

    /// Parses `value` as a body (for tests of a body type's reader).
    #[cfg(test)]
    pub fn from_value(value: Value) -> Result<JsonObject> {
        JsonObject::from_bytes(value.to_string().as_bytes())
    }

    /// The names of the fields asked for so far, present or not.
    #[cfg(test)]
    pub fn asked(&self) -> &[String] {
        &self.read
    }

    /// The body as received, e.g. to fingerprint a repeated request.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    fn take(&mut self, field: &str) -> Option<Value> {
        #[cfg(test)]
        self.read.push(field.to_owned());
        match self.fields.remove(field) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value),
        }
    }

    /// A required string field, parsed.
    pub fn required<T>(
        &mut self,
        field: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T> {
        match self.optional(field, parse)? {
            Some(value) => Ok(value),
            None => Err(Error::invalid(field, "is required")),
        }
    }

    /// An optional string field (absent or null is `None`), parsed.
    pub fn optional<T>(
        &mut self,
        field: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(raw)) => {
                refuse_nul(field, &raw)?;
                parse(&raw)
                    .map(Some)
                    .map_err(|message| Error::invalid(field, message))
            }
            Some(_) => Err(Error::invalid(field, "must be a string")),
        }
    }

    /// An optional id field.
    pub fn optional_id<T: FromStr>(&mut self, field: &str) -> Result<Option<T>> {
        self.optional(field, |raw| {
            raw.trim()
                .parse::<T>()
                .map_err(|_| "must be a UUID".to_owned())
        })
    }

    /// A required id field.
    pub fn required_id<T: FromStr>(&mut self, field: &str) -> Result<T> {
        self.required(field, |raw| {
            raw.trim()
                .parse::<T>()
                .map_err(|_| "must be a UUID".to_owned())
        })
    }

    /// An optional date field (`YYYY-MM-DD`).
    pub fn optional_date(&mut self, field: &str) -> Result<Option<NaiveDate>> {
        self.optional(field, parse_date)
    }

    /// An optional boolean field.
    pub fn optional_bool(&mut self, field: &str) -> Result<Option<bool>> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(value)),
            Some(_) => Err(Error::invalid(field, "must be true or false")),
        }
    }

    /// An optional list of ids: unique, at most `max` of them.
    pub fn optional_ids<T: FromStr + PartialEq>(
        &mut self,
        field: &str,
        max: usize,
    ) -> Result<Option<Vec<T>>> {
        let items = match self.take(field) {
            None => return Ok(None),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(Error::invalid(field, "must be a list of UUIDs")),
        };
        if items.len() > max {
            return Err(Error::invalid(field, format!("may hold at most {max} ids")));
        }
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            let id = item
                .as_str()
                .and_then(|raw| raw.trim().parse::<T>().ok())
                .ok_or_else(|| Error::invalid(field, "must be a list of UUIDs"))?;
            if ids.contains(&id) {
                return Err(Error::invalid(field, "must not name an id twice"));
            }
            ids.push(id);
        }
        Ok(Some(ids))
    }

    /// Refuses whatever fields are left unread.
    pub fn finish(self) -> Result<()> {
        match self.fields.keys().next() {
            Some(field) => Err(Error::invalid(field.clone(), "is not a known field")),
            None => Ok(()),
        }
    }
}

/// The query string, read parameter by parameter.
#[derive(Debug, Default)]
pub struct QueryParams {
    params: HashMap<String, String>,
    /// The names asked for so far, present or not (interior, since readers
    /// take `&self`), for the tests that hold each query type's reader to
    /// its parameters.
    #[cfg(test)]
    asked: std::sync::Mutex<Vec<String>>,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let query = parts.uri.query().unwrap_or_default();
        QueryParams::parse(query)
    }
}

impl QueryParams {
    /// Parses `a=1&b=2`; a parameter given twice is refused.
    pub fn parse(query: &str) -> Result<QueryParams> {
        let mut params = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            refuse_nul(&key, &key)?;
            refuse_nul(&key, &value)?;
            if params.insert(key.to_string(), value.to_string()).is_some() {
                return Err(Error::invalid(key.to_string(), "is given more than once"));
            }
        }
        Ok(QueryParams {
            params,
            #[cfg(test)]
            asked: Default::default(),
        })
    }

    /// The names of the parameters asked for so far, present or not.
    #[cfg(test)]
    pub fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .map(|asked| asked.clone())
            .unwrap_or_default()
    }

    fn get(&self, name: &str) -> Option<&str> {
        #[cfg(test)]
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(name.to_owned());
        }
        self.params.get(name).map(|raw| raw.trim())
    }

    /// An optional parameter, parsed; empty counts as absent.
    pub fn optional<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(raw) => parse(raw)
                .map(Some)
                .map_err(|message| Error::invalid(name, message)),
        }
    }

    /// A required parameter, parsed.
    pub fn required<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T> {
        self.optional(name, parse)?
            .ok_or_else(|| Error::invalid(name, "is required"))
    }

    /// An optional id parameter.
    pub fn optional_id<T: FromStr>(&self, name: &str) -> Result<Option<T>> {
        self.optional(name, |raw| {
            raw.parse::<T>().map_err(|_| "must be a UUID".to_owned())
        })
    }

    /// An optional date parameter.
    pub fn optional_date(&self, name: &str) -> Result<Option<NaiveDate>> {
        self.optional(name, parse_date)
    }

    /// A comma-separated list of ids.
    pub fn id_list<T: FromStr>(&self, name: &str, max: usize) -> Result<Vec<T>> {
        let raw = self.required(name, |raw| Ok(raw.to_owned()))?;
        let ids = raw
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<T>()
                    .map_err(|_| Error::invalid(name, "must be UUIDs separated by commas"))
            })
            .collect::<Result<Vec<T>>>()?;
        if ids.is_empty() {
            return Err(Error::invalid(name, "is required"));
        }
        if ids.len() > max {
            return Err(Error::invalid(name, format!("may hold at most {max} ids")));
        }
        Ok(ids)
    }
}

/// PostgreSQL's text cannot hold a NUL character: a string with one would
/// fail in the database (a 500), so it is refused at the edge, naming the
/// field. No legitimate input of the API contains one.
fn refuse_nul(field: &str, raw: &str) -> Result<()> {
    if raw.contains('\0') {
        return Err(Error::invalid(field, "must not contain a NUL character"));
    }
    Ok(())
}

/// Parses an id taken from the path; a malformed one is a 400 naming the
/// parameter.
pub fn path_id<T: FromStr>(name: &str, raw: &str) -> Result<T> {
    raw.parse::<T>()
        .map_err(|_| Error::invalid(name, "must be a UUID"))
}
