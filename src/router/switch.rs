//! The switch: an ordered, observable state machine that moves new transactions from one
//! backend to another.
//!
//! `preflight` (target reachable and authenticates, pool pre-warmed, no transaction open
//! longer than the drain bound, the data hook agrees) → `pausing` (new transactions wait
//! at the gate, idle clients stay connected) → `draining` (in-flight transactions finish,
//! bounded) → `syncing` (the [`SwitchHook`] applies the last data changes) → the route
//! file records the new route (the commit point) → `swapped` (one atomic store) →
//! `serving`. The whole pause is bounded by `switch.max_pause`; a failure or the bound
//! before the commit resumes on the old backend, and no client sees an error either way.
//! One switch at a time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::Router;
pub use super::barrier::Barrier;
pub use super::error::{StepError, SwitchError};
pub use super::hook::SwitchHook;
use super::inflight::{InflightView, older_than};
use super::route_file::{RouteFile, RouteState};
use crate::backend::Backend;
use crate::config::SwitchConfig;
use crate::metrics::Metrics;

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
    /// The epoch the switch commits as (the route's epoch after it, if it succeeds).
    pub epoch: u64,
    /// A fleet switch: each member's acknowledgement and the phase times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A stable name for why it failed (`drain_timeout`, `max_pause`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<&'static str>,
}

/// Lets held transactions in when dropped.
struct ResumeOnDrop<'a>(&'a super::gate::Gate);

impl Drop for ResumeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

/// The route as it stands, and where it is kept.
pub struct RouteMemory {
    pub file: Option<RouteFile>,
    pub state: RouteState,
}

/// How a switch may wait for open transactions before it starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct SwitchOptions {
    /// Wait up to this long for transactions older than the drain bound to finish
    /// (instead of refusing at once).
    pub wait: Option<Duration>,
}

