//! Security pass, formula injection: every outside value that reaches an
//! Airtable formula (`filterByFormula`), sent with quotes, backslashes,
//! braces, formula calls, newlines and unicode, against the emulator (whose
//! formula parser follows Airtable's), checking that the request selects
//! exactly what it should.
//!
//! The inputs that reach a formula, and where they are covered:
//! - the email of a login, in the read-through lookup of a user unknown to
//!   PostgreSQL (`LOWER({Email}) = '…'`, any mode with a base):
//!   [`an_injected_email_at_login_finds_no_other_user_in_the_base`];
//! - the company code of `GET /api/companies/lookup` in `airtable_only`
//!   (`LOWER({Code}) = '…'`):
//!   [`an_injected_company_code_finds_only_the_company_with_that_exact_code`];
//! - a user's email (`{User} = '…'`, every per-user list in
//!   `airtable_only`) and a program's name (`{Program} = '…'`, the schedule
//!   of a program): both come from users, and both are also re-checked
//!   against the record's link afterwards:
//!   [`a_user_with_an_injected_email_and_program_name_sees_only_their_own_data_in_airtable_only`].
//!
//! Every other formula value is typed and cannot carry text of a user's:
//! UUIDs (`pg_id`), dates and instants (`DATETIME_PARSE('…')` of a value
//! formatted by the code), booleans, record ids read from Airtable
//! (`RECORD_ID() = '…'`, also escaped), and field ids (checked against
//! `fld[A-Za-z0-9]+`). The builder's escaping itself is proven for any
//! string by the property test in `crates/airtable/tests/formula_property.rs`.

use std::time::Duration;

use airsync_airtable::{Fields, WriteOptions};
use airsync_api::DataBackendMode;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::modes::{Modes, BASE};

/// Strings that would change a formula's meaning if pasted into a quoted
/// literal unescaped. None contains whitespace, so all are valid emails
/// (with `@x.io` added) and reach the formula.
fn injections() -> Vec<&'static str> {
    vec![
        "x'OR'1'='1",
        "')OR(TRUE())OR('",
        "x',TRUE(),'",
        r#""),TRUE(),(""#,
        "{Email}",
        "x}",
        r"x\",
        r"x\'",
        r"\\'",
        "'&{Email}&'",
        "ü'Ω'🙂",
        "x'=''",
    ]
}

#[tokio::test]
async fn an_injected_email_at_login_finds_no_other_user_in_the_base() {
    let modes = Modes::start().await;
    // Many failed logins from one address on purpose: no throttling here.
    let mut config = modes.config(DataBackendMode::PostgresPrimary);
    config.login_throttle.per_address = 1_000;
    let (server, state) = modes.app.another_server(config).await;
    let users = modes.client.table(&BASE, "Users");
    users
        .create(
            &[Fields::new()
                .with("Email", "victim@example.com")
                .with("Name", "Victim")
                .with("Role", "admin")],
            WriteOptions::default(),
        )
        .await
        .unwrap();
    // A login answers before its read-through runs; each login here waits
    // for its lookup, so that the next one is not turned away by the
    // read-through's gate (one at a time).
    let login = |email: String| {
        let app = &modes.app;
        let server = server.clone();
        let state = state.clone();
        async move {
            app.call_at(
                &server,
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({ "email": email, "password": "whatever it is" })),
                401,
            )
            .await;
            while state.read_through_running() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    };
    let imported = || async {
        sqlx::query_scalar::<_, String>("SELECT email FROM users_pg ORDER BY email")
            .fetch_all(modes.app.pool())
            .await
            .unwrap()
    };

    let mut emails: Vec<String> = injections()
        .into_iter()
        .map(|i| format!("{i}@x.io"))
        .collect();
    // Around the victim's address, to make a match on it easy if a quote
    // escaped: a prefix, and closing the literal right after it.
    emails.push("victim@example.com'OR'".into());
    emails.push("victim@example.com')OR('".into());
    emails.push("victim@example.com\\".into());
    for email in &emails {
        login(email.clone()).await;
    }
    assert_eq!(
        imported().await,
        Vec::<String>::new(),
        "an injected email brought in a user"
    );

    // Each hostile address, when a record really has it, finds exactly that
    // record: the literal is valid and means the address, nothing more.
    // (Ten minutes on, so that the gate looks each email up again.)
    modes.app.clock.advance(Duration::from_secs(11 * 60));
    for email in &emails {
        users
            .create(
                &[Fields::new()
                    .with("Email", email.as_str())
                    .with("Name", "Odd")],
                WriteOptions::default(),
            )
            .await
            .unwrap();
    }
    for email in &emails {
        login(email.clone()).await;
    }
    let mut expected: Vec<String> = emails.iter().map(|e| e.to_lowercase()).collect();
    expected.sort();
    let mut found = imported().await;
    found.iter_mut().for_each(|e| *e = e.to_lowercase());
    assert_eq!(found, expected, "not exactly the addresses asked for");
    let roles: Vec<String> = sqlx::query_scalar("SELECT DISTINCT role FROM users_pg")
        .fetch_all(modes.app.pool())
        .await
        .unwrap();
    assert_eq!(roles, vec!["user".to_owned()], "the victim's role leaked");

    // Control: the victim's own address finds the victim.
    login("VICTIM@example.com".into()).await;
    // Brought in as a user: the base's Role is never taken.
    let victim: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM users_pg WHERE lower(email) = 'victim@example.com' AND role = 'user'",
    )
    .fetch_one(modes.app.pool())
    .await
    .unwrap();
    assert_eq!(victim, 1, "the read-through did not find the victim itself");
}

