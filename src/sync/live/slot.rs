//! The proxy's handle on live sync, and the data step of every switch. It holds the live
//! sync running in this process (if any) and, when a sync recorded in the databases could
//! not be resumed here, why. As the switcher's [`SwitchHook`] it hands switches between
//! the running sync's backends to it, refuses those a blocked sync involves, and refuses
//! any other switch away from a database that holds captured changes nobody has applied —
//! whatever this process remembers, a cutover never leaves captured writes behind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use super::side::Side;
use super::{LiveSync, record};
use crate::backend::Backend;
use crate::metrics::Metrics;
use crate::router::hook::{HookError, SwitchHook};

/// A live sync recorded in the databases that is not running in this process.
#[derive(Debug, Clone, Serialize)]
pub struct Blocked {
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// How long the check of a switch's old side for captured changes may take; a side that
/// cannot be reached (a failover away from a dead database) is let through with a warning.
const CHANGELOG_CHECK: Duration = Duration::from_secs(3);

/// Live sync as the rest of the proxy sees it.
pub struct LiveSlot {
    running: Mutex<Option<Arc<LiveSync>>>,
    blocked: Mutex<Option<Blocked>>,
    /// The sync taking part in the switch in progress, and that switch's epoch.
    engaged: Mutex<Option<(Arc<LiveSync>, u64)>>,
    metrics: Metrics,
    /// Where a live sync started here runs.
    pub lifecycle: crate::lifecycle::Lifecycle,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LiveSlot {
    pub fn new(metrics: Metrics, lifecycle: crate::lifecycle::Lifecycle) -> Self {
        LiveSlot {
            running: Mutex::default(),
            blocked: Mutex::default(),
            engaged: Mutex::default(),
            metrics,
            lifecycle,
        }
    }

    /// The live sync started or resumed in this process, if any.
    pub fn current(&self) -> Option<Arc<LiveSync>> {
        lock(&self.running).clone()
    }

    /// Installs a started sync (and clears a block).
    pub fn set_running(&self, live: Arc<LiveSync>) {
        *lock(&self.running) = Some(live);
        self.unblock();
    }

    pub fn block(&self, b: Blocked) {
        tracing::warn!(from = %b.from, to = %b.to, reason = %b.reason, "live sync recorded in the databases is not running here; switches between its backends are refused");
        self.metrics.sync_blocked.set(1);
        *lock(&self.blocked) = Some(b);
    }

    pub fn unblock(&self) {
        self.metrics.sync_blocked.set(0);
        *lock(&self.blocked) = None;
    }

    pub fn blocked(&self) -> Option<Blocked> {
        lock(&self.blocked).clone()
    }

    async fn check(&self, from: &Backend, to: &Backend) -> Result<(), HookError> {
        if let Some(b) = self.blocked()
            && [&*from.name, &*to.name]
                .iter()
                .any(|n| *n == b.from || *n == b.to)
        {
            return Err(HookError::Refused(format!(
                "live sync {} -> {} recorded in the databases is not running in this proxy ({}); switches involving them are refused until it runs again (see /status)",
                b.from, b.to, b.reason
            )));
        }
        if let Some(live) = self.current()
            && live.running()
            && live.between(&from.name, &to.name)
        {
            // Engaged first: `finished` then lets the apply loop go on whatever `check`
            // decides.
            *lock(&self.engaged) = Some((live.clone(), 0));
            return live.check(from).await;
        }
        let pending = match tokio::time::timeout(CHANGELOG_CHECK, pending_on(from)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::warn!(backend = %from.name, error = %e, "cannot check the old side for captured changes; switching anyway");
                0
            }
            Err(_) => {
                tracing::warn!(backend = %from.name, "checking the old side for captured changes timed out; switching anyway");
                0
            }
        };
        if pending > 0 {
            return Err(HookError::Refused(format!(
                "{:?} holds {pending} captured change(s) that no live sync running here has applied to {:?}; switching now would leave them behind. Resume live sync first (ctl sync {} {}), or remove the capture (sync --finish) if they are not needed",
                from.name, to.name, from.name, to.name
            )));
        }
        Ok(())
    }
}

/// Entries in the changelog of the database behind `b` (0 when it has none).
async fn pending_on(b: &Backend) -> Result<u64, String> {
    let url = b.config.effective_url();
    let side = match crate::backend::url::BackendUrl::parse(&url)? {
        crate::backend::url::BackendUrl::Sqlite(p) if !p.exists() => return Ok(0),
        crate::backend::url::BackendUrl::Sqlite(p) => Side::Sqlite(p),
        crate::backend::url::BackendUrl::Postgres(t) => Side::Postgres(
            crate::sync::pgconn::connect(&t)
                .await
                .map_err(|e| e.to_string())?,
        ),
    };
    Ok(record::find(&side)
        .await
        .map_err(|e| e.to_string())?
        .pending)
}

impl SwitchHook for LiveSlot {
    fn preflight<'a>(
        &'a self,
        from: &'a Backend,
        to: &'a Backend,
    ) -> BoxFuture<'a, Result<(), HookError>> {
        Box::pin(self.check(from, to))
    }

    fn prepare<'a>(
        &'a self,
        _from: &'a Backend,
        _to: &'a Backend,
        epoch: u64,
    ) -> BoxFuture<'a, Result<(), HookError>> {
        Box::pin(async move {
            let live = {
                let mut e = lock(&self.engaged);
                let Some((live, at)) = e.as_mut() else {
                    return Ok(());
                };
                *at = epoch;
                live.clone()
            };
            live.prepare_switch(epoch).await
        })
    }

    fn commit(&self, _from: &Backend, _to: &Backend) {
        if let Some((live, epoch)) = lock(&self.engaged).as_ref() {
            live.commit_flip(*epoch);
        }
    }

    fn finished(&self, committed: bool) {
        if let Some((live, _)) = lock(&self.engaged).take() {
            live.switch_finished(committed);
        }
    }
}
