//! The team at work in Airtable during the chaos: new goals and users,
//! renamed goals, methods and users, as the Airtable UI would make them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airsync_emulator::{ClientEdit, Emulator, RecordPatch};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::fields;

/// A record the team created or renamed, with the name it gave last.
#[derive(Debug, Clone)]
pub struct Edited {
    pub table: &'static str,
    pub record: String,
    pub name: String,
}

#[derive(Debug, Default)]
pub struct TeamLedger {
    pub records: Vec<Edited>,
    pub creates: u64,
    pub renames: u64,
}

/// Runs until `stop`, one edit every few hundred milliseconds. `methods` are
/// the seeded methods, which the team renames too.
pub async fn run(
    emulator: Arc<Emulator>,
    base: String,
    methods: Vec<Edited>,
    ledger: Arc<Mutex<TeamLedger>>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    ledger.lock().expect("ledger").records.extend(methods);
    let mut step = 0u64;
    while !stop.load(Ordering::Relaxed) {
        step += 1;
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..600))).await;
        let mut ledger = ledger.lock().expect("ledger");
        let choice = rng.random_range(0..6);
        if choice < 3 || ledger.records.is_empty() {
            let (table, name, cells) = if choice == 0 {
                let name = format!("Team user {step}");
                let email = format!("team{step}.{seed}@example.com");
                ("Users", name.clone(), json!({"Email": email, "Name": name}))
            } else {
                let name = format!("Team goal {step}");
                let cells = json!({"Name": name, "Description": "From the team", "Active": true});
                ("Goals", name, cells)
            };
            let edit = ClientEdit {
                create: vec![fields(cells)],
                ..ClientEdit::default()
            };
            let created = emulator
                .edit_as_user(&base, table, edit)
                .expect("team create");
            for record in created.created {
                ledger.records.push(Edited {
                    table,
                    record,
                    name: name.clone(),
                });
            }
            ledger.creates += 1;
        } else {
            let index = rng.random_range(0..ledger.records.len());
            let edited = &mut ledger.records[index];
            let name = format!("{} renamed {step}", edited.table);
            let edit = ClientEdit {
                update: vec![RecordPatch {
                    id: edited.record.clone(),
                    fields: fields(json!({"Name": name})),
                }],
                ..ClientEdit::default()
            };
            emulator
                .edit_as_user(&base, edited.table, edit)
                .expect("team rename");
            edited.name = name;
            ledger.renames += 1;
        }
    }
}
