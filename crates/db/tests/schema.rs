//! The schema: migrations apply cleanly once, and every constraint that
//! keeps data valid rejects a violating row.

use airsync_db::{constraint_violation, migrate, ConstraintKind, Error, MIGRATOR, REWORDED};
use airsync_testkit::TestDb;
use chrono::NaiveDate;
use sqlx::PgPool;
use uuid::Uuid;

const DOMAIN_TABLES: [&str; 13] = [
    "companies_pg",
    "users_pg",
    "reference_methods_pg",
    "reference_goals_pg",
    "reference_days_pg",
    "reference_overtuigingen_pg",
    "programs_pg",
    "program_schedule_pg",
    "method_usage_pg",
    "habit_usage_pg",
    "personal_goals_pg",
    "personal_goal_usage_pg",
    "overtuiging_usage_pg",
];
const SYNC_TABLES: [&str; 5] = [
    "airtable_id_map",
    "sync_outbox",
    "sync_dead_letter",
    "sync_checkpoint",
    "sync_inbox_events",
];

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

/// Asserts that `result` failed on the named constraint of the given kind.
fn assert_violates<T: std::fmt::Debug>(
    result: Result<T, sqlx::Error>,
    kind: ConstraintKind,
    constraint: &str,
) {
    let err = result.expect_err("the row should have been rejected");
    let violation = constraint_violation(&err)
        .unwrap_or_else(|| panic!("expected a constraint violation, got {err}"));
    assert_eq!(violation.kind, kind, "{err}");
    assert_eq!(violation.constraint, constraint, "{err}");
}

async fn insert_user(pool: &PgPool, email: &str) -> Uuid {
    sqlx::query_scalar("INSERT INTO users_pg (email, name) VALUES ($1, 'Test') RETURNING id")
        .bind(email)
        .fetch_one(pool)
        .await
        .expect("insert user")
}

async fn insert_method(pool: &PgPool, is_habit: bool) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO reference_methods_pg (name, is_habit) VALUES ('M', $1) RETURNING id",
    )
    .bind(is_habit)
    .fetch_one(pool)
    .await
    .expect("insert method")
}

async fn insert_program(
    pool: &PgPool,
    user: Uuid,
    start: &str,
    end: &str,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO programs_pg (user_id, name, start_date, end_date) VALUES ($1, 'P', $2, $3) RETURNING id",
    )
    .bind(user)
    .bind(date(start))
    .bind(date(end))
    .fetch_one(pool)
    .await
}

async fn insert_personal_goal(
    pool: &PgPool,
    user: Uuid,
    active: bool,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO personal_goals_pg (user_id, name, active) VALUES ($1, 'G', $2) RETURNING id",
    )
    .bind(user)
    .bind(active)
    .fetch_one(pool)
    .await
}

async fn insert_overtuiging(pool: &PgPool) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO reference_overtuigingen_pg (name, level) VALUES ('O', 2) RETURNING id",
    )
    .fetch_one(pool)
    .await
    .expect("insert overtuiging")
}

/// The checksums the database records, by version.
async fn recorded_checksums(pool: &PgPool) -> Vec<(i64, Vec<u8>)> {
    sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .expect("read the migrations table")
}

/// Records `checksum` as the one migration `version` ran with.
async fn record_checksum(pool: &PgPool, version: i64, checksum: &[u8]) {
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
        .bind(checksum)
        .bind(version)
        .execute(pool)
        .await
        .expect("record a checksum");
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("a hex digit pair"))
        .collect()
}

#[tokio::test]
async fn a_database_that_ran_the_migrations_before_their_comments_were_reworded_migrates() {
    let db = TestDb::empty().await;
    migrate(db.pool()).await.expect("first run");
    let current = recorded_checksums(db.pool()).await;
    // What a database migrated by an earlier build holds.
    for (version, earlier) in REWORDED {
        record_checksum(db.pool(), version, &from_hex(earlier)).await;
    }
    assert_ne!(recorded_checksums(db.pool()).await, current);

    let report = migrate(db.pool())
        .await
        .expect("the reworded comments are accepted");
    assert!(report.applied.is_empty(), "applied {:?}", report.applied);
    assert_eq!(
        report.reworded,
        [
            "0003_operational",
            "0004_sync",
            "0005_outbox_capture",
            "0006_api_auth_and_rewards",
            "0008_synced_fields"
        ]
    );
    assert_eq!(recorded_checksums(db.pool()).await, current);

    let again = migrate(db.pool()).await.expect("third run");
    assert!(again.reworded.is_empty(), "reworded {:?}", again.reworded);
    assert!(again.applied.is_empty(), "applied {:?}", again.applied);
}

