//! One owner for the app's tasks and for shutdown. Every task the proxy starts (client
//! sessions, health monitors, the admin API, a switch, the manual-pause timer, live sync's
//! apply loop and its retries) is spawned through a [`Lifecycle`], which tracks it; one
//! cancellation token tells them all to stop, and [`Lifecycle::wait`] waits until they
//! have. Parts that can end on their own (a backend removed by a reload) get a child token.
//!
//! Tasks spawned elsewhere are bound to an owner that is tracked: a database client's
//! connection driver ends when its client is dropped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The app's tasks and its shutdown signal. Cheap to clone; clones share both.
#[derive(Clone, Default)]
pub struct Lifecycle {
    token: CancellationToken,
    tracker: TaskTracker,
    /// Set before the token is cancelled: a load costs nothing on a hot path (client
    /// sessions check it while idle instead of polling the token).
    stopping: Arc<AtomicBool>,
}

impl Lifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns a tracked task on the current runtime.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Asks every task to stop.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.token.cancel();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The flag behind [`Lifecycle::is_shutting_down`], for a poll loop to check.
    pub fn stopping_flag(&self) -> &AtomicBool {
        &self.stopping
    }

    /// Resolves once shutdown has been asked for.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// The shutdown token (to wait on it without holding the whole lifecycle).
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// A token cancelled with this one, or on its own (a backend retired by a reload).
    pub fn child(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// Waits until every tracked task has ended, up to `limit`; true when they all did.
    /// No task can be added once this is called.
    pub async fn wait(&self, limit: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }
}

/// Spawns a task bound to an owner rather than to the app: a database or HTTP client's
/// connection driver (it ends when its client is dropped), a reader feeding a channel (it
/// ends when the receiver is dropped). Its owner is itself tracked, or belongs to a
/// one-shot command. The only spawn outside [`Lifecycle`].
pub fn spawn_owned<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_reaches_every_task_and_wait_sees_them_end() {
        let life = Lifecycle::new();
        for _ in 0..3 {
            let l = life.clone();
            life.spawn(async move { l.stopped().await });
        }
        let child = life.child();
        assert_eq!(life.running(), 3);
        assert!(!life.wait(Duration::from_millis(20)).await);
        life.shutdown();
        assert!(child.is_cancelled());
        assert!(life.wait(Duration::from_secs(1)).await);
        assert_eq!(life.running(), 0);
    }
}
