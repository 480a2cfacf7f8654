//! Cancel keys: each client gets a proxy-issued (pid, secret). A CancelRequest with a
//! matching pair is forwarded to the server connection that client holds at that moment,
//! using that server's own key. The same slot says since when that transaction runs and
//! how it began, which is what a switch asks before pausing ([`InflightView`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::backend::Backend;
use crate::protocol::fe;
use crate::router::inflight::{FirstStatement, InflightView, OpenTx};

/// Where a client's transaction is running now.
#[derive(Clone)]
pub struct CancelTarget {
    pub backend: Arc<Backend>,
    pub key: (u32, u32),
    pub since: Instant,
    pub first: FirstStatement,
}

/// How a transaction began, from the client message that needed a server connection:
/// the start of the SQL of a Query or Parse, the statement name of a Bind. Looks at no
/// more than the first bytes it keeps (statement names are short).
pub fn first_statement(tag: u8, msg: &[u8]) -> FirstStatement {
    const LOOK: usize = 64;
    let body = msg.get(5..).unwrap_or_default();
    // A NUL-terminated string at the start of `b`, and where the next one starts.
    let cstr = |b: &[u8]| -> (usize, usize) {
        let end = memchr::memchr(0, &b[..b.len().min(LOOK)]).unwrap_or(b.len().min(LOOK));
        (end, (end + 1).min(b.len()))
    };
    match tag {
        fe::QUERY => FirstStatement::new(&body[..cstr(body).0]),
        fe::PARSE => {
            let (_, rest) = cstr(body);
            let sql = &body[rest..];
            FirstStatement::new(&sql[..cstr(sql).0])
        }
        fe::BIND => {
            let (_, rest) = cstr(body);
            let name = &body[rest..];
            let name = &name[..cstr(name).0];
            let prefix = b"(prepared) ";
            let mut text = [0u8; LOOK + 11];
            text[..prefix.len()].copy_from_slice(prefix);
            text[prefix.len()..prefix.len() + name.len()].copy_from_slice(name);
            FirstStatement::new(&text[..prefix.len() + name.len()])
        }
        _ => FirstStatement::EMPTY,
    }
}

/// One client's cancel slot.
pub struct CancelSlot {
    pub secret: u32,
    target: Mutex<Option<CancelTarget>>,
    /// The session's waker while it waits with no transaction open, so that a shutdown
    /// can wake it ([`CancelRegistry::wake_all`]).
    pub wake: futures::task::AtomicWaker,
}

impl CancelSlot {
    pub fn set(&self, target: Option<CancelTarget>) {
        if let Ok(mut t) = self.target.lock() {
            *t = target;
        }
    }

    fn get(&self) -> Option<CancelTarget> {
        self.target.lock().ok().and_then(|t| t.clone())
    }
}

/// All clients' slots by proxy pid.
#[derive(Default)]
pub struct CancelRegistry {
    slots: Mutex<HashMap<u32, Arc<CancelSlot>>>,
}

/// Removes the slot when the client's session ends.
pub struct CancelHandle {
    registry: Arc<CancelRegistry>,
    pub pid: u32,
    pub slot: Arc<CancelSlot>,
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.slots.lock() {
            m.remove(&self.pid);
        }
    }
}

/// What a cancel request came to.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    Sent,
    Idle,
    Unknown,
}

impl CancelOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            CancelOutcome::Sent => "sent",
            CancelOutcome::Idle => "idle",
            CancelOutcome::Unknown => "unknown",
        }
    }
}

impl CancelRegistry {
    /// Issues a fresh (pid, secret) for a new client.
    pub fn register(self: &Arc<Self>) -> CancelHandle {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let pid = loop {
            let pid = rand::random::<u32>() & 0x7fff_ffff;
            if pid != 0 && !slots.contains_key(&pid) {
                break pid;
            }
        };
        let slot = Arc::new(CancelSlot {
            secret: rand::random(),
            target: Mutex::new(None),
            wake: futures::task::AtomicWaker::new(),
        });
        slots.insert(pid, slot.clone());
        CancelHandle {
            registry: self.clone(),
            pid,
            slot,
        }
    }

    /// Handles a CancelRequest. Wrong secrets are treated like unknown pids.
    pub async fn cancel(&self, pid: u32, secret: u32) -> CancelOutcome {
        let slot = self.slots.lock().ok().and_then(|m| m.get(&pid).cloned());
        let Some(slot) = slot.filter(|s| s.secret == secret) else {
            return CancelOutcome::Unknown;
        };
        let Some(target) = slot.get() else {
            return CancelOutcome::Idle;
        };
        match target.backend.cancel(target.key).await {
            Ok(()) => CancelOutcome::Sent,
            Err(e) => {
                tracing::warn!(backend = %target.backend.name, error = %e, "forwarding a cancel request failed");
                CancelOutcome::Unknown
            }
        }
    }

    /// Wakes every session (the proxy is shutting down: those with no transaction open
    /// see it and close).
    pub fn wake_all(&self) {
        let slots: Vec<Arc<CancelSlot>> = self
            .slots
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for s in slots {
            s.wake.wake();
        }
    }

    /// Every client's open transaction.
    fn open(&self) -> Vec<OpenTx> {
        let slots: Vec<Arc<CancelSlot>> = self
            .slots
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        slots
            .iter()
            .filter_map(|s| s.get())
            .map(|t| OpenTx {
                backend: t.backend.name.to_string(),
                pid: t.key.0,
                age: t.since.elapsed(),
                first: t.first,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.slots.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl InflightView for CancelRegistry {
    fn open_transactions(&self) -> Vec<OpenTx> {
        self.open()
    }
}

#[cfg(test)]
mod first_statement_tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn names_the_sql_or_the_statement() {
        let q = msg(fe::QUERY, b"BEGIN; UPDATE t SET x = 1\0");
        assert_eq!(
            first_statement(fe::QUERY, &q).text(),
            "BEGIN; UPDATE t SET x = 1"
        );
        let p = msg(fe::PARSE, b"s1\0SELECT $1\0\0\0");
        assert_eq!(first_statement(fe::PARSE, &p).text(), "SELECT $1");
        let b = msg(fe::BIND, b"\0s1\0\0\0");
        assert_eq!(first_statement(fe::BIND, &b).text(), "(prepared) s1");
        assert_eq!(first_statement(fe::SYNC, &msg(fe::SYNC, b"")).text(), "");
        // A long statement is only looked at as far as it is kept.
        let long = format!("SELECT {}\0", "x, ".repeat(10_000));
        let f = first_statement(fe::QUERY, &msg(fe::QUERY, long.as_bytes()));
        assert!(f.text().starts_with("SELECT x, x,") && f.text().ends_with('…'));
    }
}
