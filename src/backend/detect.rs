//! `pooler = "auto"`: does a PostgreSQL backend keep each server session for the whole
//! client connection (a PostgreSQL server itself, or a session-mode pooler), or may it
//! hand the next transaction to another one (a transaction pooler: PgBouncer, Supavisor,
//! Supabase on 6543)? Found out once, at the first connection that works, from two
//! signs:
//!
//! 1. the server's own `port` setting is the port switchyard connected to (a pooler
//!    listens on a port of its own; a NAT or port mapping also differs, and is then
//!    treated as a pooler, which is safe);
//! 2. with a second connection holding a transaction open, the first one's next
//!    transaction runs in the same server process (`pg_backend_pid()`): a transaction
//!    pooler hands the process the first released to the second connection (PgBouncer
//!    reuses the most recently released one first) and the first gets another.
//!
//! Both must hold for `none`; anything else, or any doubt, is `transaction`, which is
//! correct in front of anything. Until it is known the backend runs as `transaction`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use super::Backend;
use super::conn::ServerConn;
use super::error::BackendError;
use crate::config::PoolerMode;

/// A backend's pooler mode: as configured, or as detected.
#[derive(Debug)]
pub struct PoolerState {
    configured: PoolerMode,
    /// 0: not known yet (auto), 1: transaction, 2: none.
    resolved: AtomicU8,
    /// Why `auto` chose what it chose, for `/status` and the log.
    reason: Mutex<Option<String>>,
}

impl PoolerState {
    pub fn new(configured: PoolerMode) -> Self {
        let resolved = match configured {
            PoolerMode::Auto => 0,
            PoolerMode::Transaction => 1,
            PoolerMode::None => 2,
        };
        PoolerState {
            configured,
            resolved: AtomicU8::new(resolved),
            reason: Mutex::new(None),
        }
    }

    fn set(&self, mode: PoolerMode, reason: String) {
        let v = if mode == PoolerMode::None { 2 } else { 1 };
        self.resolved.store(v, Ordering::Release);
        if let Ok(mut r) = self.reason.lock() {
            *r = Some(reason);
        }
    }
}

impl Backend {
    /// The mode in force: `transaction` or `none` (never `auto`).
    pub fn pooler(&self) -> PoolerMode {
        match self.pooler.resolved.load(Ordering::Acquire) {
            2 => PoolerMode::None,
            _ => PoolerMode::Transaction,
        }
    }

    /// The configured mode, and for `auto`, what was found and why (None: not yet).
    pub fn pooler_detection(&self) -> (PoolerMode, Option<String>) {
        let reason = self.pooler.reason.lock().ok().and_then(|r| r.clone());
        (self.pooler.configured, reason)
    }

    /// The pins clients may take here: only where server sessions are kept.
    pub fn session_pins(&self) -> Option<&std::sync::Arc<crate::relay::pin::PinBudget>> {
        self.pins
            .as_ref()
            .filter(|_| self.pooler() == PoolerMode::None)
    }

    /// Whether `auto` has yet to find out.
    pub fn pooler_unknown(&self) -> bool {
        self.pooler.resolved.load(Ordering::Acquire) == 0
    }

    /// Finds out, for `pooler = "auto"`, and records it. An error leaves it unknown (the
    /// backend keeps running as `transaction`) for the monitor to try again.
    pub async fn detect_pooler(&self) -> Result<PoolerMode, BackendError> {
        let Some(port) = self.postgres_port() else {
            self.pooler
                .set(PoolerMode::None, "an embedded engine".into());
            return Ok(PoolerMode::None);
        };
        let mut first = self.dedicated().await?;
        let mut second = self.dedicated().await?;
        let found = probe(&mut first, &mut second, port).await;
        first.terminate().await;
        second.terminate().await;
        let (mode, reason) = found?;
        tracing::info!(backend = %self.name, pooler = ?mode, %reason, "pooler = \"auto\": detected");
        self.pooler.set(mode, reason);
        Ok(mode)
    }
}

/// One value from the proxy's own query.
async fn scalar(conn: &mut ServerConn, sql: &str) -> Result<String, BackendError> {
    let res = conn.own_query(sql).await?;
    if let Some((code, message)) = res.error {
        return Err(BackendError::Server {
            addr: conn.addr.to_string(),
            code,
            message,
        });
    }
    Ok(res
        .rows
        .last()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default())
}

async fn probe(
    first: &mut ServerConn,
    second: &mut ServerConn,
    port: u16,
) -> Result<(PoolerMode, String), BackendError> {
    let server_port = scalar(first, "select current_setting('port')").await?;
    if server_port != port.to_string() {
        return Ok((
            PoolerMode::Transaction,
            format!(
                "the server's port is {server_port}, not the {port} connected to: something (a pooler) is in between"
            ),
        ));
    }
    let pid = scalar(first, "select pg_backend_pid()").await?;
    let held = scalar(second, "begin; select pg_backend_pid()").await?;
    let again = scalar(first, "select pg_backend_pid()").await?;
    scalar(second, "rollback").await?;
    if held != pid && again == pid {
        Ok((
            PoolerMode::None,
            format!("a PostgreSQL server on port {port}: each connection keeps its server process"),
        ))
    } else {
        Ok((
            PoolerMode::Transaction,
            format!(
                "transactions of one connection ran in different server processes ({pid}, then {again}): a transaction pooler"
            ),
        ))
    }
}
