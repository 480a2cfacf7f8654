//! A pause by hand (`POST /pause`, `POST /resume`): new transactions wait at the gate
//! until resumed or until the optional timeout. It shares the switch lock, so a pause and
//! a switch never overlap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Router;
use super::switch::{SwitchError, SwitchState, Switcher, unix_ms};
use crate::metrics::Metrics;

impl Switcher {
    /// Holds new transactions until [`Switcher::resume`] (or `timeout`, if given).
    /// Returns the pause generation.
    pub fn pause(
        self: &Arc<Self>,
        router: &Arc<Router>,
        metrics: &Metrics,
        timeout: Option<Duration>,
    ) -> Result<u64, SwitchError> {
        let _guard = self.lock.try_lock().map_err(|_| SwitchError::Busy)?;
        let mut manual = self.manual_pause.lock().unwrap_or_else(|e| e.into_inner());
        if manual.is_some() {
            return Err(SwitchError::Busy);
        }
        let generation = unix_ms();
        *manual = Some((generation, Instant::now()));
        router.gate.pause();
        self.set_state(SwitchState::Paused, metrics);
        tracing::info!(
            timeout_ms = timeout.map(|t| t.as_millis() as u64),
            "paused by hand"
        );
        if let Some(t) = timeout {
            let (me, router, metrics) = (self.clone(), router.clone(), metrics.clone());
            let stop = self.lifecycle.token();
            self.lifecycle.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(t) => {}
                    // Shutting down: the drain resumes nobody; it ends the sessions.
                    _ = stop.cancelled() => return,
                }
                if me.manual_generation() == Some(generation) {
                    tracing::info!("manual pause timed out; resuming");
                    let _ = me.resume(&router, &metrics);
                }
            });
        }
        Ok(generation)
    }

    fn manual_generation(&self) -> Option<u64> {
        self.manual_pause
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|(g, _)| g)
    }

    /// Ends a manual pause. Returns how long it lasted.
    pub fn resume(&self, router: &Router, metrics: &Metrics) -> Result<Duration, SwitchError> {
        let mut manual = self.manual_pause.lock().unwrap_or_else(|e| e.into_inner());
        let (_, since) = manual.take().ok_or(SwitchError::NotPaused)?;
        router.gate.resume();
        self.set_state(SwitchState::Serving, metrics);
        let held = since.elapsed();
        metrics.pause_seconds.observe(held.as_secs_f64());
        tracing::info!(held_ms = held.as_millis() as u64, "resumed");
        Ok(held)
    }

    pub fn manually_paused(&self) -> bool {
        self.manual_generation().is_some()
    }
}
