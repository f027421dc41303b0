//! A local server that answers Airtable's Web API (records, metadata,
//! webhooks) with Airtable's limits and faults, for tests, benchmarks and the
//! demo.
//!
//! Run it as `airsync airtable emulator` (see [`cli::EmulatorArgs`]) or
//! in-process from tests:
//!
//! ```no_run
//! use airsync_emulator::{ClientEdit, EmulatorConfig, FieldSpec, TableSpec};
//! use serde_json::json;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = EmulatorConfig::new()
//!     .with_token("patTEST")
//!     .with_base("appAAAAAAAAAAAAAA")
//!     .without_limits() // Airtable's 5/s per base otherwise
//!     .start()
//!     .await?;
//! let people = emulator.create_table(
//!     "appAAAAAAAAAAAAAA",
//!     TableSpec::new("People", vec![
//!         FieldSpec::new("Name", "singleLineText"),
//!         FieldSpec::new("Age", "number").with_options(json!({"precision": 0})),
//!     ]),
//! )?;
//!
//! // Point the client under test at the emulator instead of Airtable.
//! let url = format!("{}/v0/appAAAAAAAAAAAAAA/People", emulator.url());
//! let answer: serde_json::Value = reqwest::Client::new()
//!     .get(&url)
//!     .bearer_auth("patTEST")
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(answer["records"], json!([]));
//!
//! // A person edits the base in Airtable's UI (webhook source "client").
//! let mut fields = serde_json::Map::new();
//! fields.insert("Name".into(), json!("Ada"));
//! emulator.edit_as_user("appAAAAAAAAAAAAAA", &people.id, ClientEdit {
//!     create: vec![fields],
//!     ..ClientEdit::default()
//! })?;
//!
//! // Time passes: offsets expire, penalties end, webhooks age.
//! emulator.advance_clock(std::time::Duration::from_secs(30));
//! assert_eq!(emulator.stats().base("appAAAAAAAAAAAAAA").rate_limited, 0);
//! emulator.shutdown().await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod app;
mod cells;
mod changes;
pub mod cli;
pub mod clock;
mod config;
mod control;
mod dates;
mod direct;
mod emulator;
mod error;
mod faults;
mod field_options;
pub mod formula;
pub mod ids;
mod limits;
mod meta;
mod model;
mod moment;
mod persist;
mod records;
mod render;
mod respond;
mod schema;
mod server;
mod stats;
mod webhooks;

pub use changes::Source;
pub use clock::ClockMode;
pub use config::EmulatorConfig;
pub use direct::{ClientEdit, EditOutcome, FieldInfo, RecordPatch, TableInfo};
pub use emulator::Emulator;
pub use error::{ApiError, Error, Result};
pub use faults::{FaultBurst, FaultKind};
pub use limits::RateLimits;
pub use model::{FieldType, SortSpec};
pub use schema::{FieldSpec, TableSpec};
pub use stats::{BaseStats, Stats};
pub use webhooks::content_mac;
