//! Waiting for SQLite's write lock. SQLite's own busy timeout sleeps 1, 2, 5, 10 … and
//! then 100 ms between tries; a writer that commits back to back frees the lock only for
//! microseconds at a time, so such a waiter can starve for the whole timeout (measured
//! here: a changelog trim against an unthrottled writer waited 0.2–10 s and once gave up).
//! [`wait`] tries again every 100 µs at first, then every 500 µs, until its limit: the
//! same trim then waited at most 27 ms.
//!
//! The proxy's connections each run on a thread of their own, and their limit is that
//! thread's (set from the session's `lock_timeout` before each statement, [`set_limit`]).

use std::cell::Cell;
use std::time::{Duration, Instant};

use rusqlite::Connection;

thread_local! {
    /// When the current wait began (the handler runs on the thread running the statement).
    static STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The limit of [`wait_session`] on this thread.
    static LIMIT: Cell<Duration> = const { Cell::new(Duration::from_secs(30)) };
}

/// A busy handler that gives up after `LIMIT_MS` milliseconds of waiting.
fn wait<const LIMIT_MS: u64>(tries: i32) -> bool {
    wait_for(tries, Duration::from_millis(LIMIT_MS))
}

/// A busy handler that gives up after this thread's [`set_limit`].
fn wait_session(tries: i32) -> bool {
    wait_for(tries, LIMIT.with(Cell::get))
}

/// Sets how long statements on this thread wait for the lock (a session's `lock_timeout`).
pub fn set_limit(limit: Duration) {
    LIMIT.with(|l| l.set(limit));
}

fn wait_for(tries: i32, limit: Duration) -> bool {
    let now = Instant::now();
    // SQLite counts the tries of each wait from 0.
    let started = STARTED.with(|s| {
        if tries == 0 {
            s.set(Some(now));
        }
        s.get().unwrap_or(now)
    });
    if now.duration_since(started) >= limit {
        return false;
    }
    let pause = if tries < 20 { 100 } else { 500 };
    std::thread::sleep(Duration::from_micros(pause));
    true
}

/// Installs the polling busy handler whose limit is the thread's [`set_limit`] (the
/// proxy's connections).
pub fn wait_per_session(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(wait_session))
}

/// Installs the polling busy handler with a limit of 10 s (sync and live sync).
pub fn wait_10s(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(wait::<10_000>))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_after_its_limit_and_starts_afresh() {
        let t = Instant::now();
        let mut tries = 0;
        while wait::<30>(tries) {
            tries += 1;
        }
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        assert!(tries > 20, "polls often: {tries} tries");
        // A new wait (tries = 0) measures from its own start.
        assert!(wait::<30>(0));
    }

    #[test]
    fn a_waiting_writer_gets_the_lock_from_a_busy_writer() {
        let dir = std::env::temp_dir().join(format!("sy-busy-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("t.db");
        let _ = std::fs::remove_file(&path);
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INT);")
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (path.clone(), stop.clone());
        let writer = std::thread::spawn(move || {
            let mut c = Connection::open(p).unwrap();
            wait_per_session(&mut c).unwrap();
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                c.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1); COMMIT;")
                    .unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut other = Connection::open(&path).unwrap();
        wait_per_session(&mut other).unwrap();
        let result = other.execute_batch("BEGIN IMMEDIATE; DELETE FROM t; COMMIT;");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(result.is_ok(), "{result:?}");
    }
}
