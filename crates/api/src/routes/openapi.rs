//! `GET /api/openapi.json`: an OpenAPI 3 document of every route. A test
//! compares its operations with the router's table, so a route cannot be
//! added or removed without the document following.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::routing::{ApiRoutes, Verb};
use crate::state::AppState;

pub const PATH: &str = "/api/openapi.json";

pub fn router() -> ApiRoutes {
    ApiRoutes::new().get(PATH, openapi)
}

async fn openapi(State(_state): State<AppState>) -> Json<Value> {
    Json(document())
}

fn reference(schema: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{schema}") })
}

fn page_of(schema: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items", "nextCursor"],
        "properties": {
            "items": { "type": "array", "items": reference(schema) },
            "nextCursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page." }
        }
    })
}

fn posted_of(schema: &str) -> Value {
    json!({
        "type": "object",
        "required": ["usage", "streak", "bonusPointsAwarded", "badgesAwarded"],
        "properties": {
            "usage": reference(schema),
            "streak": { "type": "integer", "description": "Current streak in days after this post." },
            "bonusPointsAwarded": { "type": "integer" },
            "badgesAwarded": { "type": "array", "items": { "type": "string" } }
        }
    })
}

fn query(name: &str, description: &str, required: bool, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": required, "description": description, "schema": schema })
}

fn path_param(name: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } })
}

fn paging() -> Vec<Value> {
    vec![
        query(
            "limit",
            "Items per page, 1..200 (default 50).",
            false,
            json!({ "type": "integer", "minimum": 1, "maximum": 200 }),
        ),
        query(
            "cursor",
            "The previous page's nextCursor.",
            false,
            json!({ "type": "string" }),
        ),
    ]
}

fn user_id_param() -> Value {
    query(
        "userId",
        "Admins only: whose data to read (default: the caller's).",
        false,
        json!({ "type": "string", "format": "uuid" }),
    )
}

fn uuid() -> Value {
    json!({ "type": "string", "format": "uuid" })
}

fn date() -> Value {
    json!({ "type": "string", "format": "date" })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties, "additionalProperties": false })
}

/// One operation: what it does, whether it needs a token, its inputs, and
/// its answers as (status, description, schema).
struct Operation {
    summary: &'static str,
    tag: &'static str,
    authenticated: bool,
    parameters: Vec<Value>,
    body: Option<Value>,
    responses: Vec<(u16, &'static str, Option<Value>)>,
}

impl Operation {
    fn new(tag: &'static str, summary: &'static str) -> Operation {
        Operation {
            summary,
            tag,
            authenticated: true,
            parameters: Vec::new(),
            body: None,
            responses: Vec::new(),
        }
    }

    fn public(mut self) -> Operation {
        self.authenticated = false;
        self
    }

    fn params(mut self, parameters: Vec<Value>) -> Operation {
        self.parameters.extend(parameters);
        self
    }

    fn body(mut self, schema: Value) -> Operation {
        self.body = Some(schema);
        self
    }

    fn answers(
        mut self,
        status: u16,
        description: &'static str,
        schema: Option<Value>,
    ) -> Operation {
        self.responses.push((status, description, schema));
        self
    }

