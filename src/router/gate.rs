//! The gate every transaction passes before it takes a server connection: while paused,
//! new transactions wait; transactions already inside are counted so a switch can wait
//! for them to drain. Entering increments the count before checking the pause flag, and
//! pausing sets the flag before reading the count, so neither side can miss the other.
//! At shutdown the gate closes: those waiting at it are turned away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// Pause/drain gate.
#[derive(Debug)]
pub struct Gate {
    paused: AtomicBool,
    closed: AtomicBool,
    inflight: AtomicUsize,
    drained: Notify,
    resumed: watch::Sender<u64>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            paused: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            drained: Notify::new(),
            resumed: watch::channel(0).0,
        }
    }
}

/// The gate was closed (shutdown) while a transaction waited to enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Held by a transaction while it runs; dropping it leaves the gate.
#[derive(Debug)]
pub struct InFlight {
    gate: Arc<Gate>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.gate.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.gate.drained.notify_waiters();
        }
    }
}

impl Gate {
    /// Waits while paused, then enters; turned away if the gate closes meanwhile.
    pub async fn enter(self: &Arc<Gate>) -> Result<InFlight, Closed> {
        loop {
            self.inflight.fetch_add(1, Ordering::SeqCst);
            if !self.paused.load(Ordering::SeqCst) {
                return Ok(InFlight { gate: self.clone() });
            }
            let mut rx = self.resumed.subscribe();
            drop(InFlight { gate: self.clone() });
            while self.paused.load(Ordering::SeqCst) {
                if self.closed.load(Ordering::SeqCst) {
                    return Err(Closed);
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
    }

    /// Shutdown: pauses for good and turns away every transaction waiting to enter.
    pub fn close(&self) {
        self.paused.store(true, Ordering::SeqCst);
        self.closed.store(true, Ordering::SeqCst);
        self.resumed.send_modify(|g| *g += 1);
    }

    /// Stops new transactions from entering.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Lets waiting transactions in (not after [`Gate::close`]).
    pub fn resume(&self) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        self.paused.store(false, Ordering::SeqCst);
        self.resumed.send_modify(|g| *g += 1);
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Waits until no transaction is inside, up to `limit`. True when drained.
    pub async fn wait_drained(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.drained.notified();
            if self.inflight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inflight() == 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pause_holds_and_drain_waits() {
        let gate = Arc::new(Gate::default());
        let held = gate.enter().await.unwrap();
        gate.pause();
        assert!(!gate.wait_drained(Duration::from_millis(20)).await);
        let g2 = gate.clone();
        let waiter = tokio::spawn(async move { g2.enter().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(held);
        assert!(gate.wait_drained(Duration::from_millis(100)).await);
        gate.resume();
        let inside = waiter.await.unwrap().unwrap();
        assert_eq!(gate.inflight(), 1);
        drop(inside);
        assert_eq!(gate.inflight(), 0);
    }

    #[tokio::test]
    async fn closing_turns_away_those_waiting_and_stays_closed() {
        let gate = Arc::new(Gate::default());
        gate.pause();
        let g2 = gate.clone();
        let waiter = tokio::spawn(async move { g2.enter().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.close();
        assert_eq!(waiter.await.unwrap().err(), Some(Closed));
        gate.resume();
        assert!(gate.is_paused());
        assert_eq!(gate.inflight(), 0);
    }
}
