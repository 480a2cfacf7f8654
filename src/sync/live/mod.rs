//! Live sync: keep a second database in step with the one the app writes to, so a switch
//! loses nothing. Capture triggers go on the source ([`capture`]), the tables are backfilled
//! (`sync::copy::plan`, one snapshot), capture goes on the target too, and a background loop
//! applies the changelog ([`apply`], [`stream`]) until stopped. Inside a switch ([`hook`])
//! it applies the rest, carries sequences over ([`sequences`]) and reverses the direction,
//! so after a cutover the old side keeps receiving the new side's writes and a rollback
//! carries them back.
//!
//! Its state lives in the databases ([`record`]), not in the process: a restarted proxy
//! finds it and carries on ([`resume`]); while it cannot, switches between those backends
//! are refused ([`slot`]).

pub mod apply;
pub mod capture;
mod cascade;
mod hook;
pub mod record;
pub mod resume;
pub mod sequences;
pub mod side;
pub mod slot;
mod snapshot;
mod sqlite_apply;
mod status;
mod stream;
pub mod touched;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use self::record::{Found, Record, StoredPhase};
use self::side::Side;
pub use self::slot::LiveSlot;
pub use self::status::{LiveStatus, Phase};
use super::copy::plan;
use super::schema::Table;
use super::{SyncError, pgconn};
use crate::backend::url::BackendUrl;
use crate::metrics::Metrics;

/// What to keep in step: two databases by name and URL.
#[derive(Debug, Clone)]
pub struct LiveSpec {
    pub from_name: String,
    pub from_url: String,
    pub to_name: String,
    pub to_url: String,
    /// Empty non-empty target tables (and copy again) before streaming.
    pub force: bool,
    /// A switch is refused while more changes than this are pending.
    pub max_lag_rows: u64,
    /// Changelog entries applied per round.
    pub batch: usize,
    /// Tables copied at once during the backfill.
    pub parallel: usize,
    /// Columns left out and column types (kept in the record, so a resumed sync has them).
    pub choices: crate::sync::choices::ColumnChoices,
}

/// How a live sync starts.
#[derive(Debug, Clone)]
pub enum StartMode {
    /// Asked for (`ctl sync`, `sync --live`): `from` is where the app writes now.
    Fresh,
    /// Found in the databases at start-up: carry on in the recorded direction and phase.
    Resume(Record),
}

/// Both sides, connected; `a` is where the sync started from.
struct Sides {
    a: Side,
    b: Side,
    /// Highest changelog id applied in the current direction: rounds read above it.
    cursor: i64,
    rounds: u64,
}

/// Foreign keys the copy left NOT VALID, validated once the changes captured during the
/// copy have been applied.
#[derive(Default)]
struct Deferred {
    keys: Vec<super::copy::foreign_keys::Pending>,
    /// The source's highest changelog id when the copy ended.
    after_id: i64,
    next_try: Option<std::time::Instant>,
}

/// Whether another owner still holds the sync: its heartbeat is this recent.
const OWNER_FRESH_SECS: f64 = 30.0;

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
    /// This process, as the record's owner (and fence).
    owner: String,
    /// Database identities of `a` and `b`.
    dbs: (String, String),
    /// The switch epoch of the last change of direction.
    epoch: AtomicU64,
    /// The phase the record had when this process took the sync.
    start_phase: StoredPhase,
    /// The copy is done (recorded, so a later start needs none).
    copied: AtomicBool,
    /// A switch recorded a reversed direction it has not committed yet.
    flip_recorded: AtomicBool,
    /// The direction changed while a round held the sides: start over from id 0.
    reset_cursor: AtomicBool,
    deferred: Mutex<Deferred>,
    /// The initial copy's running totals.
    tally: Arc<crate::sync::progress::CopyTally>,
    /// Where its tasks run; its shutdown ends the apply loop (the record stays, so the
    /// next start resumes).
    lifecycle: crate::lifecycle::Lifecycle,
}

