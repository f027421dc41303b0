//! The history checker: given every operation the app and the team made on
//! personal goals (with its times and outcome) and the final state of both
//! sides, it finds what breaks the sync's rule (docs/sync.md): when the app
//! and the team change the same data at once, nothing is lost, both sides
//! end equal, per field the later change wins, and a delete wins.
//!
//! Pure: no database, no emulator. A goal is known by its PostgreSQL id to
//! the app and by its Airtable record id to the team; the history's pairs
//! (the id map, the `pg_id` cells seen) join the two into one goal.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Airtable stamps its changes to the millisecond: a write is surely later
/// than another when it began more than this after the other was
/// acknowledged.
const GRAIN: chrono::TimeDelta = chrono::TimeDelta::milliseconds(1);

/// A field the workload writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Name,
    Description,
}

impl Field {
    pub const ALL: [Field; 2] = [Field::Name, Field::Description];

    /// The Airtable field's name.
    pub fn airtable(self) -> &'static str {
        match self {
            Field::Name => "Name",
            Field::Description => "Description",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Acknowledged: a 2xx, or the edit returned Ok.
    Ok,
    /// Definitely refused (a 4xx, an edit refused): it did not happen.
    Failed,
    /// No answer, a timeout, a 5xx: it may or may not have happened.
    Unknown,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// One field of an existing goal.
    Write {
        field: Field,
        value: String,
    },
    /// A new goal with both fields.
    Create {
        name: String,
        description: String,
    },
    Delete,
    /// A personal-goal usage linking the goal (not checked cell by cell).
    Usage,
    /// The team brings back the record of a goal the app deleted: a copy of
    /// its cells, `pg_id` too, as a restore from Airtable's trash or a paste
    /// does. It writes no value of its own; the app's delete must win.
    Restore,
}

impl Kind {
    /// A create giving both fields `value`.
    pub fn create(value: &str) -> Kind {
        Kind::Create {
            name: value.to_owned(),
            description: value.to_owned(),
        }
    }

    fn as_str(&self) -> &'static str {
        match self {
            Kind::Write { .. } => "write",
            Kind::Create { .. } => "create",
            Kind::Delete => "delete",
            Kind::Usage => "usage",
            Kind::Restore => "restore",
        }
    }
}

/// The goal an operation was about, as its actor knew it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    /// PostgreSQL id (the app's, or a `pg_id` cell the team saw).
    pub pg: Option<Uuid>,
    /// Airtable record id (the team's).
    pub record: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Op {
    /// `a0`, `t1`, `setup`.
    pub actor: String,
    pub kind: Kind,
    pub target: Target,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub outcome: Outcome,
    /// The answer, for the printed history (`HTTP 404`, `timeout`, ...).
    pub detail: String,
}

impl Op {
    /// The value this operation gives `field`, if it writes it.
    fn value(&self, field: Field) -> Option<&str> {
        match (&self.kind, field) {
            (Kind::Write { field: f, value }, _) if *f == field => Some(value),
            (Kind::Create { name, .. }, Field::Name) => Some(name),
            (Kind::Create { description, .. }, Field::Description) => Some(description),
            _ => None,
        }
    }

    fn line(&self) -> String {
        let what = match &self.kind {
            Kind::Write { field, value } => format!("write {}={value:?}", field.airtable()),
            Kind::Create { name, description } => {
                format!("create Name={name:?} Description={description:?}")
            }
            Kind::Delete => "delete".to_owned(),
            Kind::Usage => "usage".to_owned(),
            Kind::Restore => "restore (a copy with pg_id)".to_owned(),
        };
        let target = [
            self.target.pg.map(|id| format!("pg {id}")),
            self.target.record.clone(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        format!(
            "{} .. {}  {:<5} {:<48} {:<7} {}  [{}]",
            self.start.format("%H:%M:%S%.3f"),
            self.end.format("%H:%M:%S%.3f"),
            self.actor,
            what,
            self.outcome.as_str(),
            self.detail,
            target
        )
    }
}

/// The cells of a goal both sides hold, as compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub name: String,
    pub description: String,
    pub active: bool,
    /// The owner's Airtable record id (PostgreSQL's owner resolved through
    /// the id map).
    pub user: Option<String>,
}

impl Goal {
    fn get(&self, field: Field) -> &str {
        match field {
            Field::Name => &self.name,
            Field::Description => &self.description,
        }
    }
}

/// A row of `personal_goals_pg` at the end.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: Uuid,
    pub goal: Goal,
}

/// A record of Airtable's "Personal goals" at the end.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub pg_id: Option<Uuid>,
    pub goal: Goal,
}

/// A row of `personal_goal_usage_pg` at the end.
#[derive(Debug, Clone)]
pub struct UsageRow {
    pub id: Uuid,
    pub goal: Uuid,
}

/// A record of Airtable's "Personal goal usage" at the end.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub id: String,
    pub pg_id: Option<Uuid>,
    pub goals: Vec<String>,
}

/// Both sides at the end, and what joins their ids.
#[derive(Debug, Clone, Default)]
pub struct Final {
    pub rows: Vec<Row>,
    pub records: Vec<Record>,
    /// A record id and a row id known to be one goal (the id map at any
    /// time of the run, `pg_id` cells seen).
    pub pairs: Vec<(String, Uuid)>,
    /// Rows the app inserted (not the inbound sync), with the name they
    /// were inserted with: this finds the row of a create whose answer was
    /// lost.
    pub inserted: Vec<(Uuid, String)>,
    pub usage_rows: Vec<UsageRow>,
    pub usage_records: Vec<UsageRecord>,
    /// Every change the inbound sync made to a goal's cell in PostgreSQL
    /// during the run, in order.
    pub inbound_changes: Vec<InboundChange>,
}

