//! The application value built once from a validated config and handed down: backends,
//! router, users, TLS, metrics, cancel keys. No globals, so tests can run many proxies in
//! one process. [`App::run`] is the library entry point: it serves on the listeners it is
//! given until the shutdown signal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::backend::{Backend, BackendError, monitor};
use crate::config::{ProxyConfig, Resolved};
use crate::frontend::cancel::CancelRegistry;
use crate::frontend::listener;
use crate::frontend::users::UserStore;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::router::route_file::{RouteFile, RouteFileError, RouteState, new_instance_id};
use crate::router::switch::{RouteMemory, Switcher};
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
    #[error("{key}: cannot listen on {addr}: {source}")]
    Listen {
        key: &'static str,
        addr: String,
        source: std::io::Error,
    },
}

/// State shared by every task of one proxy.
pub struct Shared {
    pub router: Arc<Router>,
    pub switcher: Arc<Switcher>,
    pub metrics: Metrics,
    pub users: UserStore,
    pub cancels: Arc<CancelRegistry>,
    pub tls: Option<tls::ServerTls>,
    pub proxy: ProxyConfig,
    pub next_session: AtomicU64,
    pub resolved: Resolved,
    /// Live sync: the one running here, or why one recorded in the databases is not.
    pub live: Arc<LiveSlot>,
    /// Recent login failures per client address.
    pub auth_throttle: crate::frontend::throttle::AuthThrottle,
    /// The file the config came from, for reloads (unset for the embedded default).
    pub config_path: std::sync::OnceLock<std::path::PathBuf>,
    /// The shutdown signal, for tasks started after start-up (monitors of new backends).
    pub shutdown: std::sync::OnceLock<watch::Receiver<bool>>,
}

/// A built proxy, not yet listening.
pub struct App {
    pub shared: Arc<Shared>,
}

impl App {
    /// Builds backends (pools are lazy: nothing connects yet), users and TLS.
    pub fn build(resolved: Resolved, metrics: Metrics) -> Result<App, AppError> {
        let cfg = &resolved.config;
        let wait = cfg.proxy.pool_wait_timeout.get();
        let mut backends = BTreeMap::new();
        for (name, b) in &cfg.backends {
            let backend = Backend::new(name, b, wait, &metrics)?;
            backends.insert(name.clone(), Arc::new(backend));
        }
        let route = route_memory(&resolved)?;
        if route.state.active != resolved.active {
            metrics.route_config_mismatch.set(1);
        }
        metrics.route_epoch.set(route.state.epoch as i64);
        for name in cfg.backends.keys() {
            metrics
                .active_backend
                .with_label_values(&[name])
                .set((*name == route.state.active) as i64);
        }
        let router = Router::new(backends, &route.state.active).ok_or_else(|| {
            BackendError::Engine(format!(
                "routing.active names unknown backend {}",
                route.state.active
            ))
        })?;
        let tls = match (&cfg.proxy.tls_cert, &cfg.proxy.tls_key) {
            (Some(c), Some(k)) => Some(tls::server_tls(c, k)?),
            _ => None,
        };
        let switcher = Arc::new(Switcher::new(cfg.switch.clone(), route));
        let live = Arc::new(LiveSlot::new(metrics.clone()));
        switcher.set_hook(Some(live.clone()));
        let cancels = Arc::new(CancelRegistry::default());
        switcher.set_inflight(cancels.clone());
        let shared = Shared {
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
            shutdown: Default::default(),
        };
        Ok(App {
            shared: Arc::new(shared),
        })
    }

    /// Binds the proxy listener at its configured address.
    pub async fn bind_proxy(&self) -> Result<TcpListener, AppError> {
        let addr = self.shared.resolved.proxy_addr;
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
        let addr = self.shared.resolved.admin_addr;
        TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Listen {
                key: "admin.listen",
                addr: addr.to_string(),
                source,
            })
    }

    /// Serves clients on `proxy` and the admin API on `admin` until `shutdown` turns
    /// true, with a health monitor per backend. A live sync recorded in the databases is
    /// found and resumed first (the route may follow it), before anyone is served.
    pub async fn run(
        self,
        proxy: TcpListener,
        admin: Option<TcpListener>,
        shutdown: watch::Receiver<bool>,
    ) {
        let _ = self.shared.shutdown.set(shutdown.clone());
        let s = &self.shared;
        crate::sync::live::resume::at_start(crate::sync::live::resume::Context {
            router: s.router.clone(),
            switcher: s.switcher.clone(),
            slot: s.live.clone(),
            metrics: s.metrics.clone(),
        })
        .await;
        for b in self.shared.router.backends() {
            tokio::spawn(monitor::run(
                b.clone(),
                self.shared.metrics.clone(),
                shutdown.clone(),
            ));
        }
        if let Some(admin) = admin {
            tokio::spawn(crate::admin::serve(
                admin,
                self.shared.clone(),
                shutdown.clone(),
            ));
        }
        listener::serve(self.shared.clone(), proxy, shutdown).await;
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

impl Shared {
    /// Brings the gauges that are read from pools up to date (called before a scrape).
    pub fn refresh_gauges(&self) {
        for b in self.router.backends() {
            let s = b.pool.state();
            let m = &self.metrics;
            m.server_connections
                .with_label_values(&[&b.name, "idle"])
                .set(s.idle_connections as i64);
            m.server_connections
                .with_label_values(&[&b.name, "active"])
                .set((s.connections - s.idle_connections) as i64);
            m.pool_waiting
                .with_label_values(&[&b.name])
                .set(s.statistics.pending_gets() as i64);
            m.backend_up
                .with_label_values(&[&b.name])
                .set(b.health().up as i64);
        }
    }
}