    fn to_json(&self) -> Value {
        let mut responses = Map::new();
        for (status, description, schema) in &self.responses {
            let mut response = json!({ "description": description });
            if let Some(schema) = schema {
                response["content"] = json!({ "application/json": { "schema": schema } });
            }
            responses.insert(status.to_string(), response);
        }
        let mut errors = vec![(500, "An error on our side; the cause is logged.")];
        if self.body.is_some() || !self.parameters.is_empty() {
            errors.push((
                400,
                "An input field is missing or malformed; `error.field` names it.",
            ));
        }
        if self.authenticated {
            errors.push((401, "No valid access token."));
        }
        for (status, description) in errors {
            responses
                .entry(status.to_string())
                .or_insert_with(|| json!({ "description": description, "content": { "application/json": { "schema": reference("Error") } } }));
        }
        let mut operation = json!({
            "summary": self.summary,
            "tags": [self.tag],
            "parameters": self.parameters,
            "responses": responses,
        });
        if self.authenticated {
            operation["security"] = json!([{ "bearer": [] }]);
        } else {
            operation["security"] = json!([]);
        }
        if let Some(body) = &self.body {
            operation["requestBody"] =
                json!({ "required": true, "content": { "application/json": { "schema": body } } });
        }
        operation
    }
}

fn error_answer() -> Option<Value> {
    Some(reference("Error"))
}

fn operations() -> Vec<(Verb, &'static str, Operation)> {
    use Verb::{Delete, Get, Patch, Post};
    let program_body = |required: &[&str]| {
        object(
            required,
            json!({
                "name": { "type": "string", "maxLength": 200 },
                "goalIds": { "type": "array", "items": uuid() },
                "methodIds": { "type": "array", "items": uuid(), "minItems": 1 },
                "dayIds": { "type": "array", "items": uuid(), "minItems": 1, "maxItems": 7 },
                "startDate": date(),
                "endDate": date(),
                "notes": { "type": "string", "maxLength": 5000 }
            }),
        )
    };
    vec![
        (Post, "/api/auth/login", Operation::new("auth", "Sign in with email and password.").public()
            .body(object(&["email", "password"], json!({ "email": { "type": "string" }, "password": { "type": "string" } })))
            .answers(200, "Signed in.", Some(reference("Session")))
            .answers(401, "Unknown email or wrong password (one answer for both).", error_answer())
            .answers(429, "Too many failed attempts for this email or address; see Retry-After.", error_answer())),
        (Get, "/api/auth/me", Operation::new("auth", "The signed-in user.")
            .answers(200, "The user.", Some(reference("User")))),
        (Patch, "/api/auth/me", Operation::new("auth", "Change what the user sets of themselves: their time zone (IANA name). The access token keeps the zone it was issued with until refreshed.")
            .body(object(&[], json!({ "timeZone": { "type": "string", "examples": ["Europe/Amsterdam"] } })))
            .answers(200, "The user.", Some(reference("User")))),
        (Post, "/api/auth/refresh", Operation::new("auth", "Trade a refresh token for new tokens; the old one is used up, and presenting a used one revokes its family.").public()
            .body(object(&["refreshToken"], json!({ "refreshToken": { "type": "string" } })))
            .answers(200, "New tokens.", Some(reference("Session")))
            .answers(401, "Invalid, expired, revoked or reused refresh token.", error_answer())),
        (Post, "/api/auth/set-password", Operation::new("auth", "Set a password: signed in with the current one, or with the setup token from an invitation.").public()
            .body(object(&["newPassword"], json!({
                "newPassword": { "type": "string", "minLength": 10, "maxLength": 1024 },
                "currentPassword": { "type": "string" },
                "setupToken": { "type": "string" }
            })))
            .answers(200, "Password set; other sessions are signed out and this one gets new tokens.", Some(reference("Session")))
            .answers(401, "No token and no valid setup token.", error_answer())
            .answers(422, "The current password is wrong.", error_answer())
            .answers(429, "Too many wrong current passwords.", error_answer())),
        (Get, "/api/programs", Operation::new("programs", "The user's programs, latest start first.")
            .params(paging()).params(vec![user_id_param()])
            .answers(200, "A page of programs.", Some(page_of("Program")))
            .answers(404, "userId names another user and the caller is no admin.", error_answer())),
        (Post, "/api/programs", Operation::new("programs", "Create a program; its schedule is generated.")
            .body(program_body(&["name", "methodIds", "dayIds", "startDate", "endDate"]))
            .answers(201, "Created.", Some(reference("ProgramDetail")))
            .answers(404, "A goal, method or day does not exist; error.field names the list.", error_answer())
            .answers(409, "The dates overlap another program of the user; error.conflictingId names it.", error_answer())),
        (Get, "/api/programs/{id}", Operation::new("programs", "A program with its schedule and progress.")
            .params(vec![path_param("id")])
            .answers(200, "The program.", Some(reference("ProgramDetail")))
            .answers(404, "No such program of the user.", error_answer())),
        (Patch, "/api/programs/{id}", Operation::new("programs", "Change a program; new dates, days or methods regenerate the schedule from today on.")
            .params(vec![path_param("id")])
            .body(program_body(&[]))
            .answers(200, "The changed program.", Some(reference("ProgramDetail")))
            .answers(404, "No such program of the user, or a linked id does not exist.", error_answer())
            .answers(409, "The new dates overlap another program.", error_answer())),
        (Delete, "/api/programs/{id}", Operation::new("programs", "Delete a program and its schedule; usages keep their history.")
            .params(vec![path_param("id")])
            .answers(204, "Deleted.", None)
            .answers(404, "No such program of the user.", error_answer())),
        (Patch, "/api/programs/{id}/schedule/{planningId}", Operation::new("programs", "Change one schedule day: its methods or notes.")
            .params(vec![path_param("id"), path_param("planningId")])
            .body(object(&[], json!({ "methodIds": { "type": "array", "items": uuid(), "minItems": 1 }, "notes": { "type": "string" } })))
            .answers(200, "The changed day.", Some(reference("ScheduleDay")))
            .answers(404, "No such day in a program of the user, or a method does not exist.", error_answer())),
        (Post, "/api/method-usage", Operation::new("method usage", "Record a method done. An Idempotency-Key header makes a repeat return the first answer.")
            .params(vec![json!({ "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string", "maxLength": 200 } })])
            .body(object(&["methodId"], json!({
                "methodId": uuid(), "programId": uuid(), "scheduleDayId": uuid(),
                "usedOn": date(), "remark": { "type": "string", "maxLength": 5000 }
            })))
            .answers(201, "Recorded.", Some(posted_of("MethodUsage")))
            .answers(200, "A repeat of an earlier request with the same Idempotency-Key.", Some(posted_of("MethodUsage")))
            .answers(404, "The method, program or schedule day does not exist or is not the user's.", error_answer())
            .answers(422, "The schedule day is of another program, or the Idempotency-Key was used for another body.", error_answer())),
        (Patch, "/api/method-usage/{id}", Operation::new("method usage", "Change a method usage's day or remark.")
            .params(vec![path_param("id")])
            .body(object(&[], json!({ "usedOn": date(), "remark": { "type": "string" } })))
            .answers(200, "Changed.", Some(reference("MethodUsage")))
            .answers(404, "No such usage of the user.", error_answer())),
        (Get, "/api/method-usage/by-program", Operation::new("method usage", "The latest usage of each method recorded with a program.")
            .params(vec![query("programId", "The program: its UUID or its Airtable record id.", true, json!({ "type": "string" }))])
            .answers(200, "One usage per method, latest day first.", Some(json!({ "type": "object", "properties": { "items": { "type": "array", "items": reference("MethodUsage") } } })))
            .answers(404, "No such program of the user.", error_answer())),
        (Get, "/api/habit-usage", Operation::new("habit usage", "Habits ticked off on a day (date) or in a range (from, to; at most 366 days).")
            .params(vec![query("date", "One day.", false, date()), query("from", "First day.", false, date()), query("to", "Last day.", false, date()), user_id_param()])
            .params(paging())
            .answers(200, "A page of habit usage, by day.", Some(page_of("HabitUsage")))
            .answers(404, "userId names another user and the caller is no admin.", error_answer())),
        (Post, "/api/habit-usage", Operation::new("habit usage", "Tick a habit off for a day (default today); ticking it again returns the same row.")
            .body(object(&["methodId"], json!({ "methodId": uuid(), "usedOn": date() })))
            .answers(201, "Recorded.", Some(posted_of("HabitUsage")))
            .answers(200, "Already ticked off that day.", Some(posted_of("HabitUsage")))
            .answers(404, "No such method.", error_answer())
            .answers(422, "The method is not a habit.", error_answer())),
        (Delete, "/api/habit-usage/{id}", Operation::new("habit usage", "Undo a tick.")
            .params(vec![path_param("id")])
            .answers(204, "Deleted.", None)
            .answers(404, "No such usage of the user.", error_answer())),
        (Get, "/api/personal-goals", Operation::new("personal goals", "The user's personal goals, oldest first.")
            .params(vec![query("active", "Only active (true) or inactive (false) goals.", false, json!({ "type": "boolean" })), user_id_param()])
            .params(paging())
            .answers(200, "A page of goals.", Some(page_of("PersonalGoal")))
            .answers(404, "userId names another user and the caller is no admin.", error_answer())),
        (Post, "/api/personal-goals", Operation::new("personal goals", "Create a personal goal.")
            .body(object(&["name"], json!({ "name": { "type": "string" }, "description": { "type": "string" }, "active": { "type": "boolean" } })))
            .answers(201, "Created.", Some(reference("PersonalGoal")))
            .answers(422, "The user has 10 active goals already.", error_answer())),
        (Get, "/api/personal-goals/{id}", Operation::new("personal goals", "A personal goal.")
            .params(vec![path_param("id")])
            .answers(200, "The goal.", Some(reference("PersonalGoal")))
            .answers(404, "No such goal of the user.", error_answer())),
        (Patch, "/api/personal-goals/{id}", Operation::new("personal goals", "Change a personal goal.")
            .params(vec![path_param("id")])
            .body(object(&[], json!({ "name": { "type": "string" }, "description": { "type": "string" }, "active": { "type": "boolean" } })))
            .answers(200, "Changed.", Some(reference("PersonalGoal")))
            .answers(404, "No such goal of the user.", error_answer())
            .answers(422, "Activating it would make 11 active goals.", error_answer())),
        (Delete, "/api/personal-goals/{id}", Operation::new("personal goals", "Delete a personal goal and its usage.")
            .params(vec![path_param("id")])
            .answers(204, "Deleted.", None)
            .answers(404, "No such goal of the user.", error_answer())),
        (Get, "/api/personal-goal-usage", Operation::new("personal goal usage", "The user's personal goal usage, latest day first.")
            .params(vec![query("personalGoalId", "Only this goal's usage.", false, uuid()), query("from", "First day.", false, date()), query("to", "Last day.", false, date()), user_id_param()])
            .params(paging())
            .answers(200, "A page of usage.", Some(page_of("PersonalGoalUsage")))
            .answers(404, "userId names another user and the caller is no admin.", error_answer())),
        (Post, "/api/personal-goal-usage", Operation::new("personal goal usage", "Record work on a personal goal for a day (default today); again for the same day returns the same row.")
            .body(object(&["personalGoalId"], json!({ "personalGoalId": uuid(), "usedOn": date() })))
            .answers(201, "Recorded.", Some(posted_of("PersonalGoalUsage")))
            .answers(200, "Already recorded that day.", Some(posted_of("PersonalGoalUsage")))
            .answers(404, "No such goal of the user.", error_answer())),
        (Get, "/api/overtuiging-usage", Operation::new("overtuiging usage", "The user's overtuiging usage, latest day first.")
            .params(vec![user_id_param()]).params(paging())
            .answers(200, "A page of usage.", Some(page_of("OvertuigingUsage")))
            .answers(404, "userId names another user and the caller is no admin.", error_answer())),
        (Post, "/api/overtuiging-usage", Operation::new("overtuiging usage", "Record an overtuiging worked through, with streak bonus and badges, in one transaction; a repeat returns the first row and awards nothing.")
            .body(object(&["overtuigingId"], json!({ "overtuigingId": uuid(), "programId": uuid(), "usedOn": date() })))
            .answers(201, "Recorded.", Some(posted_of("OvertuigingUsage")))
            .answers(200, "Recorded before.", Some(posted_of("OvertuigingUsage")))
            .answers(404, "No such overtuiging, or the program is not the user's.", error_answer())),
        (Get, "/api/rewards", Operation::new("rewards", "Points, level, badges, streaks and counts.")
            .params(vec![user_id_param()])
            .answers(200, "The rewards.", Some(reference("Rewards")))
            .answers(404, "userId names another user and the caller is no admin.", error_answer())),
        (Get, "/api/methods/habits", Operation::new("reference", "Active habits in sort order.")
            .params(paging())
            .answers(200, "A page of habits.", Some(page_of("Method")))),
        (Get, "/api/methods/{id}", Operation::new("reference", "A method with its goals.")
            .params(vec![path_param("id")])
            .answers(200, "The method.", Some(reference("Method")))
            .answers(404, "No such method.", error_answer())),
        (Get, "/api/overtuigingen/by-goals", Operation::new("reference", "Active overtuigingen linked to any of the goals, by level.")
            .params(vec![query("goalIds", "Goal ids separated by commas (at most 100).", true, json!({ "type": "string" }))])
            .params(paging())
            .answers(200, "A page of overtuigingen.", Some(page_of("Overtuiging")))),
        (Get, "/api/companies/lookup", Operation::new("reference", "The active company with a code (case-insensitive). Public: used before sign-up.").public()
            .params(vec![query("code", "The company code.", true, json!({ "type": "string" }))])
            .answers(200, "The company.", Some(reference("Company")))
            .answers(404, "No active company has this code.", error_answer())),
        (Get, PATH, Operation::new("meta", "This document.").public()
            .answers(200, "The OpenAPI document.", Some(json!({ "type": "object" })))),
    ]
}

