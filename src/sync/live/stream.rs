//! A live sync's background life: capture and the copy (or, resumed, straight on),
//! then apply rounds until stopped, with lag figures, a heartbeat that is also the
//! owner's fence, and the foreign keys the copy left NOT VALID validated once the changes
//! captured during the copy are applied.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::record::{self, StoredPhase};
use super::side::{self, Side};
use super::{LiveSync, Phase, Sides, apply};
use crate::sync::copy::{checkpoint, foreign_keys, plan};
use crate::sync::{SyncError, SyncOptions, pgconn};

/// Every this many rounds, one reads the changelog from its start: an id is taken when a
/// change is captured but becomes visible at commit, so a slow transaction's entries can
/// appear below the cursor.
const FULL_SCAN_EVERY: u64 = 16;

/// How often an idle sync proves it still holds the record.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long one round may take before its connections are dropped and made again (a
/// frozen target must not hold the sync forever).
const ROUND_LIMIT: Duration = Duration::from_secs(60);

/// How long after a failed validation of the deferred foreign keys it is tried again.
const FK_RETRY: Duration = Duration::from_secs(10);

impl LiveSync {
    pub(super) async fn run(self: std::sync::Arc<Self>) {
        let ready = async {
            match self.start_phase {
                StoredPhase::Backfilling => self.prepare_watched().await,
                _ => {
                    self.set_phase(Phase::Capturing);
                    self.ensure_capture().await
                }
            }
        };
        // At shutdown the copy stops where it is; its checkpoints and the record (still
        // backfilling) let the next start carry on.
        let ready = tokio::select! {
            r = ready => r,
            _ = self.lifecycle.stopped() => return,
        };
        let ready = match ready {
            Ok(()) => {
                let (fwd, epoch) = (self.forward.load(Ordering::SeqCst), self.epoch());
                self.persist(StoredPhase::Streaming, fwd, epoch, Some(&self.owner))
                    .await
                    .and_then(|held| {
                        held.then_some(())
                            .ok_or_else(|| record::fenced(&self.owner))
                    })
            }
            Err(e) => Err(e),
        };
        if let Err(e) = ready {
            tracing::error!(error = %e, "live sync failed before streaming");
            self.update(|s| s.last_error = Some(e.to_string()));
            self.set_phase(Phase::Failed);
            return;
        }
        self.set_phase(Phase::Streaming);
        match self.stream().await {
            Ended::Stopped => {}
            Ended::Fenced => return self.set_phase(Phase::Failed),
            // The record stays streaming: the next start resumes it.
            Ended::ShuttingDown => return,
        }
        let (fwd, epoch) = (self.forward.load(Ordering::SeqCst), self.epoch());
        if let Err(e) = self
            .persist(StoredPhase::Stopped, fwd, epoch, Some(&self.owner))
            .await
        {
            self.note_error(&e);
        }
        self.set_phase(Phase::Stopped);
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Capture on both sides (idempotent), for a sync resumed while streaming.
    async fn ensure_capture(&self) -> Result<(), SyncError> {
        let s = self.sides.lock().await;
        side::install(&s.a, &self.tables).await?;
        side::install(&s.b, &self.tables).await
    }

    /// [`Self::prepare`], with the copy's progress (every half second) and the source's
    /// backlog (every two seconds) in the status and the metrics.
    async fn prepare_watched(&self) -> Result<(), SyncError> {
        let prepare = self.prepare();
        tokio::pin!(prepare);
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                r = &mut prepare => {
                    self.note_copy(started.elapsed(), r.is_ok());
                    return r;
                }
                _ = tick.tick() => {
                    self.note_copy(started.elapsed(), false);
                    ticks += 1;
                    if !ticks.is_multiple_of(4) {
                        continue;
                    }
                    // Not `lock().await`: `prepare` is not polled while this branch runs,
                    // and it may hold the lock.
                    let Ok(s) = self.sides.try_lock() else { continue };
                    if let Ok((pending, age)) = side::backlog(&s.a).await {
                        self.metrics.sync_pending.set(pending as i64);
                        self.update(|st| {
                            st.pending_changes = pending;
                            st.oldest_change_seconds = age;
                        });
                    }
                }
            }
        }
    }

    /// The copy's progress into the status and the metrics (`done`: the copy finished).
    fn note_copy(&self, elapsed: Duration, done: bool) {
        let mut p = self.tally.snapshot(elapsed);
        if done {
            p.eta_seconds = Some(0.0);
        }
        let m = &self.metrics;
        m.sync_copy_rows
            .with_label_values(&["copied"])
            .set(p.rows_done as i64);
        m.sync_copy_rows
            .with_label_values(&["planned"])
            .set(p.rows_total as i64);
        m.sync_copy_tables
            .with_label_values(&["copied"])
            .set(p.tables_done as i64);
        m.sync_copy_tables
            .with_label_values(&["planned"])
            .set(p.tables_total as i64);
        m.sync_copy_eta_seconds.set(p.eta_seconds.unwrap_or(0.0));
        self.update(|s| {
            s.backfilled_rows = p.rows_done;
            s.copy = Some(p);
        });
    }

    /// Capture on the source, backfill in one source snapshot, capture on the target.
    async fn prepare(&self) -> Result<(), SyncError> {
        let resumed = {
            let s = self.sides.lock().await;
            let resumed = side::capture_installed(&s.a).await?;
            self.set_phase(Phase::Capturing);
            side::install(&s.a, &self.tables).await?;
            resumed
        };
        self.set_phase(Phase::Backfilling);
        let force = self.spec.force;
        if !resumed || force {
            // Fresh capture: rows changed since any earlier sync were not captured, so an
            // earlier checkpoint cannot be trusted; copy again (into empty tables).
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
            force: force || !resumed,
            resume: resumed && !force,
            skip_bad_rows: None,
            choices: self.spec.choices.clone(),
            defer_foreign_keys: true,
            tally: Some(self.tally.clone()),
        })
        .await?;
        let rows: u64 = summary.tables.iter().map(|t| t.rows.max(0) as u64).sum();
        self.update(|s| s.backfilled_rows = rows);
        let s = self.sides.lock().await;
        let after_id = side::max_id(&s.a).await?;
        self.defer(summary.unvalidated, after_id);
        side::install(&s.b, &self.tables).await?;
        self.copied.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn defer(&self, keys: Vec<foreign_keys::Pending>, after_id: i64) {
        let names: Vec<String> = keys
            .iter()
            .map(|k| format!("{}.{}", k.table, k.name))
            .collect();
        self.metrics.sync_unvalidated_fks.set(names.len() as i64);
        self.update(|s| s.unvalidated_foreign_keys = names);
        *self.deferred.lock().unwrap_or_else(|e| e.into_inner()) = super::Deferred {
            keys,
            after_id,
            next_try: None,
        };
    }

    /// Applies rounds until stopped (or the process shuts down, or another process took
    /// the sync over); idle rounds refresh the lag figures.
    async fn stream(&self) -> Ended {
        let mut stop = self.stop.subscribe();
        let mut refreshed = Instant::now();
        let mut beat = Instant::now();
        while !*stop.borrow() {
            if self.lifecycle.is_shutting_down() {
                return Ended::ShuttingDown;
            }
            if self.quiet.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            match self.round(false).await {
                Ok(n) if n > 0 => {
                    beat = Instant::now();
                    self.metrics.sync_applied.inc_by(n as u64);
                    self.update(|s| s.applied_total += n as u64);
                    // While catching up, refresh the lag figures twice a second; when
                    // the last figure was small (cheap to count), after every round, so
                    // the status never shows a stale zero while rounds still apply.
                    let small = self.status().pending_changes <= self.spec.batch as u64;
                    if small || refreshed.elapsed() > Duration::from_millis(500) {
                        refreshed = Instant::now();
                        if let Err(e) = self.refresh_lag().await {
                            self.note_error(&e);
                        }
                    }
                    self.validate_deferred().await;
                    continue;
                }
                Ok(_) => {
                    if let Err(e) = self.refresh_lag().await {
                        self.note_error(&e);
                    }
                    self.validate_deferred().await;
                    if beat.elapsed() >= HEARTBEAT {
                        beat = Instant::now();
                        match self.heartbeat().await {
                            Ok(true) => {}
                            Ok(false) => return self.taken_over(),
                            Err(e) => self.note_error(&e),
                        }
                    }
                }
                Err(e) if is_fenced(&e) => return self.taken_over(),
                Err(e) => {
                    self.note_error(&e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.changed() => {}
                _ = self.lifecycle.stopped() => {}
            }
        }
        self.final_rounds().await;
        Ended::Stopped
    }

    fn taken_over(&self) -> Ended {
        let e = record::fenced(&self.owner);
        tracing::error!(error = %e, "live sync stops here");
        self.update(|s| s.last_error = Some(e.to_string()));
        Ended::Fenced
    }

    /// Touches the record on the apply target while this process still owns it.
    async fn heartbeat(&self) -> Result<bool, SyncError> {
        let s = self.sides.lock().await;
        let dst = if self.forward.load(Ordering::SeqCst) {
            &s.b
        } else {
            &s.a
        };
        match dst {
            Side::Postgres(c) => {
                let done = c
                    .simple_query(&record::pg_fence_sql(&self.owner))
                    .await
                    .map_err(side::pgerr)?;
                Ok(record::affected(&done) > 0)
            }
            Side::Sqlite(path) => {
                let (path, owner) = (path.clone(), self.owner.clone());
                side::blocking(move || record::sqlite_fence(&side::open_sqlite(&path)?, &owner))
                    .await
            }
        }
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

    pub(super) fn note_error(&self, e: &SyncError) {
        tracing::warn!(error = %e, "live sync round failed; retrying");
        self.metrics.sync_errors.inc();
        self.update(|s| s.last_error = Some(e.to_string()));
    }

    /// One apply round in the current direction, reconnecting lost PostgreSQL sides.
    /// `full` reads from the start of the changelog instead of the cursor. A round that
    /// takes longer than [`ROUND_LIMIT`] is abandoned and both sides reconnect.
    async fn round(&self, full: bool) -> Result<usize, SyncError> {
        let mut guard = self.sides.lock().await;
        self.reconnect(&mut guard).await?;
        let s = &mut *guard;
        if self.reset_cursor.swap(false, Ordering::SeqCst) {
            s.cursor = 0;
        }
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
        let round = apply::apply_round_from(
            src,
            dst,
            &self.tables,
            self.spec.batch,
            after,
            Some(&self.owner),
        );
        match tokio::time::timeout(ROUND_LIMIT, round).await {
            Ok(r) => {
                let (n, last) = r?;
                s.cursor = s.cursor.max(last);
                Ok(n)
            }
            Err(_) => {
                s.a = super::open_side(&self.spec.from_url, "from").await?;
                s.b = super::open_side(&self.spec.to_url, "to").await?;
                Err(SyncError::Target(format!(
                    "an apply round took longer than {} s; reconnected to both sides",
                    ROUND_LIMIT.as_secs()
                )))
            }
        }
    }

    pub(super) async fn reconnect(&self, s: &mut Sides) -> Result<(), SyncError> {
        if matches!(&s.a, Side::Postgres(c) if c.is_closed()) {
            s.a = super::open_side(&self.spec.from_url, "from").await?;
        }
        if matches!(&s.b, Side::Postgres(c) if c.is_closed()) {
            s.b = super::open_side(&self.spec.to_url, "to").await?;
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

    /// Validates the foreign keys the copy left NOT VALID, once every change captured
    /// before the copy ended has been applied (the copy alone may hold a child whose
    /// parent came later); retried every [`FK_RETRY`] while one does not hold yet.
    async fn validate_deferred(&self) {
        let (keys, after_id, due) = {
            let d = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
            let due = d.next_try.is_none_or(|t| Instant::now() >= t);
            (d.keys.clone(), d.after_id, due)
        };
        if keys.is_empty() || !due {
            return;
        }
        let cursor = self.sides.lock().await.cursor;
        if self.forward.load(Ordering::SeqCst) && cursor < after_id {
            return;
        }
        let result = match pgconn::pg_target(&self.spec.to_url, "to") {
            Ok(t) => foreign_keys::validate_each(&t, keys).await,
            Err(e) => Err(e),
        };
        let left = match result {
            Ok(left) => left,
            Err(e) => {
                self.note_error(&e);
                return;
            }
        };
        if let Some((_, why)) = left.first() {
            tracing::info!(left = left.len(), first = %why, "deferred foreign keys do not hold yet; trying again once more changes are applied");
        } else {
            tracing::info!(
                "foreign keys validated: the copy and the changes captured meanwhile agree"
            );
        }
        let still: Vec<foreign_keys::Pending> = left.into_iter().map(|(k, _)| k).collect();
        let mut d = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        d.next_try = Some(Instant::now() + FK_RETRY);
        let names: Vec<String> = still
            .iter()
            .map(|k| format!("{}.{}", k.table, k.name))
            .collect();
        d.keys = still;
        drop(d);
        self.metrics.sync_unvalidated_fks.set(names.len() as i64);
        self.update(|s| s.unvalidated_foreign_keys = names);
    }
}

/// Why the apply loop ended.
enum Ended {
    /// Asked to stop (`sync-stop`): the rest was applied, the record says stopped.
    Stopped,
    /// Another process took the sync over.
    Fenced,
    /// The process is shutting down; the record stays as it was.
    ShuttingDown,
}

fn is_fenced(e: &SyncError) -> bool {
    matches!(e, SyncError::Fenced(_))
}