/// Switch bookkeeping shared by the admin API.
pub struct Switcher {
    pub(super) lock: tokio::sync::Mutex<()>,
    state: Mutex<SwitchState>,
    last: Mutex<Option<SwitchRecord>>,
    route: Mutex<RouteMemory>,
    count: Mutex<u64>,
    hook: Mutex<Option<Arc<dyn SwitchHook>>>,
    inflight: Mutex<Option<Arc<dyn InflightView>>>,
    pub(super) manual_pause: Mutex<Option<(u64, Instant)>>,
    /// Set when this proxy is a member of a fleet: its switches are the fleet's.
    barrier: Mutex<Option<Arc<dyn Barrier>>>,
    pub config: SwitchConfig,
    /// Where the manual pause's timer runs.
    pub(super) lifecycle: crate::lifecycle::Lifecycle,
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Switcher {
    pub fn new(
        config: SwitchConfig,
        route: RouteMemory,
        lifecycle: crate::lifecycle::Lifecycle,
    ) -> Self {
        Switcher {
            lock: tokio::sync::Mutex::new(()),
            state: Mutex::new(SwitchState::Serving),
            last: Mutex::new(None),
            route: Mutex::new(route),
            count: Mutex::new(0),
            hook: Mutex::new(None),
            inflight: Mutex::new(None),
            manual_pause: Mutex::new(None),
            barrier: Mutex::new(None),
            config,
            lifecycle,
        }
    }

    pub fn set_hook(&self, hook: Option<Arc<dyn SwitchHook>>) {
        *lock(&self.hook) = hook;
    }

    /// Makes this proxy's switches the fleet's (see [`Barrier`]).
    pub fn set_barrier(&self, barrier: Arc<dyn Barrier>) {
        *lock(&self.barrier) = Some(barrier);
    }

    /// The switch lock, for a fleet member taking part in a switch another member runs.
    pub fn try_hold(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, SwitchError> {
        if lock(&self.manual_pause).is_some() {
            return Err(SwitchError::Busy);
        }
        self.lock.try_lock().map_err(|_| SwitchError::Busy)
    }

    /// Where the switch looks for transactions open too long to drain.
    pub fn set_inflight(&self, view: Arc<dyn InflightView>) {
        *lock(&self.inflight) = Some(view);
    }

    pub fn state(&self) -> SwitchState {
        *lock(&self.state)
    }

    pub(crate) fn set_state(&self, s: SwitchState, metrics: &Metrics) {
        *lock(&self.state) = s;
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
        lock(&self.last).clone()
    }

    pub fn previous(&self) -> Option<String> {
        lock(&self.route).state.previous.clone()
    }

    /// The route as last committed (file or memory).
    pub fn route(&self) -> RouteState {
        lock(&self.route).state.clone()
    }

    /// The route file, when the route is kept on disk.
    pub fn route_file(&self) -> Option<RouteFile> {
        lock(&self.route).file.clone()
    }

    /// Records a route decided outside a switch (at start-up, from live sync's record).
    pub fn adopt_route(&self, active: &str, epoch: u64) -> Result<(), String> {
        let mut r = lock(&self.route);
        let mut next = r.state.clone();
        if next.active != active {
            next.previous = Some(next.active.clone());
        }
        next.active = active.to_string();
        next.epoch = epoch;
        if let Some(f) = &r.file {
            f.store(&next).map_err(|e| e.to_string())?;
        }
        r.state = next;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        *lock(&self.count)
    }

    /// Moves new transactions to `to`. The record says how it went (also on failure).
    pub async fn cutover(
        &self,
        router: &Router,
        metrics: &Metrics,
        to: &str,
        opts: SwitchOptions,
    ) -> Result<SwitchRecord, SwitchError> {
        self.switch(router, metrics, to, "cutover", opts).await
    }

    /// Goes back to the backend that was active before the last switch.
    pub async fn rollback(
        &self,
        router: &Router,
        metrics: &Metrics,
        opts: SwitchOptions,
    ) -> Result<SwitchRecord, SwitchError> {
        let to = self.previous().ok_or(SwitchError::NoPrevious)?;
        self.switch(router, metrics, &to, "rollback", opts).await
    }

    async fn switch(
        &self,
        router: &Router,
        metrics: &Metrics,
        to: &str,
        kind: &'static str,
        opts: SwitchOptions,
    ) -> Result<SwitchRecord, SwitchError> {
        let _guard = self.lock.try_lock().map_err(|_| SwitchError::Busy)?;
        if lock(&self.manual_pause).is_some() {
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
            epoch: self.route().epoch + 1,
            fleet: None,
            error: None,
            failure: None,
        };
        tracing::info!(kind, from = %rec.from, to = %rec.to, "switch starting");
        let result = self
            .run_steps(router, metrics, &from, &target, &mut rec, opts)
            .await;
        let barrier = lock(&self.barrier).clone();
        if let (Err(e), Some(b)) = (&result, &barrier) {
            b.abort(&e.to_string()).await;
        }
        if let Some(hook) = lock(&self.hook).clone() {
            hook.finished(result.is_ok());
        }
        if let Some(b) = &barrier {
            rec.fleet = b.report().await;
        }
        self.set_state(SwitchState::Serving, metrics);
        match result {
            Err(e) => {
                rec.failure = Some(e.kind());
                rec.error = Some(e.to_string());
            }
            Ok(()) => rec.ok = true,
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
        opts: SwitchOptions,
    ) -> Result<(), StepError> {
        self.set_state(SwitchState::Preflight, metrics);
        let t = Instant::now();
        // First, as it costs nothing: a transaction already open too long refuses it.
        self.no_old_transactions(from, opts.wait).await?;
        let pre = tokio::time::timeout(
            self.config.preflight_timeout.get(),
            preflight(to, self.config.prewarm),
        )
        .await;
        rec.preflight_ms = ms(t.elapsed());
        match pre {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                return Err(StepError::Preflight {
                    backend: to.name.to_string(),
                    reason,
                });
            }
            Err(_) => {
                return Err(StepError::PreflightTimeout {
                    backend: to.name.to_string(),
                    after: self.config.preflight_timeout,
                });
            }
        }
        let hook = lock(&self.hook).clone();
        if let Some(hook) = &hook {
            hook.preflight(from, to).await.map_err(StepError::from)?;
        }
        rec.preflight_ms = ms(t.elapsed());
        let barrier = lock(&self.barrier).clone();
        if let Some(b) = barrier {
            // The other members start pausing now, while this one does.
            rec.epoch = b.begin(rec.kind, &from.name, &to.name).await?;
        }
        self.set_state(SwitchState::Pausing, metrics);
        router.gate.pause();
        // Resumes even if this future is dropped mid-pause (a panic, a runtime shutdown).
        let resume = ResumeOnDrop(&router.gate);
        let paused_at = Instant::now();
        let result = self
            .paused_steps(router, metrics, from, to, rec, hook.as_deref())
            .await;
        drop(resume);
        let pause = paused_at.elapsed();
        rec.pause_ms = ms(pause);
        metrics.pause_seconds.observe(pause.as_secs_f64());
        result
    }

    /// Refuses (or, with `wait`, first waits) while a transaction on `from` has been open
    /// longer than the drain bound: the pause would hold every client for that bound and
    /// then fail.
    async fn no_old_transactions(
        &self,
        from: &Backend,
        wait: Option<Duration>,
    ) -> Result<(), StepError> {
        let Some(view) = lock(&self.inflight).clone() else {
            return Ok(());
        };
        let bound = self.config.drain_timeout.get();
        let deadline = Instant::now() + wait.unwrap_or_default();
        loop {
            let old: Vec<_> = older_than(&*view, bound)
                .into_iter()
                .filter(|t| t.backend == *from.name)
                .collect();
            let Some(oldest) = old.first() else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                return Err(StepError::OldTransactions {
                    backend: from.name.to_string(),
                    count: old.len(),
                    bound: self.config.drain_timeout,
                    waited: wait
                        .map(|w| format!(" (waited {:.1} s)", w.as_secs_f64()))
                        .unwrap_or_default(),
                    oldest: oldest.describe(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn paused_steps(
        &self,
        router: &Router,
        metrics: &Metrics,
        from: &Arc<Backend>,
        to: &Arc<Backend>,
        rec: &mut SwitchRecord,
        hook: Option<&dyn SwitchHook>,
    ) -> Result<(), StepError> {
        let bound = self.config.max_pause.get();
        let paused_at = Instant::now();
        let epoch = rec.epoch;
        let prepared = tokio::time::timeout(
            bound,
            self.drain_and_prepare(router, metrics, from, to, rec, hook, epoch),
        )
        .await;
        match prepared {
            Ok(r) => r?,
            Err(_) => {
                return Err(StepError::MaxPause {
                    backend: from.name.to_string(),
                    bound: self.config.max_pause,
                    during: match self.state() {
                        SwitchState::Draining => "draining transactions in flight",
                        _ => "applying the last changes to the target",
                    },
                });
            }
        }
        // The commit point: once the route file (or, in a fleet, the fleet's store) says
        // `to`, a restart comes up there.
        let barrier = lock(&self.barrier).clone();
        match barrier {
            Some(b) => {
                let epoch = b.commit().await?;
                if let Err(e) = self.persist_route(&to.name, epoch).await {
                    // The store is the fleet's record; a restart reads it from there.
                    tracing::error!(error = %e, "fleet switch committed, but the route file could not be written");
                }
            }
            None => self.persist_route(&to.name, epoch).await?,
        }
        if let Some(hook) = hook {
            hook.commit(from, to);
        }
        router.swap_to(&to.name);
        metrics.route_epoch.set(epoch as i64);
        self.set_state(SwitchState::Swapped, metrics);
        tracing::debug!(held_ms = ms(paused_at.elapsed()), "swapped; resuming");
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn drain_and_prepare(
        &self,
        router: &Router,
        metrics: &Metrics,
        from: &Arc<Backend>,
        to: &Arc<Backend>,
        rec: &mut SwitchRecord,
        hook: Option<&dyn SwitchHook>,
        epoch: u64,
    ) -> Result<(), StepError> {
        self.set_state(SwitchState::Draining, metrics);
        let t = Instant::now();
        let drained = router
            .gate
            .wait_drained(self.config.drain_timeout.get())
            .await;
        rec.drain_ms = ms(t.elapsed());
        if !drained {
            return Err(StepError::DrainTimeout {
                backend: from.name.to_string(),
                in_flight: router.gate.inflight(),
                bound: self.config.drain_timeout,
            });
        }
        let barrier = lock(&self.barrier).clone();
        if let Some(b) = barrier {
            b.await_acks().await?;
        }
        self.set_state(SwitchState::Syncing, metrics);
        if let Some(hook) = hook {
            hook.prepare(from, to, epoch)
                .await
                .map_err(|e| StepError::Hook(e.to_string()))?;
        }
        Ok(())
    }

    /// Writes the new route (file first, then memory). Runs to its end even if the
    /// caller is dropped, so the file never says what memory does not.
    pub(crate) async fn persist_route(&self, to: &str, epoch: u64) -> Result<(), StepError> {
        let (file, mut next) = {
            let r = lock(&self.route);
            (r.file.clone(), r.state.clone())
        };
        next.previous = Some(next.active.clone());
        next.active = to.to_string();
        next.epoch = epoch;
        next.switched_at_unix_ms = unix_ms();
        if let Some(file) = file {
            let state = next.clone();
            tokio::task::spawn_blocking(move || file.store(&state))
                .await
                .map_err(|e| StepError::RouteFile(e.to_string()))?
                .map_err(|e| StepError::RouteFile(e.to_string()))?;
        }
        lock(&self.route).state = next;
        Ok(())
    }

    fn finish(&self, rec: &SwitchRecord, metrics: &Metrics) {
        metrics
            .switches
            .with_label_values(&[if rec.ok { "ok" } else { "failed" }])
            .inc();
        *lock(&self.count) += 1;
        if rec.ok {
            tracing::info!(kind = rec.kind, from = %rec.from, to = %rec.to, pause_ms = rec.pause_ms, drain_ms = rec.drain_ms, preflight_ms = rec.preflight_ms, "switch done");
        } else {
            tracing::warn!(kind = rec.kind, from = %rec.from, to = %rec.to, pause_ms = rec.pause_ms, error = rec.error.as_deref().unwrap_or(""), "switch failed, still serving from the old backend");
        }
        *lock(&self.last) = Some(rec.clone());
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
