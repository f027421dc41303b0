//! Settling and the proof: the outbox drained, the team's edits in
//! PostgreSQL, no duplicate in Airtable, every acknowledged write on both
//! sides, no dead letter; and, for a soak, memory and outbox size flat.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use airsync_emulator::Emulator;
use airsync_sync::mapping::Mapping;
use serde_json::Value;
use uuid::Uuid;

use crate::clients::Ledger;
use crate::database::Database;
use crate::processes::Process;
use crate::schedule::Chaos;
use crate::team::Edited;
use crate::BASE;

pub struct CliOutput(Output);

impl CliOutput {
    pub fn success(&self) -> bool {
        self.0.status.success()
    }

    /// The exit status, standard output and standard error.
    pub fn output(&self) -> String {
        format!(
            "{}:\n{}\n{}",
            self.0.status,
            String::from_utf8_lossy(&self.0.stdout),
            String::from_utf8_lossy(&self.0.stderr)
        )
    }

    pub fn assert_success(&self, what: &str) {
        assert!(self.success(), "{what} failed ({})", self.output());
    }
}

/// Runs `airsync ARGS` to its end, on a blocking thread so that the
/// in-process emulator keeps answering.
pub async fn run_cli(args: &[&str], env: &[(String, String)]) -> CliOutput {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env = env.to_vec();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_airsync"))
            .args(&args)
            .env_clear()
            .envs(env)
            .output()
            .expect("run airsync")
    })
    .await
    .expect("join");
    CliOutput(output)
}

/// The table and entity of an Airtable table the team edits.
fn table_of(airtable_table: &str) -> (&'static str, &'static str) {
    match airtable_table {
        "Goals" => ("goal", "reference_goals_pg"),
        "Users" => ("user", "users_pg"),
        "Methods" => ("method", "reference_methods_pg"),
        other => panic!("the team does not edit {other}"),
    }
}

/// The team's edits not (yet) in PostgreSQL as made.
async fn missing_team_edits(
    db: &Database,
    emulator: &Emulator,
    team: &[Edited],
) -> sqlx::Result<Vec<String>> {
    let mut missing = Vec::new();
    for edited in team {
        let (entity, table) = table_of(edited.table);
        let name: Option<String> = sqlx::query_scalar(&format!(
            "SELECT t.name FROM airtable_id_map m JOIN {table} t ON t.id = m.row_id
             WHERE m.entity = $1 AND m.airtable_id = $2"
        ))
        .bind(entity)
        .bind(&edited.record)
        .fetch_optional(db.pool())
        .await?;
        if name.as_deref() != Some(edited.name.as_str()) {
            let now = emulator
                .dump_table(BASE.as_str(), edited.table)
                .unwrap_or_default()
                .into_iter()
                .find(|r| r["id"] == edited.record.as_str())
                .map(|r| r["fields"]["Name"].clone());
            missing.push(format!(
                "{} {}: {:?} in PostgreSQL, the team wrote {:?}, Airtable has {:?}",
                edited.table, edited.record, name, edited.name, now
            ));
        }
    }
    Ok(missing)
}

pub async fn outbox_len(db: &Database) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM sync_outbox")
        .fetch_one(db.pool())
        .await
}