/// Connects to one side of a live sync (`what` names the option it came from).
pub async fn open_side(url: &str, what: &str) -> Result<Side, SyncError> {
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

fn sqlite_target(name: &str) -> SyncError {
    SyncError::Usage(format!(
        "live sync copies into PostgreSQL; {name:?} is SQLite (it can be the source, and receives changes back after a cutover)"
    ))
}

/// The newer of two records (by epoch, then by the fresher heartbeat).
fn newer(a: Option<Record>, b: Option<Record>) -> Option<Record> {
    match (a, b) {
        (Some(x), Some(y)) => Some(
            if (y.epoch, -y.heartbeat_age) > (x.epoch, -x.heartbeat_age) {
                y
            } else {
                x
            },
        ),
        (x, y) => x.or(y),
    }
}

/// What a fresh start must respect in what the databases already hold. Returns the
/// epoch to carry on with, and whether it can stream at once: the copy was done once and
/// capture has been on both sides since, so the changelogs hold every change after it.
fn check_fresh(
    spec: &LiveSpec,
    owner: &str,
    ids: (&str, &str),
    prior: Option<&Record>,
    found: (&Found, &Found),
) -> Result<(u64, bool), SyncError> {
    let found_b = found.1;
    let Some(p) = prior else {
        if found_b.pending > 0 {
            return Err(SyncError::Refused(format!(
                "{} holds {} captured change(s) from an earlier live sync that were never applied to {}; starting {} -> {} would overwrite them. Remove that capture first (switchyard sync --finish) if those writes are not needed",
                spec.to_name, found_b.pending, spec.from_name, spec.from_name, spec.to_name
            )));
        }
        return Ok((0, false));
    };
    let mine = record::owner_instance(&p.owner) == record::owner_instance(owner);
    if p.phase.active() && !mine && p.heartbeat_age < OWNER_FRESH_SECS {
        return Err(SyncError::Refused(format!(
            "live sync {} -> {} is being applied by another process ({}, last seen {:.0} s ago); stop it there first",
            p.from_name, p.to_name, p.owner, p.heartbeat_age
        )));
    }
    let source = if p.forward { &p.from_db } else { &p.to_db };
    if source != ids.0 && found_b.pending > 0 {
        return Err(SyncError::Refused(format!(
            "the recorded live sync carries changes from {} to {}, and {} captured change(s) there are not applied to {} yet; starting {} -> {} would overwrite them. Switch back to {} (ctl cutover) or let that sync finish first",
            spec.to_name,
            spec.from_name,
            found_b.pending,
            spec.from_name,
            spec.from_name,
            spec.to_name,
            spec.to_name
        )));
    }
    Ok((
        p.epoch,
        p.copied && found.0.changelog && found.1.changelog && !spec.force,
    ))
}

impl LiveSync {
    /// Checks and connects both sides, records the sync in both databases, then starts
    /// capture, backfill and streaming in the background (or, resuming, carries on from
    /// the recorded phase). Errors here (no primary key, unreachable side, SQLite target,
    /// captured changes that would be overwritten) are returned before anything changes.
    pub async fn start(
        spec: LiveSpec,
        metrics: Metrics,
        owner: String,
        mode: StartMode,
        lifecycle: &crate::lifecycle::Lifecycle,
    ) -> Result<Arc<LiveSync>, SyncError> {
        if let Ok(BackendUrl::Sqlite(path)) = BackendUrl::parse(&spec.to_url) {
            // Only a sync copied before (whose record is there) may stream into SQLite.
            let side = Side::Sqlite(path);
            if record::find(&side).await?.record.is_none() {
                return Err(sqlite_target(&spec.to_name));
            }
        }
        let opened = plan::open_source(&spec.from_url).await?;
        let mut tables = opened.tables;
        plan::apply_choices(&mut tables, &spec.choices)?;
        capture::check_capturable(&tables)?;
        super::schema::fk_order(&mut tables);
        let a = open_side(&spec.from_url, "from").await?;
        let b = open_side(&spec.to_url, "to").await?;
        adopt_target(&b, &mut tables, matches!(a, Side::Sqlite(_))).await?;
        let ids = (record::identity(&a).await?, record::identity(&b).await?);
        let (fa, fb) = (record::find(&a).await?, record::find(&b).await?);
        let mine = |r: &Record| {
            (r.from_db == ids.0 && r.to_db == ids.1) || (r.from_db == ids.1 && r.to_db == ids.0)
        };
        let prior = newer(
            fa.record.clone().filter(mine),
            fb.record.clone().filter(mine),
        );
        let (forward, phase, epoch) = match &mode {
            StartMode::Fresh => {
                let (epoch, stream) =
                    check_fresh(&spec, &owner, (&ids.0, &ids.1), prior.as_ref(), (&fa, &fb))?;
                let phase = if stream {
                    StoredPhase::Streaming
                } else {
                    StoredPhase::Backfilling
                };
                (true, phase, epoch)
            }
            StartMode::Resume(r) if r.copied || r.phase == StoredPhase::Streaming => {
                (r.forward, StoredPhase::Streaming, r.epoch)
            }
            StartMode::Resume(r) => (r.forward, StoredPhase::Backfilling, r.epoch),
        };
        let copy_target = if phase == StoredPhase::Backfilling {
            Some(&spec.to_url)
        } else {
            None
        };
        if let Some(url) = copy_target
            && matches!(BackendUrl::parse(url), Ok(BackendUrl::Sqlite(_)))
        {
            return Err(sqlite_target(&spec.to_name));
        }
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
            forward: AtomicBool::new(forward),
            quiet: AtomicBool::new(false),
            stop,
            metrics,
            owner,
            dbs: ids,
            epoch: AtomicU64::new(epoch),
            start_phase: phase,
            copied: AtomicBool::new(phase == StoredPhase::Streaming),
            flip_recorded: AtomicBool::new(false),
            reset_cursor: AtomicBool::new(false),
            deferred: Mutex::default(),
            tally: Arc::default(),
            lifecycle: lifecycle.clone(),
        });
        live.persist(phase, forward, epoch, None).await?;
        live.update(|s| {
            s.resumed = matches!(mode, StartMode::Resume(_));
            s.owner = live.owner.clone();
        });
        let (source, target) = live.direction();
        let (source, target) = (source.to_string(), target.to_string());
        live.update(|s| {
            s.source = source;
            s.target = target;
        });
        tracing::info!(from = %live.spec.from_name, to = %live.spec.to_name, tables = live.tables.len(), phase = ?phase, resumed = matches!(mode, StartMode::Resume(_)), "live sync starting");
        lifecycle.spawn(live.clone().run());
        Ok(live)
    }

    /// Writes the record on both sides (the target of the apply first: it is the fence).
    /// With `expect`, only while that owner holds it; false otherwise.
    async fn persist(
        &self,
        phase: StoredPhase,
        forward: bool,
        epoch: u64,
        expect: Option<&str>,
    ) -> Result<bool, SyncError> {
        let rec = Record {
            from_name: self.spec.from_name.clone(),
            to_name: self.spec.to_name.clone(),
            from_db: self.dbs.0.clone(),
            to_db: self.dbs.1.clone(),
            forward,
            phase,
            copied: self.copied.load(Ordering::SeqCst) || phase == StoredPhase::Streaming,
            epoch,
            owner: self.owner.clone(),
            heartbeat_age: 0.0,
            choices: self.spec.choices.clone(),
        };
        let s = self.sides.lock().await;
        let (first, second) = if forward { (&s.b, &s.a) } else { (&s.a, &s.b) };
        let ok = record::store(first, &rec, expect).await?;
        Ok(ok && record::store(second, &rec, expect).await?)
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

    /// Stops after applying what is pending and records the sync as stopped; true once
    /// the loop has ended within `limit`.
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

    /// Whether this sync is between the backends `x` and `y` (either way).
    pub fn between(&self, x: &str, y: &str) -> bool {
        let (a, b) = (&self.spec.from_name, &self.spec.to_name);
        (x == a && y == b) || (x == b && y == a)
    }

    /// Still running (not stopped, not failed).
    pub fn running(&self) -> bool {
        !matches!(self.status().phase, Phase::Stopped | Phase::Failed)
    }
}

