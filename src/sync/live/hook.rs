//! Live sync inside a switch. Before the pause: refuse while still backfilling, while the
//! switch goes against the sync's direction, or while the lag is above the bound. Inside
//! the pause (clients held, in-flight transactions drained): apply every remaining change,
//! carry sequences over, and reverse the direction so the old side keeps receiving the new
//! side's writes. Switches between other backends pass through untouched.

use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::future::BoxFuture;

use super::status::CatchUp;
use super::{LiveSync, Phase, apply, sequences, side};
use crate::backend::Backend;
use crate::router::switch::SwitchHook;
use crate::sync::SyncError;

/// Rounds a catch-up may take before it gives up (each applies up to `batch` changes).
const MAX_CATCH_UP_ROUNDS: usize = 1000;

/// How long the lag check waits for the apply loop to finish its current round.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl LiveSync {
    fn involves(&self, from: &Backend, to: &Backend) -> bool {
        let (a, b) = (&self.spec.from_name, &self.spec.to_name);
        (*from.name == **a && *to.name == **b) || (*from.name == **b && *to.name == **a)
    }

    async fn check(&self, from: &Backend) -> Result<(), String> {
        let st = self.status();
        if st.phase != Phase::Streaming {
            return Err(format!(
                "live sync {} -> {} is {:?}, not streaming yet; switch once /status shows live_sync.phase = streaming",
                st.from, st.to, st.phase
            ));
        }
        let (source, target) = self.direction();
        if *from.name != *source {
            return Err(format!(
                "live sync carries changes from {source} to {target}, but {} is not the source",
                from.name
            ));
        }
        let mut s = tokio::time::timeout(LOCK_WAIT, self.sides.lock())
            .await
            .map_err(|_| {
                "live sync is busy applying a large batch; try again in a moment".to_string()
            })?;
        let forward = self.forward.load(Ordering::SeqCst);
        let src = if forward { &s.a } else { &s.b };
        let (pending, age) = side::backlog(src).await.map_err(|e| e.to_string())?;
        if pending <= self.spec.max_lag_rows {
            // Hold the apply loop until the switch is over, and drain the backlog now,
            // before the pause, so that only the last moments' changes are left for it.
            self.quiet.store(true, Ordering::SeqCst);
            self.pre_catch_up(&mut s, forward)
                .await
                .map_err(|e| e.to_string())?;
        }
        drop(s);
        self.update(|st| {
            st.pending_changes = pending;
            st.oldest_change_seconds = age;
        });
        if pending > self.spec.max_lag_rows {
            return Err(format!(
                "live sync lag is {pending} changes (oldest {age:.1} s), above switch.max_lag_rows = {}; wait for it to catch up so the pause stays short",
                self.spec.max_lag_rows
            ));
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
            let (n, last) =
                apply::apply_round_from(src, dst, &self.tables, self.spec.batch, s.cursor).await?;
            s.cursor = s.cursor.max(last);
            self.metrics.sync_applied.inc_by(n as u64);
            self.update(|st| st.applied_total += n as u64);
            if n < 500 {
                break;
            }
        }
        Ok(())
    }

    /// Applies everything pending, carries sequences, and reverses the direction.
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
            let (n, last) =
                apply::apply_round_from(src, dst, &self.tables, self.spec.batch.max(10_000), after)
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
        self.forward.store(!forward, Ordering::SeqCst);
        // The other side's changelog has ids of its own.
        s.cursor = 0;
        self.metrics.sync_applied.inc_by(entries);
        let (source, target) = self.direction();
        Ok(CatchUp {
            from: target.to_string(),
            to: source.to_string(),
            entries,
            apply_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            sequences: seqs,
        })
    }
}

impl SwitchHook for LiveSync {
    fn preflight<'a>(
        &'a self,
        from: &'a Backend,
        to: &'a Backend,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if !self.involves(from, to) {
                return Ok(());
            }
            self.check(from).await
        })
    }

    fn before_swap<'a>(
        &'a self,
        from: &'a Backend,
        to: &'a Backend,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if !self.involves(from, to) {
                return Ok(());
            }
            let done = self.catch_up().await.map_err(|e| e.to_string())?;
            self.quiet.store(false, Ordering::SeqCst);
            tracing::info!(from = %done.from, to = %done.to, entries = done.entries, apply_ms = done.apply_ms, sequences = done.sequences, "live sync caught up inside the pause; direction reversed");
            let (source, target) = self.direction();
            let (source, target) = (source.to_string(), target.to_string());
            self.update(|s| {
                s.applied_total += done.entries;
                s.pending_changes = 0;
                s.source = source;
                s.target = target;
                s.inactive_side_writes = 0;
                s.last_catch_up = Some(done);
            });
            Ok(())
        })
    }

    fn finished(&self) {
        self.quiet.store(false, Ordering::SeqCst);
    }
}