/// A change the inbound sync made to a cell of a goal's row.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundChange {
    pub row: Uuid,
    pub field: Field,
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
}

impl InboundChange {
    fn line(&self) -> String {
        format!(
            "{}  inbound {} {:?} -> {:?}  [pg {}]",
            self.at.format("%H:%M:%S%.3f"),
            self.field.airtable(),
            self.from,
            self.to,
            self.row
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    // Both sides equal.
    OnlyInPostgres,
    OnlyInAirtable,
    SidesDiffer,
    Duplicated,
    UsageDiffers,
    // Per cell: written, and allowed by per-field last-writer-wins.
    NobodyWrote,
    RefusedWriteSurvived,
    OverwrittenWriteSurvived,
    /// The inbound sync put back, in PostgreSQL, the value of a write
    /// acknowledged before the write of the value it replaced began.
    InboundWentBack,
    // Deletes and creates.
    DeletedExists,
    AcknowledgedCreateLost,
    NobodyCreated,
}

impl ViolationKind {
    /// A difference between the two sides (rule 1).
    fn is_difference(self) -> bool {
        matches!(
            self,
            ViolationKind::OnlyInPostgres
                | ViolationKind::OnlyInAirtable
                | ViolationKind::SidesDiffer
                | ViolationKind::Duplicated
                | ViolationKind::UsageDiffers
        )
    }
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: ViolationKind,
    /// Index of the goal in [`Report::goals`].
    pub goal: usize,
    /// The cell's field; `None` for a violation about the whole goal.
    pub field: Option<Field>,
    pub message: String,
}

/// One goal: every id it had, its operations, what is left of it.
#[derive(Debug, Clone, Default)]
pub struct GoalHistory {
    pub pg_ids: Vec<Uuid>,
    pub records: Vec<String>,
    /// Indexes into the history, sorted by start.
    pub ops: Vec<usize>,
    pub rows: Vec<Row>,
    pub at: Vec<Record>,
    /// The inbound sync's changes of its rows' cells, in order.
    pub changes: Vec<InboundChange>,
}

impl GoalHistory {
    fn label(&self) -> String {
        let mut ids: Vec<String> = self.pg_ids.iter().map(|id| format!("pg {id}")).collect();
        ids.extend(self.records.iter().cloned());
        ids.join(" / ")
    }

    fn exists(&self) -> bool {
        !self.rows.is_empty() || !self.at.is_empty()
    }
}

#[derive(Debug)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub goals: Vec<GoalHistory>,
    /// Team edits overwritten while Airtable recorded no history, which
    /// the rule excuses (see [`Unrecorded`]), one line each.
    pub excused: Vec<String>,
}

/// A time in which Airtable recorded no history of the base's changes and
/// airsync did not know it yet: from when a webhook stopped recording (it
/// expired, or was deleted with payloads not read yet) until airsync's new
/// webhook began. A team edit made then, and overwritten by a push before
/// any listing read it, is gone from Airtable without a trace; the rule of
/// docs/sync.md ("What this does not cover") excuses its loss. Edits made
/// before or after it are not excused.
#[derive(Debug, Clone, Copy)]
pub struct Unrecorded {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Unrecorded {
    /// Whether a team operation may have made its change in this time.
    fn covers(&self, op: &Op) -> bool {
        op.actor.starts_with('t') && op.end >= self.from && op.start <= self.until
    }
}

/// Union-find over `pg:<uuid>` and `at:<record>` keys.
#[derive(Default)]
struct Ids {
    parent: HashMap<String, String>,
}

impl Ids {
    fn root(&mut self, key: &str) -> String {
        let mut at = key.to_owned();
        loop {
            let parent = self
                .parent
                .entry(at.clone())
                .or_insert_with(|| at.clone())
                .clone();
            if parent == at {
                break;
            }
            at = parent;
        }
        // Path compression.
        let mut walk = key.to_owned();
        while walk != at {
            let next = self.parent[&walk].clone();
            self.parent.insert(walk, at.clone());
            walk = next;
        }
        at
    }

    fn join(&mut self, a: &str, b: &str) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            self.parent.insert(a, b);
        }
    }
}

fn pg_key(id: &Uuid) -> String {
    format!("pg:{id}")
}

fn at_key(id: &str) -> String {
    format!("at:{id}")
}

fn target_keys(target: &Target) -> Vec<String> {
    let mut keys: Vec<String> = target.pg.iter().map(pg_key).collect();
    keys.extend(target.record.iter().map(|r| at_key(r)));
    keys
}

/// The targets of the operations, those of creates whose answer did not
/// name the row found through the row's inserted name.
fn resolve_targets(ops: &[Op], end: &Final) -> Vec<Target> {
    let by_name: HashMap<&str, Uuid> = end
        .inserted
        .iter()
        .map(|(id, name)| (name.as_str(), *id))
        .collect();
    ops.iter()
        .map(|op| {
            let mut target = op.target.clone();
            if let (Kind::Create { name, .. }, None, None) = (&op.kind, &target.pg, &target.record)
            {
                target.pg = by_name.get(name.as_str()).copied();
            }
            target
        })
        .collect()
}