/// What `finish` did and what it left.
pub struct Finished {
    pub tables: usize,
    /// (`--from` or `--to`, what switchyard still keeps there and how to remove it).
    pub left: Vec<(&'static str, String)>,
}

/// Points the tables that already exist on a PostgreSQL target (made by the app's
/// migrations, or by the copy of an earlier start) at the target's column names and
/// types, as the copy does; refuses, naming each, what cannot be copied into them.
async fn adopt_target(
    target: &Side,
    tables: &mut [Table],
    any_case: bool,
) -> Result<(), SyncError> {
    let Side::Postgres(c) = target else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for t in tables.iter_mut() {
        if let Some(cols) = crate::sync::copy::adopt::target_table(c, &t.name).await? {
            problems.extend(crate::sync::copy::adopt::adopt(t, &cols, any_case));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(SyncError::Refused(format!(
        "the target's existing tables cannot take the source's rows as they are (nothing was changed); `switchyard sync --dry-run` shows the details:\n  {}",
        problems.join("\n  ")
    )))
}

/// Removes capture (triggers, changelogs and the record) from both sides.
pub async fn finish(from_url: &str, to_url: &str) -> Result<Finished, SyncError> {
    let tables = plan::open_source(from_url).await?.tables;
    let mut left = Vec::new();
    for (url, what) in [(from_url, "--from"), (to_url, "--to")] {
        let side = open_side(url, what).await?;
        side::remove(&side, &tables).await?;
        record::remove(&side).await?;
        if let Some(l) = side::leftovers(&side).await? {
            left.push((what, l));
        }
    }
    tracing::info!(
        tables = tables.len(),
        "live sync capture removed from both sides"
    );
    Ok(Finished {
        tables: tables.len(),
        left,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LiveSpec {
        LiveSpec {
            from_name: "local".into(),
            from_url: String::new(),
            to_name: "remote".into(),
            to_url: String::new(),
            force: false,
            max_lag_rows: 0,
            batch: 0,
            parallel: 0,
            choices: Default::default(),
        }
    }

    fn found(pending: u64) -> Found {
        Found {
            changelog: true,
            pending,
            ..Found::default()
        }
    }

    fn prior(forward: bool, owner: &str, age: f64) -> Record {
        Record {
            from_name: "local".into(),
            to_name: "remote".into(),
            from_db: "A".into(),
            to_db: "B".into(),
            forward,
            phase: StoredPhase::Streaming,
            copied: true,
            epoch: 4,
            owner: owner.into(),
            heartbeat_age: age,
            choices: Default::default(),
        }
    }

    #[test]
    fn a_fresh_start_never_overwrites_changes_waiting_on_the_other_side() {
        let ids = ("A", "B");
        let s = spec();
        // No record, but the target holds captured changes of its own.
        let e = check_fresh(&s, "me/h/1", ids, None, (&found(0), &found(3))).unwrap_err();
        assert!(e.to_string().contains("3 captured change(s)"), "{e}");
        assert_eq!(
            check_fresh(&s, "me/h/1", ids, None, (&found(0), &found(0))).unwrap(),
            (0, false)
        );
        // The record carries changes from remote to local, and some wait there.
        let back = prior(false, "me/h/1", 100.0);
        let e = check_fresh(&s, "me/h/2", ids, Some(&back), (&found(0), &found(2))).unwrap_err();
        assert!(e.to_string().contains("would overwrite them"), "{e}");
        // Nothing waits: the same sync goes on without a copy, at its epoch.
        assert_eq!(
            check_fresh(&s, "me/h/2", ids, Some(&back), (&found(0), &found(0))).unwrap(),
            (4, true)
        );
        // Another process applies it right now.
        let busy = prior(true, "other/h/9", 2.0);
        let e = check_fresh(&s, "me/h/2", ids, Some(&busy), (&found(0), &found(0))).unwrap_err();
        assert!(e.to_string().contains("another process"), "{e}");
        // Its heartbeat is old: taken over.
        let gone = prior(true, "other/h/9", 300.0);
        assert!(check_fresh(&s, "me/h/2", ids, Some(&gone), (&found(0), &found(0))).is_ok());
    }
}
