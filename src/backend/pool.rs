//! The bb8 pool of server connections for one backend: the connection manager, and an
//! error sink so that failed connects are logged and counted instead of vanishing into
//! bb8's bare `TimedOut`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustls::ClientConfig;

use super::conn::ServerConn;
use super::error::BackendError;
use super::health::Health;
use super::postgres::connect;
use super::sqlite::SqliteEngine;
use super::url::PgTarget;
use crate::metrics::Metrics;

/// How to open a connection for this backend.
pub enum Connector {
    Postgres {
        target: PgTarget,
        tls: Option<Arc<ClientConfig>>,
    },
    Sqlite(Arc<SqliteEngine>),
}

/// Shared between the manager, the error sink and the backend: the last connect error
/// (to explain a pool timeout to a client) and connection ids.
#[derive(Default)]
pub struct PoolShared {
    /// The last connect error: for the log, and as a client may see it.
    pub last_error: Mutex<Option<(String, String)>>,
    next_id: AtomicU64,
    pub health: Health,
}

impl PoolShared {
    pub fn last_error(&self) -> Option<(String, String)> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_error(&self, e: Option<(String, String)>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = e;
        }
    }
}

/// bb8's view of a backend.
pub struct Manager {
    pub backend: Arc<str>,
    pub connector: Arc<Connector>,
    pub shared: Arc<PoolShared>,
    pub metrics: Metrics,
}

impl bb8::ManageConnection for Manager {
    /// Boxed: the pool moves a connection in and out of its idle queue at every
    /// transaction, and a pointer moves cheaper than the whole struct.
    type Connection = Box<ServerConn>;
    type Error = BackendError;

    async fn connect(&self) -> Result<Box<ServerConn>, BackendError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .connect_attempts
            .with_label_values(&[&self.backend])
            .inc();
        let result = match &*self.connector {
            Connector::Postgres { target, tls } => connect::connect(target, tls.as_ref(), id).await,
            Connector::Sqlite(engine) => engine.connect(id).await,
        };
        match &result {
            Ok(conn) => {
                self.shared.set_error(None);
                if self.shared.health.mark_up() {
                    tracing::info!(backend = %self.backend, "backend is up again");
                }
                self.metrics
                    .backend_up
                    .with_label_values(&[&self.backend])
                    .set(1);
                tracing::debug!(backend = %self.backend, id, server = %conn.addr, "server connection opened");
            }
            Err(e) => {
                self.shared
                    .set_error(Some((e.to_string(), e.client_reason())));
                self.metrics
                    .connect_failures
                    .with_label_values(&[&self.backend, e.kind()])
                    .inc();
                self.metrics
                    .count_error(crate::metrics::ErrorKind::Backend(e.kind()));
                if self.shared.health.mark_down(e) {
                    tracing::warn!(backend = %self.backend, error = %e, "backend is down");
                }
                self.metrics
                    .backend_up
                    .with_label_values(&[&self.backend])
                    .set(0);
            }
        }
        result.map(Box::new)
    }

    /// Called at every checkout of an idle connection: a connection the server closed
    /// or spoke on while it was idle is dropped and another one taken.
    async fn is_valid(&self, conn: &mut Box<ServerConn>) -> Result<(), BackendError> {
        if conn.stream.idle_and_open() {
            return Ok(());
        }
        tracing::debug!(backend = %self.backend, server = %conn.addr, "idle server connection was closed by the server; dropped at checkout");
        self.metrics
            .dead_idle_connections
            .with_label_values(&[&self.backend])
            .inc();
        Err(BackendError::Closed {
            addr: conn.addr.to_string(),
        })
    }

    fn has_broken(&self, conn: &mut Box<ServerConn>) -> bool {
        conn.broken || !conn.rbuf.is_empty()
    }
}

/// Receives the errors bb8 would otherwise swallow (they are counted where they happen,
/// in `Manager::connect`).
#[derive(Clone)]
pub struct ErrorSink {
    pub backend: Arc<str>,
}

impl std::fmt::Debug for ErrorSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ErrorSink({})", self.backend)
    }
}

impl bb8::ErrorSink<BackendError> for ErrorSink {
    fn sink(&self, error: BackendError) {
        // Counted and reflected in health by Manager::connect; bb8 only tells us again.
        tracing::debug!(backend = %self.backend, error = %error, "pool reported a connection error");
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<BackendError>> {
        Box::new(self.clone())
    }
}
