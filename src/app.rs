//! The composition root: [`App::build`] makes a proxy's [`ProxyState`] from a validated
//! config (backends, route, switcher, users, TLS, metrics, lifecycle), and [`App::run`] —
//! the library entry point — serves on the listeners it is given until its lifecycle is
//! shut down, then drains. No globals, so tests can run many proxies in one process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use thiserror::Error;
use tokio::net::TcpListener;

use crate::backend::{Backend, BackendError, monitor};
use crate::config::Resolved;
use crate::frontend::cancel::CancelRegistry;
use crate::frontend::listener;
use crate::frontend::users::UserStore;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::router::route_file::{RouteFile, RouteFileError, RouteState, new_instance_id};
use crate::router::switch::{RouteMemory, Switcher};
use crate::state::ProxyState;
use crate::sync::live::LiveSlot;
use crate::tls;

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("proxy TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    RouteFile(#[from] RouteFileError),
    #[error(
        "the route file {file} says backend {active:?} is active (after {epoch} switch(es)), but the config has no such backend; add it back, or move the file away to start from routing.active"
    )]
    RouteUnknown {
        file: String,
        active: String,
        epoch: u64,
    },
    #[error("fleet: {0}")]
    Fleet(#[from] crate::sync::SyncError),
    #[error("{key}: cannot listen on {addr}: {source}")]
    Listen {
        key: &'static str,
        addr: String,
        source: std::io::Error,
    },
}

/// A built proxy, not yet listening.
pub struct App {
    pub state: Arc<ProxyState>,
}

/// How a shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Every transaction in flight finished within the grace period.
    pub transactions: bool,
    /// Every task (sessions included) ended within it.
    pub tasks: bool,
}

impl App {
    /// Builds backends (pools are lazy: nothing connects yet), users and TLS.
    pub fn build(resolved: Resolved, metrics: Metrics) -> Result<App, AppError> {
        let cfg = &resolved.config;
        let lifecycle = Lifecycle::new();
        let wait = cfg.proxy.pool_wait_timeout.get();
        let mut backends = BTreeMap::new();
        for (name, b) in &cfg.backends {
            let backend = Backend::new(name, b, wait, &metrics, lifecycle.child())?;
            backends.insert(name.clone(), Arc::new(backend));
        }
        let route = route_memory(&resolved)?;
        if route.state.active != resolved.active {
            metrics.route_config_mismatch.set(1);
        }
        metrics.route_epoch.set(route.state.epoch as i64);
        let router = Router::new(backends, &route.state.active, &metrics).ok_or_else(|| {
            BackendError::Engine(format!(
                "routing.active names unknown backend {}",
                route.state.active
            ))
        })?;
        let tls = match (&cfg.proxy.tls_cert, &cfg.proxy.tls_key) {
            (Some(c), Some(k)) => Some(tls::server_tls(c, k)?),
            _ => None,
        };
        let switcher = Arc::new(Switcher::new(cfg.switch.clone(), route, lifecycle.clone()));
        let live = Arc::new(LiveSlot::new(metrics.clone(), lifecycle.clone()));
        switcher.set_hook(Some(live.clone()));
        let cancels = Arc::new(CancelRegistry::default());
        switcher.set_inflight(cancels.clone());
        let notify = crate::notify::Hub::new(metrics.listening_clients.clone());
        let fleet = match &cfg.fleet {
            Some(f) => {
                let fleet = Arc::new(crate::fleet::Fleet::new(f, &resolved, metrics.registry())?);
                switcher.set_barrier(fleet.clone());
                Some(fleet)
            }
            None => None,
        };
        let state = ProxyState {
            router: Arc::new(router),
            switcher,
            users: UserStore::from_config(&cfg.proxy, &cfg.users),
            cancels,
            tls,
            proxy: cfg.proxy.clone(),
            next_session: AtomicU64::new(1),
            metrics,
            resolved: resolved.clone(),
            live,
            auth_throttle: Default::default(),
            config_path: Default::default(),
            client_slots: Arc::new(tokio::sync::Semaphore::new(
                cfg.proxy.max_client_connections,
            )),
            lifecycle,
            databases: resolved.database_names(),
            notify,
            fleet,
        };
        Ok(App {
            state: Arc::new(state),
        })
    }

