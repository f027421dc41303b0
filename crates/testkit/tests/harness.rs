//! The harness hands every test its own migrated database.

use airsync_testkit::TestDb;

#[tokio::test]
async fn two_tests_running_at_the_same_time_get_separate_databases() {
    let (first, second) = tokio::join!(TestDb::new(), TestDb::new());
    assert_ne!(first.name(), second.name());

    let write = |db: &TestDb, email: &'static str| {
        let pool = db.pool().clone();
        async move {
            sqlx::query("INSERT INTO users_pg (email) VALUES ($1)")
                .bind(email)
                .execute(&pool)
                .await
                .expect("insert");
        }
    };
    tokio::join!(
        write(&first, "same@example.com"),
        write(&second, "same@example.com")
    );

    for db in [&first, &second] {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users_pg")
            .fetch_one(db.pool())
            .await
            .expect("count");
        assert_eq!(count, 1, "database {} sees another test's rows", db.name());
    }
}

#[tokio::test]
async fn every_database_starts_migrated_and_empty() {
    let db = TestDb::new().await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users_pg")
        .fetch_one(db.pool())
        .await
        .expect("users_pg exists");
    assert_eq!(users, 0);
}

#[tokio::test]
async fn a_dropped_test_database_is_removed_from_the_server() {
    let db = TestDb::new().await;
    let name = db.name().to_owned();
    let other = TestDb::new().await;
    drop(db);
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(other.pool())
            .await
            .expect("look up");
    assert!(!exists, "database {name} is still there");
}
