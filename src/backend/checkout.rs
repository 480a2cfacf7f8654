//! Checking a server connection out of a backend: straight from the pool while the
//! backend is up; while it is down, wait (bounded) for the monitor to see it recover,
//! and fail at once when the error needs an operator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::FutureExt;
use tokio::time::timeout_at;

use super::health::{self, HealthState};
use super::{AcquireError, Backend, Pooled};

impl Backend {
    /// Checks out a server connection, waiting up to the pool wait timeout. Returns it
    /// with the time it was obtained.
    pub async fn acquire(&self) -> Result<(Pooled, Instant), AcquireError> {
        // The common case, a healthy backend with an idle connection, needs none of the
        // waiting machinery (a dropped bb8 `get` gives nothing up: it is cancel-safe), and
        // no clock but the one the caller needs.
        if self.shared.health.is_up()
            && let Some(Ok(conn)) = self.pool.get_owned().now_or_never()
        {
            self.metrics.pool_wait_seconds.observe(0.0);
            self.note_checkout();
            return Ok((conn, Instant::now()));
        }
        let start = Instant::now();
        let _waiting = Waiting::enter(&self.waiting);
        let result = self.acquire_until(start + self.pool_wait).await;
        let now = Instant::now();
        self.metrics
            .pool_wait_seconds
            .observe((now - start).as_secs_f64());
        if result.is_ok() {
            self.note_checkout();
        }
        result.map(|c| (c, now))
    }

    fn timeout_error(&self, started: Instant) -> AcquireError {
        AcquireError::Timeout {
            backend: self.name.to_string(),
            waited_ms: started.elapsed().as_millis(),
            last: self.shared.last_error(),
        }
    }

    fn down_error(&self, state: &HealthState) -> AcquireError {
        AcquireError::Down {
            backend: self.name.to_string(),
            reason: state
                .last_error
                .clone()
                .unwrap_or_else(|| "unknown error".into()),
            client_reason: state
                .client_reason
                .clone()
                .unwrap_or_else(|| "unknown error".into()),
        }
    }

    async fn acquire_until(&self, deadline: Instant) -> Result<Pooled, AcquireError> {
        let started = Instant::now();
        let mut watch = self.shared.health.subscribe();
        loop {
            let state = watch.borrow_and_update().clone();
            if !state.up {
                if state.permanent {
                    return Err(self.down_error(&state));
                }
                if timeout_at(deadline.into(), health::wait_up(&mut watch))
                    .await
                    .is_err()
                {
                    return Err(self.timeout_error(started));
                }
                continue;
            }
            tokio::select! {
                biased;
                r = timeout_at(deadline.into(), self.pool.get_owned()) => {
                    return match r {
                        Ok(Ok(conn)) => Ok(conn),
                        Ok(Err(bb8::RunError::User(source))) => Err(AcquireError::Connect { backend: self.name.to_string(), source }),
                        Ok(Err(bb8::RunError::TimedOut)) | Err(_) => Err(self.timeout_error(started)),
                    };
                }
                _ = health::wait_down(&mut watch) => {}
            }
        }
    }
}

/// Counts one checkout as waiting for as long as it lives (a dropped, cancelled checkout
/// stops counting too).
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
