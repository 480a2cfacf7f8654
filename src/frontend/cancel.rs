//! Cancel keys: each client gets a proxy-issued (pid, secret). A CancelRequest with a
//! matching pair is forwarded to the server connection that client holds at that moment,
//! using that server's own key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::Backend;

/// Where a client's query is running now.
#[derive(Clone)]
pub struct CancelTarget {
    pub backend: Arc<Backend>,
    pub key: (u32, u32),
}

/// One client's cancel slot.
pub struct CancelSlot {
    pub secret: u32,
    target: Mutex<Option<CancelTarget>>,
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

    pub fn len(&self) -> usize {
        self.slots.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
