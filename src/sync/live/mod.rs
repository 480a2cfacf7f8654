//! Live sync: keep a second database in step with the one the app writes to, so a switch
//! loses nothing. Capture triggers go on the source ([`capture`]), the tables are backfilled
//! (`sync::plan`), capture goes on the target too, and a background loop applies the
//! changelog ([`apply`]) until stopped. As a [`SwitchHook`] it refuses a switch while the
//! lag is too large and, inside the pause, applies the rest, carries sequences over
//! ([`sequences`]) and reverses the direction, so after a cutover the old side keeps
//! receiving the new side's writes and a rollback carries them back.

pub mod apply;
pub mod capture;
mod cascade;
mod hook;
pub mod sequences;
pub mod side;
mod snapshot;
mod sqlite_apply;
mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use self::side::Side;
pub use self::status::{LiveStatus, Phase};
use super::schema::Table;
use super::{SyncError, SyncOptions, checkpoint, pgconn, plan};
use crate::backend::url::BackendUrl;
use crate::metrics::Metrics;

/// What to keep in step: two databases by name and URL.
#[derive(Debug, Clone)]
pub struct LiveSpec {
    pub from_name: String,
    pub from_url: String,
    pub to_name: String,
    pub to_url: String,
    /// Empty non-empty target tables before the backfill.
    pub force: bool,
    /// A switch is refused while more changes than this are pending.
    pub max_lag_rows: u64,
    /// Changelog entries applied per round.
    pub batch: usize,
    /// Tables copied at once during the backfill.
    pub parallel: usize,
}

/// Both sides, connected; `a` is where the sync started from.
struct Sides {
    a: Side,
    b: Side,
    /// Highest changelog id applied in the current direction: rounds read above it.
    cursor: i64,
    rounds: u64,
}

/// Every this many rounds, one reads the changelog from its start: an id is taken when a
/// change is captured but becomes visible at commit, so a slow transaction's entries can
/// appear below the cursor.
const FULL_SCAN_EVERY: u64 = 16;

/// A running live sync.
pub struct LiveSync {
    spec: LiveSpec,
    tables: Vec<Table>,
    source_id: String,
    sides: tokio::sync::Mutex<Sides>,
    /// True while `a` is the source.
    forward: AtomicBool,
    /// Set by a switch's preflight until the switch ends: the apply loop holds off, so the
    /// catch-up inside the pause never waits for a round in progress.
    quiet: AtomicBool,
    status: Mutex<LiveStatus>,
    stop: watch::Sender<bool>,
    metrics: Metrics,
}

async fn open_side(url: &str, what: &str) -> Result<Side, SyncError> {
    match BackendUrl::parse(url).map_err(|e| SyncError::Usage(format!("{what}: {e}")))? {
        BackendUrl::Sqlite(path) => Ok(Side::Sqlite(path)),
        BackendUrl::Postgres(t) => {
            let c = pgconn::connect(&t).await?;
            // Timestamps cross to SQLite in UTC, the SQLite backend's storage rule.
            c.batch_execute("SET TimeZone = 'UTC'")
                .await
                .map_err(side::pgerr)?;
            Ok(Side::Postgres(c))
        }
    }
}

impl LiveSync {
    /// Checks and connects both sides, then starts capture, backfill and streaming in the
    /// background. Errors here (no primary key, unreachable side, SQLite target) are
    /// returned before anything is installed.
    pub async fn start(spec: LiveSpec, metrics: Metrics) -> Result<Arc<LiveSync>, SyncError> {
        if matches!(BackendUrl::parse(&spec.to_url), Ok(BackendUrl::Sqlite(_))) {
            return Err(SyncError::Usage(format!(
                "live sync copies into PostgreSQL; {:?} is SQLite (it can be the source, and receives changes back after a cutover)",
                spec.to_name
            )));
        }
        let opened = plan::open_source(&spec.from_url).await?;
        let mut tables = opened.tables;
        capture::check_capturable(&tables)?;
        super::schema::fk_order(&mut tables);
        let a = open_side(&spec.from_url, "from").await?;
        let b = open_side(&spec.to_url, "to").await?;
        let (stop, _) = watch::channel(false);
        let live = Arc::new(LiveSync {
            status: Mutex::new(LiveStatus::new(&spec, tables.len())),
            spec,
            tables,
            source_id: opened.id,
            sides: tokio::sync::Mutex::new(Sides {
                a,
                b,
                cursor: 0,
                rounds: 0,
            }),
            forward: AtomicBool::new(true),
            quiet: AtomicBool::new(false),
            stop,
            metrics,
        });
        tracing::info!(from = %live.spec.from_name, to = %live.spec.to_name, tables = live.tables.len(), "live sync starting");
        tokio::spawn(live.clone().run());
        Ok(live)
    }

