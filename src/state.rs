//! The state every layer of one running proxy shares: its backends and route, the
//! switcher, live sync, users and login throttle, cancel keys, TLS, metrics, and the
//! lifecycle every task is spawned through. Built by [`crate::app::App::build`], handed to
//! each task as an `Arc<ProxyState>`; nothing in it is global.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::config::{ProxyConfig, Resolved};
use crate::frontend::cancel::CancelRegistry;
use crate::frontend::throttle::AuthThrottle;
use crate::frontend::users::UserStore;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::router::switch::Switcher;
use crate::sync::live::LiveSlot;
use crate::tls;

/// State shared by every task of one proxy.
pub struct ProxyState {
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
    pub auth_throttle: AuthThrottle,
    /// The file the config came from, for reloads (unset for the embedded default).
    pub config_path: std::sync::OnceLock<std::path::PathBuf>,
    /// Every task of this proxy, and its shutdown.
    pub lifecycle: Lifecycle,
    /// One permit per client connection (`proxy.max_client_connections`), held for the
    /// connection's life.
    pub client_slots: Arc<tokio::sync::Semaphore>,
    /// The database names a client may ask for (`Resolved::database_names`).
    pub databases: Vec<String>,
    /// Clients' LISTEN subscriptions and notification mailboxes.
    pub notify: crate::notify::Hub,
    /// This proxy as a member of a fleet (`[fleet]`).
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
}

impl ProxyState {
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
                .set(b.waiting() as i64);
            m.backend_up
                .with_label_values(&[&b.name])
                .set(b.health().up as i64);
        }
    }
}
