//! Pinning: on a backend that keeps server sessions (a direct PostgreSQL, not a
//! transaction pooler), a client that makes session state the proxy cannot carry from one
//! server session to another — a named prepared statement, `LISTEN`, a temporary table, a
//! session advisory lock, a cursor `WITH HOLD`, SQL `PREPARE` — keeps its server
//! connection between transactions, as it would connected directly. Its statements then
//! keep their own names on the server (`pg_prepared_statements` shows what the client
//! made, `DEALLOCATE` and `DISCARD` reach the server), and notifications reach it while it
//! idles.
//!
//! Pins are bounded per backend (`max_pinned`); a client that finds no pin left is served
//! as before (statements renamed and re-prepared where needed, the other session features
//! refused with 0A000). Owns the budget and the relay's pin state; the session parks and
//! resumes the pinned connection (`frontend::pinned`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::backend::conn::ServerConn;

use super::Relay;

/// How many clients of one backend may be pinned at once.
#[derive(Debug)]
pub struct PinBudget {
    used: AtomicUsize,
    max: usize,
    gauge: prometheus::IntGauge,
}

impl PinBudget {
    pub fn new(max: usize, gauge: prometheus::IntGauge) -> Arc<PinBudget> {
        Arc::new(PinBudget {
            used: AtomicUsize::new(0),
            max,
            gauge,
        })
    }

    /// The bound (`max_pinned`).
    pub fn max(&self) -> usize {
        self.max
    }

    /// Whether a pin is left now (a hint: [`PinBudget::take`] decides).
    pub fn available(&self) -> bool {
        self.used.load(Ordering::Relaxed) < self.max
    }

    /// Takes a pin, if one is left; it is given back when the slot drops.
    pub fn take(self: &Arc<Self>) -> Option<PinSlot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        self.gauge.inc();
        Some(PinSlot(self.clone()))
    }
}

/// One pinned client's share of its backend's budget.
#[derive(Debug)]
pub struct PinSlot(Arc<PinBudget>);

impl Drop for PinSlot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
        self.0.gauge.dec();
    }
}

/// Where a client stands.
#[derive(Debug, Default)]
pub enum Pin {
    /// Its backend cannot keep a session for it (a transaction pooler, SQLite).
    #[default]
    Off,
    /// It may be pinned when it makes session state, from this budget.
    Open(Arc<PinBudget>),
    /// It keeps its server connection until the session ends.
    Pinned { _slot: PinSlot },
    /// It made named statements unpinned (no pin was left, or the database moved under
    /// it): they live under proxy names, so it stays unpinned.
    Never,
}

impl Pin {
    pub fn is_pinned(&self) -> bool {
        matches!(self, Pin::Pinned { .. })
    }

    /// Whether session state made now can be kept (pinned, or a pin is left).
    pub fn can_keep(&self) -> bool {
        match self {
            Pin::Pinned { .. } => true,
            Pin::Open(budget) => budget.available(),
            Pin::Off | Pin::Never => false,
        }
    }
}

impl Relay {
    /// The client's backend for its next transaction: `budget` when it can pin there.
    pub fn offer_pin(&mut self, budget: Option<&Arc<PinBudget>>) {
        if matches!(self.pin, Pin::Pinned { .. } | Pin::Never) {
            return;
        }
        self.pin = match budget {
            Some(b) => Pin::Open(b.clone()),
            None => Pin::Off,
        };
    }

    /// The client makes session state on `server`: pin it there if it may be. The other
    /// clients' statements cached on the server are closed first, so that the server
    /// session holds what this client made and nothing else. Returns whether it is pinned.
    pub fn pin_to(&mut self, server: &mut ServerConn) -> bool {
        let slot = match &self.pin {
            Pin::Pinned { .. } => return true,
            Pin::Off | Pin::Never => return false,
            // Statements it made unpinned live under proxy names: it cannot pin now.
            Pin::Open(_) if self.stmts.has_named() => {
                self.pin = Pin::Never;
                return false;
            }
            Pin::Open(budget) => budget.take(),
        };
        let Some(slot) = slot else {
            tracing::debug!("no pin left on this backend (max_pinned); the client stays pooled");
            return false;
        };
        self.close_cached(server);
        server.statements.unnamed = None;
        server.dirty = true;
        self.pin = Pin::Pinned { _slot: slot };
        true
    }

    /// The client makes session state the proxy does not carry (LISTEN, a temporary
    /// table, …): pinned if it may be, and the connection is cleaned before anyone else
    /// uses it.
    pub fn keep_state(&mut self, server: &mut ServerConn) {
        self.kept_state |= self.pin_to(server);
        server.dirty = true;
    }

    /// A named statement is being made: pinned, or never to be.
    pub fn pin_for_statement(&mut self, server: &mut ServerConn) -> bool {
        if self.pin_to(server) {
            return true;
        }
        if !matches!(self.pin, Pin::Off) {
            self.pin = Pin::Never;
        }
        false
    }

    /// The pinned connection is gone (the database moved, the server ended it): the
    /// client's statements will be made again under proxy names where needed.
    pub fn unpin(&mut self) {
        if self.pin.is_pinned() {
            self.pin = Pin::Never;
        }
    }
}
