//! Progress of long operations: a bar per table (rows, rows/s, ETA) when stderr is a
//! terminal, a log line per table every few seconds otherwise; and the running totals of
//! a whole copy ([`CopyTally`]) that live sync reports.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

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
            tally: None,
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
    tally: Option<Arc<CopyTally>>,
}

impl TableProgress {
    /// Also counts rows and the finished table into `tally` (a whole copy's totals).
    pub fn count_into(&mut self, tally: Option<Arc<CopyTally>>) {
        self.tally = tally;
    }

    pub fn inc(&mut self, rows: u64) {
        self.done += rows;
        if let Some(t) = &self.tally {
            t.rows_done.fetch_add(rows, Ordering::Relaxed);
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
        if let Some(t) = &self.tally {
            t.tables_done.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(b) = &self.bar {
            b.finish();
        }
        tracing::info!(table = %self.name, rows = self.done, seconds = self.started.elapsed().as_secs_f64(), "{} done", self.verb);
    }
}

/// Running totals of a whole copy, shared with whoever reports on it (live sync's
/// `/status` and metrics). Row totals are the source's counts when each table's copy was
/// planned; rows written meanwhile make the copy a little longer than said.
#[derive(Debug, Default)]
pub struct CopyTally {
    pub tables_total: AtomicU64,
    pub tables_done: AtomicU64,
    pub rows_total: AtomicU64,
    pub rows_done: AtomicU64,
}

/// A copy's progress at one moment, as `/status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CopyProgress {
    pub tables_done: u64,
    pub tables_total: u64,
    pub rows_done: u64,
    pub rows_total: u64,
    pub elapsed_seconds: f64,
    pub rows_per_second: f64,
    /// Time left at the rate so far (None until rows have been copied).
    pub eta_seconds: Option<f64>,
}

impl CopyTally {
    /// The progress now, `elapsed` after the copy began.
    pub fn snapshot(&self, elapsed: Duration) -> CopyProgress {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (rows_done, rows_total) = (get(&self.rows_done), get(&self.rows_total));
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            rows_done as f64 / secs
        } else {
            0.0
        };
        CopyProgress {
            tables_done: get(&self.tables_done),
            tables_total: get(&self.tables_total),
            rows_done,
            rows_total,
            elapsed_seconds: secs,
            rows_per_second: rate,
            eta_seconds: (rate > 0.0).then(|| rows_total.saturating_sub(rows_done) as f64 / rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_the_rows_left_at_the_rate_so_far() {
        let t = CopyTally::default();
        t.tables_total.store(4, Ordering::Relaxed);
        t.rows_total.store(1000, Ordering::Relaxed);
        assert_eq!(t.snapshot(Duration::from_secs(2)).eta_seconds, None);
        t.rows_done.store(250, Ordering::Relaxed);
        let p = t.snapshot(Duration::from_secs(5));
        assert_eq!(p.rows_per_second, 50.0);
        assert_eq!(p.eta_seconds, Some(15.0));
        // More rows than counted (written during the copy): nothing left, not negative.
        t.rows_done.store(1200, Ordering::Relaxed);
        assert_eq!(t.snapshot(Duration::from_secs(5)).eta_seconds, Some(0.0));
    }
}
