//! Live sync inside a switch. Before the pause: refuse while still backfilling, while the
//! switch goes against the sync's direction, or while the lag is above the bound. Inside
//! the pause (clients held, in-flight transactions drained): apply every remaining change,
//! carry sequences over, and record the reversed direction in both databases; at the
//! commit, reverse it in memory too, so the old side keeps receiving the new side's writes.
//! A switch abandoned after recording puts the record back. [`super::slot`] decides which
//! switches reach this.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::record::StoredPhase;
use super::status::CatchUp;
use super::{LiveSync, Phase, apply, sequences, side};
use crate::backend::Backend;
use crate::router::hook::HookError;
use crate::sync::SyncError;

/// Rounds a catch-up may take before it gives up (each applies up to `batch` changes).
const MAX_CATCH_UP_ROUNDS: usize = 1000;

/// How long the lag check waits for the apply loop to finish its current round.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl LiveSync {
    /// Before the pause: the sync must be streaming, in this switch's direction, with a
    /// small enough lag (which it then mostly applies, before anyone is paused).
    pub(super) async fn check(&self, from: &Backend) -> Result<(), HookError> {
        let st = self.status();
        if st.phase != Phase::Streaming {
            return Err(HookError::Refused(format!(
                "live sync {} -> {} is {:?}, not streaming yet; switch once /status shows live_sync.phase = streaming",
                st.from, st.to, st.phase
            )));
        }
        let (source, target) = self.direction();
        if *from.name != *source {
            return Err(HookError::Refused(format!(
                "live sync carries changes from {source} to {target}, but {} is not the source",
                from.name
            )));
        }
        let mut s = tokio::time::timeout(LOCK_WAIT, self.sides.lock())
            .await
            .map_err(|_| {
                HookError::Refused(
                    "live sync is busy applying a large batch; try again in a moment".into(),
                )
            })?;
        let forward = self.forward.load(Ordering::SeqCst);
        let src = if forward { &s.a } else { &s.b };
        let failed = |e: SyncError| HookError::Failed(e.to_string());
        let (pending, age) = side::backlog(src).await.map_err(failed)?;
        if pending <= self.spec.max_lag_rows {
            // Hold the apply loop until the switch is over, and drain the backlog now,
            // before the pause, so that only the last moments' changes are left for it.
            self.quiet.store(true, Ordering::SeqCst);
            self.pre_catch_up(&mut s, forward).await.map_err(failed)?;
        }
        drop(s);
        self.update(|st| {
            st.pending_changes = pending;
            st.oldest_change_seconds = age;
        });
        if pending > self.spec.max_lag_rows {
            return Err(HookError::Refused(format!(
                "live sync lag is {pending} changes (oldest {age:.1} s), above switch.max_lag_rows = {}; wait for it to catch up so the pause stays short",
                self.spec.max_lag_rows
            )));
        }
        Ok(())
    }

    /// Applies rounds above the cursor until one finds little left (clients still write).
    async fn pre_catch_up(&self, s: &mut super::Sides, forward: bool) -> Result<(), SyncError> {
        let (src, dst) = if forward {
            (&s.a, &mut s.b)
        } else {
            (&s.b, &mut s.a)
        };
        for _ in 0..20 {
            let (n, last) = apply::apply_round_from(
                src,
                dst,
                &self.tables,
                self.spec.batch,
                s.cursor,
                Some(&self.owner),
            )
            .await?;
            s.cursor = s.cursor.max(last);
            self.metrics.sync_applied.inc_by(n as u64);
            self.update(|st| st.applied_total += n as u64);
            if n < 500 {
                break;
            }
        }
        Ok(())
    }

    /// Applies everything pending and carries sequences; the direction is reversed by
    /// [`Self::commit_flip`] once the switch commits.
    async fn catch_up(&self) -> Result<CatchUp, SyncError> {
        let started = Instant::now();
        let mut guard = self.sides.lock().await;
        self.reconnect(&mut guard).await?;
        let s = &mut *guard;
        let forward = self.forward.load(Ordering::SeqCst);
        let (src, dst) = if forward {
            (&s.a, &mut s.b)
        } else {
            (&s.b, &mut s.a)
        };
        let mut entries = 0u64;
        // Above the cursor first; then, since nothing writes now, one pass from the start
        // of the changelog finds what committed late below it. Done when that pass is empty.
        let mut full = false;
        let mut clean = false;
        for _ in 0..MAX_CATCH_UP_ROUNDS {
            let after = if full { 0 } else { s.cursor };
            let (n, last) = apply::apply_round_from(
                src,
                dst,
                &self.tables,
                self.spec.batch.max(10_000),
                after,
                Some(&self.owner),
            )
            .await?;
            s.cursor = s.cursor.max(last);
            entries += n as u64;
            if n == 0 && full {
                clean = true;
                break;
            }
            full = n == 0;
        }
        if !clean {
            return Err(SyncError::Refused(
                "changes still pending after the catch-up; something keeps writing to the old side"
                    .into(),
            ));
        }
        let seqs = sequences::carry(src, dst, &self.tables).await?;
        drop(guard);
        let (source, target) = self.direction();
        self.metrics.sync_applied.inc_by(entries);
        Ok(CatchUp {
            from: source.to_string(),
            to: target.to_string(),
            entries,
            apply_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            sequences: seqs,
        })
    }

    /// Inside the pause: catch up, then record the reversed direction in both databases.
    pub(super) async fn prepare_switch(&self, epoch: u64) -> Result<(), HookError> {
        let done = self
            .catch_up()
            .await
            .map_err(|e| HookError::Failed(e.to_string()))?;
        let reversed = !self.forward.load(Ordering::SeqCst);
        self.flip_recorded.store(true, Ordering::SeqCst);
        let held = self
            .persist(StoredPhase::Streaming, reversed, epoch, Some(&self.owner))
            .await
            .map_err(|e| HookError::Failed(format!("recording the reversed direction: {e}")))?;
        if !held {
            return Err(HookError::Failed(
                SyncError::Fenced(self.owner.clone()).to_string(),
            ));
        }
        tracing::info!(from = %done.from, to = %done.to, entries = done.entries, apply_ms = done.apply_ms, sequences = done.sequences, "live sync caught up inside the pause");
        self.update(|s| {
            s.applied_total += done.entries;
            s.pending_changes = 0;
            s.inactive_side_writes = 0;
            s.last_catch_up = Some(done);
        });
        Ok(())
    }

    /// A fleet switch whose coordinator died after fencing the old side, finished by the
    /// member that took the sync over: the data step of [`Self::prepare_switch`], with the
    /// apply loop held off until [`Self::end_finished_switch`].
    pub async fn finish_switch(&self, epoch: u64) -> Result<(), HookError> {
        self.quiet.store(true, Ordering::SeqCst);
        self.prepare_switch(epoch).await
    }

    /// The finished switch was committed in the fleet's store (or not).
    pub fn end_finished_switch(self: &std::sync::Arc<Self>, epoch: u64, committed: bool) {
        if committed {
            self.commit_flip(epoch);
        }
        self.switch_finished(committed);
    }

    /// The switch committed: changes flow the other way from now on.
    pub(super) fn commit_flip(&self, epoch: u64) {
        let forward = !self.forward.load(Ordering::SeqCst);
        self.forward.store(forward, Ordering::SeqCst);
        self.epoch.store(epoch, Ordering::SeqCst);
        self.flip_recorded.store(false, Ordering::SeqCst);
        // The other side's changelog has ids of its own.
        if let Ok(mut s) = self.sides.try_lock() {
            s.cursor = 0;
        } else {
            self.reset_cursor.store(true, Ordering::SeqCst);
        }
        let (source, target) = self.direction();
        let (source, target) = (source.to_string(), target.to_string());
        tracing::info!(%source, %target, epoch, "live sync direction reversed");
        self.update(|s| {
            s.source = source;
            s.target = target;
        });
    }

    /// The switch is over: let the apply loop go on; a direction recorded for a switch
    /// that did not commit is put back.
    pub(super) fn switch_finished(self: &std::sync::Arc<Self>, committed: bool) {
        self.quiet.store(false, Ordering::SeqCst);
        if committed || !self.flip_recorded.swap(false, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        self.lifecycle.spawn(async move {
            let (fwd, epoch) = (me.forward.load(Ordering::SeqCst), me.epoch());
            match me
                .persist(StoredPhase::Streaming, fwd, epoch, Some(&me.owner))
                .await
            {
                Ok(_) => {
                    tracing::info!("switch abandoned: live sync's recorded direction put back")
                }
                Err(e) => me.note_error(&e),
            }
        });
    }
}
