//! The background watcher of one backend. While the backend is down it probes it with
//! capped exponential backoff and full jitter, so clients never hammer a dead server and
//! service comes back without a restart. While it is up and idle it checks it every
//! `health_interval`, so `/readyz` and the metrics tell the truth when nobody is using it.

use std::sync::Arc;
use std::time::Instant;

use super::Backend;
use super::health::{self, backoff_ceiling, full_jitter};
use crate::metrics::Metrics;

/// What the monitor shows in `/status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BackoffView {
    pub failures: u32,
    pub ceiling_ms: u64,
    pub delay_ms: u64,
}

impl Backend {
    /// One probe: connect (through the pool manager, which records health) and run SELECT 1.
    pub async fn probe(&self) -> Result<(), String> {
        let mut conn = self.dedicated().await.map_err(|e| e.to_string())?;
        let res = conn.own_query("SELECT 1").await;
        conn.terminate().await;
        match res {
            Ok(r) if r.error.is_none() => Ok(()),
            Ok(r) => Err(r
                .error
                .map(|(c, m)| format!("{m} ({c})"))
                .unwrap_or_default()),
            Err(e) => {
                self.shared.health.mark_down(&e);
                Err(e.to_string())
            }
        }
    }

    /// The current backoff, for status pages.
    pub fn backoff(&self) -> BackoffView {
        self.backoff.lock().map(|b| b.clone()).unwrap_or_default()
    }

    fn set_backoff(&self, view: BackoffView, metrics: &Metrics) {
        metrics
            .backoff_seconds
            .with_label_values(&[&self.name])
            .set(view.delay_ms as f64 / 1000.0);
        if let Ok(mut b) = self.backoff.lock() {
            *b = view;
        }
    }
}

/// Watches `backend` until it is retired (a reload, or the app's shutdown).
pub async fn run(backend: Arc<Backend>, metrics: Metrics) {
    let base = backend.config.backoff_base.get();
    let cap = backend.config.backoff_cap.get();
    let interval = backend.config.health_interval.get();
    let mut health = backend.shared.health.subscribe();
    let mut last_probe = Instant::now() - interval;
    loop {
        if backend.is_retired() {
            return;
        }
        let state = health.borrow_and_update().clone();
        if backend.pooler_unknown()
            && let Err(e) = backend.detect_pooler().await
        {
            tracing::debug!(backend = %backend.name, error = %e, "pooler detection failed; running as \"transaction\" until it succeeds");
        }
        let wait = if state.up {
            backend.set_backoff(BackoffView::default(), &metrics);
            interval.saturating_sub(last_probe.elapsed())
        } else {
            let ceiling = backoff_ceiling(base, cap, state.failures.max(1));
            let delay = full_jitter(ceiling);
            backend.set_backoff(
                BackoffView {
                    failures: state.failures,
                    ceiling_ms: ceiling.as_millis() as u64,
                    delay_ms: delay.as_millis() as u64,
                },
                &metrics,
            );
            tracing::info!(backend = %backend.name, failures = state.failures, delay_ms = delay.as_millis() as u64, "backend down, retrying after backoff");
            delay
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = health::wait_down(&mut health), if state.up => continue,
            _ = backend.retired() => return,
        }
        if state.up && backend.recently_used() {
            last_probe = Instant::now();
            continue;
        }
        last_probe = Instant::now();
        match backend.probe().await {
            Ok(()) => {
                if !state.up {
                    tracing::info!(backend = %backend.name, "backend recovered");
                }
            }
            Err(e) => tracing::debug!(backend = %backend.name, error = %e, "health probe failed"),
        }
    }
}

/// Busy backends prove their health with every checkout; only idle ones are probed.
impl Backend {
    /// In use now, or checked out since the monitor last asked (one health interval ago).
    fn recently_used(&self) -> bool {
        let s = self.pool.state();
        self.take_used() || s.connections > s.idle_connections
    }
}
