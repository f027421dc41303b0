//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every route,
//! derived by `utoipa` from the handlers' annotations and from the very
//! types the handlers read and answer. A test compares its operations with
//! the router's table, another holds each body and query type's reader to
//! its schema, and the API tests check every answer they get against it.

use axum::extract::State;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::{auth, habit_usage, method_usage, overtuiging_usage, personal_goal_usage};
use super::{personal_goals, programs, reference, rewards};
use crate::error::ErrorBody;
use crate::extract::Json;
use crate::routing::{ApiRoutes, Verb};
use crate::state::AppState;

pub const PATH: &str = "/api/openapi.json";

pub fn router() -> ApiRoutes {
    ApiRoutes::new().get(PATH, openapi)
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI document.", body = Object)))]
pub async fn openapi(State(_state): State<AppState>) -> Json<Value> {
    Json(document())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "airsync coaching API",
        description = "The coaching app's API. JSON in camelCase; every error is \
                       `{\"error\": {\"code\", \"message\"}}`, with `field` when one input is at \
                       fault."
    ),
    paths(
        auth::login,
        auth::me,
        auth::update_me,
        auth::refresh,
        auth::set_password,
        programs::list,
        programs::create,
        programs::get,
        programs::update,
        programs::delete,
        programs::update_schedule_day,
        method_usage::create,
        method_usage::update,
        method_usage::by_program,
        habit_usage::list,
        habit_usage::create,
        habit_usage::delete,
        personal_goals::list,
        personal_goals::create,
        personal_goals::get,
        personal_goals::update,
        personal_goals::delete,
        personal_goal_usage::list,
        personal_goal_usage::create,
        overtuiging_usage::list,
        overtuiging_usage::create,
        rewards::rewards,
        reference::habits,
        reference::method,
        reference::overtuigingen_by_goals,
        reference::company_lookup,
        openapi,
    ),
    modifiers(&CommonAnswers)
)]
struct ApiDoc;

/// What every operation shares: the bearer scheme, unless the operation
/// says it is public; a 500 and a 503; a 502 where it reads data; a 400
/// where it takes input; a 401 where it needs a token.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        let name = ErrorBody::name();
        let mut schemas = Vec::new();
        ErrorBody::schemas(&mut schemas);
        components
            .schemas
            .insert(name.to_string(), ErrorBody::schema());
        components.schemas.extend(schemas);
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                complete(operation, &name);
            }
        }
    }
}

fn complete(operation: &mut Operation, error: &str) {
    // Handlers of different resources share names (`list`, `create`): the
    // resource's tag makes each operation's id unique, as OpenAPI asks.
    if let (Some(tag), Some(id)) = (
        operation.tags.as_ref().and_then(|tags| tags.first()),
        operation.operation_id.as_ref(),
    ) {
        operation.operation_id = Some(format!("{}_{id}", tag.replace(' ', "_")));
    }
    // An operation that states no security needs the token; `security(())`
    // marks one that needs none (alone, or beside the token where the token
    // is optional).
    let requirements = operation
        .security
        .get_or_insert_with(|| vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    let public = requirements.iter().any(is_empty_requirement);
    let takes_input = operation.request_body.is_some()
        || operation
            .parameters
            .as_ref()
            .is_some_and(|parameters| !parameters.is_empty());
    let mut defaults = vec![
        ("500", "An error on our side; the cause is logged."),
        (
            "503",
            "The server is too busy, or the request ran past its deadline; see Retry-After. \
             A write that timed out may have taken effect: read before repeating it.",
        ),
    ];
    let reads_data = operation
        .tags
        .as_ref()
        .is_none_or(|tags| !tags.iter().any(|tag| tag == "meta"));
    if reads_data {
        defaults.push((
            "502",
            "The endpoint's group reads the Airtable base (a migration mode), and the base \
             did not answer.",
        ));
    }
    if takes_input {
        defaults.push((
            "400",
            "An input is missing or malformed; `error.field` names it.",
        ));
    }
    if !public {
        defaults.push(("401", "No valid access token."));
    }
    for (status, description) in defaults {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                    error,
                                ))))
                                .build(),
                        )
                        .build(),
                )
            });
    }
}

fn is_empty_requirement(requirement: &SecurityRequirement) -> bool {
    serde_json::to_value(requirement).is_ok_and(|value| value == serde_json::json!({}))
}