fn schemas() -> Value {
    let usage_common = |extra: Value| {
        let mut properties = json!({ "id": uuid(), "userId": uuid(), "usedOn": date(), "createdAt": { "type": "string", "format": "date-time" } });
        if let (Some(properties), Some(extra)) = (properties.as_object_mut(), extra.as_object()) {
            properties.extend(extra.clone());
        }
        json!({ "type": "object", "properties": properties })
    };
    let goal_ref =
        json!({ "type": "object", "properties": { "id": uuid(), "name": { "type": "string" } } });
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": { "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": { "type": "string" },
                    "message": { "type": "string" },
                    "field": { "type": "string", "description": "The input at fault." },
                    "conflictingId": { "type": "string", "format": "uuid", "description": "The record in the way (409)." }
                }
            } }
        },
        "User": { "type": "object", "properties": {
            "id": uuid(), "email": { "type": "string" }, "name": { "type": "string" },
            "companyId": { "type": ["string", "null"], "format": "uuid" },
            "role": { "type": "string", "enum": ["user", "admin"] }, "timeZone": { "type": "string" },
            "bonusPoints": { "type": "integer" }, "badges": { "type": "array", "items": { "type": "string" } },
            "level": { "type": "integer" }, "lastLoginAt": { "type": ["string", "null"], "format": "date-time" }
        } },
        "Session": { "type": "object", "properties": {
            "accessToken": { "type": "string" }, "refreshToken": { "type": "string" },
            "tokenType": { "type": "string", "enum": ["Bearer"] }, "expiresIn": { "type": "integer" },
            "user": reference("User")
        } },
        "Program": { "type": "object", "properties": {
            "id": uuid(), "userId": uuid(), "name": { "type": "string" },
            "goalIds": { "type": "array", "items": uuid() }, "methodIds": { "type": "array", "items": uuid() },
            "dayIds": { "type": "array", "items": uuid() }, "startDate": date(), "endDate": date(),
            "notes": { "type": "string" }, "createdAt": { "type": "string", "format": "date-time" },
            "updatedAt": { "type": "string", "format": "date-time" }
        } },
        "ScheduleDay": { "type": "object", "properties": {
            "id": uuid(), "programId": uuid(), "date": date(), "methodIds": { "type": "array", "items": uuid() },
            "notes": { "type": "string" }, "completed": { "type": "boolean" }
        } },
        "Progress": { "type": "object", "properties": {
            "completedDays": { "type": "integer" }, "daysToDate": { "type": "integer" }, "totalDays": { "type": "integer" },
            "toDate": { "type": "number" }, "overall": { "type": "number" }
        } },
        "ProgramDetail": { "allOf": [reference("Program"), { "type": "object", "properties": {
            "schedule": { "type": "array", "items": reference("ScheduleDay") }, "progress": reference("Progress")
        } }] },
        "MethodUsage": usage_common(json!({ "methodId": uuid(), "programId": { "type": ["string", "null"], "format": "uuid" },
            "scheduleDayId": { "type": ["string", "null"], "format": "uuid" }, "remark": { "type": "string" } })),
        "HabitUsage": usage_common(json!({ "methodId": uuid() })),
        "PersonalGoalUsage": usage_common(json!({ "personalGoalId": uuid() })),
        "OvertuigingUsage": usage_common(json!({ "overtuigingId": uuid(), "programId": { "type": ["string", "null"], "format": "uuid" } })),
        "PersonalGoal": { "type": "object", "properties": {
            "id": uuid(), "userId": uuid(), "name": { "type": "string" }, "description": { "type": "string" },
            "active": { "type": "boolean" }, "createdAt": { "type": "string", "format": "date-time" },
            "updatedAt": { "type": "string", "format": "date-time" }
        } },
        "Rewards": { "type": "object", "properties": {
            "userId": uuid(), "totalPoints": { "type": "integer" }, "bonusPoints": { "type": "integer" },
            "level": { "type": "integer" }, "pointsToNextLevel": { "type": ["integer", "null"] },
            "badges": { "type": "array", "items": { "type": "string" } },
            "currentStreak": { "type": "integer" }, "longestStreak": { "type": "integer" },
            "counts": { "type": "object", "properties": {
                "methodUsage": { "type": "integer" }, "habitUsage": { "type": "integer" },
                "personalGoalUsage": { "type": "integer" }, "overtuigingUsage": { "type": "integer" }
            } }
        } },
        "Method": { "type": "object", "properties": {
            "id": uuid(), "name": { "type": "string" }, "description": { "type": "string" },
            "durationMinutes": { "type": ["integer", "null"] }, "isHabit": { "type": "boolean" },
            "active": { "type": "boolean" }, "sortOrder": { "type": "integer" },
            "goals": { "type": "array", "items": goal_ref.clone() }
        } },
        "Overtuiging": { "type": "object", "properties": {
            "id": uuid(), "name": { "type": "string" }, "description": { "type": "string" },
            "level": { "type": "integer", "minimum": 1, "maximum": 3 }, "active": { "type": "boolean" },
            "goals": { "type": "array", "items": goal_ref }
        } },
        "Company": { "type": "object", "properties": { "id": uuid(), "name": { "type": "string" }, "code": { "type": "string" } } }
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (verb, path, operation) in operations() {
        let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        entry[verb.as_openapi()] = operation.to_json();
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "airsync coaching API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The coaching app's API (DOMAIN.md). JSON in camelCase; every error is {\"error\": {\"code\", \"message\"}}."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } }
        }
    })
}

/// Every (method, path) the document describes.
pub fn documented_operations() -> Vec<(Verb, &'static str)> {
    operations()
        .into_iter()
        .map(|(verb, path, _)| (verb, path))
        .collect()
}

/// Whether the document says the operation needs a token.
pub fn is_public(verb: Verb, path: &str) -> bool {
    operations()
        .into_iter()
        .any(|(v, p, operation)| v == verb && p == path && !operation.authenticated)
}