    /// Binds the proxy listener at its configured address.
    pub async fn bind_proxy(&self) -> Result<TcpListener, AppError> {
        let addr = self.state.resolved.proxy_addr;
        TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Listen {
                key: "proxy.listen",
                addr: addr.to_string(),
                source,
            })
    }

    /// Binds the admin API at its configured address.
    pub async fn bind_admin(&self) -> Result<TcpListener, AppError> {
        let addr = self.state.resolved.admin_addr;
        TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Listen {
                key: "admin.listen",
                addr: addr.to_string(),
                source,
            })
    }

    /// The lifecycle to shut this app down with (`lifecycle().shutdown()`).
    pub fn lifecycle(&self) -> Lifecycle {
        self.state.lifecycle.clone()
    }

    /// Serves clients on `proxy` and the admin API on `admin`, with a health monitor per
    /// backend, until shutdown is asked for; then drains (see [`App::drain`]). A live sync
    /// recorded in the databases is found and resumed first (the route may follow it),
    /// before anyone is served.
    pub async fn run(self, proxy: TcpListener, admin: Option<TcpListener>) -> Drained {
        let s = &self.state;
        if let Some(fleet) = &s.fleet {
            crate::fleet::member::join(fleet, s).await;
            s.lifecycle
                .spawn(crate::fleet::member::run(fleet.clone(), s.clone()));
        }
        // In a fleet, only the member that takes the sync lease resumes the sync.
        crate::sync::live::resume::at_start(crate::sync::live::resume::Context::of(s)).await;
        detect_poolers(&s.router.backends()).await;
        crate::notify::listener::spawn(s);
        for b in s.router.backends() {
            s.lifecycle
                .spawn(monitor::run(b.clone(), s.metrics.clone()));
        }
        if let Some(admin) = admin {
            s.lifecycle
                .spawn(crate::admin::serve(admin, self.state.clone()));
        }
        listener::serve(self.state.clone(), proxy).await;
        self.drain().await
    }

    /// After shutdown is asked for: new transactions are held, those in flight get
    /// `proxy.shutdown_grace` to finish; each client gets `57P01` (admin_shutdown) and a
    /// clean close as soon as it has no transaction open; then every task ends.
    async fn drain(&self) -> Drained {
        let s = &self.state;
        // No transaction starts any more (those waiting are turned away); sessions with
        // no transaction open close now (they see the shutdown when woken).
        s.router.gate.close();
        s.cancels.wake_all();
        let grace = s.proxy.shutdown_grace.get();
        let started = std::time::Instant::now();
        tracing::info!(
            inflight = s.router.gate.inflight(),
            grace_ms = grace.as_millis() as u64,
            "shutting down: waiting for transactions in flight"
        );
        let transactions = s.router.gate.wait_drained(grace).await;
        let tasks = s
            .lifecycle
            .wait(grace.saturating_sub(started.elapsed()))
            .await;
        if transactions && tasks {
            tracing::info!("shut down cleanly: no transaction was cut");
        } else {
            tracing::warn!(
                transactions_left = s.router.gate.inflight(),
                tasks_left = s.lifecycle.running(),
                "shutdown grace period over; closing with work in flight"
            );
        }
        Drained {
            transactions,
            tasks,
        }
    }
}

/// The route a proxy starts on: the route file's once a switch has been recorded there,
/// else `routing.active`.
fn route_memory(resolved: &Resolved) -> Result<RouteMemory, AppError> {
    let config_active = resolved.active.clone();
    let Some(path) = &resolved.state_file else {
        return Ok(RouteMemory {
            file: None,
            state: RouteState {
                active: config_active,
                previous: None,
                epoch: 0,
                switched_at_unix_ms: 0,
                instance: new_instance_id(),
            },
        });
    };
    let file = RouteFile::new(path);
    let mut state = file.open(&config_active)?;
    if state.epoch == 0 {
        state.active = config_active;
    } else if !resolved.config.backends.contains_key(&state.active) {
        return Err(AppError::RouteUnknown {
            file: path.display().to_string(),
            active: state.active,
            epoch: state.epoch,
        });
    } else if state.active != config_active {
        tracing::warn!(
            route = %state.active, config_active = %config_active, epoch = state.epoch, file = %path.display(),
            "the config says routing.active = {config_active:?}, but the last switch left the app on {:?}; serving {:?}. Edit routing.active to match, or switch with ctl cutover",
            state.active, state.active
        );
    }
    Ok(RouteMemory {
        file: Some(file),
        state,
    })
}

/// `pooler = "auto"` backends are looked at before anyone is served (5 s at most each, in
/// parallel), so clients get the mode that fits from their first transaction; one that
/// cannot be reached now runs as "transaction" until its monitor finds out.
async fn detect_poolers(backends: &[Arc<crate::backend::Backend>]) {
    let pending = backends.iter().filter(|b| b.pooler_unknown()).map(|b| async move {
        let bound = std::time::Duration::from_secs(5);
        match tokio::time::timeout(bound, b.detect_pooler()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(backend = %b.name, error = %e, "pooler = \"auto\": cannot find out yet; running as \"transaction\" until it can"),
            Err(_) => tracing::warn!(backend = %b.name, "pooler = \"auto\": no answer within 5 s; running as \"transaction\" until it can"),
        }
    });
    futures::future::join_all(pending).await;
}
