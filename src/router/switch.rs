//! The switch: an ordered, observable state machine that moves new transactions from one
//! backend to another.
//!
//! `preflight` (target reachable and authenticates, pool pre-warmed) → `pausing` (new
//! transactions wait at the gate, idle clients stay connected) → `draining` (in-flight
//! transactions finish, bounded) → `syncing` (the [`SwitchHook`] applies the last data
//! changes) → `swapped` (one atomic store) → `serving`. A failure before the swap resumes
//! on the old backend; no client sees an error either way. One switch at a time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::Serialize;
use thiserror::Error;

use super::Router;
use crate::backend::Backend;
use crate::config::SwitchConfig;
use crate::metrics::Metrics;

/// The data step between drain and swap (live sync plugs in here). It runs while clients
/// are paused, so it must be quick.
pub trait SwitchHook: Send + Sync {
    /// Runs before the pause; an error refuses the switch (nothing paused yet).
    fn preflight<'a>(
        &'a self,
        _from: &'a Backend,
        _to: &'a Backend,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn before_swap<'a>(
        &'a self,
        from: &'a Backend,
        to: &'a Backend,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Runs once the switch is over, whichever way it ended.
    fn finished(&self) {}
}

/// Where the switch machinery is right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchState {
    Serving,
    Preflight,
    Pausing,
    Draining,
    Syncing,
    Swapped,
    /// Paused by hand (`POST /pause`).
    Paused,
}

/// What one switch did; also kept as `last_switch` in `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchRecord {
    pub ok: bool,
    pub kind: &'static str,
    pub from: String,
    pub to: String,
    /// Time new transactions were held (pause → resume), in milliseconds.
    pub pause_ms: f64,
    pub drain_ms: f64,
    pub preflight_ms: f64,
    pub started_at_unix_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Error)]
pub enum SwitchError {
    #[error("a switch or a manual pause is already in progress")]
    Busy,
    #[error("no backend named {0:?}")]
    Unknown(String),
    #[error("backend {0:?} is already active")]
    AlreadyActive(String),
    #[error("nothing to roll back to: no switch has happened yet")]
    NoPrevious,
    #[error("not paused")]
    NotPaused,
    #[error("{0}")]
    Failed(String),
}

/// Lets held transactions in when dropped.
struct ResumeOnDrop<'a>(&'a super::gate::Gate);

impl Drop for ResumeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

/// Switch bookkeeping shared by the admin API.
pub struct Switcher {
    lock: tokio::sync::Mutex<()>,
    state: Mutex<SwitchState>,
    last: Mutex<Option<SwitchRecord>>,
    previous: Mutex<Option<String>>,
    count: Mutex<u64>,
    hook: Mutex<Option<Arc<dyn SwitchHook>>>,
    manual_pause: Mutex<Option<(u64, Instant)>>,
    pub config: SwitchConfig,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

impl Switcher {
    pub fn new(config: SwitchConfig) -> Self {
        Switcher {
            lock: tokio::sync::Mutex::new(()),
            state: Mutex::new(SwitchState::Serving),
            last: Mutex::new(None),
            previous: Mutex::new(None),
            count: Mutex::new(0),
            hook: Mutex::new(None),
            manual_pause: Mutex::new(None),
            config,
        }
    }

    pub fn set_hook(&self, hook: Option<Arc<dyn SwitchHook>>) {
        *self.hook.lock().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    pub fn state(&self) -> SwitchState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_state(&self, s: SwitchState, metrics: &Metrics) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = s;
        metrics.paused.set(matches!(
            s,
            SwitchState::Pausing
                | SwitchState::Draining
                | SwitchState::Syncing
                | SwitchState::Swapped
                | SwitchState::Paused
        ) as i64);
        tracing::debug!(state = ?s, "switch state");
    }

