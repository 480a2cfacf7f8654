//! Routing: which backend new transactions go to (an `ArcSwap`), and the gate they pass.
//! A transaction takes its server connection from the backend that is active when it
//! starts and finishes there, whatever happens to the route meanwhile.
//!
//! - [`gate`]: pause and drain.
//! - [`switch`]: the cutover/rollback state machine; [`hook`]: the data step it runs;
//!   [`error`]: what can go wrong with one.
//! - [`inflight`]: the open transactions a switch checks before pausing.
//! - [`route_file`]: the route kept across restarts.

pub mod barrier;
pub mod error;
pub mod gate;
pub mod hook;
pub mod inflight;
mod manual;
pub mod route_file;
pub mod switch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::backend::{AcquireError, Backend, Pooled};
use gate::{Gate, InFlight};

/// A server connection held for one transaction (or, by a pinned client, between them).
pub struct Held {
    pub conn: Pooled,
    pub backend: Arc<Backend>,
    pub since: Instant,
    /// Counted in the gate while a transaction runs; a pinned client between
    /// transactions is not, so a switch's drain does not wait for it.
    inflight: Option<InFlight>,
}

impl Held {
    /// A pinned client's transaction ended: it keeps the connection, outside the gate.
    pub fn leave_gate(&mut self) {
        self.inflight = None;
    }

    /// Whether a transaction runs on it (false: a pinned client between transactions).
    pub fn in_gate(&self) -> bool {
        self.inflight.is_some()
    }
}

/// The set of backends and the active route.
pub struct Router {
    /// Replaced whole by a config reload.
    backends: ArcSwap<BTreeMap<String, Arc<Backend>>>,
    active: ArcSwap<Backend>,
    pub gate: Arc<Gate>,
    /// `switchyard_active_backend`: set here, and only here, whenever the route changes.
    active_gauge: prometheus::IntGaugeVec,
}

impl Router {
    pub fn new(
        backends: BTreeMap<String, Arc<Backend>>,
        active: &str,
        metrics: &crate::metrics::Metrics,
    ) -> Option<Router> {
        let first = backends.get(active)?.clone();
        let router = Router {
            backends: ArcSwap::from_pointee(backends),
            active: ArcSwap::new(first),
            gate: Arc::new(Gate::default()),
            active_gauge: metrics.active_backend.clone(),
        };
        router.show_active();
        Some(router)
    }

    /// 1 for the active backend, 0 for the others.
    fn show_active(&self) {
        let active = self.active();
        for name in self.backends.load().keys() {
            self.active_gauge
                .with_label_values(&[name])
                .set((**name == *active.name) as i64);
        }
    }

    /// The backend new transactions go to.
    pub fn active(&self) -> Arc<Backend> {
        self.active.load_full()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Backend>> {
        self.backends.load().get(name).cloned()
    }

    pub fn backends(&self) -> Vec<Arc<Backend>> {
        self.backends.load().values().cloned().collect()
    }

    /// Makes `name` the active backend. Returns the previous one.
    pub fn swap_to(&self, name: &str) -> Option<Arc<Backend>> {
        let next = self.get(name)?;
        let previous = self.active.swap(next);
        self.show_active();
        Some(previous)
    }

    /// Installs a new set of backends (a config reload). The active backend keeps its name;
    /// if its entry was rebuilt, new transactions use the new one at once, while those in
    /// flight finish on the old one. Refused (with the active backend's name) when the new
    /// set lacks the active backend.
    pub fn replace_backends(&self, map: BTreeMap<String, Arc<Backend>>) -> Result<(), String> {
        let active = self.active();
        let Some(next) = map.get(&*active.name).cloned() else {
            return Err(active.name.to_string());
        };
        for gone in self
            .backends
            .load()
            .keys()
            .filter(|n| !map.contains_key(*n))
        {
            let _ = self.active_gauge.remove_label_values(&[gone]);
        }
        self.backends.store(Arc::new(map));
        if !Arc::ptr_eq(&next, &active) {
            self.active.store(next);
        }
        self.show_active();
        Ok(())
    }

    /// Waits at the gate, then takes a connection from the active backend.
    pub async fn acquire(&self) -> Result<Held, AcquireError> {
        let inflight = self
            .gate
            .enter()
            .await
            .map_err(|_| AcquireError::ShuttingDown)?;
        let backend = self.active();
        let (conn, since) = backend.acquire().await?;
        Ok(Held {
            conn,
            backend,
            since,
            inflight: Some(inflight),
        })
    }

    /// A pinned client starts a transaction on its own connection: it waits at the gate
    /// like any other. False when the route has moved to another backend meanwhile (the
    /// client cannot go on with this connection).
    pub async fn reenter(&self, held: &mut Held) -> Result<bool, AcquireError> {
        let inflight = self
            .gate
            .enter()
            .await
            .map_err(|_| AcquireError::ShuttingDown)?;
        if !Arc::ptr_eq(&held.backend, &self.active()) {
            return Ok(false);
        }
        held.inflight = Some(inflight);
        held.since = Instant::now();
        Ok(true)
    }
}