/// Creates a company in both stores with its id map, as the inbound sync
/// would have.
async fn company(modes: &Modes, name: &str, code: &str) -> Uuid {
    let id: Uuid =
        sqlx::query_scalar("INSERT INTO companies_pg (name, code) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(code)
            .fetch_one(modes.app.pool())
            .await
            .unwrap();
    let record = modes
        .client
        .table(&BASE, "Companies")
        .create(
            &[Fields::new()
                .with("Name", name)
                .with("Code", code)
                .with("Active", true)],
            WriteOptions::default(),
        )
        .await
        .unwrap();
    airsync_sync::id_map::record_mapping(modes.app.pool(), "company", id, &record[0].id)
        .await
        .unwrap();
    id
}

async fn lookup(modes: &Modes, server: &str, code: &str, expected: u16) -> Value {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", code)
        .finish();
    modes
        .app
        .call_at(
            server,
            Method::GET,
            &format!("/api/companies/lookup?{query}"),
            None,
            None,
            expected,
        )
        .await
}

#[tokio::test]
async fn an_injected_company_code_finds_only_the_company_with_that_exact_code() {
    let modes = Modes::start().await;
    // Many lookups from one address on purpose: no throttling here.
    let mut config = modes.config(DataBackendMode::AirtableOnly);
    config.lookup_throttle.per_address = 1_000;
    let (server, _) = modes.app.another_server(config).await;
    // Control: the mirrored company is found in the base.
    let acme = lookup(&modes, &server, "acme-01", 200).await;
    assert_eq!(acme["code"], "ACME-01");

    let mut codes: Vec<String> = injections().into_iter().map(str::to_owned).collect();
    codes.extend(
        [
            "ACME-01'OR'",
            "ACME-01')OR('",
            "x' OR TRUE() OR 'x",
            "a\nb",
            "a\r\n') OR TRUE() OR ('",
            "%",
            "*",
            "",
        ]
        .map(str::to_owned),
    );
    for code in &codes {
        if code.trim().is_empty() {
            continue;
        }
        let body = lookup(&modes, &server, code, 404).await;
        assert_eq!(body["error"]["code"], "not_found", "{code:?}: {body:#}");
    }
    // With a company whose code is the hostile text itself, exactly that
    // one is found.
    for (i, code) in codes.iter().enumerate() {
        if code.trim().is_empty() {
            continue;
        }
        let id = company(&modes, &format!("Odd {i}"), code).await;
        let found = lookup(&modes, &server, code, 200).await;
        assert_eq!(found["id"], json!(id), "{code:?}: {found:#}");
        assert_eq!(found["code"], json!(code.trim()), "{code:?}");
    }
}

#[tokio::test]
async fn a_user_with_an_injected_email_and_program_name_sees_only_their_own_data_in_airtable_only()
{
    let modes = Modes::start().await;
    let (ann, ann_program) = modes.seed().await;
    let app = &modes.app;
    let hostile_email = "m'&{Email}&'OR(TRUE())@x.io";
    let mallory_id = app.create_user(hostile_email, "user").await;
    let mallory = app.sign_in(mallory_id, hostile_email).await;
    // A program named to match Ann's program's schedule records.
    let program = app
        .post(
            &mallory,
            "/api/programs",
            json!({
                "name": format!("x' OR TRUE() OR '{}", ann_program["name"].as_str().unwrap()),
                "methodIds": [app.reference.breathing],
                "dayIds": [app.reference.days[0]],
                "startDate": "2024-03-11",
                "endDate": "2024-03-17",
            }),
            201,
        )
        .await;
    modes.push().await;
    let (airtable, _) = modes.server(DataBackendMode::AirtableOnly).await;
    let get = |user: &crate::support::TestUser, path: &str| {
        let token = user.token.clone();
        let path = path.to_owned();
        let airtable = airtable.clone();
        async move {
            app.call_at(&airtable, Method::GET, &path, Some(&token), None, 200)
                .await
        }
    };
    let programs = get(&mallory, "/api/programs").await;
    let ids: Vec<&Value> = programs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(ids, vec![&program["id"]], "{programs:#}");
    let detail = get(
        &mallory,
        &format!("/api/programs/{}", program["id"].as_str().unwrap()),
    )
    .await;
    let schedule = detail["schedule"].as_array().unwrap();
    assert_eq!(schedule.len(), 1, "{detail:#}");
    assert!(schedule.iter().all(|d| d["programId"] == program["id"]));
    for path in [
        "/api/habit-usage?from=2024-03-01&to=2024-03-31",
        "/api/personal-goals",
        "/api/personal-goal-usage",
        "/api/overtuiging-usage",
    ] {
        let listed = get(&mallory, path).await;
        assert_eq!(listed["items"], json!([]), "{path}: {listed:#}");
    }
    let rewards = get(&mallory, "/api/rewards").await;
    assert_eq!(rewards["counts"]["habitUsage"], 0, "{rewards:#}");
    // Ann's reads are what they were.
    let ann_detail = get(
        &ann,
        &format!("/api/programs/{}", ann_program["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        ann_detail["schedule"].as_array().unwrap().len(),
        ann_program["schedule"].as_array().unwrap().len()
    );
}