#[tokio::test]
async fn a_migration_edited_after_it_ran_still_stops_the_run() {
    let db = TestDb::empty().await;
    migrate(db.pool()).await.expect("first run");
    let recorded = recorded_checksums(db.pool()).await;
    for version in [3_i64, 9] {
        let (_, before) = recorded
            .iter()
            .find(|(v, _)| *v == version)
            .expect("the migration ran");
        record_checksum(db.pool(), version, &[0xab; 48]).await;

        let err = migrate(db.pool())
            .await
            .expect_err("an unknown text must stop the run");
        assert!(
            matches!(
                err,
                Error::Migrate(sqlx::migrate::MigrateError::VersionMismatch(v)) if v == version
            ),
            "{err}"
        );
        // The failed run let go of the migrator's lock: the next run does
        // not wait for it.
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(db.pool())
        .await
        .expect("read the locks");
        assert_eq!(held, 0, "a failed run still holds the migrator's lock");
        record_checksum(db.pool(), version, before).await;
    }
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_a_second_run_changes_nothing() {
    let db = TestDb::empty().await;
    let first = migrate(db.pool()).await.expect("first run");
    assert_eq!(first.applied.len(), MIGRATOR.iter().count());
    assert_eq!(first.total, first.applied.len());

    let second = migrate(db.pool()).await.expect("second run");
    assert!(
        second.applied.is_empty(),
        "second run applied {:?}",
        second.applied
    );
    assert_eq!(second.total, first.total);

    for table in DOMAIN_TABLES.iter().chain(SYNC_TABLES.iter()) {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(db.pool())
            .await
            .expect("look up table");
        assert!(exists, "table {table} is missing");
    }
}

#[tokio::test]
async fn company_codes_are_unique_ignoring_case() {
    let db = TestDb::new().await;
    sqlx::query("INSERT INTO companies_pg (name, code) VALUES ('A', 'ACME')")
        .execute(db.pool())
        .await
        .expect("first company");
    let second = sqlx::query("INSERT INTO companies_pg (name, code) VALUES ('B', 'acme')")
        .execute(db.pool())
        .await;
    assert_violates(second, ConstraintKind::Unique, "companies_pg_code_key");
}

#[tokio::test]
async fn company_codes_may_not_be_blank() {
    let db = TestDb::new().await;
    let result = sqlx::query("INSERT INTO companies_pg (name, code) VALUES ('A', '  ')")
        .execute(db.pool())
        .await;
    assert_violates(result, ConstraintKind::Check, "companies_pg_code_not_blank");
}

#[tokio::test]
async fn user_emails_are_unique_ignoring_case() {
    let db = TestDb::new().await;
    insert_user(db.pool(), "Anna@Example.com").await;
    let second = sqlx::query("INSERT INTO users_pg (email) VALUES ('anna@example.COM')")
        .execute(db.pool())
        .await;
    assert_violates(second, ConstraintKind::Unique, "users_pg_email_key");
}

#[tokio::test]
async fn user_emails_must_look_like_emails() {
    let db = TestDb::new().await;
    let result = sqlx::query("INSERT INTO users_pg (email) VALUES ('not an email')")
        .execute(db.pool())
        .await;
    assert_violates(result, ConstraintKind::Check, "users_pg_email_format");
}

#[tokio::test]
async fn user_roles_are_user_or_admin() {
    let db = TestDb::new().await;
    let result = sqlx::query("INSERT INTO users_pg (email, role) VALUES ('a@b.c', 'root')")
        .execute(db.pool())
        .await;
    assert_violates(result, ConstraintKind::Check, "users_pg_role_valid");
}

#[tokio::test]
async fn user_bonus_points_cannot_be_negative() {
    let db = TestDb::new().await;
    let result = sqlx::query("INSERT INTO users_pg (email, bonus_points) VALUES ('a@b.c', -1)")
        .execute(db.pool())
        .await;
    assert_violates(
        result,
        ConstraintKind::Check,
        "users_pg_bonus_points_not_negative",
    );
}

#[tokio::test]
async fn user_levels_start_at_one() {
    let db = TestDb::new().await;
    let result = sqlx::query("INSERT INTO users_pg (email, level) VALUES ('a@b.c', 0)")
        .execute(db.pool())
        .await;
    assert_violates(result, ConstraintKind::Check, "users_pg_level_positive");
}

#[tokio::test]
async fn weekdays_run_from_one_to_seven() {
    let db = TestDb::new().await;
    let result = sqlx::query("INSERT INTO reference_days_pg (name, weekday) VALUES ('Funday', 8)")
        .execute(db.pool())
        .await;
    assert_violates(
        result,
        ConstraintKind::Check,
        "reference_days_pg_weekday_range",
    );
}

#[tokio::test]
async fn each_weekday_has_one_day_row() {
    let db = TestDb::new().await;
    sqlx::query("INSERT INTO reference_days_pg (name, weekday) VALUES ('Monday', 1)")
        .execute(db.pool())
        .await
        .expect("first day");
    let result = sqlx::query("INSERT INTO reference_days_pg (name, weekday) VALUES ('Maandag', 1)")
        .execute(db.pool())
        .await;
    assert_violates(
        result,
        ConstraintKind::Unique,
        "reference_days_pg_weekday_key",
    );
}

#[tokio::test]
async fn method_durations_cannot_be_negative() {
    let db = TestDb::new().await;
    let result =
        sqlx::query("INSERT INTO reference_methods_pg (name, duration_minutes) VALUES ('M', -5)")
            .execute(db.pool())
            .await;
    assert_violates(
        result,
        ConstraintKind::Check,
        "reference_methods_pg_duration_not_negative",
    );
}

#[tokio::test]
async fn overtuiging_levels_run_from_one_to_three() {
    let db = TestDb::new().await;
    let result =
        sqlx::query("INSERT INTO reference_overtuigingen_pg (name, level) VALUES ('O', 4)")
            .execute(db.pool())
            .await;
    assert_violates(
        result,
        ConstraintKind::Check,
        "reference_overtuigingen_pg_level_range",
    );
}

#[tokio::test]
async fn programs_end_on_or_after_their_start() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    insert_program(db.pool(), user, "2026-01-01", "2026-01-01")
        .await
        .expect("a one-day program is valid");
    let result = insert_program(db.pool(), user, "2026-03-10", "2026-03-01").await;
    assert_violates(result, ConstraintKind::Check, "programs_pg_date_range");
}

