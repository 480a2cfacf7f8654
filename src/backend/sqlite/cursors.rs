//! Server-side cursors on the SQLite backend: `DECLARE name CURSOR [WITH HOLD] FOR
//! query`, `FETCH [FORWARD] n | NEXT | ALL FROM name`, `CLOSE name | ALL` — what
//! psycopg's named cursors and Django's `.iterator()` (dumpdata) send. The query's rows
//! are read when the cursor is declared (SQLite's statement cannot outlive the call) and
//! handed out by FETCH; a cursor without HOLD ends with its transaction, as in PostgreSQL.
//! `pg_cursors` lists the open ones.

use std::collections::VecDeque;

use rusqlite::types::Value;

use super::error::{PgError, from_sqlite};
use super::exec::{self, Column};
use super::session::{Session, Tx};
use super::translate::{CursorOp, Translated};
use crate::protocol::build;

/// The temp table `pg_cursors` shows.
pub const SETUP: &str = "CREATE TEMP TABLE IF NOT EXISTS _sy_cursors (name TEXT PRIMARY KEY, \
    statement TEXT, is_holdable INTEGER, is_binary INTEGER, is_scrollable INTEGER, creation_time TEXT)";

/// An open cursor: its columns and the rows not fetched yet.
pub struct Cursor {
    pub columns: Vec<Column>,
    rows: VecDeque<Vec<Value>>,
    hold: bool,
}

fn missing(name: &str) -> PgError {
    PgError::new("34000", format!("cursor \"{name}\" does not exist"))
}

impl Session {
    /// Runs a cursor statement (`params` are the DECLARE's own).
    pub(super) fn run_cursor(
        &mut self,
        op: &CursorOp,
        params: &[Value],
        o: exec::Output<'_>,
    ) -> Result<(), PgError> {
        let out = o.out;
        match op {
            CursorOp::Declare { name, hold, query } => {
                self.declare(name, *hold, query, params)?;
                build::command_complete(out, "DECLARE CURSOR");
            }
            CursorOp::Fetch { name, count } => {
                let zone = self.zone();
                let cursor = self.cursors.get_mut(name).ok_or_else(|| missing(name))?;
                let n = count.unwrap_or(u64::MAX).min(cursor.rows.len() as u64) as usize;
                if o.describe {
                    exec::row_description(out, &cursor.columns, o.formats);
                }
                for row in cursor.rows.drain(..n) {
                    exec::data_row(out, &row, &cursor.columns, o.formats, &zone)?;
                }
                build::command_complete(out, &format!("FETCH {n}"));
            }
            CursorOp::Close { name } => {
                match name {
                    Some(n) => {
                        self.cursors.remove(n).ok_or_else(|| missing(n))?;
                        self.forget(Some(n));
                    }
                    None => {
                        self.cursors.clear();
                        self.forget(None);
                    }
                }
                build::command_complete(out, "CLOSE CURSOR");
            }
        }
        Ok(())
    }

    fn declare(
        &mut self,
        name: &str,
        hold: bool,
        query: &Translated,
        params: &[Value],
    ) -> Result<(), PgError> {
        if self.tx == Tx::Idle && !hold {
            return Err(PgError::new(
                "25P01",
                "DECLARE CURSOR can only be used in transaction blocks",
            ));
        }
        if self.cursors.contains_key(name) {
            return Err(PgError::new(
                "42P03",
                format!("cursor \"{name}\" already exists"),
            ));
        }
        let conn = &self.conn;
        let mut stmt = conn.prepare(&query.sql).map_err(|e| from_sqlite(&e))?;
        for (i, p) in params.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, p)
                .map_err(|e| from_sqlite(&e))?;
        }
        let overrides = |t: &str, c: &str| super::catalog::override_type(conn, t, c);
        self.origins.check(conn);
        let typed = super::catalog::result_types(conn, query);
        let mut columns = exec::describe(
            &stmt,
            &query.hints,
            &typed,
            &overrides,
            &|t: &str, c: &str| self.origins.get(conn, t, c),
            None,
        );
        let undeclared: Vec<bool> = stmt.columns().map(|c| c.decl_type().is_none()).collect();
        let n = stmt.column_count();
        let mut rows = VecDeque::new();
        let mut q = stmt.raw_query();
        while let Some(r) = q.next().map_err(|e| from_sqlite(&e))? {
            let row = (0..n)
                .map(|i| r.get::<_, Value>(i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| from_sqlite(&e))?;
            if rows.is_empty() {
                exec::infer_from_row(&mut columns, &row, &undeclared, &query.hints, &typed);
            }
            rows.push_back(row);
        }
        drop(q);
        let _ = self.conn.execute(
            "INSERT OR REPLACE INTO temp._sy_cursors VALUES (?1, ?2, ?3, 0, 0, strftime('%Y-%m-%d %H:%M:%f+00', 'now'))",
            rusqlite::params![name, query.sql, hold],
        );
        self.cursors.insert(
            name.to_string(),
            Cursor {
                columns,
                rows,
                hold,
            },
        );
        Ok(())
    }

    /// Execute on a cursor's portal: up to `max` rows (0: all), then PortalSuspended
    /// while rows remain, as PostgreSQL answers.
    pub(super) fn fetch_portal(
        &mut self,
        name: &str,
        max: i32,
        out: &mut bytes::BytesMut,
    ) -> Result<(), PgError> {
        let zone = self.zone();
        let cursor = self.cursors.get_mut(name).ok_or_else(|| missing(name))?;
        let n = if max <= 0 {
            cursor.rows.len()
        } else {
            (max as usize).min(cursor.rows.len())
        };
        for row in cursor.rows.drain(..n) {
            exec::data_row(out, &row, &cursor.columns, &[], &zone)?;
        }
        if max > 0 && !cursor.rows.is_empty() {
            build::empty(out, crate::protocol::be::PORTAL_SUSPENDED);
        } else {
            build::command_complete(out, &format!("FETCH {n}"));
        }
        Ok(())
    }

    fn forget(&self, name: Option<&str>) {
        let _ = match name {
            Some(n) => self
                .conn
                .execute("DELETE FROM temp._sy_cursors WHERE name = ?1", [n]),
            None => self.conn.execute("DELETE FROM temp._sy_cursors", []),
        };
    }

    /// At a transaction's end: cursors without HOLD close.
    pub(super) fn close_transaction_cursors(&mut self) {
        let gone: Vec<String> = self
            .cursors
            .iter()
            .filter(|(_, c)| !c.hold)
            .map(|(n, _)| n.clone())
            .collect();
        for n in gone {
            self.cursors.remove(&n);
            self.forget(Some(&n));
        }
    }
}
