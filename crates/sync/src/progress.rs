//! Progress of the long steps a command runs (a full reconcile, a
//! validation, a replay of the dead-letter queue), reported as they go. The
//! command line shows it (a bar on a terminal, log lines otherwise); the
//! sync itself only reports.

/// Receives the progress of one kind of work, a part at a time (a table).
pub trait ProgressSink: Send + Sync {
    /// A part begins; `total` items when known.
    fn start(&self, part: &str, total: Option<u64>);
    /// `done` items of the part so far.
    fn advance(&self, part: &str, done: u64);
    /// The part is done, with `done` items.
    fn finish(&self, part: &str, done: u64);
}