#[tokio::test]
async fn programs_need_a_name() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    let result = sqlx::query(
        "INSERT INTO programs_pg (user_id, name, start_date, end_date) VALUES ($1, ' ', '2026-01-01', '2026-01-02')",
    )
    .bind(user)
    .execute(db.pool())
    .await;
    assert_violates(result, ConstraintKind::Check, "programs_pg_name_not_blank");
}

#[tokio::test]
async fn programs_of_one_user_may_not_overlap() {
    let db = TestDb::new().await;
    let anna = insert_user(db.pool(), "anna@example.com").await;
    let bert = insert_user(db.pool(), "bert@example.com").await;
    insert_program(db.pool(), anna, "2026-01-01", "2026-01-31")
        .await
        .expect("first");
    insert_program(db.pool(), anna, "2026-02-01", "2026-02-28")
        .await
        .expect("an adjacent program does not overlap");
    insert_program(db.pool(), bert, "2026-01-15", "2026-02-15")
        .await
        .expect("another user's program may overlap");
    let result = insert_program(db.pool(), anna, "2026-01-31", "2026-01-31").await;
    assert_violates(result, ConstraintKind::Exclusion, "programs_pg_no_overlap");
}

#[tokio::test]
async fn a_program_has_one_schedule_day_per_date() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    let program = insert_program(db.pool(), user, "2026-01-01", "2026-01-31")
        .await
        .expect("program");
    let insert = || {
        sqlx::query("INSERT INTO program_schedule_pg (program_id, date) VALUES ($1, '2026-01-05')")
            .bind(program)
            .execute(db.pool())
    };
    insert().await.expect("first schedule day");
    assert_violates(
        insert().await,
        ConstraintKind::Unique,
        "program_schedule_pg_program_date_key",
    );
}

#[tokio::test]
async fn a_habit_is_used_once_per_user_and_day() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    let habit = insert_method(db.pool(), true).await;
    let insert = || {
        sqlx::query("INSERT INTO habit_usage_pg (user_id, method_id, used_on) VALUES ($1, $2, '2026-01-05')")
            .bind(user)
            .bind(habit)
            .execute(db.pool())
    };
    insert().await.expect("first usage");
    assert_violates(
        insert().await,
        ConstraintKind::Unique,
        "habit_usage_pg_user_method_day_key",
    );
}