/// The whole document, as JSON.
pub fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// The document with every `$ref` replaced by what it names, for tools and
/// tests that walk the schemas (none of them is recursive).
pub fn inlined() -> Value {
    let document = document();
    let schemas = document["components"]["schemas"].clone();
    inline(document, &schemas)
}

fn inline(value: Value, schemas: &Value) -> Value {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                if let Some(name) = target.strip_prefix("#/components/schemas/") {
                    return inline(schemas[name].clone(), schemas);
                }
            }
            Value::Object(
                map.into_iter()
                    .map(|(key, value)| (key, inline(value, schemas)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|value| inline(value, schemas))
                .collect(),
        ),
        other => other,
    }
}

/// Every (method, path) the document describes.
pub fn documented_operations() -> Vec<(Verb, String)> {
    let document = document();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for verb in [Verb::Get, Verb::Post, Verb::Patch, Verb::Delete] {
            if item.get(verb.as_openapi()).is_some() {
                operations.push((verb, path.clone()));
            }
        }
    }
    operations
}

/// Whether the document says the operation can be called without a token.
pub fn is_public(verb: Verb, path: &str) -> bool {
    document()["paths"][path][verb.as_openapi()]["security"]
        .as_array()
        .is_some_and(|requirements| {
            requirements.is_empty() || requirements.iter().any(|r| r == &serde_json::json!({}))
        })
}

#[cfg(test)]
mod tests {
    //! Each body and query type's reader against its schema: a reader that
    //! asks for a field its schema lacks, or misses one it has, or treats
    //! a required field as optional (or the other way), fails here.

    use serde_json::{json, Map, Value};
    use utoipa::openapi::path::ParameterIn;
    use utoipa::{IntoParams, ToSchema};

    use super::super::{auth, habit_usage, method_usage, overtuiging_usage};
    use super::super::{personal_goal_usage, personal_goals, programs, reference, UserParam};
    use crate::error::Error;
    use crate::extract::{FromBody, FromQuery, JsonObject, QueryParams};
    use crate::pagination::PageRequest;

    fn schemas() -> Value {
        super::document()["components"]["schemas"].clone()
    }

    /// A valid value of a schema, from the examples the document gives.
    fn example(schema: &Value, schemas: &Value) -> Value {
        if let Some(target) = schema["$ref"].as_str() {
            let name = target.trim_start_matches("#/components/schemas/");
            return example(&schemas[name], schemas);
        }
        if let Some(value) = schema.get("example") {
            return value.clone();
        }
        if let Some(value) = schema["examples"].get(0) {
            return value.clone();
        }
        if let Some(options) = schema["oneOf"].as_array() {
            let option = options
                .iter()
                .find(|o| o["type"] != "null")
                .expect("a non-null option");
            return example(option, schemas);
        }
        let is_array = schema["type"] == "array"
            || schema["type"]
                .as_array()
                .is_some_and(|types| types.contains(&json!("array")));
        if is_array {
            return json!([example(&schema["items"], schemas)]);
        }
        panic!("no example for {schema}");
    }

    fn check_body<T: FromBody + ToSchema>() {
        let schemas = schemas();
        let name = T::name();
        let schema = &schemas[name.as_ref()];
        let properties = schema["properties"].as_object().expect("properties");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let full: Map<String, Value> = properties
            .iter()
            .map(|(field, property)| (field.clone(), example(property, &schemas)))
            .collect();

        // Every documented field at once, with its example, is read whole.
        let mut body = JsonObject::from_value(Value::Object(full.clone())).unwrap();
        if let Err(err) = T::from_body(&mut body) {
            panic!("{name}: its own example is refused: {err}");
        }
        let mut asked = body.asked().to_vec();
        asked.sort();
        let mut documented: Vec<String> = properties.keys().cloned().collect();
        documented.sort();
        assert_eq!(
            asked, documented,
            "{name}: the reader and the schema name other fields"
        );
        body.finish().unwrap();

        // Leaving out a field is refused exactly when the schema requires it.
        for field in properties.keys() {
            let mut without = full.clone();
            without.remove(field);
            let mut body = JsonObject::from_value(Value::Object(without)).unwrap();
            let required = required.contains(&field.as_str());
            check_left_out(&name, field, required, T::from_body(&mut body).err());
        }
    }