/// Groups every id, operation, row and record into goals.
fn group(ops: &[Op], end: &Final) -> Vec<GoalHistory> {
    let targets = resolve_targets(ops, end);
    let mut ids = Ids::default();
    for keys in targets.iter().map(target_keys) {
        for key in &keys {
            ids.join(&keys[0], key);
        }
    }
    for (record, row) in &end.pairs {
        ids.join(&at_key(record), &pg_key(row));
    }
    for record in &end.records {
        ids.root(&at_key(&record.id));
        if let Some(pg) = record.pg_id {
            ids.join(&at_key(&record.id), &pg_key(&pg));
        }
    }
    for row in &end.rows {
        ids.root(&pg_key(&row.id));
    }
    for change in &end.inbound_changes {
        ids.root(&pg_key(&change.row));
    }
    let mut keys: Vec<String> = ids.parent.keys().cloned().collect();
    keys.sort();
    let mut roots: BTreeMap<String, usize> = BTreeMap::new();
    for key in &keys {
        let root = ids.root(key);
        let next = roots.len();
        roots.entry(root).or_insert(next);
    }
    let mut goals = vec![GoalHistory::default(); roots.len()];
    // Every key is known by now: its root has a goal.
    let mut goal_of = |key: &str| roots[&ids.root(key)];
    for key in &keys {
        let i = goal_of(key);
        if let Some(id) = key.strip_prefix("pg:") {
            goals[i].pg_ids.push(id.parse().expect("a uuid key"));
        } else if let Some(id) = key.strip_prefix("at:") {
            goals[i].records.push(id.to_owned());
        }
    }
    for (n, keys) in targets.iter().map(target_keys).enumerate() {
        if let Some(key) = keys.first() {
            let i = goal_of(key);
            goals[i].ops.push(n);
        }
    }
    for row in &end.rows {
        let i = goal_of(&pg_key(&row.id));
        goals[i].rows.push(row.clone());
    }
    for record in &end.records {
        let i = goal_of(&at_key(&record.id));
        goals[i].at.push(record.clone());
    }
    for change in &end.inbound_changes {
        let i = goal_of(&pg_key(&change.row));
        goals[i].changes.push(change.clone());
    }
    for goal in &mut goals {
        goal.ops
            .sort_by_key(|&n| (ops[n].start, ops[n].end, ops[n].actor.clone()));
    }
    goals
}

/// Checks a history against the final state.
pub fn check(ops: &[Op], end: &Final) -> Report {
    check_with(ops, end, None)
}

/// [`check`], excusing the team edits lost in an unrecorded time.
pub fn check_with(ops: &[Op], end: &Final, unrecorded: Option<Unrecorded>) -> Report {
    let goals = group(ops, end);
    let mut violations = Vec::new();
    let mut excused = Vec::new();
    for (g, goal) in goals.iter().enumerate() {
        let mut flag = |kind: ViolationKind, field: Option<Field>, message: String| {
            violations.push(Violation {
                kind,
                goal: g,
                field,
                message,
            })
        };
        sides_equal(goal, &mut flag);
        for field in Field::ALL {
            cell(ops, goal, field, unrecorded, &mut excused, &mut flag);
        }
        never_back(ops, goal, &mut flag);
        deletes_and_creates(ops, goal, &mut flag);
    }
    usage(end, &goals, &mut violations);
    Report {
        violations,
        goals,
        excused,
    }
}

type Flag<'a> = dyn FnMut(ViolationKind, Option<Field>, String) + 'a;

/// What differs between the two sides now, one line each: the sync has
/// settled when nothing does.
pub fn differences(end: &Final) -> Vec<String> {
    let report = check(&[], end);
    report
        .violations
        .iter()
        .filter(|v| v.kind.is_difference())
        .map(|v| {
            let goal = report.goals.get(v.goal).map(GoalHistory::label);
            format!("{:?}: {} ({})", v.kind, v.message, goal.unwrap_or_default())
        })
        .collect()
}

/// Rule 1: both sides hold the goal, once, with the same cells.
fn sides_equal(goal: &GoalHistory, flag: &mut Flag<'_>) {
    if goal.rows.len() > 1 {
        flag(
            ViolationKind::Duplicated,
            None,
            format!("{} rows in PostgreSQL", goal.rows.len()),
        );
    }
    if goal.at.len() > 1 {
        flag(
            ViolationKind::Duplicated,
            None,
            format!("{} records in Airtable", goal.at.len()),
        );
    }
    match (goal.rows.first(), goal.at.first()) {
        (Some(row), None) => flag(
            ViolationKind::OnlyInPostgres,
            None,
            format!("row {} has no record in Airtable", row.id),
        ),
        (None, Some(record)) => flag(
            ViolationKind::OnlyInAirtable,
            None,
            format!(
                "record {} (pg_id {:?}) has no row in PostgreSQL",
                record.id, record.pg_id
            ),
        ),
        (Some(row), Some(record)) => {
            let (ours, theirs) = (&row.goal, &record.goal);
            let mut differ = |what: &str, pg: String, at: String| {
                if pg != at {
                    flag(
                        ViolationKind::SidesDiffer,
                        None,
                        format!("{what}: PostgreSQL {pg}, Airtable {at}"),
                    );
                }
            };
            differ(
                "pg_id",
                format!("{:?}", Some(row.id)),
                format!("{:?}", record.pg_id),
            );
            for field in Field::ALL {
                differ(
                    field.airtable(),
                    format!("{:?}", ours.get(field)),
                    format!("{:?}", theirs.get(field)),
                );
            }
            differ("Active", ours.active.to_string(), theirs.active.to_string());
            differ(
                "User",
                format!("{:?}", ours.user),
                format!("{:?}", theirs.user),
            );
        }
        (None, None) => {}
    }
}

