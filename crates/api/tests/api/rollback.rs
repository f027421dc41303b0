//! Rolling back one endpoint group at a time, as the runbook does, with
//! writes crossing each switch: the groups left on `postgres_primary` and
//! the group moved to `airtable_only` keep working together, and what was
//! written on either side of a switch is there after switching back. The
//! outbound worker and the inbound sync run between the steps, as they do
//! in `airsync serve`.

use std::collections::BTreeMap;

use airsync_api::{DataBackendMode, EndpointGroup};
use reqwest::Method;
use serde_json::{json, Value};

use crate::modes::{comparable, Modes};
use crate::support::{assert_error, TestUser};

/// A server with `group` in `mode` and every other group on
/// `postgres_primary`.
async fn one_group(modes: &Modes, group: EndpointGroup, mode: DataBackendMode) -> String {
    let mut config = modes.config(DataBackendMode::PostgresPrimary);
    config.backends = EndpointGroup::ALL
        .into_iter()
        .map(|g| (g, DataBackendMode::PostgresPrimary))
        .collect::<BTreeMap<_, _>>();
    config.backends.insert(group, mode);
    modes.app.another_server(config).await.0
}

async fn call(
    modes: &Modes,
    server: &str,
    user: &TestUser,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    modes
        .app
        .call_at(server, method, path, Some(&user.token), body, status)
        .await
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn programs_rolled_back_alone_while_method_usage_stays_on_postgres() {
    let modes = Modes::start().await;
    let (ann, _) = modes.seed().await;
    let r = modes.app.reference.clone();
    let primary = modes.app.base.clone();

    // A program written just before the switch, still in the outbox when
    // programs move to airtable_only.
    let late = call(
        &modes,
        &primary,
        &ann,
        Method::POST,
        "/api/programs",
        Some(json!({
            "name": "Late", "goalIds": [r.goal_a], "methodIds": [r.walking],
            "dayIds": [r.days[1]], "startDate": "2024-04-01", "endDate": "2024-04-14"
        })),
        201,
    )
    .await;
    let late_id = late["id"].as_str().unwrap().to_owned();
    let rolled_back = one_group(
        &modes,
        EndpointGroup::Programs,
        DataBackendMode::AirtableOnly,
    )
    .await;
    // Until the worker has pushed it, the base does not know it.
    call(
        &modes,
        &rolled_back,
        &ann,
        Method::GET,
        &format!("/api/programs/{late_id}"),
        None,
        404,
    )
    .await;
    modes.push().await;
    let read_back = call(
        &modes,
        &rolled_back,
        &ann,
        Method::GET,
        &format!("/api/programs/{late_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(comparable(read_back), comparable(late.clone()));

    // On airtable_only: the program is renamed and another is made, in the
    // base alone.
    call(
        &modes,
        &rolled_back,
        &ann,
        Method::PATCH,
        &format!("/api/programs/{late_id}"),
        Some(json!({ "name": "Late, renamed in the rollback" })),
        200,
    )
    .await;
    let made = call(
        &modes,
        &rolled_back,
        &ann,
        Method::POST,
        "/api/programs",
        Some(json!({
            "name": "Made in the rollback", "goalIds": [r.goal_b], "methodIds": [r.breathing],
            "dayIds": [r.days[0]], "startDate": "2024-05-01", "endDate": "2024-05-14"
        })),
        201,
    )
    .await;
    let made_id = made["id"].as_str().unwrap().to_owned();
    // Method usage, still on PostgreSQL, cannot name that program until
    // the inbound sync has brought it in...
    let refused = call(
        &modes,
        &rolled_back,
        &ann,
        Method::POST,
        "/api/method-usage",
        Some(json!({ "methodId": r.breathing, "programId": made_id, "usedOn": "2024-03-15" })),
        404,
    )
    .await;
    assert_error(&refused, "not_found", Some("programId"));
    modes.bring_in(&["program", "program_schedule"]).await;
    // ...and then it can, and the usage reaches the base linked to it.
    let used = call(
        &modes,
        &rolled_back,
        &ann,
        Method::POST,
        "/api/method-usage",
        Some(json!({ "methodId": r.breathing, "programId": made_id, "usedOn": "2024-03-15" })),
        201,
    )
    .await;
    modes.push().await;
    let by_program = call(
        &modes,
        &rolled_back,
        &ann,
        Method::GET,
        &format!("/api/method-usage/by-program?programId={made_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&by_program), [used["usage"]["id"].as_str().unwrap()]);

    // Forward again: PostgreSQL answers what the base holds, both programs
    // as the rollback left them.
    for id in [&late_id, &made_id] {
        let from_base = call(
            &modes,
            &rolled_back,
            &ann,
            Method::GET,
            &format!("/api/programs/{id}"),
            None,
            200,
        )
        .await;
        let from_postgres = call(
            &modes,
            &primary,
            &ann,
            Method::GET,
            &format!("/api/programs/{id}"),
            None,
            200,
        )
        .await;
        assert_eq!(comparable(from_postgres), comparable(from_base), "{id}");
    }
    let listed = call(
        &modes,
        &primary,
        &ann,
        Method::GET,
        "/api/programs",
        None,
        200,
    )
    .await;
    assert_eq!(ids(&listed).len(), 3, "{listed}");
    // And a write after switching forward reaches the base.
    call(
        &modes,
        &primary,
        &ann,
        Method::PATCH,
        &format!("/api/programs/{made_id}"),
        Some(json!({ "notes": "after switching forward" })),
        200,
    )
    .await;
    modes.push().await;
    let from_base = call(
        &modes,
        &rolled_back,
        &ann,
        Method::GET,
        &format!("/api/programs/{made_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(from_base["notes"], "after switching forward");
}

#[tokio::test]
async fn method_usage_rolled_back_alone_while_programs_stay_on_postgres() {
    let modes = Modes::start().await;
    let (ann, program) = modes.seed().await;
    let r = modes.app.reference.clone();
    let primary = modes.app.base.clone();
    let pid = program["id"].as_str().unwrap().to_owned();
    let rolled_back = one_group(
        &modes,
        EndpointGroup::MethodUsage,
        DataBackendMode::AirtableOnly,
    )
    .await;

    // A program made on PostgreSQL after the switch: until the worker has
    // pushed it, method usage (now in the base) cannot link it.
    let fresh = call(
        &modes,
        &rolled_back,
        &ann,
        Method::POST,
        "/api/programs",
        Some(json!({
            "name": "Fresh", "goalIds": [r.goal_a], "methodIds": [r.walking],
            "dayIds": [r.days[4]], "startDate": "2024-04-01", "endDate": "2024-04-14"
        })),
        201,
    )
    .await;
    let fresh_id = fresh["id"].as_str().unwrap().to_owned();
    let refused = call(
        &modes,
        &rolled_back,
        &ann,
        Method::POST,
        "/api/method-usage",
        Some(json!({ "methodId": r.walking, "programId": fresh_id, "usedOn": "2024-03-14" })),
        404,
    )
    .await;
    assert_error(&refused, "not_found", Some("programId"));
    modes.push().await;
    let on_fresh = call(
        &modes,
        &rolled_back,
        &ann,
        Method::POST,
        "/api/method-usage",
        Some(json!({ "methodId": r.walking, "programId": fresh_id, "usedOn": "2024-03-14" })),
        201,
    )
    .await;
    // A usage of the seeded program, and a change to an older usage made on
    // PostgreSQL before the switch.
    let on_seeded = call(
        &modes,
        &rolled_back,
        &ann,
        Method::POST,
        "/api/method-usage",
        Some(json!({ "methodId": r.breathing, "programId": pid, "usedOn": "2024-03-15", "remark": "rolled back" })),
        201,
    )
    .await;
    let before: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT id FROM method_usage_pg WHERE used_on = '2024-03-13'")
            .fetch_all(modes.app.pool())
            .await
            .unwrap();
    let older = before[0].0.to_string();
    call(
        &modes,
        &rolled_back,
        &ann,
        Method::PATCH,
        &format!("/api/method-usage/{older}"),
        Some(json!({ "remark": "changed in the base" })),
        200,
    )
    .await;
    // Programs on PostgreSQL show the usage only once the inbound sync has
    // brought it in: their progress counts PostgreSQL's usage.
    modes.bring_in(&["method_usage"]).await;
    let stored: Vec<(String, String)> = sqlx::query_as(
        "SELECT id::text, remark FROM method_usage_pg WHERE id::text = ANY($1) ORDER BY remark",
    )
    .bind(vec![
        on_fresh["usage"]["id"].as_str().unwrap().to_owned(),
        on_seeded["usage"]["id"].as_str().unwrap().to_owned(),
        older.clone(),
    ])
    .fetch_all(modes.app.pool())
    .await
    .unwrap();
    let remarks: Vec<&str> = stored.iter().map(|(_, remark)| remark.as_str()).collect();
    assert_eq!(
        remarks,
        ["", "changed in the base", "rolled back"],
        "{stored:?}"
    );

    // Forward again: the same answers from PostgreSQL as from the base.
    for path in [
        format!("/api/method-usage/by-program?programId={pid}"),
        format!("/api/method-usage/by-program?programId={fresh_id}"),
    ] {
        let from_base = call(&modes, &rolled_back, &ann, Method::GET, &path, None, 200).await;
        let from_postgres = call(&modes, &primary, &ann, Method::GET, &path, None, 200).await;
        assert_eq!(comparable(from_postgres), comparable(from_base), "{path}");
    }
    let rewards_pg = call(
        &modes,
        &primary,
        &ann,
        Method::GET,
        "/api/rewards",
        None,
        200,
    )
    .await;
    assert_eq!(rewards_pg["counts"]["methodUsage"], 5, "{rewards_pg}");
    // A usage written after switching forward reaches the base.
    let after = call(
        &modes,
        &primary,
        &ann,
        Method::POST,
        "/api/method-usage",
        Some(json!({ "methodId": r.walking, "programId": fresh_id, "usedOn": "2024-03-15" })),
        201,
    )
    .await;
    modes.push().await;
    let from_base = call(
        &modes,
        &rolled_back,
        &ann,
        Method::GET,
        &format!("/api/method-usage/by-program?programId={fresh_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&from_base), [after["usage"]["id"].as_str().unwrap()]);
}