    /// A field left out must fail, naming it, exactly when it is required.
    fn check_left_out(label: &str, field: &str, required: bool, failure: Option<Error>) {
        match (required, failure) {
            (true, None) => panic!("{label}: {field} is required but may be left out"),
            (true, Some(err)) => assert!(
                err.to_string().starts_with(&format!("{field}: ")),
                "{label}: {err}"
            ),
            (false, Some(err)) => {
                panic!("{label}: {field} is optional but leaving it out fails: {err}")
            }
            (false, None) => {}
        }
    }

    fn check_query<T: FromQuery + IntoParams>() {
        let schemas = schemas();
        let parameters: Vec<Value> = T::into_params(|| Some(ParameterIn::Query))
            .into_iter()
            .map(|p| serde_json::to_value(p).unwrap())
            .collect();
        let label = std::any::type_name::<T>();
        let full: Vec<(String, String)> = parameters
            .iter()
            .map(|p| {
                assert_eq!(p["in"], "query", "{label}");
                let value = p
                    .get("example")
                    .cloned()
                    .unwrap_or_else(|| example(&p["schema"], &schemas));
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                (p["name"].as_str().unwrap().to_owned(), text)
            })
            .collect();
        let encode = |pairs: &[(String, String)]| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        };
        let query = QueryParams::parse(&encode(&full)).unwrap();
        if let Err(err) = T::from_query(&query) {
            panic!("{label}: its own example is refused: {err}");
        }
        let mut asked = query.asked();
        asked.sort();
        let mut documented: Vec<String> = full.iter().map(|(name, _)| name.clone()).collect();
        documented.sort();
        assert_eq!(
            asked, documented,
            "{label}: the reader and the parameters differ"
        );
        for (index, parameter) in parameters.iter().enumerate() {
            let mut without = full.clone();
            let (field, _) = without.remove(index);
            let outcome = T::from_query(&QueryParams::parse(&encode(&without)).unwrap());
            check_left_out(label, &field, parameter["required"] == true, outcome.err());
        }
    }

    #[test]
    fn every_request_body_type_reads_exactly_the_fields_its_schema_documents() {
        check_body::<auth::Login>();
        check_body::<auth::UpdateMe>();
        check_body::<auth::Refresh>();
        check_body::<auth::SetPassword>();
        check_body::<programs::CreateProgram>();
        check_body::<programs::UpdateProgram>();
        check_body::<programs::UpdateScheduleDay>();
        check_body::<method_usage::RecordMethodUsage>();
        check_body::<method_usage::UpdateMethodUsage>();
        check_body::<habit_usage::RecordHabitUsage>();
        check_body::<personal_goals::CreatePersonalGoal>();
        check_body::<personal_goals::UpdatePersonalGoal>();
        check_body::<personal_goal_usage::RecordPersonalGoalUsage>();
        check_body::<overtuiging_usage::RecordOvertuigingUsage>();
    }

    #[test]
    fn every_query_type_reads_exactly_the_parameters_it_documents() {
        check_query::<UserParam>();
        check_query::<PageRequest>();
        check_query::<personal_goals::ActiveParam>();
        check_query::<method_usage::ProgramParam>();
        check_query::<habit_usage::DaysParams>();
        check_query::<personal_goal_usage::GoalUsageParams>();
        check_query::<reference::GoalsParam>();
        check_query::<reference::CodeParam>();
    }

    #[test]
    fn every_documented_request_body_is_one_the_test_above_checks() {
        let checked = [
            auth::Login::name(),
            auth::UpdateMe::name(),
            auth::Refresh::name(),
            auth::SetPassword::name(),
            programs::CreateProgram::name(),
            programs::UpdateProgram::name(),
            programs::UpdateScheduleDay::name(),
            method_usage::RecordMethodUsage::name(),
            method_usage::UpdateMethodUsage::name(),
            habit_usage::RecordHabitUsage::name(),
            personal_goals::CreatePersonalGoal::name(),
            personal_goals::UpdatePersonalGoal::name(),
            personal_goal_usage::RecordPersonalGoalUsage::name(),
            overtuiging_usage::RecordOvertuigingUsage::name(),
        ];
        let document = super::document();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (verb, operation) in item.as_object().unwrap() {
                let Some(target) = operation["requestBody"]["content"]["application/json"]
                    ["schema"]["$ref"]
                    .as_str()
                else {
                    assert!(
                        operation.get("requestBody").is_none(),
                        "{verb} {path}: an inline body"
                    );
                    continue;
                };
                let name = target.trim_start_matches("#/components/schemas/");
                assert!(
                    checked.iter().any(|c| c == name),
                    "{verb} {path}: {name} is not checked"
                );
            }
        }
    }
}
