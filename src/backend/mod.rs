//! Backends: the databases switchyard routes to. Each has a name, a pool of server
//! connections, its pooling behaviour and its metrics.
//!
//! - [`url`]: backend URLs.
//! - [`conn`]: one server connection.
//! - [`pool`]: the bb8 pool and its error sink; `checkout` waits for a connection.
//! - [`health`], [`monitor`]: up/down state and background reconnect with backoff.
//! - [`postgres`]: connecting to PostgreSQL (TLS, authentication, cancel).

mod checkout;
pub mod conn;
pub mod detect;
pub mod error;
pub mod health;
pub mod monitor;
pub mod pool;
pub mod postgres;
pub mod sqlite;
pub mod url;

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::config::{BackendConfig, PoolerMode};
use crate::metrics::{BackendMetrics, Metrics};
use crate::tls;
pub use error::BackendError;
use pool::{Connector, ErrorSink, Manager, PoolShared};
use url::BackendUrl;

/// A server connection checked out of a backend's pool.
pub type Pooled = bb8::PooledConnection<'static, Manager>;

/// Why a client could not get a server connection.
#[derive(Debug, Error)]
pub enum AcquireError {
    #[error("no server connection to backend \"{backend}\" within {waited_ms} ms{}", last.as_ref().map(|l| format!(": {}", l.0)).unwrap_or_default())]
    Timeout {
        backend: String,
        waited_ms: u128,
        /// The last connect error: (for the log, as a client may see it).
        last: Option<(String, String)>,
    },
    #[error("backend \"{backend}\": {source}")]
    Connect {
        backend: String,
        source: BackendError,
    },
    #[error("backend \"{backend}\" is down: {reason}")]
    Down {
        backend: String,
        reason: String,
        /// `reason` as a client may see it.
        client_reason: String,
    },
    /// The proxy is shutting down: no new transaction starts.
    #[error("switchyard is shutting down")]
    ShuttingDown,
}

/// One configured backend.
pub struct Backend {
    pub name: Arc<str>,
    /// The URL without its password.
    pub display: String,
    /// The pooler mode in force (see [`Backend::pooler`]).
    pooler: detect::PoolerState,
    pub pool: bb8::Pool<Manager>,
    pub metrics: BackendMetrics,
    pub pool_size: u32,
    pub pool_wait: Duration,
    pub config: BackendConfig,
    connector: Arc<Connector>,
    shared: Arc<PoolShared>,
    backoff: std::sync::Mutex<monitor::BackoffView>,
    /// Set by every checkout, cleared by the health monitor when it looks: a backend in
    /// use proves its health without probes.
    used: std::sync::atomic::AtomicBool,
    /// Checkouts waiting now (bb8's own count keeps every abandoned `get`).
    waiting: std::sync::atomic::AtomicU64,
    /// Pins left for clients with session state (None where sessions are not kept).
    pub pins: Option<Arc<crate::relay::pin::PinBudget>>,
    /// Cancelled when a reload removed or replaced this backend, or when the app shuts
    /// down: its monitor stops, and it only serves the transactions already on it.
    retired: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backend({} {})", self.name, self.display)
    }
}

impl Backend {
    pub fn retire(&self) {
        self.retired.cancel();
    }

    pub fn is_retired(&self) -> bool {
        self.retired.is_cancelled()
    }

    /// Resolves once the backend is retired (or the app shuts down).
    pub async fn retired(&self) {
        self.retired.cancelled().await
    }

