//! Throwaway PostgreSQL clusters, for tests and for local runs such as the
//! demo, on a machine where no server runs.
//!
//! [`Cluster::start`] finds the server binaries (`PATH` first, then
//! `/usr/lib/postgresql/*/bin`, newest version first), runs `initdb` into a
//! fresh temporary folder, and starts `postgres` on a free loopback port with
//! durability switched off (the data is thrown away). The server is a child of
//! the calling thread and is told to quit when that thread goes away, even
//! when the process is killed; [`Cluster::stop`] (also run on drop) stops it
//! and removes the folder. Folders left by killed processes are removed by the
//! next start.

mod binaries;
mod cluster;
mod os;

pub use binaries::{find_server_binaries, ServerBinaries};
pub use cluster::{Cluster, ClusterOptions};
pub use os::kill_with_parent;

use std::path::PathBuf;

/// Errors of starting or stopping a cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No directory holds `initdb`, `pg_ctl` and `postgres`.
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found on PATH or in \
         /usr/lib/postgresql/*/bin; install the `postgresql` package or set DATABASE_URL"
    )]
    BinariesNotFound,
    /// A file operation on the cluster's folder failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `initdb` failed.
    #[error("initdb failed ({status}): {output}")]
    Initdb {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        output: String,
    },
    /// The server exited or did not become ready in time.
    #[error("the PostgreSQL server did not start: {reason}; its log says:\n{log}")]
    Start {
        /// Why starting was given up.
        reason: String,
        /// The end of the server's log.
        log: String,
    },
}

/// `Result` with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
