//! What a switch needs to know about the transactions in flight before it pauses anyone:
//! which are open, on which server process, since when, and how they began. The frontend
//! records this per client (in its cancel slot, set once per transaction) and answers
//! through [`InflightView`]; the switch refuses to start while one is older than the drain
//! bound, since the pause would only wait for it and then fail.

use std::time::Duration;

/// The start of a transaction's first statement, kept inline (no allocation per
/// transaction).
#[derive(Clone, Copy)]
pub struct FirstStatement {
    bytes: [u8; FirstStatement::MAX],
    len: u8,
}

impl FirstStatement {
    /// Enough to recognise a statement; small enough that copying it at the start of
    /// every transaction costs next to nothing.
    const MAX: usize = 48;

    pub const EMPTY: FirstStatement = FirstStatement {
        bytes: [0; FirstStatement::MAX],
        len: 0,
    };

    /// Keeps the first bytes of `text` (cut at a character boundary when shown).
    pub fn new(text: &[u8]) -> Self {
        let n = text.len().min(Self::MAX);
        let mut bytes = [0; Self::MAX];
        bytes[..n].copy_from_slice(&text[..n]);
        FirstStatement {
            bytes,
            len: n as u8,
        }
    }

    /// The text, with "…" when it was cut.
    pub fn text(&self) -> String {
        let s = String::from_utf8_lossy(&self.bytes[..self.len as usize]);
        let s = s.trim_end_matches('\u{FFFD}').trim();
        let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if self.len as usize == Self::MAX {
            format!("{one_line}…")
        } else {
            one_line
        }
    }
}

impl std::fmt::Debug for FirstStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.text())
    }
}

/// One open transaction.
#[derive(Debug, Clone)]
pub struct OpenTx {
    pub backend: String,
    /// The server process (PostgreSQL's backend pid; the connection number on SQLite).
    pub pid: u32,
    pub age: Duration,
    pub first: FirstStatement,
}

impl OpenTx {
    pub fn describe(&self) -> String {
        format!(
            "pid {} on {:?}, open {:.1} s, first statement: {}",
            self.pid,
            self.backend,
            self.age.as_secs_f64(),
            self.first.text()
        )
    }
}

/// The transactions in flight right now.
pub trait InflightView: Send + Sync {
    fn open_transactions(&self) -> Vec<OpenTx>;
}

/// The transactions of `view` open longer than `bound`, oldest first.
pub fn older_than(view: &dyn InflightView, bound: Duration) -> Vec<OpenTx> {
    let mut old: Vec<OpenTx> = view
        .open_transactions()
        .into_iter()
        .filter(|t| t.age > bound)
        .collect();
    old.sort_by_key(|t| std::cmp::Reverse(t.age));
    old
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_start_of_a_statement_on_one_line() {
        assert_eq!(FirstStatement::new(b"SELECT\n  1").text(), "SELECT 1");
        let long = "UPDATE t SET x = 1 WHERE ".repeat(10);
        let f = FirstStatement::new(long.as_bytes());
        assert!(f.text().ends_with('…'), "{}", f.text());
        assert!(f.text().len() <= 52);
        // A cut inside a multi-byte character is not shown as garbage.
        let s = format!("{}é", "a".repeat(47));
        assert_eq!(
            FirstStatement::new(s.as_bytes()).text(),
            format!("{}…", "a".repeat(47))
        );
        assert_eq!(FirstStatement::EMPTY.text(), "");
    }
}
