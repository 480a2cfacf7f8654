//! A backend's health as the proxy last saw it: up, or down with the error and whether
//! that error will fix itself (a refused connection) or needs an operator (a wrong
//! password). Waiting clients watch it, so they fail fast on permanent errors instead of
//! waiting out the pool timeout.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::BackendError;

/// A snapshot of a backend's health.
#[derive(Debug, Clone)]
pub struct HealthState {
    pub up: bool,
    pub last_error: Option<String>,
    /// The last error as a client may see it (no server address).
    pub client_reason: Option<String>,
    /// The last error needs an operator (authentication, missing database, TLS trust).
    pub permanent: bool,
    /// Consecutive failed connection attempts.
    pub failures: u32,
    pub since: Instant,
    /// A connection attempt has been made at least once (so `up` is known, not assumed).
    pub checked: bool,
}

/// Shared health of one backend.
#[derive(Debug)]
pub struct Health {
    tx: watch::Sender<HealthState>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            tx: watch::channel(HealthState {
                up: true,
                last_error: None,
                client_reason: None,
                permanent: false,
                failures: 0,
                since: Instant::now(),
                checked: false,
            })
            .0,
        }
    }
}

/// True for errors that retrying will not fix.
pub fn is_permanent(e: &BackendError) -> bool {
    match e {
        BackendError::Server { code, .. } => code.starts_with("28") || code == "3D000",
        BackendError::NoPassword { .. }
        | BackendError::UnsupportedAuth { .. }
        | BackendError::Scram { .. }
        | BackendError::TlsRefused { .. }
        | BackendError::TlsHandshake { .. } => true,
        _ => false,
    }
}

/// Resolves when the backend is marked down.
pub async fn wait_down(rx: &mut watch::Receiver<HealthState>) {
    let _ = rx.wait_for(|h| !h.up).await;
}

/// Resolves when the backend is marked up again.
pub async fn wait_up(rx: &mut watch::Receiver<HealthState>) {
    let _ = rx.wait_for(|h| h.up).await;
}

/// The ceiling of the reconnect delay after `failures` consecutive failures:
/// `base * 2^(failures-1)`, capped.
pub fn backoff_ceiling(base: Duration, cap: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    base.saturating_mul(1u32 << exp).min(cap)
}

/// A "full jitter" delay: uniformly random between zero and the ceiling.
pub fn full_jitter(ceiling: Duration) -> Duration {
    let ms = ceiling.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random::<u64>() % (ms + 1))
}

impl Health {
    pub fn get(&self) -> HealthState {
        self.tx.borrow().clone()
    }

    /// True while the backend is up (no clone of the state).
    pub fn is_up(&self) -> bool {
        self.tx.borrow().up
    }

    pub fn subscribe(&self) -> watch::Receiver<HealthState> {
        self.tx.subscribe()
    }

    /// A connection succeeded. Returns true if the backend was down.
    pub fn mark_up(&self) -> bool {
        let mut was_down = false;
        self.tx.send_if_modified(|s| {
            if s.up && s.failures == 0 && s.checked {
                return false;
            }
            was_down = !s.up;
            *s = HealthState {
                up: true,
                last_error: s.last_error.take(),
                client_reason: s.client_reason.take(),
                permanent: false,
                failures: 0,
                since: if s.up { s.since } else { Instant::now() },
                checked: true,
            };
            true
        });
        was_down
    }

    /// A connection failed. Returns true if the backend was up.
    pub fn mark_down(&self, e: &BackendError) -> bool {
        let mut was_up = false;
        self.tx.send_modify(|s| {
            was_up = s.up;
            s.failures = s.failures.saturating_add(1);
            s.last_error = Some(e.to_string());
            s.client_reason = Some(e.client_reason());
            s.permanent = is_permanent(e);
            s.checked = true;
            if s.up {
                s.up = false;
                s.since = Instant::now();
            }
        });
        was_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let (b, c) = (Duration::from_millis(100), Duration::from_secs(2));
        let ceilings: Vec<u128> = (1..=8)
            .map(|f| backoff_ceiling(b, c, f).as_millis())
            .collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        for _ in 0..100 {
            assert!(full_jitter(Duration::from_millis(50)) <= Duration::from_millis(50));
        }
        assert_eq!(backoff_ceiling(b, c, 1000), c);
    }

    #[test]
    fn transitions() {
        let h = Health::default();
        let refused = BackendError::Connect {
            addr: "x".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        };
        assert!(h.mark_down(&refused));
        assert!(!h.get().up && !h.get().permanent);
        let auth = BackendError::Server {
            addr: "x".into(),
            code: "28P01".into(),
            message: "password authentication failed".into(),
        };
        assert!(!h.mark_down(&auth));
        assert!(h.get().permanent);
        assert_eq!(h.get().failures, 2);
        assert!(h.mark_up());
        assert!(h.get().up);
        assert_eq!(h.get().failures, 0);
    }
}
