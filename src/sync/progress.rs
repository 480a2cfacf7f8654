//! Progress of long operations: a bar per table (rows, rows/s, ETA) when stderr is a
//! terminal, a log line per table every few seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress display for a whole run.
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        Progress {
            multi: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// Progress of one table of `total` rows (an estimate is fine).
    pub fn table(&self, verb: &'static str, name: &str, total: u64) -> TableProgress {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new(total));
            let style = ProgressStyle::with_template(
                "{prefix:>24} [{bar:30}] {pos}/{len} rows {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(name.to_string());
            b
        });
        TableProgress {
            verb,
            name: name.to_string(),
            total,
            done: 0,
            started: Instant::now(),
            last_log: Instant::now(),
            bar,
            counter: None,
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// Progress of one table.
pub struct TableProgress {
    verb: &'static str,
    name: String,
    total: u64,
    done: u64,
    started: Instant,
    last_log: Instant,
    bar: Option<ProgressBar>,
    counter: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl TableProgress {
    /// Also adds every increment to `counter` (a caller's running total).
    pub fn count_into(&mut self, counter: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>) {
        self.counter = counter;
    }

    pub fn inc(&mut self, rows: u64) {
        self.done += rows;
        if let Some(c) = &self.counter {
            c.fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(b) = &self.bar {
            b.set_position(self.done);
        } else if self.last_log.elapsed() >= Duration::from_secs(5) {
            self.last_log = Instant::now();
            tracing::info!(table = %self.name, rows = self.done, total = self.total, rows_per_sec = self.rate() as u64, "{} in progress", self.verb);
        }
    }

    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-6)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
        tracing::info!(table = %self.name, rows = self.done, seconds = self.started.elapsed().as_secs_f64(), "{} done", self.verb);
    }
}