#[tokio::test]
async fn habit_usage_requires_a_method_that_is_a_habit() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    let method = insert_method(db.pool(), false).await;
    let result = sqlx::query(
        "INSERT INTO habit_usage_pg (user_id, method_id, used_on) VALUES ($1, $2, '2026-01-05')",
    )
    .bind(user)
    .bind(method)
    .execute(db.pool())
    .await;
    assert_violates(
        result,
        ConstraintKind::Check,
        "habit_usage_pg_method_is_habit",
    );
}

#[tokio::test]
async fn a_personal_goal_is_used_once_per_user_and_day() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    let goal = insert_personal_goal(db.pool(), user, true)
        .await
        .expect("goal");
    let insert = || {
        sqlx::query("INSERT INTO personal_goal_usage_pg (user_id, personal_goal_id, used_on) VALUES ($1, $2, '2026-01-05')")
            .bind(user)
            .bind(goal)
            .execute(db.pool())
    };
    insert().await.expect("first usage");
    assert_violates(
        insert().await,
        ConstraintKind::Unique,
        "personal_goal_usage_pg_user_goal_day_key",
    );
}

#[tokio::test]
async fn personal_goal_usage_must_use_the_users_own_goal() {
    let db = TestDb::new().await;
    let anna = insert_user(db.pool(), "anna@example.com").await;
    let bert = insert_user(db.pool(), "bert@example.com").await;
    let annas_goal = insert_personal_goal(db.pool(), anna, true)
        .await
        .expect("goal");
    let result = sqlx::query(
        "INSERT INTO personal_goal_usage_pg (user_id, personal_goal_id, used_on) VALUES ($1, $2, '2026-01-05')",
    )
    .bind(bert)
    .bind(annas_goal)
    .execute(db.pool())
    .await;
    assert_violates(
        result,
        ConstraintKind::ForeignKey,
        "personal_goal_usage_pg_goal_owner_fkey",
    );
}

#[tokio::test]
async fn a_user_has_at_most_ten_active_personal_goals() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    for _ in 0..10 {
        insert_personal_goal(db.pool(), user, true)
            .await
            .expect("goal within the limit");
    }
    insert_personal_goal(db.pool(), user, false)
        .await
        .expect("inactive goals do not count");
    let result = insert_personal_goal(db.pool(), user, true).await;
    assert_violates(
        result,
        ConstraintKind::Check,
        "personal_goals_pg_max_active",
    );
}

#[tokio::test]
async fn an_overtuiging_is_used_once_per_user() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    let overtuiging = insert_overtuiging(db.pool()).await;
    let insert = |day: &'static str| {
        sqlx::query("INSERT INTO overtuiging_usage_pg (user_id, overtuiging_id, used_on) VALUES ($1, $2, $3::date)")
            .bind(user)
            .bind(overtuiging)
            .bind(day)
            .execute(db.pool())
    };
    insert("2026-01-05").await.expect("first usage");
    assert_violates(
        insert("2026-01-06").await,
        ConstraintKind::Unique,
        "overtuiging_usage_pg_user_overtuiging_key",
    );
}

#[tokio::test]
async fn method_usage_may_only_link_the_users_own_program() {
    let db = TestDb::new().await;
    let anna = insert_user(db.pool(), "anna@example.com").await;
    let bert = insert_user(db.pool(), "bert@example.com").await;
    let method = insert_method(db.pool(), false).await;
    let annas_program = insert_program(db.pool(), anna, "2026-01-01", "2026-01-31")
        .await
        .expect("program");
    let result = sqlx::query(
        "INSERT INTO method_usage_pg (user_id, method_id, program_id, used_on) VALUES ($1, $2, $3, '2026-01-05')",
    )
    .bind(bert)
    .bind(method)
    .bind(annas_program)
    .execute(db.pool())
    .await;
    assert_violates(
        result,
        ConstraintKind::ForeignKey,
        "method_usage_pg_program_owner_fkey",
    );
}