    /// Builds a backend and its (lazy) pool. Nothing is connected yet. `lifetime` ends it
    /// (a child of the app's shutdown token).
    pub fn new(
        name: &str,
        cfg: &BackendConfig,
        pool_wait: Duration,
        metrics: &Metrics,
        lifetime: tokio_util::sync::CancellationToken,
    ) -> Result<Backend, BackendError> {
        let url = BackendUrl::parse(&cfg.url)
            .map_err(|e| BackendError::Engine(format!("backends.{name}.url: {e}")))?;
        let display = url.redacted();
        let (connector, pooler) = match url {
            BackendUrl::Postgres(mut target) => {
                if let Some(mode) = cfg.sslmode {
                    target.sslmode = mode;
                }
                if cfg.ca_file.is_some() {
                    target.ca_file = cfg.ca_file.clone();
                }
                target.connect_timeout = cfg.connect_timeout.get();
                let tls = tls::client_config(target.sslmode, target.ca_file.as_deref())
                    .map_err(|e| BackendError::Engine(format!("backends.{name}: {e}")))?;
                (Connector::Postgres { target, tls }, cfg.pooler)
            }
            BackendUrl::Sqlite(path) => (
                Connector::Sqlite(
                    sqlite::SqliteEngine::new(&path, cfg.sqlite_open)
                        .map_err(|e| BackendError::Engine(format!("backends.{name}.url: {e}")))?,
                ),
                PoolerMode::None,
            ),
        };
        let name: Arc<str> = name.into();
        let connector = Arc::new(connector);
        let shared = Arc::new(PoolShared::default());
        let manager = Manager {
            backend: name.clone(),
            connector: connector.clone(),
            shared: shared.clone(),
            metrics: metrics.clone(),
        };
        let pool = bb8::Pool::builder()
            .max_size(cfg.pool_size)
            // Most recently used first, as PgBouncer does: under light load the same few
            // server processes stay hot in the CPU caches and the rest age out through
            // idle_timeout (FIFO, bb8's default, cycles through every connection).
            .queue_strategy(bb8::QueueStrategy::Lifo)
            .min_idle(Some(cfg.min_idle).filter(|&n| n > 0))
            .test_on_check_out(true)
            .connection_timeout(pool_wait)
            .retry_connection(false)
            .idle_timeout(Some(cfg.idle_timeout.get()))
            .max_lifetime(Some(cfg.max_lifetime.get()))
            .error_sink(Box::new(ErrorSink {
                backend: name.clone(),
            }))
            .build_unchecked(manager);
        // A SQLite backend's sessions are kept too (its cursors WITH HOLD, temporary
        // tables and named statements live in one SQLite connection's session).
        let pins = (pooler != PoolerMode::Transaction && cfg.pin_limit() > 0).then(|| {
            let gauge = metrics.pinned_clients.with_label_values(&[&name]);
            crate::relay::pin::PinBudget::new(cfg.pin_limit() as usize, gauge)
        });
        Ok(Backend {
            pins,
            pooler: detect::PoolerState::new(pooler),
            metrics: metrics.for_backend(&name),
            name,
            display,
            pool,
            pool_size: cfg.pool_size,
            pool_wait,
            config: cfg.clone(),
            connector,
            shared,
            backoff: Default::default(),
            used: Default::default(),
            waiting: Default::default(),
            retired: lifetime,
        })
    }

    /// Asks the server running `key` to cancel its current query.
    pub async fn cancel(&self, key: (u32, u32)) -> Result<(), BackendError> {
        match &*self.connector {
            Connector::Postgres { target, tls } => {
                postgres::connect::cancel(target, tls.as_ref(), key).await
            }
            Connector::Sqlite(engine) => {
                engine.cancel(key.0);
                Ok(())
            }
        }
    }

    /// Idle and in-use server connections.
    pub fn pool_counts(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.idle_connections, s.connections - s.idle_connections)
    }

    /// Checkouts waiting for a connection now.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn note_checkout(&self) {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// True when a checkout happened since the last call.
    fn take_used(&self) -> bool {
        self.used.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn health(&self) -> health::HealthState {
        self.shared.health.get()
    }

    /// The port a PostgreSQL backend is reached on (None for an embedded engine).
    pub fn postgres_port(&self) -> Option<u16> {
        match &*self.connector {
            Connector::Postgres { target, .. } => Some(target.host.port()),
            Connector::Sqlite(_) => None,
        }
    }

    /// Opens a connection outside the pool (health checks, preflight).
    pub async fn dedicated(&self) -> Result<conn::ServerConn, BackendError> {
        self.pool.dedicated_connection().await.map(|c| *c)
    }
}
