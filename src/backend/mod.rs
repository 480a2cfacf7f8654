//! Backends: the databases switchyard routes to. Each has a name, a pool of server
//! connections, its pooling behaviour and its metrics.
//!
//! - [`url`]: backend URLs.
//! - [`conn`]: one server connection.
//! - [`pool`]: the bb8 pool and its error sink.
//! - [`postgres`]: connecting to PostgreSQL (TLS, authentication, cancel).

pub mod conn;
pub mod error;
pub mod health;
pub mod pool;
pub mod postgres;
pub mod url;

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    #[error("no server connection to backend \"{backend}\" within {waited_ms} ms{}", last.as_ref().map(|l| format!(": {l}")).unwrap_or_default())]
    Timeout {
        backend: String,
        waited_ms: u128,
        last: Option<String>,
    },
    #[error("backend \"{backend}\": {source}")]
    Connect {
        backend: String,
        source: BackendError,
    },
    #[error("backend \"{backend}\" is down: {reason}")]
    Down { backend: String, reason: String },
}

/// One configured backend.
pub struct Backend {
    pub name: Arc<str>,
    /// The URL without its password.
    pub display: String,
    pub pooler: PoolerMode,
    pub pool: bb8::Pool<Manager>,
    pub metrics: BackendMetrics,
    pub pool_size: u32,
    connector: Arc<Connector>,
    shared: Arc<PoolShared>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backend({} {})", self.name, self.display)
    }
}

impl Backend {
    /// Builds a backend and its (lazy) pool. Nothing is connected yet.
    pub fn new(
        name: &str,
        cfg: &BackendConfig,
        pool_wait: Duration,
        metrics: &Metrics,
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
            BackendUrl::Sqlite(path) => {
                return Err(BackendError::Engine(format!(
                    "backends.{name}: the SQLite backend ({}) is not available in this build",
                    path.display()
                )));
            }
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
            .min_idle(Some(cfg.min_idle).filter(|&n| n > 0))
            .test_on_check_out(false)
            .connection_timeout(pool_wait)
            .idle_timeout(Some(cfg.idle_timeout.get()))
            .max_lifetime(Some(cfg.max_lifetime.get()))
            .error_sink(Box::new(ErrorSink {
                backend: name.clone(),
                metrics: metrics.clone(),
            }))
            .build_unchecked(manager);
        Ok(Backend {
            metrics: metrics.for_backend(&name),
            name,
            display,
            pooler,
            pool,
            pool_size: cfg.pool_size,
            connector,
            shared,
        })
    }

    /// Checks out a server connection, waiting up to the pool wait timeout. Returns it
    /// with the time it was obtained.
    pub async fn acquire(&self) -> Result<(Pooled, Instant), AcquireError> {
        let start = Instant::now();
        let result = if self
            .shared
            .down_permanent
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.acquire_when_down().await
        } else {
            let mut health = self.shared.health.subscribe();
            tokio::select! {
                biased;
                r = self.pool.get_owned() => r,
                _ = health::wait_down_permanent(&mut health) => self.acquire_when_down().await,
            }
        };
        let now = Instant::now();
        let waited = now - start;
        self.metrics.pool_wait_seconds.observe(waited.as_secs_f64());
        result.map(|c| (c, now)).map_err(|e| match e {
            bb8::RunError::User(source) => AcquireError::Connect {
                backend: self.name.to_string(),
                source,
            },
            bb8::RunError::TimedOut => AcquireError::Timeout {
                backend: self.name.to_string(),
                waited_ms: waited.as_millis(),
                last: self.shared.last_error(),
            },
        })
    }

    /// The backend is down with an error that will not fix itself: try once more in the
    /// background (bb8 opens a connection when asked), and fail this checkout now.
    async fn acquire_when_down(&self) -> Result<Pooled, bb8::RunError<BackendError>> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let _ = pool.get().await;
        });
        let reason = self.shared.health.get().last_error.unwrap_or_default();
        Err(bb8::RunError::User(BackendError::Engine(reason)))
    }

    /// Asks the server running `key` to cancel its current query.
    pub async fn cancel(&self, key: (u32, u32)) -> Result<(), BackendError> {
        match &*self.connector {
            Connector::Postgres { target, tls } => {
                postgres::connect::cancel(target, tls.as_ref(), key).await
            }
        }
    }

    /// Idle and in-use server connections.
    pub fn pool_counts(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.idle_connections, s.connections - s.idle_connections)
    }

    pub fn health(&self) -> health::HealthState {
        self.shared.health.get()
    }

    /// Opens a connection outside the pool (health checks, preflight).
    pub async fn dedicated(&self) -> Result<conn::ServerConn, BackendError> {
        self.pool.dedicated_connection().await
    }
}