/// Rules 2 and 3: each final value of the cell was written, not refused, and not
/// overwritten by a write acknowledged after it was acknowledged.
fn cell(
    ops: &[Op],
    goal: &GoalHistory,
    field: Field,
    unrecorded: Option<Unrecorded>,
    excused: &mut Vec<String>,
    flag: &mut Flag<'_>,
) {
    // Each value left, with the sides that hold it.
    let mut finals: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for row in &goal.rows {
        finals
            .entry(row.goal.get(field))
            .or_default()
            .push("PostgreSQL");
    }
    for record in &goal.at {
        finals
            .entry(record.goal.get(field))
            .or_default()
            .push("Airtable");
    }
    for (value, sides) in finals {
        let side = sides.join(" and ");
        let writer = goal
            .ops
            .iter()
            .copied()
            .find(|&n| ops[n].value(field) == Some(value));
        let Some(w) = writer else {
            let elsewhere = ops
                .iter()
                .find(|op| Field::ALL.iter().any(|&f| op.value(f) == Some(value)));
            let message = match elsewhere {
                Some(op) => format!(
                    "{side} end with {value:?}, which {} wrote to another goal or field ({})",
                    op.actor,
                    op.line()
                ),
                None => format!("{side} end with {value:?}, which nobody wrote"),
            };
            flag(ViolationKind::NobodyWrote, Some(field), message);
            continue;
        };
        let writer = &ops[w];
        match writer.outcome {
            Outcome::Failed => flag(
                ViolationKind::RefusedWriteSurvived,
                Some(field),
                format!(
                    "{side} end with {value:?}, from a {} that was refused ({}): {}",
                    writer.kind.as_str(),
                    writer.detail,
                    writer.line()
                ),
            ),
            Outcome::Unknown => {}
            Outcome::Ok => {
                // Writes of the cell that began after this one was
                // acknowledged, and were acknowledged too: one of them must
                // win, unless each was a team edit made while Airtable
                // recorded nothing.
                let (lost, later): (Vec<usize>, Vec<usize>) = goal
                    .ops
                    .iter()
                    .copied()
                    .filter(|&n| {
                        n != w
                            && ops[n].outcome == Outcome::Ok
                            && ops[n].value(field).is_some()
                            && ops[n].start > writer.end + GRAIN
                    })
                    .partition(|&n| unrecorded.is_some_and(|u| u.covers(&ops[n])));
                let line = |n: usize| {
                    format!(
                        "{} {:?} from {}",
                        ops[n].actor,
                        ops[n].value(field).unwrap_or_default(),
                        ops[n].start.format("%H:%M:%S%.3f")
                    )
                };
                if later.is_empty() && !lost.is_empty() {
                    let lost: Vec<String> = lost.into_iter().map(line).collect();
                    excused.push(format!(
                        "{}: {value:?} (by {}) survived edits made while Airtable recorded no history: {}",
                        field.airtable(),
                        writer.actor,
                        lost.join(", ")
                    ));
                }
                let later: Vec<String> = later.into_iter().map(line).collect();
                if !later.is_empty() {
                    flag(
                        ViolationKind::OverwrittenWriteSurvived,
                        Some(field),
                        format!(
                            "{side} end with {value:?}, by {} (acknowledged at {}), yet later writes were acknowledged and lost: {}",
                            writer.actor,
                            writer.end.format("%H:%M:%S%.3f"),
                            later.join(", ")
                        ),
                    );
                }
            }
        }
    }
}

/// Rule 5, on the way there: the inbound sync never replaces a cell's value
/// in PostgreSQL by the value of a write acknowledged before the write of
/// the value it replaces began. Per field the later change wins, so the
/// sync may apply a team edit over an older value, never an older edit over
/// a later value, even for a moment and whatever comes after. The final
/// state hides such a step whenever a later write covers it; this rule sees
/// it. Writes whose outcome is unknown are in no order.
fn never_back(ops: &[Op], goal: &GoalHistory, flag: &mut Flag<'_>) {
    let writer = |field: Field, value: &str| {
        goal.ops
            .iter()
            .copied()
            .find(|&n| ops[n].value(field) == Some(value) && ops[n].outcome == Outcome::Ok)
    };
    for change in &goal.changes {
        let (Some(old), Some(new)) = (
            writer(change.field, &change.from),
            writer(change.field, &change.to),
        ) else {
            continue;
        };
        let (old, new) = (&ops[old], &ops[new]);
        if new.end + GRAIN < old.start {
            flag(
                ViolationKind::InboundWentBack,
                Some(change.field),
                format!(
                    "at {} the inbound sync replaced {:?} (by {}, from {}) in PostgreSQL by {:?} (by {}, acknowledged at {}, before the other began)",
                    change.at.format("%H:%M:%S%.3f"),
                    change.from,
                    old.actor,
                    old.start.format("%H:%M:%S%.3f"),
                    change.to,
                    new.actor,
                    new.end.format("%H:%M:%S%.3f"),
                ),
            );
        }
    }
}

/// Rule 4: an acknowledged delete leaves nothing; an acknowledged create
/// stays unless a delete may have happened; nothing exists that nobody
/// created.
fn deletes_and_creates(ops: &[Op], goal: &GoalHistory, flag: &mut Flag<'_>) {
    let of = |kind: &str, outcomes: &[Outcome]| {
        goal.ops
            .iter()
            .copied()
            .filter(|&n| ops[n].kind.as_str() == kind && outcomes.contains(&ops[n].outcome))
            .collect::<Vec<usize>>()
    };
    let sides = [
        ("PostgreSQL", !goal.rows.is_empty()),
        ("Airtable", !goal.at.is_empty()),
    ];
    if let Some(&d) = of("delete", &[Outcome::Ok]).first() {
        for (side, present) in sides {
            if present {
                flag(
                    ViolationKind::DeletedExists,
                    None,
                    format!(
                        "{} deleted it (acknowledged at {}), yet {side} still has it",
                        ops[d].actor,
                        ops[d].end.format("%H:%M:%S%.3f")
                    ),
                );
            }
        }
    }
    let created = of("create", &[Outcome::Ok]);
    let maybe_deleted = !of("delete", &[Outcome::Ok, Outcome::Unknown]).is_empty();
    if let Some(&c) = created.first() {
        if !maybe_deleted {
            for (side, present) in sides {
                if !present {
                    flag(
                        ViolationKind::AcknowledgedCreateLost,
                        None,
                        format!(
                            "{} created it (acknowledged at {}) and nobody deleted it, yet {side} does not have it",
                            ops[c].actor,
                            ops[c].end.format("%H:%M:%S%.3f")
                        ),
                    );
                }
            }
        }
    }
    if goal.exists() && of("create", &[Outcome::Ok, Outcome::Unknown]).is_empty() {
        let refused = of("create", &[Outcome::Failed]);
        let message = if refused.is_empty() {
            "it exists, but nobody created it".to_owned()
        } else {
            "it exists, but its only creates were refused".to_owned()
        };
        flag(ViolationKind::NobodyCreated, None, message);
    }
}

