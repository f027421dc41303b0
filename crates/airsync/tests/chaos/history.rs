//! The history test: the app and the team write the same few personal
//! goals at once, under the chaos of the first test, and every operation is
//! recorded with its times and outcome. The app writes fields, creates,
//! deletes and records usage; the team writes fields, creates, deletes, and
//! brings back the record of a goal the app deleted (a copy with its
//! `pg_id`, as a restore from Airtable's trash makes). Once the sync has
//! settled, the final state of both sides is checked against the history
//! (`checker.rs`): both sides equal, per field the later change wins, a
//! delete wins (a restored record is deleted again), nothing appears that
//! nobody wrote.
//!
//! - `AIRSYNC_HISTORY_SECS` (default 20): seconds of load and chaos.
//! - `AIRSYNC_CHAOS_SEED`: repeats a run's random choices.
//! - `AIRSYNC_HISTORY_RECORDS` (default 6, at most 8): goals at the start;
//!   the load keeps between two fewer and two more.
//! - `AIRSYNC_HISTORY_APP_CLIENTS`, `AIRSYNC_HISTORY_TEAM_EDITORS` (default
//!   2 and 2).
//! - `AIRSYNC_HISTORY_WEBHOOK`: what happens to the webhook at 30% of the
//!   run (unset: chosen by the seed among `keep`, `expire` and `delete`):
//!   `keep`, `expire` (it expires as after seven days
//!   without a refresh and records nothing more; its payloads stay
//!   readable), `clock` (the emulator's clock jumps 8 days, which also
//!   purges the payloads and puts Airtable's change times 8 days ahead of
//!   PostgreSQL's) or `delete` (someone deletes the webhook, payloads and
//!   all). Each of the last three leaves a time in which Airtable records
//!   no history of the team's edits, from the fault until airsync's next
//!   webhook begins: a team edit made then that a push overwrites before a
//!   listing reads it is gone without a trace. The checker excuses those
//!   edits alone and prints each (`checker::Unrecorded`); an edit made
//!   after the new webhook began must survive like any other, even on a
//!   record last agreed before the gap (the worker reads such a record
//!   before updating it).
//!
//! Every value written is unique (`a0-17`: app client 0's 17th value;
//! `t1-4`: team editor 1's; `s-3`: the set-up's), so a final value names the
//! operation that wrote it. Times are `Utc::now()` around each operation,
//! the clock the emulator stamps its changes with (this test deletes the
//! webhook rather than moving the emulator's clock, see `schedule.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airsync_emulator::{ClientEdit, Emulator, RecordPatch};
use chrono::{Days, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::checker::{
    self, Field, Final, Goal, InboundChange, Kind, Op, Outcome, Record, Row, Target, UsageRecord,
    UsageRow,
};
use crate::checks;
use crate::clients::{self, uuid_of, Client};
use crate::database::Database;
use crate::processes::Process;
use crate::schedule::Expiry;
use crate::{env_number, fields, run_chaos, seed_from_env, Harness, BASE};

const GOALS: &str = "Personal goals";
const USAGE: &str = "Personal goal usage";

struct Settings {
    load: Duration,
    seed: u64,
    records: usize,
    app_clients: usize,
    team_editors: usize,
    webhook: Expiry,
}

impl Settings {
    fn webhook_name(&self) -> &'static str {
        match self.webhook {
            Expiry::Never => "kept",
            Expiry::Expired => "expired",
            Expiry::ClockJump => "expired by the clock",
            Expiry::Deleted => "deleted",
        }
    }

    fn from_env() -> Settings {
        let seed = seed_from_env();
        Settings {
            load: Duration::from_secs(env_number("AIRSYNC_HISTORY_SECS", 20u64).max(10)),
            seed,
            // The API takes at most 10 active goals; the load may add two.
            records: env_number("AIRSYNC_HISTORY_RECORDS", 6usize).clamp(1, 8),
            app_clients: env_number("AIRSYNC_HISTORY_APP_CLIENTS", 2),
            team_editors: env_number("AIRSYNC_HISTORY_TEAM_EDITORS", 2),
            webhook: match std::env::var("AIRSYNC_HISTORY_WEBHOOK").as_deref() {
                // By the seed: a third of the runs each.
                Err(_) => [Expiry::Never, Expiry::Expired, Expiry::Deleted][(seed % 3) as usize],
                Ok("keep") => Expiry::Never,
                Ok("expire") => Expiry::Expired,
                Ok("clock") => Expiry::ClockJump,
                Ok("delete") => Expiry::Deleted,
                Ok(other) => {
                    panic!("AIRSYNC_HISTORY_WEBHOOK: expire, clock, delete or keep, not {other:?}")
                }
            },
        }
    }
}

/// What the app clients and the team editors share.
struct Workload {
    pool: PgPool,
    emulator: Arc<Emulator>,
    user: Uuid,
    user_record: String,
    /// Creates and deletes take turns, each counting the goals first, so
    /// that the user never has more active goals than the API allows, nor
    /// fewer than `fewest`.
    turns: tokio::sync::Mutex<()>,
    stop: AtomicBool,
    /// Deletes only above this many goals, creates only below `most`.
    fewest: usize,
    most: usize,
    /// The goals whose delete the API acknowledged: the team brings back
    /// the records of some (`Kind::Restore`).
    deleted: std::sync::Mutex<Vec<Uuid>>,
    /// The goal and field of the team's latest write: app clients often
    /// answer it by writing the goal's other field at once, so that the
    /// app's push may leave before the inbound sync has applied the team's
    /// write (what a push of fields the app did not change would overwrite).
    team_last: std::sync::Mutex<Option<(Uuid, Field)>>,
}

