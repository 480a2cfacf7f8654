//! `TRUNCATE t1, t2 [RESTART IDENTITY] [CASCADE]` on the SQLite backend (which has no
//! TRUNCATE): the rows deleted in one step with foreign keys checked at the end, as
//! PostgreSQL checks them for the whole statement; CASCADE also empties the tables that
//! refer to them; RESTART IDENTITY resets their AUTOINCREMENT counters. What Django's
//! `flush` and test teardown send.

use rusqlite::Connection;

use super::alter::{q, sql};
use super::error::{PgError, from_sqlite};

/// A TRUNCATE to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    pub tables: Vec<String>,
    pub restart: bool,
    pub cascade: bool,
}

/// Tables whose foreign keys refer to `table`.
fn referring(conn: &Connection, table: &str) -> Result<Vec<String>, PgError> {
    let mut st = conn
        .prepare(
            "SELECT DISTINCT m.name FROM sqlite_schema m, pragma_foreign_key_list(m.name) f \
             WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE",
        )
        .map_err(|e| from_sqlite(&e))?;
    let rows = st
        .query_map([table], |r| r.get(0))
        .map_err(|e| from_sqlite(&e))?;
    rows.collect::<Result<_, _>>().map_err(|e| from_sqlite(&e))
}

/// Runs it (the caller holds the write transaction).
pub fn run(conn: &Connection, t: &Truncate) -> Result<(), PgError> {
    let mut tables = t.tables.clone();
    let mut i = 0;
    while i < tables.len() {
        for r in referring(conn, &tables[i])? {
            if tables.iter().any(|x| x.eq_ignore_ascii_case(&r)) {
                continue;
            }
            if !t.cascade {
                return Err(PgError::new(
                    "0A000",
                    format!("cannot truncate a table referenced in a foreign key constraint (table \"{r}\" references \"{}\")", tables[i]),
                )
                .with_hint(format!("Truncate table \"{r}\" at the same time, or use TRUNCATE ... CASCADE.")));
            }
            tables.push(r);
        }
        i += 1;
    }
    let deferred: bool = conn
        .query_row("PRAGMA defer_foreign_keys", [], |r| r.get(0))
        .map_err(|e| from_sqlite(&e))?;
    sql(conn, "PRAGMA defer_foreign_keys = ON")?;
    for table in &tables {
        sql(conn, &format!("DELETE FROM {}", q(table)))?;
    }
    if t.restart {
        for table in &tables {
            conn.execute("DELETE FROM sqlite_sequence WHERE name = ?1", [table])
                .map_err(|e| from_sqlite(&e))?;
        }
    }
    if !deferred {
        sql(conn, "PRAGMA defer_foreign_keys = OFF")?;
    }
    Ok(())
}
