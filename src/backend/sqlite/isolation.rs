//! PostgreSQL's isolation levels on SQLite, and how long a statement waits for the write
//! lock.
//!
//! SQLite in WAL mode gives each transaction a snapshot at its first read; a transaction
//! that read and then writes after another connection committed fails with
//! `SQLITE_BUSY_SNAPSHOT`, which no waiting can fix, and one that tries to write while
//! another holds the lock is refused at once (SQLite calls no busy handler for a read
//! transaction that wants to write). Under PostgreSQL's default READ COMMITTED neither
//! happens: each statement sees what is committed when it starts. So in READ COMMITTED a
//! transaction that has only read so far and now writes (or says `FOR UPDATE`) ends its
//! read transaction — its reads needed no snapshot — and starts again as the writer,
//! waiting for the lock like any writer ([`Isolation::restart_to_write`]). REPEATABLE READ
//! and SERIALIZABLE keep the snapshot, and a conflict is the serialization failure
//! (40001) PostgreSQL would give.

use std::time::Duration;

/// A transaction's isolation level (READ UNCOMMITTED behaves as READ COMMITTED, as in
/// PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    #[default]
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    /// Parses a level as `SET` and `SHOW` spell it (`read committed`, `REPEATABLE READ`).
    pub fn parse(s: &str) -> Option<Isolation> {
        match s
            .trim()
            .trim_matches('\'')
            .to_ascii_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .as_str()
        {
            "read committed" | "read uncommitted" => Some(Isolation::ReadCommitted),
            "repeatable read" => Some(Isolation::RepeatableRead),
            "serializable" => Some(Isolation::Serializable),
            _ => None,
        }
    }

    pub fn from_sql(level: &sqlparser::ast::TransactionIsolationLevel) -> Isolation {
        use sqlparser::ast::TransactionIsolationLevel as L;
        match level {
            L::RepeatableRead | L::Snapshot => Isolation::RepeatableRead,
            L::Serializable => Isolation::Serializable,
            L::ReadCommitted | L::ReadUncommitted => Isolation::ReadCommitted,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read committed",
            Isolation::RepeatableRead => "repeatable read",
            Isolation::Serializable => "serializable",
        }
    }

    /// Whether a transaction that has only read may end its read transaction and start
    /// again as a writer (READ COMMITTED: its reads needed no common snapshot).
    pub fn restart_to_write(self) -> bool {
        self == Isolation::ReadCommitted
    }
}

/// How long a statement waits for SQLite's write lock when the session sets no
/// `lock_timeout` (PostgreSQL would wait without end; a bound keeps a stuck writer from
/// holding every other client forever).
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);

/// The wait for the write lock from the session's `lock_timeout` (`0`, `250ms`, `2s`,
/// `1min`, or a number of milliseconds); 0 or unreadable means [`DEFAULT_LOCK_WAIT`].
pub fn lock_wait(lock_timeout: Option<&str>) -> Duration {
    let Some(v) = lock_timeout.map(|v| v.trim().trim_matches('\'').to_ascii_lowercase()) else {
        return DEFAULT_LOCK_WAIT;
    };
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let Ok(n) = num.parse::<f64>() else {
        return DEFAULT_LOCK_WAIT;
    };
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n * 1e3,
        "min" => n * 60e3,
        "h" => n * 3600e3,
        "us" => n / 1e3,
        _ => return DEFAULT_LOCK_WAIT,
    };
    if ms <= 0.0 {
        DEFAULT_LOCK_WAIT
    } else {
        Duration::from_secs_f64(ms / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_waits() {
        assert_eq!(
            Isolation::parse("READ  Committed"),
            Some(Isolation::ReadCommitted)
        );
        assert_eq!(
            Isolation::parse("'repeatable read'"),
            Some(Isolation::RepeatableRead)
        );
        assert_eq!(
            Isolation::parse("read uncommitted"),
            Some(Isolation::ReadCommitted)
        );
        assert_eq!(Isolation::parse("nonsense"), None);
        assert_eq!(lock_wait(Some("0")), DEFAULT_LOCK_WAIT);
        assert_eq!(lock_wait(None), DEFAULT_LOCK_WAIT);
        assert_eq!(lock_wait(Some("250ms")), Duration::from_millis(250));
        assert_eq!(lock_wait(Some("'2s'")), Duration::from_secs(2));
        assert_eq!(lock_wait(Some("150")), Duration::from_millis(150));
        assert_eq!(lock_wait(Some("1min")), Duration::from_secs(60));
    }
}