/// Rule 1 for the usage linking goals: the same usage on both sides, each
/// with the same goal.
fn usage(end: &Final, goals: &[GoalHistory], violations: &mut Vec<Violation>) {
    let goal_of_row = |id: &Uuid| goals.iter().position(|g| g.pg_ids.contains(id));
    let goal_of_record = |id: &str| goals.iter().position(|g| g.records.iter().any(|r| r == id));
    let mut flag = |goal: Option<usize>, message: String| {
        violations.push(Violation {
            kind: ViolationKind::UsageDiffers,
            goal: goal.unwrap_or(usize::MAX),
            field: None,
            message,
        })
    };
    for row in &end.usage_rows {
        let records: Vec<&UsageRecord> = end
            .usage_records
            .iter()
            .filter(|r| r.pg_id == Some(row.id))
            .collect();
        let goal = goal_of_row(&row.goal);
        match records.as_slice() {
            [record] => {
                let linked: Vec<Option<usize>> =
                    record.goals.iter().map(|g| goal_of_record(g)).collect();
                if linked != vec![goal] {
                    flag(
                        goal,
                        format!(
                            "usage {} links goal pg {} in PostgreSQL, {:?} in Airtable ({})",
                            row.id, row.goal, record.goals, record.id
                        ),
                    );
                }
            }
            _ => flag(
                goal,
                format!(
                    "usage {} (goal pg {}) has {} records in Airtable",
                    row.id,
                    row.goal,
                    records.len()
                ),
            ),
        }
    }
    for record in &end.usage_records {
        if !record
            .pg_id
            .is_some_and(|id| end.usage_rows.iter().any(|r| r.id == id))
        {
            let goal = record.goals.first().and_then(|g| goal_of_record(g));
            flag(
                goal,
                format!(
                    "usage record {} (pg_id {:?}, goals {:?}) has no row in PostgreSQL",
                    record.id, record.pg_id, record.goals
                ),
            );
        }
    }
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn kinds(&self) -> Vec<ViolationKind> {
        self.violations.iter().map(|v| v.kind).collect()
    }

    /// Every violation, goal by goal, with the goal's final values on both
    /// sides and the history of the cells concerned (of the whole goal when
    /// a violation is about the goal).
    pub fn render(&self, ops: &[Op]) -> String {
        let mut by_goal: BTreeMap<usize, Vec<(usize, &Violation)>> = BTreeMap::new();
        for (n, v) in self.violations.iter().enumerate() {
            by_goal.entry(v.goal).or_default().push((n + 1, v));
        }
        let mut out = String::new();
        for (g, violations) in by_goal {
            for (n, v) in &violations {
                let _ = writeln!(out, "VIOLATION {n}: {:?}: {}", v.kind, v.message);
            }
            let Some(goal) = self.goals.get(g) else {
                continue;
            };
            let _ = writeln!(out, "  goal: {}", goal.label());
            for row in &goal.rows {
                let _ = writeln!(
                    out,
                    "  final in PostgreSQL (row {}): {:?}",
                    row.id, row.goal
                );
            }
            for record in &goal.at {
                let _ = writeln!(
                    out,
                    "  final in Airtable ({}, pg_id {:?}): {:?}",
                    record.id, record.pg_id, record.goal
                );
            }
            if goal.rows.is_empty() {
                let _ = writeln!(out, "  final in PostgreSQL: no row");
            }
            if goal.at.is_empty() {
                let _ = writeln!(out, "  final in Airtable: no record");
            }
            let mut fields: Vec<Option<Field>> = violations.iter().map(|(_, v)| v.field).collect();
            fields.sort();
            fields.dedup();
            if fields.contains(&None) {
                fields = vec![None];
            }
            for field in fields {
                let shown: Vec<usize> = match field {
                    Some(field) => {
                        let _ = writeln!(
                            out,
                            "  history of its {} (writes, creates, deletes), by start:",
                            field.airtable()
                        );
                        goal.ops
                            .iter()
                            .copied()
                            .filter(|&i| {
                                ops[i].value(field).is_some() || ops[i].kind == Kind::Delete
                            })
                            .collect()
                    }
                    None => {
                        let _ = writeln!(out, "  history of the goal, by start:");
                        goal.ops.clone()
                    }
                };
                for i in shown {
                    let _ = writeln!(out, "    {}", ops[i].line());
                }
                let changes: Vec<&InboundChange> = goal
                    .changes
                    .iter()
                    .filter(|c| field.is_none_or(|f| c.field == f))
                    .collect();
                if !changes.is_empty() {
                    let _ = writeln!(out, "  the inbound sync's changes in PostgreSQL:");
                    for change in changes {
                        let _ = writeln!(out, "    {}", change.line());
                    }
                }
            }
        }
        out
    }
}