impl Workload {
    /// The user's goals in PostgreSQL (`None` while it restarts).
    async fn rows(&self) -> Option<Vec<Uuid>> {
        sqlx::query_scalar("SELECT id FROM personal_goals_pg WHERE user_id = $1 ORDER BY id")
            .bind(self.user)
            .fetch_all(&self.pool)
            .await
            .ok()
    }

    /// The goals in Airtable: record id and `pg_id`.
    fn records(&self) -> Vec<(String, Option<Uuid>)> {
        self.cells()
            .iter()
            .map(|(id, cells)| (id.clone(), pg_id(cells)))
            .collect()
    }

    /// The goals in Airtable: record id and cells.
    fn cells(&self) -> Vec<(String, Value)> {
        dump(&self.emulator, GOALS)
            .into_iter()
            .map(|mut r| (text(&r, "id"), r["fields"].take()))
            .collect()
    }

    /// How many goals there are, counted two ways: those both sides hold
    /// (never more than there will be: deletes go by it), and those either
    /// side holds, a goal both hold counted once (never fewer: creates go by
    /// it). `None` while PostgreSQL restarts.
    async fn count(&self) -> Option<Count> {
        let rows = self.rows().await?;
        let records = self.records();
        let both = records
            .iter()
            .filter(|(_, pg)| pg.is_some_and(|id| rows.contains(&id)))
            .count();
        Some(Count {
            both,
            either: rows.len() + records.len() - both,
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

struct Count {
    both: usize,
    either: usize,
}

/// One actor of the history: its name, its random choices and what it did.
struct Actor {
    name: String,
    rng: StdRng,
    seq: u64,
    ops: Vec<Op>,
}

impl Actor {
    fn new(name: &str, seed: u64) -> Actor {
        Actor {
            name: name.to_owned(),
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            ops: Vec::new(),
        }
    }

    /// A value nobody else writes.
    fn value(&mut self) -> String {
        self.seq += 1;
        format!("{}-{}", self.name, self.seq)
    }

    fn field(&mut self) -> Field {
        Field::ALL[self.rng.random_range(0..Field::ALL.len())]
    }

    async fn pause(&mut self, millis: std::ops::Range<u64>) {
        let pause = self.rng.random_range(millis);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }

    /// One request of the app, recorded. A create's goal is the one its
    /// answer names.
    async fn app(
        &mut self,
        client: &mut Client,
        kind: Kind,
        goal: Option<Uuid>,
        (method, path): (Method, &str),
        body: Option<Value>,
    ) {
        let creates = matches!(kind, Kind::Create { .. });
        let start = Utc::now();
        let answer = client.send(method, path, body).await;
        let end = Utc::now();
        let (outcome, detail, pg) = match answer {
            clients::Outcome::Done(body) if creates => {
                let id = uuid_of(&body["id"]).expect("a created goal has an id");
                (Outcome::Ok, "2xx".to_owned(), Some(id))
            }
            clients::Outcome::Done(_) => (Outcome::Ok, "2xx".to_owned(), goal),
            clients::Outcome::Refused(status) => {
                (Outcome::Failed, format!("HTTP {}", status.as_u16()), goal)
            }
            clients::Outcome::Unanswered(why) => (Outcome::Unknown, why, goal),
        };
        self.ops.push(Op {
            actor: self.name.clone(),
            kind,
            target: Target { pg, record: None },
            start,
            end,
            outcome,
            detail,
        });
    }

    /// One edit of the team in Airtable's UI, recorded. The record of a
    /// create or a restore is the one the edit made.
    fn team(&mut self, emulator: &Emulator, kind: Kind, target: Target, edit: ClientEdit) {
        let start = Utc::now();
        let result = emulator.edit_as_user(BASE.as_str(), GOALS, edit);
        let end = Utc::now();
        let (outcome, detail, target) = match result {
            Ok(done) if matches!(kind, Kind::Create { .. } | Kind::Restore) => {
                let record = done.created.into_iter().next();
                let target = Target {
                    pg: target.pg,
                    record,
                };
                (Outcome::Ok, "ok".to_owned(), target)
            }
            Ok(_) => (Outcome::Ok, "ok".to_owned(), target),
            Err(err) => (Outcome::Failed, err.to_string(), target),
        };
        self.ops.push(Op {
            actor: self.name.clone(),
            kind,
            target,
            start,
            end,
            outcome,
            detail,
        });
    }
}

fn goal_path(id: Uuid) -> String {
    format!("/api/personal-goals/{id}")
}

/// An app client: a session of the user, writing one field of a random
/// goal at a time, now and then deleting or creating one, or recording a
/// usage of one.
async fn app_client(index: usize, work: Arc<Workload>, api: String, seed: u64) -> Vec<Op> {
    let mut actor = Actor::new(&format!("a{index}"), seed);
    let mut client = Client::new(api, clients::email(0));
    let today = Utc::now().date_naive();
    let mut goals: Vec<Uuid> = Vec::new();
    while !work.stopped() {
        actor.pause(50..250).await;
        if let Some(rows) = work.rows().await {
            goals = rows;
        }
        // A request that cannot be sent is no operation.
        if goals.is_empty() || !client.ensure_login().await {
            continue;
        }
        let mut goal = goals[actor.rng.random_range(0..goals.len())];
        let roll = actor.rng.random_range(0..100);
        // Half the writes answer the team's latest write, on its goal's
        // other field.
        let mut answer = None;
        if roll >= 9 && actor.rng.random_bool(0.5) {
            let last = work.team_last.lock().expect("team_last").take();
            if let Some((pg, field)) = last.filter(|(pg, _)| goals.contains(pg)) {
                goal = pg;
                answer = Some(match field {
                    Field::Name => Field::Description,
                    Field::Description => Field::Name,
                });
            }
        }
        if roll < 6 {
            let Ok(_turn) = work.turns.try_lock() else {
                continue;
            };
            let Some(count) = work.count().await else {
                continue;
            };
            if roll < 3 && count.both > work.fewest {
                let path = goal_path(goal);
                let request = (Method::DELETE, path.as_str());
                actor
                    .app(&mut client, Kind::Delete, Some(goal), request, None)
                    .await;
                if actor.ops.last().is_some_and(|op| op.outcome == Outcome::Ok) {
                    work.deleted.lock().expect("deleted").push(goal);
                }
            } else if roll >= 3 && count.either < work.most {
                let value = actor.value();
                let body = json!({"name": value, "description": value});
                let kind = Kind::create(&value);
                let request = (Method::POST, "/api/personal-goals");
                actor
                    .app(&mut client, kind, None, request, Some(body))
                    .await;
            }
        } else if roll < 9 {
            // Within the week a usage may be dated back (a day to spare for time zones).
            let used_on = today - Days::new(actor.rng.random_range(1..7));
            let body = json!({"personalGoalId": goal, "usedOn": used_on.to_string()});
            let request = (Method::POST, "/api/personal-goal-usage");
            actor
                .app(&mut client, Kind::Usage, Some(goal), request, Some(body))
                .await;
        } else {
            let field = answer.unwrap_or_else(|| actor.field());
            let value = actor.value();
            let body = match field {
                Field::Name => json!({"name": value}),
                Field::Description => json!({"description": value}),
            };
            let path = goal_path(goal);
            let request = (Method::PATCH, path.as_str());
            let kind = Kind::Write { field, value };
            actor
                .app(&mut client, kind, Some(goal), request, Some(body))
                .await;
        }
    }
    actor.ops
}

/// A team editor: a person in Airtable's UI, changing one field of a
/// random record at a time, now and then deleting or creating one, or
/// bringing back the record of a goal the app deleted.
async fn team_editor(index: usize, work: Arc<Workload>, seed: u64) -> Vec<Op> {
    let mut actor = Actor::new(&format!("t{index}"), seed);
    // The cells of every goal's record this editor has seen, by pg_id.
    let mut seen: HashMap<Uuid, Value> = HashMap::new();
    while !work.stopped() {
        actor.pause(150..450).await;
        let cells = work.cells();
        let records: Vec<(String, Option<Uuid>)> = cells
            .iter()
            .map(|(id, cells)| (id.clone(), pg_id(cells)))
            .collect();
        for (_, cells) in cells {
            if let Some(pg) = pg_id(&cells) {
                seen.insert(pg, cells);
            }
        }
        let roll = actor.rng.random_range(0..100);
        if (8..24).contains(&roll) && restore(&mut actor, &work, &seen, &records).await {
            continue;
        }
        if roll < 8 || records.is_empty() {
            let creates = roll >= 4 || records.is_empty();
            let Ok(_turn) = work.turns.try_lock() else {
                continue;
            };
            let Some(count) = work.count().await else {
                continue;
            };
            if creates && count.either < work.most {
                let value = actor.value();
                let cells = json!({
                    "Name": value, "Description": value,
                    "User": [work.user_record], "Active": true,
                });
                let edit = ClientEdit {
                    create: vec![fields(cells)],
                    ..ClientEdit::default()
                };
                let kind = Kind::create(&value);
                actor.team(&work.emulator, kind, Target::default(), edit);
            } else if !creates && count.both > work.fewest {
                let (record, pg) = records[actor.rng.random_range(0..records.len())].clone();
                let edit = ClientEdit {
                    delete: vec![record.clone()],
                    ..ClientEdit::default()
                };
                let target = Target {
                    pg,
                    record: Some(record),
                };
                actor.team(&work.emulator, Kind::Delete, target, edit);
            }
            continue;
        }
        let (record, pg) = records[actor.rng.random_range(0..records.len())].clone();
        let field = actor.field();
        let value = actor.value();
        let cell = (field.airtable().to_owned(), Value::from(value.clone()));
        let edit = ClientEdit {
            update: vec![RecordPatch {
                id: record.clone(),
                fields: Map::from_iter([cell]),
            }],
            ..ClientEdit::default()
        };
        let target = Target {
            pg,
            record: Some(record),
        };
        actor.team(&work.emulator, Kind::Write { field, value }, target, edit);
        if let Some(pg) = pg {
            *work.team_last.lock().expect("team_last") = Some((pg, field));
        }
    }
    actor.ops
}

/// The closing round, after the load and its faults, on every goal both
/// sides hold, all at once (a pair of actors per goal, `tz`/`az` and the
/// goal's place). It makes the two situations in which a push and the
/// inbound sync meet halfway (causes 1 and 2 of `docs/reliability.md`)
/// certain instead of left to chance, and ends with writes nothing covers,
/// so that rule 3 judges them at the end and not only rule 5 on the way.
/// Per goal:
/// 1. the team writes both fields, and the test waits until PostgreSQL
///    holds them: both values agreed on are team edits, which no push of
///    ours ever sent (a value a push sent is known as its echo);
/// 2. once every goal is there, as soon as Airtable has made a page that
///    lists the goal's record (a poll's, a reconcile's), whose answer is now
///    on its way back for 2.5 to 3.5 s, the app writes one field (X): its
///    push is answered before the page arrives, and a page applied as it
///    was read would put X's team value back over the app's (cause 2: X's
///    app write must survive);
/// 3. as soon as the worker has recorded that push as leaving, the team
///    writes the other field (Y), before the push arrives (requests now
///    wait 200 to 300 ms before Airtable handles them): a push of every
///    field would put Y's older value over the team's edit (cause 1: Y's
///    team edit must survive).
///
/// Answers the operations, and for how many goals each step came on time
/// (PostgreSQL held the team's values, a page listed the record, the push
/// left).
async fn closing_round(work: Arc<Workload>, api: String, seed: u64) -> (Vec<Op>, [usize; 3]) {
    // The goals both sides hold; a goal just created is given a few
    // seconds to reach the other side.
    let deadline = Instant::now() + Duration::from_secs(15);
    let goals: Vec<(String, Uuid)> = loop {
        let rows = work.rows().await.unwrap_or_default();
        let records = work.records();
        let both: Vec<(String, Uuid)> = records
            .iter()
            .filter_map(|(record, pg)| {
                pg.filter(|id| rows.contains(id))
                    .map(|id| (record.clone(), id))
            })
            .collect();
        let everywhere = both.len() == rows.len() && both.len() == records.len();
        if everywhere || Instant::now() >= deadline {
            break both;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Step 1 everywhere before step 2 anywhere: the slow pages of step 2
    // would hold step 1 up.
    let step_two = Arc::new(tokio::sync::Barrier::new(goals.len()));
    let mut duels = tokio::task::JoinSet::new();
    for (n, (record, goal)) in goals.into_iter().enumerate() {
        let work = work.clone();
        let api = api.clone();
        let step_two = step_two.clone();
        let seed = seed.wrapping_add(n as u64);
        duels.spawn(async move {
            let mut team = Actor::new(&format!("tz{n}"), seed);
            let mut app = Actor::new(&format!("az{n}"), seed ^ 0xA11);
            let mut client = Client::new(api, clients::email(0));
            // Signed in beforehand: a sign-in takes long enough (its
            // password hash) for the page to arrive before the push.
            client.ensure_login().await;
            let x = team.field();
            let y = match x {
                Field::Name => Field::Description,
                Field::Description => Field::Name,
            };
            for field in [x, y] {
                team_write(&mut team, &work.emulator, &record, goal, field);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut held = true;
            for op in &team.ops {
                if let (Kind::Write { field, value }, Outcome::Ok) = (&op.kind, op.outcome) {
                    held &= held_in_postgres(&work.pool, goal, *field, value, deadline).await;
                }
            }
            if step_two.wait().await.is_leader() {
                work.emulator
                    .set_listing_answer_latency_ms(Some(2_500..=3_500));
                // A request waits before Airtable handles it: the team's
                // write of step 3 lands before the push it follows.
                work.emulator.set_latency_ms(Some(200..=300));
            }
            // A poll reads every table in turn, each page slow now: a minute
            // covers a round of them.
            let pages = work.emulator.pages_listing(BASE.as_str(), &record);
            let deadline = Instant::now() + Duration::from_secs(60);
            while work.emulator.pages_listing(BASE.as_str(), &record) == pages
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let paged = work.emulator.pages_listing(BASE.as_str(), &record) > pages;
            let value = app.value();
            let body = match x {
                Field::Name => json!({"name": value}),
                Field::Description => json!({"description": value}),
            };
            let path = goal_path(goal);
            let kind = Kind::Write {
                field: x,
                value: value.clone(),
            };
            let request = (Method::PATCH, path.as_str());
            app.app(&mut client, kind, Some(goal), request, Some(body))
                .await;
            let leaving = push_leaving(&work.pool, goal, x, &value).await;
            team_write(&mut team, &work.emulator, &record, goal, y);
            team.ops.extend(app.ops);
            (team.ops, [held, paged, leaving])
        });
    }
    let mut ops = Vec::new();
    let mut on_time = [0; 3];
    while let Some(done) = duels.join_next().await {
        let (done, steps) = done.expect("a closing duel panicked");
        ops.extend(done);
        for (count, step) in on_time.iter_mut().zip(steps) {
            *count += usize::from(step);
        }
    }
    (ops, on_time)
}

/// One team write of `field` on a goal's record, recorded.
fn team_write(actor: &mut Actor, emulator: &Emulator, record: &str, goal: Uuid, field: Field) {
    let value = actor.value();
    let cell = (field.airtable().to_owned(), Value::from(value.clone()));
    let edit = ClientEdit {
        update: vec![RecordPatch {
            id: record.to_owned(),
            fields: Map::from_iter([cell]),
        }],
        ..ClientEdit::default()
    };
    let target = Target {
        pg: Some(goal),
        record: Some(record.to_owned()),
    };
    actor.team(emulator, Kind::Write { field, value }, target, edit);
}

/// Waits until PostgreSQL holds `value` in a goal's `field`, until
/// `deadline` at the latest; whether it did.
async fn held_in_postgres(
    pool: &PgPool,
    goal: Uuid,
    field: Field,
    value: &str,
    deadline: Instant,
) -> bool {
    let column = match field {
        Field::Name => "name",
        Field::Description => "description",
    };
    let query = format!("SELECT {column} = $2 FROM personal_goals_pg WHERE id = $1");
    loop {
        let held: Option<bool> = sqlx::query_scalar(&query)
            .bind(goal)
            .bind(value)
            .fetch_optional(pool)
            .await
            .ok()
            .flatten();
        if held == Some(true) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits, up to 15 s, until a worker has recorded a push of `value` to a
/// goal's `field` as leaving (`sync_row_version.sent`, written just before
/// the request goes); whether it did.
async fn push_leaving(pool: &PgPool, goal: Uuid, field: Field, value: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sent: Option<bool> = sqlx::query_scalar(
            "SELECT sent -> $2 @> jsonb_build_array(jsonb_build_object('v', $3::text)) \
             FROM sync_row_version WHERE entity = 'personal_goal' AND row_id = $1",
        )
        .bind(goal)
        .bind(field.airtable())
        .bind(value)
        .fetch_optional(pool)
        .await
        .ok()
        .flatten();
        if sent == Some(true) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Brings back, as a copy with its `pg_id`, the record of a goal the app
/// deleted whose record is gone from Airtable, when there is one this
/// editor saw; whether it tried.
async fn restore(
    actor: &mut Actor,
    work: &Workload,
    seen: &HashMap<Uuid, Value>,
    records: &[(String, Option<Uuid>)],
) -> bool {
    let candidates: Vec<Uuid> = work
        .deleted
        .lock()
        .expect("deleted")
        .iter()
        .copied()
        .filter(|id| seen.contains_key(id) && !records.iter().any(|(_, pg)| *pg == Some(*id)))
        .collect();
    if candidates.is_empty() {
        return false;
    }
    let goal = candidates[actor.rng.random_range(0..candidates.len())];
    let Ok(_turn) = work.turns.try_lock() else {
        return false;
    };
    let Some(count) = work.count().await else {
        return false;
    };
    if count.either >= work.most {
        return false;
    }
    let mut copy = seen[&goal].clone();
    if let Some(cells) = copy.as_object_mut() {
        cells.retain(|name, _| {
            ["Name", "Description", "User", "Active", "pg_id"].contains(&name.as_str())
        });
    }
    let edit = ClientEdit {
        create: vec![fields(copy)],
        ..ClientEdit::default()
    };
    let target = Target {
        pg: Some(goal),
        record: None,
    };
    actor.team(&work.emulator, Kind::Restore, target, edit);
    true
}

/// Keeps, in tables of the test's own, every record id the id map ever
/// paired with a goal's row, and the name every goal row was inserted with
/// outside the inbound sync: the history needs them to join the app's ids
/// and the team's, and to find the row of a create whose answer was lost.
/// It also keeps every change the inbound sync made to a goal's name or
/// description (the checker's rule that the sync never steps back). A
/// failure of these triggers never fails the sync's own write.
async fn watch_ids(db: &Database) {
    let statements = [
        "CREATE TABLE history_id_pairs (entity text NOT NULL, airtable_id text NOT NULL,
             row_id uuid NOT NULL, PRIMARY KEY (entity, airtable_id, row_id))",
        "CREATE FUNCTION history_id_pair() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             BEGIN
                 INSERT INTO history_id_pairs VALUES (NEW.entity, NEW.airtable_id, NEW.row_id)
                     ON CONFLICT DO NOTHING;
             EXCEPTION WHEN others THEN NULL;
             END;
             RETURN NULL;
         END $$",
        "CREATE TRIGGER history_id_pair AFTER INSERT OR UPDATE ON airtable_id_map
             FOR EACH ROW EXECUTE FUNCTION history_id_pair()",
        "CREATE TABLE history_goal_inserts (id uuid NOT NULL, name text NOT NULL, origin text)",
        "CREATE FUNCTION history_goal_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             BEGIN
                 INSERT INTO history_goal_inserts
                     VALUES (NEW.id, NEW.name, current_setting('airsync.origin', true));
             EXCEPTION WHEN others THEN NULL;
             END;
             RETURN NULL;
         END $$",
        "CREATE TRIGGER history_goal_insert AFTER INSERT ON personal_goals_pg
             FOR EACH ROW EXECUTE FUNCTION history_goal_insert()",
        "CREATE TABLE history_goal_changes (seq bigserial PRIMARY KEY, id uuid NOT NULL,
             field text NOT NULL, old text NOT NULL, new text NOT NULL, at timestamptz NOT NULL)",
        "CREATE FUNCTION history_goal_change() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             BEGIN
                 IF current_setting('airsync.origin', true) = 'inbound' THEN
                     IF OLD.name IS DISTINCT FROM NEW.name THEN
                         INSERT INTO history_goal_changes (id, field, old, new, at)
                             VALUES (NEW.id, 'Name', OLD.name, NEW.name, clock_timestamp());
                     END IF;
                     IF OLD.description IS DISTINCT FROM NEW.description THEN
                         INSERT INTO history_goal_changes (id, field, old, new, at)
                             VALUES (NEW.id, 'Description', OLD.description, NEW.description,
                                     clock_timestamp());
                     END IF;
                 END IF;
             EXCEPTION WHEN others THEN NULL;
             END;
             RETURN NULL;
         END $$",
        "CREATE TRIGGER history_goal_change AFTER UPDATE ON personal_goals_pg
             FOR EACH ROW EXECUTE FUNCTION history_goal_change()",
    ];
    for statement in statements {
        sqlx::query(statement)
            .execute(db.pool())
            .await
            .expect("the history's watch on ids");
    }
}

fn dump(emulator: &Emulator, table: &str) -> Vec<Value> {
    emulator.dump_table(BASE.as_str(), table).expect("dump")
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().to_owned()
}

fn pg_id(cells: &Value) -> Option<Uuid> {
    uuid_of(&cells["pg_id"])
}

fn links(cells: &Value, field: &str) -> Vec<String> {
    cells[field]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Both sides as they are now.
async fn snapshot(db: &Database, emulator: &Emulator) -> sqlx::Result<Final> {
    let pool = db.pool();
    let users: HashMap<Uuid, String> =
        sqlx::query_as("SELECT row_id, airtable_id FROM airtable_id_map WHERE entity = 'user'")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let rows: Vec<(Uuid, String, String, bool, Uuid)> =
        sqlx::query_as("SELECT id, name, description, active, user_id FROM personal_goals_pg")
            .fetch_all(pool)
            .await?;
    let pairs = sqlx::query_as(
        "SELECT airtable_id, row_id FROM history_id_pairs WHERE entity = 'personal_goal'
         UNION SELECT airtable_id, row_id FROM airtable_id_map WHERE entity = 'personal_goal'",
    )
    .fetch_all(pool)
    .await?;
    let inserted = sqlx::query_as(
        "SELECT id, name FROM history_goal_inserts WHERE origin IS DISTINCT FROM 'inbound'",
    )
    .fetch_all(pool)
    .await?;
    let usage_rows: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT id, personal_goal_id FROM personal_goal_usage_pg")
            .fetch_all(pool)
            .await?;
    let records = dump(emulator, GOALS)
        .iter()
        .map(|r| {
            let cells = &r["fields"];
            Record {
                id: text(r, "id"),
                pg_id: pg_id(cells),
                goal: Goal {
                    name: text(cells, "Name"),
                    description: text(cells, "Description"),
                    active: cells["Active"].as_bool().unwrap_or(false),
                    user: links(cells, "User").into_iter().next(),
                },
            }
        })
        .collect();
    let changes: Vec<(Uuid, String, String, String, chrono::DateTime<Utc>)> =
        sqlx::query_as("SELECT id, field, old, new, at FROM history_goal_changes ORDER BY seq")
            .fetch_all(pool)
            .await?;
    let inbound_changes = changes
        .into_iter()
        .map(|(row, field, from, to, at)| InboundChange {
            row,
            field: if field == "Name" {
                Field::Name
            } else {
                Field::Description
            },
            from,
            to,
            at,
        })
        .collect();
    let usage_records = dump(emulator, USAGE)
        .iter()
        .map(|r| UsageRecord {
            id: text(r, "id"),
            pg_id: pg_id(&r["fields"]),
            goals: links(&r["fields"], "Personal goal"),
        })
        .collect();
    Ok(Final {
        rows: rows
            .into_iter()
            .map(|(id, name, description, active, user)| Row {
                id,
                goal: Goal {
                    name,
                    description,
                    active,
                    user: users.get(&user).cloned(),
                },
            })
            .collect(),
        records,
        pairs,
        inserted,
        usage_rows: usage_rows
            .into_iter()
            .map(|(id, goal)| UsageRow { id, goal })
            .collect(),
        usage_records,
        inbound_changes,
    })
}

/// What keeps the sync from being settled now: events in the outbox
/// (pending or leased), webhook notifications whose payloads the inbound
/// sync has not read yet, goals or usage that differ between the sides.
async fn unsettled(db: &Database, emulator: &Emulator) -> Vec<String> {
    let mut problems = Vec::new();
    let mut count = |what: &str, n: sqlx::Result<i64>| match n {
        Ok(0) => {}
        Ok(n) => problems.push(format!("{n} {what}")),
        Err(err) => problems.push(format!("{what}: {err}")),
    };
    count("events in the outbox", checks::outbox_len(db).await);
    let unread = sqlx::query_scalar(
        "SELECT count(*) FROM sync_inbox_events WHERE processed_at IS NULL AND source = 'webhook'",
    )
    .fetch_one(db.pool())
    .await;
    count("webhook notifications not read yet", unread);
    match snapshot(db, emulator).await {
        Ok(end) => problems.extend(checker::differences(&end)),
        Err(err) => problems.push(format!("snapshot: {err}")),
    }
    problems
}

/// Waits (up to `within`) until the workers have sent what the outbox
/// holds: after serve has stopped, nothing else adds to it.
async fn drain_outbox(db: &Database, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        match checks::outbox_len(db).await {
            Ok(0) => return Ok(()),
            Ok(n) if Instant::now() > deadline => {
                return Err(format!("{n} events still in the outbox"))
            }
            Err(err) if Instant::now() > deadline => return Err(err.to_string()),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Waits until nothing keeps the sync from being settled, `quiet` long in
/// a row; the time it took, or what was still unsettled after `within`.
async fn settle(
    db: &Database,
    emulator: &Emulator,
    within: Duration,
    quiet: Duration,
    serve: &mut Process,
) -> Result<Duration, Vec<String>> {
    let started = Instant::now();
    let mut settled_since: Option<Instant> = None;
    let mut next_report = started + Duration::from_secs(15);
    loop {
        let problems = unsettled(db, emulator).await;
        if problems.is_empty() {
            let since = *settled_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= quiet {
                return Ok(since - started);
            }
        } else {
            settled_since = None;
            if started.elapsed() > within {
                return Err(problems);
            }
            if Instant::now() > next_report {
                println!(
                    "history: settling: {} ({} in all)",
                    problems[0],
                    problems.len()
                );
                next_report = Instant::now() + Duration::from_secs(15);
            }
        }
        assert!(serve.is_running(), "serve exited:\n{}", serve.log_tail(40));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The set-up's goals, through the API before the load (no chaos yet).
async fn initial_goals(api: String, count: usize) -> Vec<Op> {
    let mut setup = Actor::new("s", 0);
    let mut client = Client::new(api, clients::email(0));
    for _ in 0..count {
        let value = setup.value();
        let body = json!({"name": value, "description": value});
        let kind = Kind::create(&value);
        let request = (Method::POST, "/api/personal-goals");
        setup
            .app(&mut client, kind, None, request, Some(body))
            .await;
    }
    for op in &setup.ops {
        assert_eq!(op.outcome, Outcome::Ok, "a goal of the set-up: {op:?}");
    }
    setup.ops
}

/// The load's own mistakes, which would make the checker's verdict
/// meaningless: a request the API found malformed, a team edit refused for
/// anything but a record already deleted.
fn no_test_bugs(ops: &[Op]) {
    for op in ops.iter().filter(|op| op.outcome == Outcome::Failed) {
        let expected = if op.actor.starts_with('t') {
            op.detail.contains("ROW_DOES_NOT_EXIST") || op.detail.contains("NOT_FOUND")
        } else {
            op.detail != "HTTP 400"
        };
        assert!(expected, "the load itself is wrong: {op:?}");
    }
}

pub async fn run() {
    let started = Instant::now();
    let settings = Settings::from_env();
    println!(
        "history: seed {} (AIRSYNC_CHAOS_SEED), {} s of load: {} goals, {} app clients, {} team editors",
        settings.seed,
        settings.load.as_secs(),
        settings.records,
        settings.app_clients,
        settings.team_editors
    );
    let harness = Harness::start("history").await;
    let db = &harness.db;
    let user = airsync_api::create_user(
        db.pool(),
        &clients::email(0),
        "History client",
        clients::PASSWORD,
        false,
    )
    .await
    .expect("the app user");
    watch_ids(db).await;
    let mut serve = harness.serve().await;
    let mut chaos = harness.chaos(settings.seed, settings.webhook);
    let mut ops = initial_goals(harness.api(), settings.records).await;
    if let Err(problems) = settle(
        db,
        &harness.emulator,
        Duration::from_secs(90),
        Duration::ZERO,
        &mut serve,
    )
    .await
    {
        panic!(
            "the set-up's goals did not reach Airtable: {problems:#?}\n{}",
            serve.log_tail(30)
        );
    }
    // The load starts once the base's webhook exists, as in a running
    // deployment (the chaos may take it away later).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let hooked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sync_checkpoint WHERE name LIKE 'inbound:webhook:%')",
        )
        .fetch_one(db.pool())
        .await
        .expect("webhook checkpoint");
        if hooked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve made no webhook within 90 s:\n{}",
            serve.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let user_record: String = sqlx::query_scalar(
        "SELECT airtable_id FROM airtable_id_map WHERE entity = 'user' AND row_id = $1",
    )
    .bind(user)
    .fetch_one(db.pool())
    .await
    .expect("the user's record");

    // The load and the chaos.
    let work = Arc::new(Workload {
        pool: db.pool().clone(),
        emulator: harness.emulator.clone(),
        user,
        user_record,
        turns: tokio::sync::Mutex::new(()),
        stop: AtomicBool::new(false),
        fewest: settings.records.saturating_sub(2).max(1),
        most: settings.records + 2,
        deleted: std::sync::Mutex::new(Vec::new()),
        team_last: std::sync::Mutex::new(None),
    });
    let (webhook_samples, webhooks) = watch_webhook(db.pool().clone());
    let mut load = tokio::task::JoinSet::new();
    for i in 0..settings.app_clients {
        let seed = settings.seed.wrapping_add(i as u64);
        load.spawn(app_client(i, work.clone(), harness.api(), seed));
    }
    for i in 0..settings.team_editors {
        let seed = settings.seed.wrapping_add(100 + i as u64);
        load.spawn(team_editor(i, work.clone(), seed));
    }
    run_chaos(&mut chaos, settings.load, db, None).await;
    work.stop.store(true, Ordering::Relaxed);
    while let Some(done) = load.join_next().await {
        ops.extend(done.expect("a load task panicked"));
    }
    chaos.calm().await;
    println!("history: {}", chaos.summary());
    let (closing, on_time) =
        closing_round(work.clone(), harness.api(), settings.seed.wrapping_add(200)).await;
    chaos.calm().await;
    println!(
        "history: closing round: {} goals; on time: the team's values held {}, a page listed the record {}, the push left {}",
        closing.iter().filter(|op| op.actor.starts_with("az")).count(),
        on_time[0],
        on_time[1],
        on_time[2]
    );
    ops.extend(closing);

    // Settled: the outbox empty, both sides equal for a few seconds.
    let settled = settle(
        db,
        &harness.emulator,
        Duration::from_secs(240),
        Duration::from_secs(3),
        &mut serve,
    )
    .await;
    match &settled {
        Ok(took) => println!(
            "history: settled {:.1} s after the chaos ended",
            took.as_secs_f64()
        ),
        Err(problems) => println!(
            "history: NOT settled 240 s after the chaos ended:\n  {}",
            problems.join("\n  ")
        ),
    }
    let stale = stale_listings_skipped(&harness.api()).await;
    // Serve first: the events its last inbound applies queued still go out.
    serve.stop();
    let drained = drain_outbox(db, Duration::from_secs(60)).await;
    chaos.stop_workers();

    // The check.
    webhooks.abort();
    let samples = webhook_samples.lock().expect("samples").clone();
    let unrecorded = unrecorded(chaos.webhook_fault(), &samples);
    if let Some(u) = &unrecorded {
        println!(
            "history: Airtable recorded no history from {} until airsync's new webhook began at {}",
            u.from.format("%H:%M:%S%.3f"),
            u.until.format("%H:%M:%S%.3f")
        );
    }
    let summary = verdict(
        &harness,
        &ops,
        unrecorded,
        settled.err(),
        drained.err(),
        &stale,
        &settings,
    )
    .await;
    println!(
        "history: passed: {summary}; {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&harness.logs);
}

/// Checks the history against the final state, prints every violation with
/// its history and fails the test with a summary; the summary when all is
/// well.
async fn verdict(
    harness: &Harness,
    ops: &[Op],
    unrecorded: Option<checker::Unrecorded>,
    unsettled: Option<Vec<String>>,
    undrained: Option<String>,
    stale: &str,
    settings: &Settings,
) -> String {
    let db = &harness.db;
    no_test_bugs(ops);
    let end = snapshot(db, &harness.emulator)
        .await
        .expect("the final state");
    let report = checker::check_with(ops, &end, unrecorded);
    for line in &report.excused {
        println!("history: excused: {line}");
    }
    let validate = harness.validate_backfill().await;
    let dead_letters: Vec<(String, Uuid, String, String, String)> = sqlx::query_as(
        "SELECT entity, row_id, operation, reason, last_error FROM sync_dead_letter ORDER BY id",
    )
    .fetch_all(db.pool())
    .await
    .expect("dead letters");
    for (entity, row, operation, reason, error) in &dead_letters {
        println!("history: dead letter: {entity} {row} {operation}: {reason}: {error}");
    }
    // How often the sync met both sides changing one field (it keeps the
    // newest 1,000).
    let conflicts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT winner, count(*) FROM sync_conflicts WHERE entity = 'personal_goal'
         GROUP BY winner ORDER BY winner",
    )
    .fetch_all(db.pool())
    .await
    .unwrap_or_default();
    let conflicts: Vec<String> = conflicts
        .iter()
        .map(|(winner, n)| format!("{n} won by {winner}"))
        .collect();
    let summary = format!(
        "ops: {}; {} goals in PostgreSQL and {} in Airtable at the end, {} seen; sync conflicts: {}; {} dead letters; webhook {}; {} team edits lost while Airtable recorded nothing (excused); {} listed records read before their last agreement (not applied); seed {}",
        checker::summary(ops),
        end.rows.len(),
        end.records.len(),
        report.goals.len(),
        if conflicts.is_empty() { "none".to_owned() } else { conflicts.join(", ") },
        dead_letters.len(),
        settings.webhook_name(),
        report.excused.len(),
        stale,
        settings.seed,
    );
    let mut failures = Vec::new();
    if !report.is_ok() {
        println!("{}", report.render(ops));
        let mut kinds = report.kinds();
        kinds.sort();
        kinds.dedup();
        let kinds: Vec<String> = kinds.iter().map(|k| format!("{k:?}")).collect();
        failures.push(format!(
            "{} violations of the sync's rule ({}), printed above",
            report.violations.len(),
            kinds.join(", ")
        ));
    }
    if let Some(problems) = unsettled {
        failures.push(format!(
            "not settled within 240 s ({} problems)",
            problems.len()
        ));
    }
    if let Some(problem) = undrained {
        failures.push(format!("after serve stopped, the workers left: {problem}"));
    }
    if !validate.success() {
        failures.push(format!(
            "validate-backfill found differences:\n{}",
            validate.output()
        ));
    }
    assert!(
        failures.is_empty(),
        "history: {}\nhistory: {summary}\nhistory: logs in {}",
        failures.join("\nhistory: "),
        harness.logs.display()
    );
    summary
}

/// The base's webhook checkpoint as the run goes: (when read, its value).
type WebhookSamples = Arc<std::sync::Mutex<Vec<(chrono::DateTime<Utc>, Value)>>>;

/// Samples the webhook checkpoint every 100 ms until the task is aborted
/// (reads that fail, e.g. during the PostgreSQL restart, are skipped).
fn watch_webhook(pool: PgPool) -> (WebhookSamples, tokio::task::JoinHandle<()>) {
    let samples = WebhookSamples::default();
    let kept = samples.clone();
    let task = tokio::spawn(async move {
        loop {
            let value: Result<Option<Value>, _> = sqlx::query_scalar(
                "SELECT value FROM sync_checkpoint WHERE name LIKE 'inbound:webhook:%'",
            )
            .fetch_optional(&pool)
            .await;
            if let Ok(Some(value)) = value {
                kept.lock().expect("samples").push((Utc::now(), value));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (samples, task)
}

/// The time in which Airtable recorded no history and airsync did not
/// know it: from the fault (for a deleted webhook, from its newest payload
/// read before, since the unread ones went with it) until the history of
/// the webhook airsync made next began (the end of time if it made none).
fn unrecorded(
    fault: Option<(Expiry, chrono::DateTime<Utc>)>,
    samples: &[(chrono::DateTime<Utc>, Value)],
) -> Option<checker::Unrecorded> {
    let (expiry, at) = fault?;
    let time = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(|v| serde_json::from_value::<chrono::DateTime<Utc>>(v.clone()).ok())
    };
    let before = samples.iter().rev().find(|(when, _)| *when <= at);
    let old_id = before.and_then(|(_, v)| v.get("webhook_id").cloned());
    let from = match (expiry, before) {
        (Expiry::Deleted, Some((_, old))) => time(old, "last_read_at").map_or(at, |t| t.min(at)),
        _ => at,
    };
    let until = samples
        .iter()
        .filter(|(when, _)| *when > at)
        .find(|(_, v)| v.get("webhook_id").cloned() != old_id)
        .and_then(|(_, v)| time(v, "history_since").or_else(|| time(v, "created_at")))
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
    Some(checker::Unrecorded { from, until })
}

/// How many listed records the inbound sync of `serve` did not apply
/// because they were read before the record's last agreement (the guard of
/// cause 2), from its metrics; "?" when they cannot be read.
async fn stale_listings_skipped(api: &str) -> String {
    let metric = "airsync_inbound_stale_listings_skipped_total";
    let scrape = reqwest::Client::new()
        .get(format!("{api}/metrics"))
        .bearer_auth(crate::METRICS_TOKEN)
        .send();
    let text = match scrape.await {
        Ok(answer) => answer.text().await.unwrap_or_default(),
        Err(_) => return "?".to_owned(),
    };
    text.lines()
        .find(|line| line.starts_with(metric))
        .and_then(|line| line.rsplit(' ').next())
        .map_or_else(|| "?".to_owned(), str::to_owned)
}
