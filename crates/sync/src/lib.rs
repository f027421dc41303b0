//! The sync engine between PostgreSQL and the Airtable base
//! (docs/architecture.md): the mapping, the id map, the outbox and its
//! worker, and the inbound paths. It knows nothing of HTTP routes or
//! coaching rules.

#![forbid(unsafe_code)]

pub mod airtable_writer;
pub mod bootstrap;
pub mod budget;
pub mod cells;
pub mod conflicts;
pub mod dead_letters;
pub mod id_map;
pub mod inbound;
pub mod mapping;
pub mod outbox;
pub mod progress;
pub mod rows;
mod session_lock;
pub mod status;
pub mod versions;
pub mod worker;

/// Errors of the sync engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A query failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The mapping cannot be used.
    #[error(transparent)]
    Mapping(#[from] mapping::MappingError),
    /// Airtable could not be asked, or refused.
    #[error("Airtable: {0}")]
    Airtable(#[from] airsync_airtable::Error),
    /// A command named something that does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// `Result` with the sync engine's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
