use super::*;

fn problems(err: MappingError) -> Vec<String> {
    match err {
        MappingError::Mismatch(m) => m.problems,
        other => panic!("expected mismatches, got {other}"),
    }
}

#[test]
fn the_default_mapping_covers_every_entity_of_the_domain() {
    let mapping = Mapping::default_mapping().expect("the shipped mapping is valid");
    let names: Vec<&str> = mapping.entities().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "company",
            "goal",
            "day",
            "method",
            "overtuiging",
            "user",
            "program",
            "program_schedule",
            "method_usage",
            "habit_usage",
            "personal_goal",
            "personal_goal_usage",
            "overtuiging_usage"
        ]
    );
    for entity in mapping.entities().iter().filter(|e| e.syncs_outbound()) {
        assert!(
            entity.pg_id_field().is_some(),
            "{} has no pg_id",
            entity.name
        );
    }
    let user = mapping.entity("user").expect("user");
    assert_eq!(user.owner, Owner::Both);
    assert_eq!(user.natural_key.as_deref(), Some("email"));
    assert_eq!(
        mapping
            .entity_by_table("programs_pg")
            .map(|e| e.name.as_str()),
        Some("program")
    );
}

#[test]
fn a_mapping_that_does_not_parse_names_the_line() {
    let err = Mapping::from_toml("[[entity]]\nname = 3\n", "test.toml").expect_err("invalid");
    let message = err.to_string();
    assert!(
        message.contains("test.toml") && message.contains("line 2"),
        "{message}"
    );
}

#[test]
fn unknown_keys_are_refused() {
    let text = r#"
[[entity]]
name = "x"
table = "x_pg"
airtable_table = "X"
owner = "airtable"
colour = "blue"
fields = [{ column = "name", field = "Name", type = "text" }]
"#;
    let message = Mapping::from_toml(text, "t")
        .expect_err("invalid")
        .to_string();
    assert!(message.contains("colour"), "{message}");
}

#[test]
fn every_structural_problem_is_reported_with_entity_and_field() {
    let text = r#"
[[entity]]
name = "program"
table = "programs_pg"
airtable_table = "Programs"
owner = "postgres"
fields = [
    { column = "name", field = "Name", type = "text" },
    { column = "name", field = "Name", type = "text" },
    { column = "user_id", field = "User", type = "link" },
    { field = "Goals", type = "links", entity = "goal" },
    { column = "coach_id", field = "Coach", type = "link", entity = "coach" },
    { column = "notes", field = "Notes", type = "text", choices = ["a"] },
]
"#;
    let found = problems(Mapping::from_toml(text, "t").expect_err("invalid"));
    let expected = [
        "entity program, field \"Name\": is mapped twice",
        "entity program, field \"Name\": column name is mapped twice",
        "entity program, field \"User\": a link field needs entity",
        "entity program, field \"Goals\": a links field needs join",
        "entity program, field \"Coach\": links to entity coach, which is not mapped",
        "entity program, field \"Notes\": only select fields take choices",
        "entity program: is written to Airtable but has no pg_id field",
    ];
    for prefix in expected {
        assert!(
            found.iter().any(|p| p.starts_with(prefix)),
            "missing {prefix:?} in {found:#?}"
        );
    }
}

fn view_of(mapping: &Mapping) -> BaseSchemaView {
    let table_id = |i: usize| format!("tbl{i:014}");
    BaseSchemaView {
        tables: mapping
            .entities()
            .iter()
            .enumerate()
            .map(|(i, entity)| BaseTable {
                id: table_id(i),
                name: entity.airtable_table.clone(),
                fields: entity
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(j, field)| BaseField {
                        id: format!("fld{i:07}{j:07}"),
                        name: field.field.clone(),
                        field_type: field.kind.airtable_type().to_owned(),
                        linked_table_id: field.target.as_deref().and_then(|t| {
                            mapping
                                .entities()
                                .iter()
                                .position(|e| e.name == t)
                                .map(table_id)
                        }),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[test]
fn the_default_mapping_matches_a_base_made_from_it() {
    let mapping = Mapping::default_mapping().expect("valid");
    check_against_base(&mapping, &view_of(&mapping)).expect("matches");
}

#[test]
fn base_mismatches_name_the_table_and_field() {
    let mapping = Mapping::default_mapping().expect("valid");
    let mut base = view_of(&mapping);
    base.tables.retain(|t| t.name != "Habit usage");
    let users = base
        .tables
        .iter_mut()
        .find(|t| t.name == "Users")
        .expect("users");
    users.fields.retain(|f| f.name != "Level");
    if let Some(role) = users.fields.iter_mut().find(|f| f.name == "Role") {
        role.field_type = "checkbox".into();
    }
    let found = problems(check_against_base(&mapping, &base).expect_err("mismatch"));
    for prefix in [
        "entity habit_usage: Airtable table \"Habit usage\" does not exist",
        "entity user, field \"Level\": does not exist in Airtable table \"Users\"",
        "entity user, field \"Role\": is a checkbox field in Airtable",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(prefix)),
            "missing {prefix:?} in {found:#?}"
        );
    }
}

#[test]
fn fields_may_be_named_by_id() {
    let mut mapping = Mapping::default_mapping().expect("valid");
    let base = view_of(&mapping);
    let users = base.table("Users").expect("users");
    let email_id = users.field("Email").expect("email").id.clone();
    let users_id = users.id.clone();
    let entity = mapping
        .entities
        .iter_mut()
        .find(|e| e.name == "user")
        .expect("user");
    entity.airtable_table = users_id;
    entity.fields[0].field = email_id;
    check_against_base(&mapping, &base).expect("ids resolve like names");
}