#[tokio::test]
async fn deleting_a_program_deletes_its_schedule_and_keeps_usages_unlinked() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    let method = insert_method(db.pool(), false).await;
    let program = insert_program(db.pool(), user, "2026-01-01", "2026-01-31")
        .await
        .expect("program");
    let day: Uuid = sqlx::query_scalar(
        "INSERT INTO program_schedule_pg (program_id, date) VALUES ($1, '2026-01-05') RETURNING id",
    )
    .bind(program)
    .fetch_one(db.pool())
    .await
    .expect("schedule day");
    let usage: Uuid = sqlx::query_scalar(
        "INSERT INTO method_usage_pg (user_id, method_id, program_id, schedule_day_id, used_on)
         VALUES ($1, $2, $3, $4, '2026-01-05') RETURNING id",
    )
    .bind(user)
    .bind(method)
    .bind(program)
    .bind(day)
    .fetch_one(db.pool())
    .await
    .expect("usage");

    sqlx::query("DELETE FROM programs_pg WHERE id = $1")
        .bind(program)
        .execute(db.pool())
        .await
        .expect("delete program");

    let schedule_days: i64 = sqlx::query_scalar("SELECT count(*) FROM program_schedule_pg")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(schedule_days, 0);
    let (owner, program_link, day_link): (Uuid, Option<Uuid>, Option<Uuid>) = sqlx::query_as(
        "SELECT user_id, program_id, schedule_day_id FROM method_usage_pg WHERE id = $1",
    )
    .bind(usage)
    .fetch_one(db.pool())
    .await
    .expect("usage kept");
    assert_eq!((owner, program_link, day_link), (user, None, None));
}

#[tokio::test]
async fn a_method_with_usages_cannot_be_deleted() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    let habit = insert_method(db.pool(), true).await;
    sqlx::query(
        "INSERT INTO habit_usage_pg (user_id, method_id, used_on) VALUES ($1, $2, '2026-01-05')",
    )
    .bind(user)
    .bind(habit)
    .execute(db.pool())
    .await
    .expect("usage");
    let result = sqlx::query("DELETE FROM reference_methods_pg WHERE id = $1")
        .bind(habit)
        .execute(db.pool())
        .await;
    assert_violates(
        result,
        ConstraintKind::ForeignKey,
        "habit_usage_pg_method_id_fkey",
    );
}

#[tokio::test]
async fn updated_at_is_maintained_by_trigger() {
    let db = TestDb::new().await;
    let user = insert_user(db.pool(), "a@b.c").await;
    sqlx::query("UPDATE users_pg SET updated_at = '2000-01-01' WHERE id = $1")
        .bind(user)
        .execute(db.pool())
        .await
        .expect("update");
    let (created, updated): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT created_at, updated_at FROM users_pg WHERE id = $1")
            .bind(user)
            .fetch_one(db.pool())
            .await
            .expect("read back");
    assert!(
        updated >= created,
        "updated_at was not set by the trigger: {updated}"
    );

    let tables_without_trigger: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c
          WHERE c.table_schema = 'public' AND c.column_name = 'updated_at'
            AND NOT EXISTS (SELECT 1 FROM information_schema.triggers t
                             WHERE t.event_object_table = c.table_name
                               AND t.trigger_name = c.table_name || '_updated_at')",
    )
    .fetch_all(db.pool())
    .await
    .expect("list tables");
    assert!(
        tables_without_trigger.is_empty(),
        "no updated_at trigger on {tables_without_trigger:?}"
    );
}

#[tokio::test]
async fn the_id_map_is_unique_both_ways() {
    let db = TestDb::new().await;
    let row = Uuid::new_v4();
    let insert = |row: Uuid, record: &'static str| {
        sqlx::query(
            "INSERT INTO airtable_id_map (entity, row_id, airtable_id) VALUES ('user', $1, $2)",
        )
        .bind(row)
        .bind(record)
        .execute(db.pool())
    };
    insert(row, "recAAAAAAAAAAAAAA")
        .await
        .expect("first mapping");
    assert_violates(
        insert(row, "recBBBBBBBBBBBBBB").await,
        ConstraintKind::Unique,
        "airtable_id_map_pkey",
    );
    assert_violates(
        insert(Uuid::new_v4(), "recAAAAAAAAAAAAAA").await,
        ConstraintKind::Unique,
        "airtable_id_map_airtable_id_key",
    );
}

#[tokio::test]
async fn the_id_map_only_holds_record_ids() {
    let db = TestDb::new().await;
    let result = sqlx::query("INSERT INTO airtable_id_map (entity, row_id, airtable_id) VALUES ('user', $1, 'tblAAAAAAAAAAAAAA')")
        .bind(Uuid::new_v4())
        .execute(db.pool())
        .await;
    assert_violates(
        result,
        ConstraintKind::Check,
        "airtable_id_map_airtable_id_format",
    );
}

