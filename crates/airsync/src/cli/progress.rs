//! The progress of a long command on standard error: an `indicatif` bar (a
//! spinner with a count and a rate when the total is not known) on a
//! terminal, and plain log lines otherwise (every
//! [`LOG_EVERY`] and at each part's end), so that a redirected or
//! containerised run keeps a readable log.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airsync_sync::progress::ProgressSink;
use indicatif::{ProgressBar, ProgressStyle};

/// How often a non-terminal run logs a part's progress.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The progress of one command, as fits standard error.
pub enum CommandProgress {
    /// A bar per part, on a terminal.
    Bars(Mutex<HashMap<String, ProgressBar>>),
    /// Log lines: when each part began and last logged.
    Lines(Mutex<HashMap<String, (Instant, Instant)>>),
}

impl CommandProgress {
    /// Bars when standard error is a terminal, log lines otherwise.
    pub fn for_stderr() -> CommandProgress {
        if std::io::stderr().is_terminal() {
            CommandProgress::Bars(Mutex::new(HashMap::new()))
        } else {
            CommandProgress::Lines(Mutex::new(HashMap::new()))
        }
    }
}

fn bar(part: &str, total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(total) => (
            ProgressBar::new(total),
            "{prefix}: {bar:30} {pos}/{len} ({per_sec}, {eta} left)",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {prefix}: {pos} records ({per_sec}, {elapsed})",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_prefix(part.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn rate(done: u64, since: Instant) -> f64 {
    done as f64 / since.elapsed().as_secs_f64().max(0.001)
}

impl ProgressSink for CommandProgress {
    fn start(&self, part: &str, total: Option<u64>) {
        match self {
            CommandProgress::Bars(bars) => {
                let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
                bars.insert(part.to_owned(), bar(part, total));
            }
            CommandProgress::Lines(parts) => {
                let now = Instant::now();
                let mut parts = parts.lock().unwrap_or_else(|p| p.into_inner());
                parts.insert(part.to_owned(), (now, now));
                match total {
                    Some(total) => tracing::info!(part, total, "started"),
                    None => tracing::info!(part, "started"),
                }
            }
        }
    }

    fn advance(&self, part: &str, done: u64) {
        match self {
            CommandProgress::Bars(bars) => {
                let bars = bars.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(bar) = bars.get(part) {
                    bar.set_position(done);
                }
            }
            CommandProgress::Lines(parts) => {
                let mut parts = parts.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((began, logged)) = parts.get_mut(part) {
                    if logged.elapsed() >= LOG_EVERY {
                        *logged = Instant::now();
                        tracing::info!(
                            part,
                            done,
                            per_second = rate(done, *began) as u64,
                            "in progress"
                        );
                    }
                }
            }
        }
    }

    fn finish(&self, part: &str, done: u64) {
        match self {
            CommandProgress::Bars(bars) => {
                let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(bar) = bars.remove(part) {
                    bar.set_position(done);
                    bar.finish();
                }
            }
            CommandProgress::Lines(parts) => {
                let mut parts = parts.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((began, _)) = parts.remove(part) {
                    tracing::info!(
                        part,
                        done,
                        seconds = began.elapsed().as_secs_f64(),
                        per_second = rate(done, began) as u64,
                        "done"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_keep_each_parts_start_until_it_finishes() {
        let progress = CommandProgress::Lines(Mutex::new(HashMap::new()));
        progress.start("Users", None);
        progress.advance("Users", 100);
        progress.advance("Nobody started this", 5);
        let CommandProgress::Lines(parts) = &progress else {
            unreachable!()
        };
        assert!(parts.lock().unwrap().contains_key("Users"));
        progress.finish("Users", 200);
        assert!(parts.lock().unwrap().is_empty());
    }

    #[test]
    fn a_bar_follows_its_part_and_is_gone_when_it_finishes() {
        let progress = CommandProgress::Bars(Mutex::new(HashMap::new()));
        progress.start("dead letters", Some(3));
        progress.advance("dead letters", 2);
        let CommandProgress::Bars(bars) = &progress else {
            unreachable!()
        };
        assert_eq!(bars.lock().unwrap()["dead letters"].position(), 2);
        progress.finish("dead letters", 3);
        assert!(bars.lock().unwrap().is_empty());
    }
}