/// Waits until the outbox is empty and every team edit is in PostgreSQL.
pub async fn wait_until_settled(
    db: &Database,
    emulator: &Emulator,
    team: &[Edited],
    within: Duration,
    serve: &mut Process,
    chaos: &Chaos,
) {
    let deadline = Instant::now() + within;
    let mut next_report = Instant::now() + Duration::from_secs(15);
    loop {
        let pending = outbox_len(db).await;
        let missing = missing_team_edits(db, emulator, team).await;
        if let (Ok(0), Ok(missing)) = (&pending, &missing) {
            if missing.is_empty() {
                return;
            }
        }
        let missing = missing
            .map(|m| m.join("\n"))
            .unwrap_or_else(|e| e.to_string());
        if Instant::now() > deadline {
            let workers: Vec<String> = chaos
                .workers()
                .map(|w| format!("--- {}:\n{}", w.name, w.log_tail(30)))
                .collect();
            panic!(
                "not settled within {within:?}: outbox {pending:?}; team edits missing:\n{missing}\n--- serve:\n{}\n{}",
                serve.log_tail(40),
                workers.join("\n")
            );
        }
        if Instant::now() > next_report {
            println!(
                "chaos: settling: outbox {pending:?}, team edits missing: {}",
                missing.lines().count()
            );
            next_report = Instant::now() + Duration::from_secs(15);
        }
        assert!(serve.is_running(), "serve exited:\n{}", serve.log_tail(40));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every `pg_id` appears at most once in each Airtable table.
pub fn no_duplicates(emulator: &Emulator, mapping: &Mapping) {
    for entity in mapping.entities() {
        let Some(pg_id) = entity.pg_id_field() else {
            continue;
        };
        let records = emulator
            .dump_table(BASE.as_str(), &entity.airtable_table)
            .expect("dump");
        let mut seen = HashSet::new();
        for record in &records {
            if let Some(id) = record["fields"][&pg_id.field].as_str() {
                assert!(
                    seen.insert(id.to_owned()),
                    "{}: the record of {id} is duplicated",
                    entity.airtable_table
                );
            }
        }
    }
}

/// The pg_ids found in an Airtable table.
fn airtable_ids(emulator: &Emulator, table: &str) -> HashMap<Uuid, Value> {
    emulator
        .dump_table(BASE.as_str(), table)
        .expect("dump")
        .into_iter()
        .filter_map(|r| {
            let id = r["fields"]["pg_id"].as_str()?.parse().ok()?;
            Some((id, r["fields"].clone()))
        })
        .collect()
}

async fn rows(db: &Database, table: &str) -> HashSet<Uuid> {
    sqlx::query_scalar::<_, Uuid>(&format!("SELECT id FROM {table}"))
        .fetch_all(db.pool())
        .await
        .expect("rows")
        .into_iter()
        .collect()
}

/// Checks one row against both sides: there (or gone) as acknowledged.
fn check(
    what: &str,
    id: Uuid,
    present: bool,
    postgres: &HashSet<Uuid>,
    airtable: &HashMap<Uuid, Value>,
) {
    assert_eq!(postgres.contains(&id), present, "{what} {id} in PostgreSQL");
    assert_eq!(
        airtable.contains_key(&id),
        present,
        "{what} {id} in Airtable"
    );
}

pub async fn acknowledged_writes_are_there(db: &Database, emulator: &Emulator, ledger: &Ledger) {
    let goals_pg = rows(db, "personal_goals_pg").await;
    let goals_at = airtable_ids(emulator, "Personal goals");
    for (id, goal) in &ledger.goals {
        if goal.uncertain {
            continue;
        }
        check("personal goal", *id, !goal.deleted, &goals_pg, &goals_at);
        if !goal.deleted {
            let name: String =
                sqlx::query_scalar("SELECT name FROM personal_goals_pg WHERE id = $1")
                    .bind(id)
                    .fetch_one(db.pool())
                    .await
                    .expect("goal");
            assert_eq!(
                name, goal.name,
                "personal goal {id}: an acknowledged rename was lost"
            );
            assert_eq!(
                goals_at[id]["Name"],
                Value::from(goal.name.clone()),
                "personal goal {id} in Airtable"
            );
        }
    }
    let usage_pg = rows(db, "personal_goal_usage_pg").await;
    let usage_at = airtable_ids(emulator, "Personal goal usage");
    for (id, goal) in &ledger.goal_usage {
        if let Some(g) = ledger.goals.get(goal) {
            if !g.uncertain && !g.deleted {
                check("personal goal usage", *id, true, &usage_pg, &usage_at);
            }
        }
    }
    let ticks_pg = rows(db, "habit_usage_pg").await;
    let ticks_at = airtable_ids(emulator, "Habit usage");
    for (id, deleted) in &ledger.habit_usage {
        if !ledger.habit_usage_uncertain.contains(id) {
            check("habit usage", *id, !deleted, &ticks_pg, &ticks_at);
        }
    }
    let programs_pg = rows(db, "programs_pg").await;
    let programs_at = airtable_ids(emulator, "Programs");
    for id in &ledger.programs {
        check("program", *id, true, &programs_pg, &programs_at);
    }
}

pub async fn no_dead_letters(db: &Database) {
    let letters: Vec<(String, String)> =
        sqlx::query_as("SELECT entity, coalesce(last_error, '') FROM sync_dead_letter")
            .fetch_all(db.pool())
            .await
            .expect("dead letters");
    assert!(letters.is_empty(), "dead letters: {letters:?}");
}

/// Memory and outbox size over a soak run.
#[derive(Default)]
pub struct Samples {
    next: Duration,
    rows: Vec<(Duration, u64, u64, i64, i64)>,
}

impl Samples {
    pub async fn take<'a>(
        &mut self,
        now: Duration,
        serve: &Process,
        workers: impl Iterator<Item = &'a Process>,
        db: &Database,
    ) {
        if now < self.next {
            return;
        }
        self.next = now + Duration::from_secs(30);
        let serve_kib = serve.rss_kib().unwrap_or(0);
        let workers_kib = workers.filter_map(Process::rss_kib).max().unwrap_or(0);
        let size: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM sync_outbox), pg_total_relation_size('sync_outbox')",
        )
        .fetch_one(db.pool())
        .await
        .unwrap_or((-1, -1));
        self.rows
            .push((now, serve_kib, workers_kib, size.0, size.1));
    }

    /// Prints the series.
    pub fn report(&self) {
        println!("soak:   time  serve RSS  worker RSS  outbox rows  outbox size");
        for (at, serve, worker, rows, size) in &self.rows {
            println!(
                "soak: {:>5} s  {:>6} MiB  {:>7} MiB  {rows:>11}  {:>7} KiB",
                at.as_secs(),
                serve / 1024,
                worker / 1024,
                size / 1024
            );
        }
    }

    /// Checks that the last third of the run is not above the middle third
    /// (after warm-up) by more than a margin.
    pub fn check(&self) {
        let third = self.rows.len() / 3;
        if third == 0 {
            return;
        }
        let mean = |part: &[(Duration, u64, u64, i64, i64)],
                    pick: fn(&(Duration, u64, u64, i64, i64)) -> f64| {
            part.iter().map(pick).sum::<f64>() / part.len() as f64
        };
        let middle = &self.rows[third..2 * third];
        let last = &self.rows[2 * third..];
        let serve = (mean(middle, |r| r.1 as f64), mean(last, |r| r.1 as f64));
        let size = (mean(middle, |r| r.4 as f64), mean(last, |r| r.4 as f64));
        println!(
            "soak: serve RSS {:.1} -> {:.1} MiB, outbox size {:.0} -> {:.0} KiB (middle third -> last third)",
            serve.0 / 1024.0,
            serve.1 / 1024.0,
            size.0 / 1024.0,
            size.1 / 1024.0
        );
        assert!(
            serve.1 <= serve.0 * 1.25 + 16.0 * 1024.0,
            "serve's memory grows"
        );
        assert!(
            size.1 <= size.0 * 1.5 + 512.0 * 1024.0,
            "the outbox table grows"
        );
    }
}