async fn insert_outbox(
    pool: &PgPool,
    state: &str,
    owner: Option<&str>,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sync_outbox (entity, row_id, operation, state, lease_owner, lease_expires_at, idempotency_key)
         VALUES ('user', $1, 'upsert', $2, $3, CASE WHEN $3::text IS NULL THEN NULL ELSE now() END, $4)",
    )
    .bind(Uuid::new_v4())
    .bind(state)
    .bind(owner)
    .bind(key)
    .execute(pool)
    .await
    .map(|_| ())
}

#[tokio::test]
async fn outbox_states_are_a_checked_set() {
    let db = TestDb::new().await;
    let result = insert_outbox(db.pool(), "done", None, "k1").await;
    assert_violates(result, ConstraintKind::Check, "sync_outbox_state_valid");
}

#[tokio::test]
async fn outbox_idempotency_keys_are_unique() {
    let db = TestDb::new().await;
    insert_outbox(db.pool(), "pending", None, "k1")
        .await
        .expect("first event");
    let result = insert_outbox(db.pool(), "pending", None, "k1").await;
    assert_violates(
        result,
        ConstraintKind::Unique,
        "sync_outbox_idempotency_key_key",
    );
}

#[tokio::test]
async fn outbox_leases_exist_exactly_when_leased() {
    let db = TestDb::new().await;
    insert_outbox(db.pool(), "leased", Some("worker-1"), "k1")
        .await
        .expect("a leased event");
    let leased_without_owner = insert_outbox(db.pool(), "leased", None, "k2").await;
    assert_violates(
        leased_without_owner,
        ConstraintKind::Check,
        "sync_outbox_lease_matches_state",
    );
    let pending_with_owner = insert_outbox(db.pool(), "pending", Some("worker-1"), "k3").await;
    assert_violates(
        pending_with_owner,
        ConstraintKind::Check,
        "sync_outbox_lease_matches_state",
    );
}

#[tokio::test]
async fn outbox_operations_are_upsert_or_delete() {
    let db = TestDb::new().await;
    let result = sqlx::query(
        "INSERT INTO sync_outbox (entity, row_id, operation, idempotency_key) VALUES ('user', $1, 'merge', 'k')",
    )
    .bind(Uuid::new_v4())
    .execute(db.pool())
    .await;
    assert_violates(result, ConstraintKind::Check, "sync_outbox_operation_valid");
}

#[tokio::test]
async fn dead_letters_name_a_known_reason() {
    let db = TestDb::new().await;
    let result = sqlx::query(
        "INSERT INTO sync_dead_letter (outbox_id, entity, row_id, operation, idempotency_key, attempts,
                                       reason, last_error, first_enqueued_at)
         VALUES (1, 'user', $1, 'upsert', 'k', 1, 'bad luck', 'boom', now())",
    )
    .bind(Uuid::new_v4())
    .execute(db.pool())
    .await;
    assert_violates(
        result,
        ConstraintKind::Check,
        "sync_dead_letter_reason_valid",
    );
}

#[tokio::test]
async fn inbox_event_keys_are_unique() {
    let db = TestDb::new().await;
    let insert = || {
        sqlx::query("INSERT INTO sync_inbox_events (event_key, source, body) VALUES ('ach1:5', 'webhook', '{}')")
            .execute(db.pool())
    };
    insert().await.expect("first notification");
    assert_violates(
        insert().await,
        ConstraintKind::Unique,
        "sync_inbox_events_event_key_key",
    );
}

#[tokio::test]
async fn inbox_sources_are_a_checked_set() {
    let db = TestDb::new().await;
    let result = sqlx::query(
        "INSERT INTO sync_inbox_events (event_key, source, body) VALUES ('k', 'email', '{}')",
    )
    .execute(db.pool())
    .await;
    assert_violates(
        result,
        ConstraintKind::Check,
        "sync_inbox_events_source_valid",
    );
}

#[tokio::test]
async fn references_to_missing_rows_are_rejected() {
    let db = TestDb::new().await;
    let method = insert_method(db.pool(), true).await;
    let result = sqlx::query(
        "INSERT INTO habit_usage_pg (user_id, method_id, used_on) VALUES ($1, $2, '2026-01-05')",
    )
    .bind(Uuid::new_v4())
    .bind(method)
    .execute(db.pool())
    .await;
    assert_violates(
        result,
        ConstraintKind::ForeignKey,
        "habit_usage_pg_user_id_fkey",
    );
}
