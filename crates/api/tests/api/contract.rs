//! Every answer the API tests get, held to the OpenAPI document: its status
//! must be one the operation lists, and its body must match that answer's
//! schema, with no property the schema does not name. So the document
//! cannot drift from what the handlers really send without a test failing.

use std::sync::OnceLock;

use serde_json::{Map, Value};

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(airsync_api::openapi::document)
}

/// The documented path template that `path` (without its query) matches.
fn template_of(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object()?;
    // A literal segment beats a parameter: `/api/methods/habits` is not
    // `/api/methods/{id}`.
    let mut best: Option<(&'static str, usize)> = None;
    for template in paths.keys() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let fits = parts.iter().zip(&segments).all(|(part, segment)| {
            if part.starts_with('{') {
                !segment.is_empty()
            } else {
                literal += 1;
                part == segment
            }
        });
        if fits && best.is_none_or(|(_, most)| literal > most) {
            best = Some((template.as_str(), literal));
        }
    }
    best.map(|(template, _)| template)
}

/// Panics when the answer is not one the document describes.
pub fn check(method: &str, path: &str, status: u16, body: &Value) {
    if let Some(problem) = violation(method, path, status, body) {
        panic!("{problem}");
    }
}

/// How the answer differs from what the document describes, if it does.
pub fn violation(method: &str, path: &str, status: u16, body: &Value) -> Option<String> {
    // An unknown route, or a method the route does not serve (405): the
    // document has nothing to say.
    let template = template_of(path)?;
    let verb = method.to_ascii_lowercase();
    let operation = document()["paths"][template].get(&verb)?;
    let Some(answer) = operation["responses"].get(status.to_string()) else {
        return Some(format!("{method} {path} answered {status}, which the document does not list for {verb} {template}; body: {body}"));
    };
    let schema = &answer["content"]["application/json"]["schema"];
    if schema.is_null() {
        return (!body.is_null()).then(|| {
            format!("{method} {path} answered {status} with a body the document does not describe: {body}")
        });
    }
    validate(body, schema, "$").err().map(|problem| {
        format!("{method} {path} answered {status} with a body that does not match the document: {problem}; body: {body}")
    })
}

fn resolve(schema: &Value) -> &Value {
    match schema["$ref"].as_str() {
        Some(target) => {
            let name = target.trim_start_matches("#/components/schemas/");
            resolve(&document()["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The properties and required names of an object schema, through `allOf`.
fn object_parts(schema: &Value, properties: &mut Map<String, Value>, required: &mut Vec<String>) {
    let schema = resolve(schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        object_parts(part, properties, required);
    }
    if let Some(own) = schema["properties"].as_object() {
        properties.extend(own.clone());
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        required.extend(name.as_str().map(str::to_owned));
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn validate(value: &Value, schema: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(schema);
    if let Some(options) = schema["oneOf"].as_array() {
        let fitting = options
            .iter()
            .filter(|option| validate(value, option, at).is_ok())
            .count();
        return match fitting {
            1 => Ok(()),
            0 => Err(format!("{at}: {value} fits none of the options")),
            _ => Err(format!("{at}: {value} fits more than one option")),
        };
    }
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ if schema.get("allOf").is_some() => vec!["object"],
        _ => return Ok(()), // any value
    };
    let actual = type_of(value);
    let fits = allowed.contains(&actual) || (actual == "integer" && allowed.contains(&"number"));
    if !fits {
        return Err(format!(
            "{at}: {actual} where the document says {allowed:?}"
        ));
    }
    if let Some(choices) = schema["enum"].as_array() {
        if !value.is_null() && !choices.contains(value) {
            return Err(format!("{at}: {value} is not one of {choices:?}"));
        }
    }
    match value {
        Value::String(text) => check_format(text, schema["format"].as_str(), at),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                validate(item, &schema["items"], &format!("{at}[{index}]"))?;
            }
            Ok(())
        }
        Value::Object(fields) => {
            let mut properties = Map::new();
            let mut required = Vec::new();
            object_parts(schema, &mut properties, &mut required);
            if properties.is_empty() && schema["allOf"].is_null() {
                return Ok(()); // a free-form object
            }
            for name in &required {
                if !fields.contains_key(name) {
                    return Err(format!("{at}: the required {name} is missing"));
                }
            }
            for (name, field) in fields {
                let Some(property) = properties.get(name) else {
                    return Err(format!("{at}: {name} is not in the document"));
                };
                validate(field, property, &format!("{at}.{name}"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_format(text: &str, format: Option<&str>, at: &str) -> Result<(), String> {
    let fits = match format {
        Some("uuid") => uuid::Uuid::parse_str(text).is_ok(),
        Some("date") => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
        Some("date-time") => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(format!("{at}: {text:?} is not a {}", format.unwrap_or("")))
    }
}