    pub fn last(&self) -> Option<SwitchRecord> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn previous(&self) -> Option<String> {
        self.previous
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn count(&self) -> u64 {
        *self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves new transactions to `to`. The record says how it went (also on failure).
    pub async fn cutover(
        &self,
        router: &Router,
        metrics: &Metrics,
        to: &str,
    ) -> Result<SwitchRecord, SwitchError> {
        self.switch(router, metrics, to, "cutover").await
    }

    /// Goes back to the backend that was active before the last switch.
    pub async fn rollback(
        &self,
        router: &Router,
        metrics: &Metrics,
    ) -> Result<SwitchRecord, SwitchError> {
        let to = self.previous().ok_or(SwitchError::NoPrevious)?;
        self.switch(router, metrics, &to, "rollback").await
    }

    async fn switch(
        &self,
        router: &Router,
        metrics: &Metrics,
        to: &str,
        kind: &'static str,
    ) -> Result<SwitchRecord, SwitchError> {
        let _guard = self.lock.try_lock().map_err(|_| SwitchError::Busy)?;
        if self
            .manual_pause
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return Err(SwitchError::Busy);
        }
        let target = router
            .get(to)
            .ok_or_else(|| SwitchError::Unknown(to.to_string()))?;
        let from = router.active();
        if from.name == target.name {
            return Err(SwitchError::AlreadyActive(to.to_string()));
        }
        let mut rec = SwitchRecord {
            ok: false,
            kind,
            from: from.name.to_string(),
            to: to.to_string(),
            pause_ms: 0.0,
            drain_ms: 0.0,
            preflight_ms: 0.0,
            started_at_unix_ms: unix_ms(),
            error: None,
        };
        tracing::info!(kind, from = %rec.from, to = %rec.to, "switch starting");
        let result = self
            .run_steps(router, metrics, &from, &target, &mut rec)
            .await;
        if let Some(hook) = self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            hook.finished();
        }
        self.set_state(SwitchState::Serving, metrics);
        if let Err(e) = result {
            rec.error = Some(e);
        } else {
            rec.ok = true;
            *self.previous.lock().unwrap_or_else(|e| e.into_inner()) = Some(rec.from.clone());
        }
        self.finish(&rec, metrics);
        Ok(rec)
    }

    async fn run_steps(
        &self,
        router: &Router,
        metrics: &Metrics,
        from: &Arc<Backend>,
        to: &Arc<Backend>,
        rec: &mut SwitchRecord,
    ) -> Result<(), String> {
        self.set_state(SwitchState::Preflight, metrics);
        let t = Instant::now();
        let pre = tokio::time::timeout(
            self.config.preflight_timeout.get(),
            preflight(to, self.config.prewarm),
        )
        .await;
        rec.preflight_ms = ms(t.elapsed());
        match pre {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("preflight of {:?} failed: {e}", to.name)),
            Err(_) => {
                return Err(format!(
                    "preflight of {:?} timed out after {}",
                    to.name, self.config.preflight_timeout
                ));
            }
        }
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook.preflight(from, to).await?;
        }
        self.set_state(SwitchState::Pausing, metrics);
        router.gate.pause();
        // Resumes even if this future is dropped mid-pause (a panic, a runtime shutdown).
        let resume = ResumeOnDrop(&router.gate);
        let paused_at = Instant::now();
        let result = self.paused_steps(router, metrics, from, to, rec).await;
        drop(resume);
        let pause = paused_at.elapsed();
        rec.pause_ms = ms(pause);
        metrics.pause_seconds.observe(pause.as_secs_f64());
        result
    }

    async fn paused_steps(
        &self,
        router: &Router,
        metrics: &Metrics,
        from: &Arc<Backend>,
        to: &Arc<Backend>,
        rec: &mut SwitchRecord,
    ) -> Result<(), String> {
        self.set_state(SwitchState::Draining, metrics);
        let t = Instant::now();
        let drained = router
            .gate
            .wait_drained(self.config.drain_timeout.get())
            .await;
        rec.drain_ms = ms(t.elapsed());
        if !drained {
            return Err(format!(
                "{} transaction(s) still running on {:?} after drain_timeout {}; staying on {:?}",
                router.gate.inflight(),
                from.name,
                self.config.drain_timeout,
                from.name
            ));
        }
        self.set_state(SwitchState::Syncing, metrics);
        let hook = self.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook.before_swap(from, to)
                .await
                .map_err(|e| format!("data sync before the swap failed: {e}"))?;
        }
        router.swap_to(&to.name);
        metrics
            .active_backend
            .with_label_values(&[&from.name])
            .set(0);
        metrics.active_backend.with_label_values(&[&to.name]).set(1);
        self.set_state(SwitchState::Swapped, metrics);
        Ok(())
    }

    fn finish(&self, rec: &SwitchRecord, metrics: &Metrics) {
        metrics
            .switches
            .with_label_values(&[if rec.ok { "ok" } else { "failed" }])
            .inc();
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        if rec.ok {
            tracing::info!(kind = rec.kind, from = %rec.from, to = %rec.to, pause_ms = rec.pause_ms, drain_ms = rec.drain_ms, preflight_ms = rec.preflight_ms, "switch done");
        } else {
            tracing::warn!(kind = rec.kind, from = %rec.from, to = %rec.to, pause_ms = rec.pause_ms, error = rec.error.as_deref().unwrap_or(""), "switch failed, still serving from the old backend");
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(rec.clone());
    }

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
            tokio::spawn(async move {
                tokio::time::sleep(t).await;
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

/// The target must accept a login and answer a query; then its pool is warmed so the
/// first transactions after the swap do not pay for connecting.
async fn preflight(to: &Arc<Backend>, prewarm: u32) -> Result<(), String> {
    to.probe().await?;
    let n = prewarm.min(to.pool_size) as usize;
    let conns = futures::future::join_all((0..n).map(|_| to.acquire())).await;
    for c in conns {
        c.map_err(|e| e.to_string())?;
    }
    Ok(())
}
