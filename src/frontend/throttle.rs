//! Slows down repeated authentication failures from one address, and counts connections
//! per user against `[[users]] max_connections`. Both are in memory and bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Failures allowed from one address before answers are delayed.
const FREE_FAILURES: u32 = 3;
/// A failure is forgotten after this long without another one.
const WINDOW: Duration = Duration::from_secs(60);
/// The longest delay before a failed login is answered.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Addresses remembered at most (a flood of addresses resets the table, never grows it).
const MAX_ADDRESSES: usize = 10_000;

/// Recent authentication failures per client address.
#[derive(Default)]
pub struct AuthThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl AuthThrottle {
    /// Records a failure from `ip` and returns how long to wait before answering it:
    /// nothing for the first few, then doubling from 250 ms up to 5 s.
    pub fn failed(&self, ip: IpAddr) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, (_, at)| at.elapsed() < WINDOW);
            if map.len() >= MAX_ADDRESSES {
                map.clear();
            }
        }
        let now = Instant::now();
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) > WINDOW {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = now;
        delay_after(entry.0)
    }

    /// A successful login clears the address's record.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }
}

fn delay_after(failures: u32) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let steps = (failures - FREE_FAILURES - 1).min(8);
    (Duration::from_millis(250) * 2u32.pow(steps)).min(MAX_DELAY)
}

/// One user's open connections; a slot is held for the life of a session.
#[derive(Debug, Default, Clone)]
pub struct UserCount(Arc<AtomicUsize>);

/// Gives the slot back when the session ends.
#[derive(Debug)]
pub struct UserSlot(Arc<AtomicUsize>);

impl Drop for UserSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl UserCount {
    /// Takes a slot unless `limit` are taken already.
    pub fn take(&self, limit: Option<usize>) -> Option<UserSlot> {
        let prev = self.0.fetch_add(1, Ordering::SeqCst);
        let slot = UserSlot(self.0.clone());
        match limit {
            Some(max) if prev >= max => None, // dropping `slot` undoes the increment
            _ => Some(slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_free_then_doubling_then_capped() {
        let t = AuthThrottle::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let delays: Vec<u128> = (0..10).map(|_| t.failed(ip).as_millis()).collect();
        assert_eq!(delays, [0, 0, 0, 250, 500, 1000, 2000, 4000, 5000, 5000]);
        t.succeeded(ip);
        assert_eq!(t.failed(ip), Duration::ZERO);
        // Another address is not affected.
        assert_eq!(t.failed("10.0.0.2".parse().unwrap()), Duration::ZERO);
    }

    #[test]
    fn user_slots_are_bounded_and_returned() {
        let c = UserCount::default();
        let a = c.take(Some(2)).unwrap();
        let _b = c.take(Some(2)).unwrap();
        assert!(c.take(Some(2)).is_none());
        drop(a);
        assert!(c.take(Some(2)).is_some());
        assert!(c.take(None).is_some());
    }
}
