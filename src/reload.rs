//! Re-reading the config while serving (SIGHUP or `POST /reload`): backends added, changed
//! or removed without dropping a client. An invalid file changes nothing. Only
//! `[backends.*]` apply on reload; other sections need a restart, and the answer says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::backend::{Backend, BackendError, monitor};
use crate::config::{Config, ConfigError};

/// Why a reload changed nothing.
#[derive(Debug, Error)]
pub enum ReloadError {
    #[error("switchyard was started without --config: there is nothing to reload")]
    NoConfigFile,
    #[error("invalid config {path}: {source}")]
    Invalid { path: String, source: ConfigError },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(
        "backend {0:?} is part of the running live sync; stop it (ctl sync-stop) before removing the backend"
    )]
    LiveSyncBackend(String),
    #[error("the active backend {0:?} is not in the new config; cut over to another backend first")]
    ActiveRemoved(String),
}
use crate::state::ProxyState;

/// What a reload did.
#[derive(Debug, Default, Serialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: Vec<String>,
    pub note: &'static str,
}

/// Reads the config file again and applies its backends.
pub fn reload(shared: &Arc<ProxyState>) -> Result<ReloadReport, ReloadError> {
    let path = shared.config_path.get().ok_or(ReloadError::NoConfigFile)?;
    let r = Config::load(path).map_err(|source| ReloadError::Invalid {
        path: path.display().to_string(),
        source,
    })?;
    let wait = r.config.proxy.pool_wait_timeout.get();
    let old: BTreeMap<String, Arc<Backend>> = shared
        .router
        .backends()
        .into_iter()
        .map(|b| (b.name.to_string(), b))
        .collect();
    let mut report = ReloadReport {
        note: "only [backends] apply on reload; other changes take effect at the next restart",
        ..Default::default()
    };
    let mut map = BTreeMap::new();
    let mut fresh = Vec::new();
    for (name, cfg) in &r.config.backends {
        match old.get(name) {
            Some(b) if b.config == *cfg => {
                report.unchanged.push(name.clone());
                map.insert(name.clone(), b.clone());
            }
            prev => {
                let b = Backend::new(name, cfg, wait, &shared.metrics, shared.lifecycle.child())?;
                let b = Arc::new(b);
                if prev.is_some() {
                    report.changed.push(name.clone());
                } else {
                    report.added.push(name.clone());
                }
                fresh.push(b.clone());
                map.insert(name.clone(), b);
            }
        }
    }
    report.removed = old
        .keys()
        .filter(|n| !map.contains_key(*n))
        .cloned()
        .collect();
    refuse_live_sync_loss(shared, &report.removed)?;
    shared
        .router
        .replace_backends(map)
        .map_err(ReloadError::ActiveRemoved)?;
    for name in report.changed.iter().chain(&report.removed) {
        old[name].retire();
    }
    for b in fresh {
        shared
            .lifecycle
            .spawn(monitor::run(b, shared.metrics.clone()));
    }
    tracing::info!(added = ?report.added, changed = ?report.changed, removed = ?report.removed, "config reloaded");
    Ok(report)
}

fn refuse_live_sync_loss(shared: &ProxyState, removed: &[String]) -> Result<(), ReloadError> {
    let live = shared.live.current();
    if let Some(l) = live {
        let s = l.status();
        for name in removed {
            if (*name == s.from || *name == s.to) && s.phase != crate::sync::live::Phase::Stopped {
                return Err(ReloadError::LiveSyncBackend(name.clone()));
            }
        }
    }
    Ok(())
}