/// Operations by kind and outcome, e.g. `write 512 (ok 480, failed 2,
/// unknown 30)`.
pub fn summary(ops: &[Op]) -> String {
    let mut counts: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for op in ops {
        *counts
            .entry(op.kind.as_str())
            .or_default()
            .entry(op.outcome.as_str())
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(kind, outcomes)| {
            let total: usize = outcomes.values().sum();
            let parts: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
            format!("{kind} {total} ({})", parts.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).expect("time")
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn op(actor: &str, kind: Kind, target: Target, span: (i64, i64), outcome: Outcome) -> Op {
        Op {
            actor: actor.to_owned(),
            kind,
            target,
            start: at(span.0),
            end: at(span.1),
            outcome,
            detail: String::new(),
        }
    }

    fn pg(n: u128) -> Target {
        Target {
            pg: Some(id(n)),
            record: None,
        }
    }

    fn rec(r: &str) -> Target {
        Target {
            pg: None,
            record: Some(r.to_owned()),
        }
    }

    fn write(field: Field, value: &str) -> Kind {
        Kind::Write {
            field,
            value: value.to_owned(),
        }
    }

    fn goal(name: &str, description: &str) -> Goal {
        Goal {
            name: name.to_owned(),
            description: description.to_owned(),
            active: true,
            user: Some("recUSER".into()),
        }
    }

    /// Goal 1 (row 1, record recA) on both sides with these cells.
    fn both(name: &str, description: &str) -> Final {
        Final {
            rows: vec![Row {
                id: id(1),
                goal: goal(name, description),
            }],
            records: vec![Record {
                id: "recA".into(),
                pg_id: Some(id(1)),
                goal: goal(name, description),
            }],
            ..Final::default()
        }
    }

    /// Goal 1 created by the setup at 0..10.
    fn created() -> Op {
        op("setup", Kind::create("s-1"), pg(1), (0, 10), Outcome::Ok)
    }

    #[test]
    fn concurrent_writes_may_end_either_way_and_the_last_acknowledged_wins() {
        let ops = vec![
            created(),
            // Overlapping: either may win.
            op(
                "a0",
                write(Field::Name, "a0-1"),
                pg(1),
                (100, 200),
                Outcome::Ok,
            ),
            op(
                "t0",
                write(Field::Name, "t0-1"),
                rec("recA"),
                (150, 150),
                Outcome::Ok,
            ),
            // Later, alone: must win.
            op(
                "t1",
                write(Field::Description, "t1-1"),
                rec("recA"),
                (300, 300),
                Outcome::Ok,
            ),
        ];
        for name in ["a0-1", "t0-1"] {
            let report = check(&ops, &both(name, "t1-1"));
            assert!(report.is_ok(), "{}", report.render(&ops));
        }
    }

    #[test]
    fn writes_within_airtables_millisecond_are_concurrent() {
        let mut team = op(
            "t0",
            write(Field::Name, "t0-1"),
            rec("recA"),
            (200, 200),
            Outcome::Ok,
        );
        team.start += chrono::TimeDelta::microseconds(500);
        team.end = team.start;
        let ops = vec![
            created(),
            op(
                "a0",
                write(Field::Name, "a0-1"),
                pg(1),
                (100, 200),
                Outcome::Ok,
            ),
            team,
        ];
        assert!(check(&ops, &both("a0-1", "s-1")).is_ok());
        assert!(check(&ops, &both("t0-1", "s-1")).is_ok());
    }

    #[test]
    fn an_older_value_surviving_a_later_acknowledged_write_is_flagged() {
        let ops = vec![
            created(),
            op(
                "t0",
                write(Field::Name, "t0-1"),
                rec("recA"),
                (100, 100),
                Outcome::Ok,
            ),
            op(
                "a1",
                write(Field::Name, "a1-1"),
                pg(1),
                (50, 80),
                Outcome::Ok,
            ),
        ];
        // The team's edit came after the app's was acknowledged.
        let report = check(&ops, &both("a1-1", "s-1"));
        assert_eq!(
            report.kinds(),
            vec![ViolationKind::OverwrittenWriteSurvived]
        );
        let text = report.render(&ops);
        assert!(text.contains("t0-1") && text.contains("a1-1"), "{text}");
        // The initial value, after any acknowledged write, is stale too.
        let report = check(&ops, &both("s-1", "s-1"));
        assert_eq!(
            report.kinds(),
            vec![ViolationKind::OverwrittenWriteSurvived]
        );
    }

    #[test]
    fn a_team_edit_lost_while_airtable_recorded_nothing_is_excused_and_only_then() {
        let ops = vec![
            created(),
            op(
                "a1",
                write(Field::Name, "a1-1"),
                pg(1),
                (50, 80),
                Outcome::Ok,
            ),
            op(
                "t0",
                write(Field::Name, "t0-1"),
                rec("recA"),
                (100, 100),
                Outcome::Ok,
            ),
        ];
        let during = Unrecorded {
            from: at(90),
            until: at(200),
        };
        let report = check_with(&ops, &both("a1-1", "s-1"), Some(during));
        assert!(report.is_ok(), "{}", report.render(&ops));
        assert_eq!(report.excused.len(), 1, "{:?}", report.excused);
        // An app write is never excused, nor a team edit outside the time.
        let after = Unrecorded {
            from: at(150),
            until: at(200),
        };
        let report = check_with(&ops, &both("a1-1", "s-1"), Some(after));
        assert_eq!(
            report.kinds(),
            vec![ViolationKind::OverwrittenWriteSurvived]
        );
        let report = check_with(&ops, &both("s-1", "s-1"), Some(during));
        assert_eq!(
            report.kinds(),
            vec![ViolationKind::OverwrittenWriteSurvived],
            "the app's acknowledged write was lost"
        );
    }

    #[test]
    fn a_refused_write_must_not_survive_and_an_unanswered_one_may() {
        let ops = vec![
            created(),
            op(
                "a0",
                write(Field::Name, "a0-1"),
                pg(1),
                (100, 200),
                Outcome::Failed,
            ),
            op(
                "a1",
                write(Field::Name, "a1-1"),
                pg(1),
                (300, 400),
                Outcome::Unknown,
            ),
        ];
        let report = check(&ops, &both("a0-1", "s-1"));
        assert_eq!(report.kinds(), vec![ViolationKind::RefusedWriteSurvived]);
        assert!(check(&ops, &both("a1-1", "s-1")).is_ok());
        // Unknown writes constrain nothing: the value before them may stay.
        assert!(check(&ops, &both("s-1", "s-1")).is_ok());
    }

    #[test]
    fn a_value_nobody_wrote_is_flagged() {
        let ops = vec![
            created(),
            op(
                "a0",
                write(Field::Name, "a0-1"),
                pg(1),
                (100, 200),
                Outcome::Ok,
            ),
        ];
        let report = check(&ops, &both("a0-1", "invented"));
        assert_eq!(report.kinds(), vec![ViolationKind::NobodyWrote]);
        // A value written to the other field is not this cell's.
        let report = check(&ops, &both("a0-1", "a0-1"));
        assert_eq!(report.kinds(), vec![ViolationKind::NobodyWrote]);
    }

    #[test]
    fn sides_that_differ_are_flagged_and_each_value_checked() {
        let ops = vec![
            created(),
            op(
                "a0",
                write(Field::Name, "a0-1"),
                pg(1),
                (100, 200),
                Outcome::Ok,
            ),
        ];
        let mut end = both("a0-1", "s-1");
        end.records[0].goal.name = "s-1".into();
        let report = check(&ops, &end);
        assert_eq!(
            report.kinds(),
            vec![
                ViolationKind::SidesDiffer,
                ViolationKind::OverwrittenWriteSurvived
            ]
        );
        // Lost on one side: a difference, and an acknowledged create lost.
        let mut end = both("a0-1", "s-1");
        end.records.clear();
        assert_eq!(
            check(&ops, &end).kinds(),
            vec![
                ViolationKind::OnlyInPostgres,
                ViolationKind::AcknowledgedCreateLost
            ]
        );
    }

    #[test]
    fn app_and_team_ids_are_joined_through_the_pairs() {
        // The team knows recB only; the id map paired it with row 2.
        let ops = vec![
            op("t0", Kind::create("t0-1"), rec("recB"), (0, 0), Outcome::Ok),
            op(
                "a0",
                write(Field::Name, "a0-1"),
                pg(2),
                (100, 200),
                Outcome::Ok,
            ),
            op(
                "t0",
                write(Field::Name, "t0-2"),
                rec("recB"),
                (300, 300),
                Outcome::Ok,
            ),
        ];
        let end = Final {
            rows: vec![Row {
                id: id(2),
                goal: goal("a0-1", "t0-1"),
            }],
            records: vec![Record {
                id: "recB".into(),
                pg_id: Some(id(2)),
                goal: goal("a0-1", "t0-1"),
            }],
            pairs: vec![("recB".into(), id(2))],
            ..Final::default()
        };
        // t0-2 came after a0-1 was acknowledged: it must win.
        assert_eq!(
            check(&ops, &end).kinds(),
            vec![ViolationKind::OverwrittenWriteSurvived]
        );
    }

    #[test]
    fn an_acknowledged_delete_wins_on_both_sides() {
        let ops = vec![
            created(),
            op("t0", Kind::Delete, rec("recA"), (100, 100), Outcome::Ok),
            op(
                "a0",
                write(Field::Name, "a0-1"),
                pg(1),
                (150, 250),
                Outcome::Ok,
            ),
        ];
        // Gone from both sides: fine, whatever came after.
        let gone = Final {
            pairs: vec![("recA".into(), id(1))],
            ..Final::default()
        };
        assert!(check(&ops, &gone).is_ok());
        // The row came back in PostgreSQL only.
        let mut back = both("a0-1", "s-1");
        back.records.clear();
        back.pairs = vec![("recA".into(), id(1))];
        assert_eq!(
            check(&ops, &back).kinds(),
            vec![ViolationKind::OnlyInPostgres, ViolationKind::DeletedExists]
        );
        // Back on both sides.
        assert_eq!(
            check(&ops, &both("a0-1", "s-1")).kinds(),
            vec![ViolationKind::DeletedExists, ViolationKind::DeletedExists]
        );
    }

    #[test]
    fn the_inbound_sync_stepping_back_to_an_older_write_is_flagged_even_when_covered() {
        let ops = vec![
            created(),
            op(
                "t0",
                write(Field::Name, "t0-1"),
                rec("recA"),
                (100, 100),
                Outcome::Ok,
            ),
            op(
                "a0",
                write(Field::Name, "a0-1"),
                pg(1),
                (200, 300),
                Outcome::Ok,
            ),
            op(
                "t1",
                write(Field::Name, "t1-1"),
                rec("recA"),
                (250, 250),
                Outcome::Ok,
            ),
            op(
                "a1",
                write(Field::Name, "a1-1"),
                pg(1),
                (400, 500),
                Outcome::Ok,
            ),
        ];
        let change = |from: &str, to: &str| InboundChange {
            row: id(1),
            field: Field::Name,
            from: from.into(),
            to: to.into(),
            at: at(350),
        };
        // Forward, or between writes that overlap: fine.
        let mut end = both("a1-1", "s-1");
        end.pairs = vec![("recA".into(), id(1))];
        end.inbound_changes = vec![change("s-1", "t0-1"), change("a0-1", "t1-1")];
        assert!(check(&ops, &end).is_ok());
        // Back to t0-1, acknowledged before a0-1 began, though a1-1 covers
        // it at the end.
        end.inbound_changes.push(change("a0-1", "t0-1"));
        let report = check(&ops, &end);
        assert_eq!(report.kinds(), vec![ViolationKind::InboundWentBack]);
        assert!(report
            .render(&ops)
            .contains("inbound Name \"a0-1\" -> \"t0-1\""));
        // A write whose outcome is unknown is in no order.
        let mut unsure = ops.clone();
        unsure[1].outcome = Outcome::Unknown;
        assert!(check(&unsure, &end).is_ok());
    }

    #[test]
    fn a_goal_the_app_deleted_stays_deleted_when_the_team_brings_its_record_back() {
        let restore = Target {
            pg: Some(id(1)),
            record: Some("recB".into()),
        };
        let ops = vec![
            created(),
            op("a0", Kind::Delete, pg(1), (100, 200), Outcome::Ok),
            op("t0", Kind::Restore, restore, (300, 300), Outcome::Ok),
        ];
        // The copy was deleted again: fine.
        let gone = Final {
            pairs: vec![("recA".into(), id(1)), ("recB".into(), id(1))],
            ..Final::default()
        };
        assert!(check(&ops, &gone).is_ok());
        // The copy stayed, and the row came back with it.
        let mut back = both("s-1", "s-1");
        back.records[0].id = "recB".into();
        assert_eq!(
            check(&ops, &back).kinds(),
            vec![ViolationKind::DeletedExists, ViolationKind::DeletedExists]
        );
        // The copy stayed in Airtable alone; it is joined to the goal by
        // the restore's target even without a pair.
        back.rows.clear();
        assert_eq!(
            check(&ops, &back).kinds(),
            vec![ViolationKind::OnlyInAirtable, ViolationKind::DeletedExists]
        );
    }

    #[test]
    fn an_acknowledged_create_stays_unless_a_delete_may_have_happened() {
        let mut ops = vec![created()];
        assert_eq!(
            check(&ops, &Final::default()).kinds(),
            vec![
                ViolationKind::AcknowledgedCreateLost,
                ViolationKind::AcknowledgedCreateLost
            ]
        );
        ops.push(op("a0", Kind::Delete, pg(1), (100, 200), Outcome::Unknown));
        assert!(check(&ops, &Final::default()).is_ok());
        // An unanswered delete may also not have happened.
        assert!(check(&ops, &both("s-1", "s-1")).is_ok());
        // A refused delete did not happen.
        ops[1].outcome = Outcome::Failed;
        assert_eq!(
            check(&ops, &Final::default()).kinds(),
            vec![
                ViolationKind::AcknowledgedCreateLost,
                ViolationKind::AcknowledgedCreateLost
            ]
        );
    }

    #[test]
    fn a_goal_nobody_created_is_flagged_and_a_lost_answer_is_found_by_name() {
        let end = both("a0-1", "a0-1");
        let refused = vec![op(
            "a0",
            Kind::create("a0-1"),
            Target::default(),
            (0, 10),
            Outcome::Failed,
        )];
        // Nobody created it (and its values are nobody's).
        assert_eq!(
            check(&[], &end).kinds(),
            vec![
                ViolationKind::NobodyWrote,
                ViolationKind::NobodyWrote,
                ViolationKind::NobodyCreated
            ]
        );
        // An unanswered create made it: the row was inserted with its name.
        let mut ops = refused.clone();
        ops[0].outcome = Outcome::Unknown;
        let mut found = end.clone();
        found.inserted = vec![(id(1), "a0-1".into())];
        assert!(
            check(&ops, &found).is_ok(),
            "{}",
            check(&ops, &found).render(&ops)
        );
        // A refused create must have made nothing.
        assert_eq!(
            check(&refused, &found).kinds(),
            vec![
                ViolationKind::RefusedWriteSurvived,
                ViolationKind::RefusedWriteSurvived,
                ViolationKind::NobodyCreated
            ]
        );
    }

    #[test]
    fn a_duplicated_goal_is_flagged() {
        let ops = vec![created()];
        let mut end = both("s-1", "s-1");
        end.records.push(Record {
            id: "recB".into(),
            pg_id: Some(id(1)),
            goal: goal("s-1", "s-1"),
        });
        assert_eq!(check(&ops, &end).kinds(), vec![ViolationKind::Duplicated]);
    }

    #[test]
    fn usage_must_be_on_both_sides_with_the_same_goal() {
        let ops = vec![created()];
        let mut end = both("s-1", "s-1");
        end.usage_rows = vec![UsageRow {
            id: id(10),
            goal: id(1),
        }];
        end.usage_records = vec![UsageRecord {
            id: "recU".into(),
            pg_id: Some(id(10)),
            goals: vec!["recA".into()],
        }];
        assert!(check(&ops, &end).is_ok());
        end.usage_records[0].goals.clear();
        assert_eq!(check(&ops, &end).kinds(), vec![ViolationKind::UsageDiffers]);
        end.usage_rows.clear();
        assert_eq!(check(&ops, &end).kinds(), vec![ViolationKind::UsageDiffers]);
    }

    #[test]
    fn the_summary_counts_by_kind_and_outcome() {
        let ops = vec![
            created(),
            op("a0", Kind::Delete, pg(1), (100, 200), Outcome::Unknown),
        ];
        assert_eq!(summary(&ops), "create 1 (ok 1), delete 1 (unknown 1)");
    }
}