    /// A copy of the current status.
    pub fn status(&self) -> LiveStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut LiveStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn set_phase(&self, phase: Phase) {
        self.update(|s| s.phase = phase);
        self.metrics.sync_phase.set(phase as i64);
        tracing::info!(phase = ?phase, from = %self.spec.from_name, to = %self.spec.to_name, "live sync phase");
    }

    /// Stops the apply loop (capture stays installed until `sync --finish`).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops after applying what is pending; true once the loop has ended within `limit`.
    pub async fn stop_and_wait(&self, limit: Duration) -> bool {
        self.stop();
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if matches!(self.status().phase, Phase::Stopped | Phase::Failed) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Names of (source, target) in the current direction.
    pub fn direction(&self) -> (&str, &str) {
        if self.forward.load(Ordering::SeqCst) {
            (&self.spec.from_name, &self.spec.to_name)
        } else {
            (&self.spec.to_name, &self.spec.from_name)
        }
    }

    async fn run(self: Arc<Self>) {
        if let Err(e) = self.prepare().await {
            tracing::error!(error = %e, "live sync failed before streaming");
            self.update(|s| s.last_error = Some(e.to_string()));
            self.set_phase(Phase::Failed);
            return;
        }
        self.set_phase(Phase::Streaming);
        self.stream().await;
        self.set_phase(Phase::Stopped);
    }

    /// Capture on the source, backfill, capture on the target.
    async fn prepare(&self) -> Result<(), SyncError> {
        let resumed = {
            let s = self.sides.lock().await;
            let resumed = side::capture_installed(&s.a).await?;
            self.set_phase(Phase::Capturing);
            side::install(&s.a, &self.tables).await?;
            resumed
        };
        self.set_phase(Phase::Backfilling);
        if !resumed {
            // Fresh capture: rows changed since any earlier sync were not captured, so
            // an earlier checkpoint cannot be trusted; copy again (into empty tables).
            let target = pgconn::pg_target(&self.spec.to_url, "to")?;
            let c = pgconn::connect(&target).await?;
            checkpoint::setup(&c).await?;
            checkpoint::reset(&c, &self.source_id).await?;
        }
        let summary = plan::run(SyncOptions {
            from: self.spec.from_url.clone(),
            to: self.spec.to_url.clone(),
            tables: self.tables.iter().map(|t| t.name.clone()).collect(),
            batch_rows: 20_000,
            parallel: self.spec.parallel,
            dry_run: false,
            schema_only: false,
            force: self.spec.force && !resumed,
            resume: resumed,
            skip_bad_rows: None,
        })
        .await?;
        let rows: u64 = summary.tables.iter().map(|t| t.rows.max(0) as u64).sum();
        self.update(|s| s.backfilled_rows = rows);
        let s = self.sides.lock().await;
        side::install(&s.b, &self.tables).await
    }

    /// Applies rounds until stopped; idle rounds refresh the lag figures.
    async fn stream(&self) {
        let mut stop = self.stop.subscribe();
        let mut refreshed = std::time::Instant::now();
        while !*stop.borrow() {
            if self.quiet.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            match self.round(false).await {
                Ok(n) if n > 0 => {
                    self.metrics.sync_applied.inc_by(n as u64);
                    self.update(|s| s.applied_total += n as u64);
                    // While catching up, refresh the lag figures twice a second; when
                    // the last figure was small (cheap to count), after every round, so
                    // the status never shows a stale zero while rounds still apply.
                    let small = self.status().pending_changes <= self.spec.batch as u64;
                    if small || refreshed.elapsed() > Duration::from_millis(500) {
                        refreshed = std::time::Instant::now();
                        if let Err(e) = self.refresh_lag().await {
                            self.note_error(&e);
                        }
                    }
                    continue;
                }
                Ok(_) => {
                    if let Err(e) = self.refresh_lag().await {
                        self.note_error(&e);
                    }
                }
                Err(e) => {
                    self.note_error(&e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.changed() => {}
            }
        }
        self.final_rounds().await;
    }

    /// On stop: apply what was captured up to now, so that the target holds every write
    /// made before the stop (bounded: at most 100 rounds).
    async fn final_rounds(&self) {
        for _ in 0..100 {
            match self.round(true).await {
                Ok(0) => break,
                Ok(n) => {
                    self.metrics.sync_applied.inc_by(n as u64);
                    self.update(|s| s.applied_total += n as u64);
                }
                Err(e) => {
                    self.note_error(&e);
                    break;
                }
            }
        }
        if let Err(e) = self.refresh_lag().await {
            self.note_error(&e);
        }
    }

    fn note_error(&self, e: &SyncError) {
        tracing::warn!(error = %e, "live sync round failed; retrying");
        self.metrics.sync_errors.inc();
        self.update(|s| s.last_error = Some(e.to_string()));
    }

    /// One apply round in the current direction, reconnecting lost PostgreSQL sides.
    /// `full` reads from the start of the changelog instead of the cursor.
    async fn round(&self, full: bool) -> Result<usize, SyncError> {
        let mut guard = self.sides.lock().await;
        self.reconnect(&mut guard).await?;
        let s = &mut *guard;
        s.rounds += 1;
        let after = if full || s.rounds.is_multiple_of(FULL_SCAN_EVERY) {
            0
        } else {
            s.cursor
        };
        let (src, dst) = if self.forward.load(Ordering::SeqCst) {
            (&s.a, &mut s.b)
        } else {
            (&s.b, &mut s.a)
        };
        let (n, last) =
            apply::apply_round_from(src, dst, &self.tables, self.spec.batch, after).await?;
        s.cursor = s.cursor.max(last);
        Ok(n)
    }

    async fn reconnect(&self, s: &mut Sides) -> Result<(), SyncError> {
        if matches!(&s.a, Side::Postgres(c) if c.is_closed()) {
            s.a = open_side(&self.spec.from_url, "from").await?;
        }
        if matches!(&s.b, Side::Postgres(c) if c.is_closed()) {
            s.b = open_side(&self.spec.to_url, "to").await?;
        }
        Ok(())
    }

    /// Pending changes on the source, and writes that reached the inactive side.
    async fn refresh_lag(&self) -> Result<(), SyncError> {
        let s = self.sides.lock().await;
        let (src, dst) = if self.forward.load(Ordering::SeqCst) {
            (&s.a, &s.b)
        } else {
            (&s.b, &s.a)
        };
        let (pending, age) = side::backlog(src).await?;
        let (stray, _) = side::backlog(dst).await?;
        drop(s);
        let before = self.status().inactive_side_writes;
        if stray > before {
            tracing::warn!(
                writes = stray,
                side = self.direction().1,
                "writes reached the inactive side directly; they are kept and carried over at the next switch"
            );
        }
        self.metrics.sync_pending.set(pending as i64);
        self.metrics.sync_lag_seconds.set(age);
        self.metrics.sync_inactive_writes.set(stray as i64);
        self.update(|st| {
            st.pending_changes = pending;
            st.oldest_change_seconds = age;
            st.inactive_side_writes = stray;
            st.last_error = None;
        });
        Ok(())
    }
}

/// Removes capture (triggers and changelogs) from both sides. Returns the table count.
pub async fn finish(from_url: &str, to_url: &str) -> Result<usize, SyncError> {
    let tables = plan::open_source(from_url).await?.tables;
    for (url, what) in [(from_url, "from"), (to_url, "to")] {
        let side = open_side(url, what).await?;
        side::remove(&side, &tables).await?;
    }
    tracing::info!(
        tables = tables.len(),
        "live sync capture removed from both sides"
    );
    Ok(tables.len())
}
