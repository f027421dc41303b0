//! The shipped mapping agrees with the migrated schema, and mismatches with
//! a database are reported by table and column.

use airsync_sync::mapping::{check_against_database, Mapping, MappingError};
use airsync_testkit::TestDb;

#[tokio::test]
async fn the_default_mapping_matches_the_migrated_schema() {
    let db = TestDb::new().await;
    let mapping = Mapping::default_mapping().expect("valid");
    check_against_database(&mapping, db.pool())
        .await
        .expect("matches");
}

#[tokio::test]
async fn database_mismatches_name_the_entity_field_and_column() {
    let db = TestDb::new().await;
    let text = r#"
[[entity]]
name = "user"
table = "users_pg"
airtable_table = "Users"
owner = "both"
fields = [
    { column = "email", field = "Email", type = "text" },
    { column = "nickname", field = "Nickname", type = "text" },
    { column = "bonus_points", field = "Bonus points", type = "boolean" },
    { column = "id", field = "pg_id", type = "pg_id" },
]

[[entity]]
name = "coach"
table = "coaches_pg"
airtable_table = "Coaches"
owner = "airtable"
on_airtable_delete = "deactivate"
fields = [{ column = "name", field = "Name", type = "text" }]
"#;
    let mapping = Mapping::from_toml(text, "test").expect("structurally valid");
    let err = check_against_database(&mapping, db.pool())
        .await
        .expect_err("mismatch");
    let MappingError::Mismatch(found) = err else {
        panic!("expected mismatches, got {err}");
    };
    for prefix in [
        "entity user, field \"Nickname\": column users_pg.nickname does not exist",
        "entity user, field \"Bonus points\": column users_pg.bonus_points is int4",
        "entity coach: table coaches_pg does not exist",
    ] {
        assert!(
            found.problems.iter().any(|p| p.starts_with(prefix)),
            "missing {prefix:?} in {:#?}",
            found.problems
        );
    }
}
