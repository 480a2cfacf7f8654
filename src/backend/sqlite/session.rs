//! One SQLite connection's session: settings, PostgreSQL transaction semantics on top of
//! SQLite's (a BEGIN becomes `BEGIN IMMEDIATE` when the first statement writes or locks,
//! `BEGIN DEFERRED` otherwise; in READ COMMITTED a transaction that has only read starts
//! again as the writer when it first writes, see [`super::isolation`]; an error aborts the
//! transaction until ROLLBACK), and the simple query protocol.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rusqlite::Connection;
use rusqlite::types::Value;

use super::error::{PgError, from_sqlite};
use super::exec::{self, Output};
use super::extended::{Portal, Prepared};
use super::isolation::{self, Isolation};
use super::positions::locate;
use super::setvar::Settings;
use super::translate::{Kind, Translated, translate_with};
use crate::protocol::build::{self, ErrorFields};
use crate::protocol::{TxStatus, be};

/// Where the session's transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tx {
    Idle,
    /// BEGIN seen; SQLite's transaction starts with the first statement.
    Pending,
    Active,
    /// An error happened: everything but ROLLBACK is refused.
    Failed,
}

/// The per-connection state.
pub struct Session {
    pub conn: Connection,
    pub settings: Arc<Mutex<Settings>>,
    pub tx: Tx,
    /// The transaction was opened by the proxy around a multi-statement query.
    implicit: bool,
    pub stmts: HashMap<String, Arc<Prepared>>,
    pub portals: HashMap<String, Portal>,
    pub skip_until_sync: bool,
    /// The open transaction's isolation level.
    isolation: Isolation,
    /// The open SQLite transaction holds the write lock (or has written).
    writer: bool,
    /// Savepoints of the open transaction, oldest first (re-made when a READ COMMITTED
    /// transaction starts again as the writer).
    savepoints: Vec<String>,
    /// Open cursors (DECLARE … CURSOR).
    pub(super) cursors: HashMap<String, super::cursors::Cursor>,
    /// Where result columns come from (RowDescription's table OID and column number).
    pub(super) origins: super::catalog::OriginCache,
}

impl Session {
    pub fn new(conn: Connection, settings: Arc<Mutex<Settings>>) -> Self {
        Session {
            conn,
            settings,
            tx: Tx::Idle,
            implicit: false,
            stmts: HashMap::new(),
            portals: HashMap::new(),
            skip_until_sync: false,
            isolation: Isolation::default(),
            writer: false,
            savepoints: Vec::new(),
            cursors: HashMap::new(),
            origins: Default::default(),
        }
    }

    pub fn status(&self) -> TxStatus {
        match self.tx {
            Tx::Idle => TxStatus::Idle,
            Tx::Pending | Tx::Active => TxStatus::InTransaction,
            Tx::Failed => TxStatus::Failed,
        }
    }

    /// A simple Query: every statement, then ReadyForQuery.
    pub fn simple_query(&mut self, sql: &str, out: &mut BytesMut) {
        let (conn, cache) = (&self.conn, &self.origins);
        cache.check(conn);
        let schema = |t: &str| cache.columns(conn, t);
        match translate_with(sql, &schema) {
            Ok(stmts) if stmts.is_empty() => build::empty(out, be::EMPTY_QUERY),
            Ok(stmts) => self.run_all(&stmts, sql, out),
            Err(e) => self.fail(out, locate(PgError::from(e), sql)),
        }
        self.portals.remove("");
        build::ready_for_query(out, self.status());
    }

    fn run_all(&mut self, stmts: &[Translated], sql: &str, out: &mut BytesMut) {
        let controls = stmts
            .iter()
            .any(|t| matches!(t.kind, Kind::Begin { .. } | Kind::Commit | Kind::Rollback));
        if stmts.len() > 1 && self.tx == Tx::Idle && !controls {
            self.tx = Tx::Pending;
            self.implicit = true;
            self.start_transaction(self.begin_isolation(None));
        }
        for t in stmts {
            let o = Output {
                out,
                describe: true,
                formats: &[],
                columns: None,
                hints: &t.hints,
                typed: &[],
                zone: &None,
                origins: &|_, _| None,
            };
            if let Err(e) = self.execute(t, &[], o) {
                self.fail(out, locate(e, sql));
                break;
            }
        }
        if self.implicit {
            self.implicit = false;
            let end = if self.tx == Tx::Failed {
                "ROLLBACK"
            } else {
                "COMMIT"
            };
            if self.tx == Tx::Active || self.tx == Tx::Failed {
                let _ = self.conn.execute_batch(end);
            }
            self.end();
        }
    }

    /// Reports an error and aborts an open transaction.
    pub fn fail(&mut self, out: &mut BytesMut, e: PgError) {
        let e = e.named(|t, cols| super::constraints::unique_name(&self.conn, t, cols));
        build::error_response(out, &e.fields());
        if self.tx != Tx::Idle {
            self.tx = Tx::Failed;
        }
    }

    fn notice(out: &mut BytesMut, msg: &str) {
        let mut f = ErrorFields::error("25001", msg);
        f.severity = build::Severity::Warning;
        build::notice_response(out, &f);
    }

    fn sqlite(&self, sql: &str) -> Result<(), PgError> {
        self.conn.execute_batch(sql).map_err(|e| from_sqlite(&e))
    }

    /// Starts SQLite's transaction for a pending BEGIN, locking for writes if needed; in
    /// READ COMMITTED, a transaction that has only read starts again as the writer.
    fn ensure_started(&mut self, writes: bool) -> Result<(), PgError> {
        let lock_timeout = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get("lock_timeout")
            .map(str::to_string);
        super::busy::set_limit(isolation::lock_wait(lock_timeout.as_deref()));
        match self.tx {
            Tx::Pending => {
                self.sqlite(if writes {
                    "BEGIN IMMEDIATE"
                } else {
                    "BEGIN DEFERRED"
                })?;
                self.tx = Tx::Active;
                self.writer = writes;
            }
            Tx::Active if writes && !self.writer => {
                if self.isolation.restart_to_write() {
                    self.restart_as_writer()?;
                }
                self.writer = true;
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the read-only SQLite transaction (nothing to commit) and begins again holding
    /// the write lock, with the same savepoints.
    fn restart_as_writer(&mut self) -> Result<(), PgError> {
        if !self.conn.is_autocommit() {
            self.sqlite("COMMIT")?;
        }
        self.sqlite("BEGIN IMMEDIATE")?;
        for sp in &self.savepoints {
            self.conn
                .execute_batch(&format!("SAVEPOINT \"{sp}\""))
                .map_err(|e| from_sqlite(&e))?;
        }
        Ok(())
    }

    /// The isolation level a transaction starting now gets.
    fn begin_isolation(&self, asked: Option<Isolation>) -> Isolation {
        asked.unwrap_or_else(|| {
            self.settings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get("default_transaction_isolation")
                .and_then(Isolation::parse)
                .unwrap_or_default()
        })
    }

    /// Runs one statement (session-level ones are answered here).
    pub fn execute(
        &mut self,
        t: &Translated,
        params: &[Value],
        o: Output<'_>,
    ) -> Result<(), PgError> {
        if self.tx == Tx::Failed
            && !matches!(t.kind, Kind::Rollback | Kind::Commit | Kind::RollbackTo(_))
        {
            return Err(PgError::aborted());
        }
        if self.tx == Tx::Idle {
            // A statement outside a transaction block is a transaction of its own.
            self.mark_transaction_start();
        }
        match &t.kind {
            Kind::Begin { isolation, .. } => {
                if self.tx == Tx::Idle || self.implicit {
                    self.implicit = false;
                    if self.tx == Tx::Idle {
                        self.tx = Tx::Pending;
                    }
                    self.start_transaction(self.begin_isolation(*isolation));
                } else {
                    Self::notice(o.out, "there is already a transaction in progress");
                }
                build::command_complete(o.out, "BEGIN");
            }
            Kind::Commit | Kind::Rollback => self.end_transaction(&t.kind, o.out)?,
            Kind::Savepoint(name) => {
                if self.tx == Tx::Idle {
                    return Err(PgError::new(
                        "25P01",
                        "SAVEPOINT can only be used in transaction blocks",
                    ));
                }
                self.ensure_started(false)?;
                self.sqlite(&format!("SAVEPOINT \"{name}\""))?;
                self.savepoints.push(name.clone());
                build::command_complete(o.out, "SAVEPOINT");
            }
            Kind::Release(name) => {
                self.sqlite(&format!("RELEASE SAVEPOINT \"{name}\""))?;
                if let Some(i) = self.savepoints.iter().rposition(|s| s == name) {
                    self.savepoints.truncate(i);
                }
                build::command_complete(o.out, "RELEASE");
            }
            Kind::RollbackTo(name) => {
                self.sqlite(&format!("ROLLBACK TO SAVEPOINT \"{name}\""))?;
                if let Some(i) = self.savepoints.iter().rposition(|s| s == name) {
                    self.savepoints.truncate(i + 1);
                }
                if self.tx == Tx::Failed {
                    self.tx = Tx::Active;
                }
                build::command_complete(o.out, "ROLLBACK");
            }
            Kind::Set { name, value, .. } if name == "transaction_isolation" => {
                self.set_isolation(value.as_deref(), o.out)?
            }
            Kind::Set { name, value, .. } => self.set(name, value.as_deref(), o.out)?,
            Kind::Show(name) => self.show(name, o.out, o.describe)?,
            Kind::SetConstraints { deferred } => self.set_constraints(*deferred, o.out)?,
            Kind::Cursor(op) => self.run_cursor(op, params, o)?,
            Kind::Deallocate(name) => {
                match name {
                    Some(n) => {
                        self.stmts.remove(n).ok_or_else(|| {
                            PgError::new(
                                "26000",
                                format!("prepared statement \"{n}\" does not exist"),
                            )
                        })?;
                    }
                    None => self.stmts.clear(),
                }
                build::command_complete(o.out, "DEALLOCATE");
            }
            Kind::Other { tag, .. } if tag == "DISCARD ALL" => {
                // What a session has of its own: statements, portals, cursors.
                self.stmts.clear();
                self.portals.clear();
                self.cursors.clear();
                let _ = self.conn.execute("DELETE FROM temp._sy_cursors", []);
                build::command_complete(o.out, "DISCARD ALL");
            }
            _ if t.alter.is_some() || t.type_op.is_some() || t.truncate.is_some() => {
                self.run_steps(t, o.out)?
            }
            _ => self.run_sql(t, params, o)?,
        }
        Ok(())
    }

    fn end_transaction(&mut self, kind: &Kind, out: &mut BytesMut) -> Result<(), PgError> {
        let tag = match (self.tx, kind) {
            (Tx::Idle, _) => {
                Self::notice(out, "there is no transaction in progress");
                if *kind == Kind::Commit {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                }
            }
            (Tx::Pending, Kind::Commit) => "COMMIT",
            (Tx::Pending, _) => "ROLLBACK",
            (Tx::Active, Kind::Commit) => {
                if let Err(e) = self.sqlite("COMMIT") {
                    let _ = self.sqlite("ROLLBACK");
                    self.end();
                    return Err(e);
                }
                "COMMIT"
            }
            (Tx::Active | Tx::Failed, _) => {
                if !self.conn.is_autocommit() {
                    self.sqlite("ROLLBACK")?;
                }
                "ROLLBACK"
            }
        };
        self.end();
        build::command_complete(out, tag);
        Ok(())
    }

    /// `now()` from here on, until the next transaction begins.
    fn mark_transaction_start(&self) {
        let us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .transaction_start = Some(us);
    }

    /// Bookkeeping of a transaction that begins (BEGIN, or an implicit one).
    fn start_transaction(&mut self, level: Isolation) {
        self.mark_transaction_start();
        self.isolation = level;
        self.writer = false;
        self.savepoints.clear();
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set("transaction_isolation", level.as_str());
    }

    /// Back to no transaction: `transaction_isolation` shows the session default again.
    fn end(&mut self) {
        self.close_transaction_cursors();
        self.tx = Tx::Idle;
        self.writer = false;
        self.savepoints.clear();
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let default = s
            .get("default_transaction_isolation")
            .unwrap_or("read committed")
            .to_string();
        s.set("transaction_isolation", &default);
    }

    /// `SET TRANSACTION ISOLATION LEVEL …`: this transaction's level, before it reads.
    fn set_isolation(&mut self, value: Option<&str>, out: &mut BytesMut) -> Result<(), PgError> {
        let Some(level) = value.and_then(Isolation::parse) else {
            return Err(PgError::new(
                "22023",
                format!(
                    "invalid value for parameter \"transaction_isolation\": \"{}\"",
                    value.unwrap_or("")
                ),
            ));
        };
        if self.tx == Tx::Idle {
            Self::notice(
                out,
                "SET TRANSACTION can only be used in transaction blocks",
            );
        } else if self.tx == Tx::Active && level != self.isolation {
            return Err(PgError::new(
                "25001",
                "SET TRANSACTION ISOLATION LEVEL must be called before any query",
            ));
        } else {
            self.start_transaction(level);
        }
        build::command_complete(out, "SET");
        Ok(())
    }

    /// A statement run in several steps (ALTER TABLE, enum types): all or nothing (its own
    /// transaction outside one).
    fn run_steps(&mut self, t: &Translated, out: &mut BytesMut) -> Result<(), PgError> {
        self.ensure_started(true)?;
        let own = self.conn.is_autocommit();
        if own {
            self.sqlite("BEGIN IMMEDIATE")?;
        }
        let conn = &self.conn;
        let steps = || -> Result<&'static str, PgError> {
            if let Some(op) = &t.type_op {
                return super::enums::run(conn, op);
            }
            if let Some(tr) = &t.truncate {
                super::truncate::run(conn, tr)?;
                return Ok("TRUNCATE TABLE");
            }
            if let Some(alter) = &t.alter {
                super::alter::run(conn, alter)?;
            }
            super::catalog::remember_column_types(conn, &t.column_types)?;
            super::enums::enforce(conn, &t.column_types)?;
            Ok("ALTER TABLE")
        };
        let mut result = steps();
        if own {
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            if let Err(e) = self.sqlite(end) {
                let _ = self.sqlite("ROLLBACK");
                result = result.and(Err(e));
            }
        }
        build::command_complete(out, result?);
        Ok(())
    }

    /// SET CONSTRAINTS: SQLite defers every foreign key check to the commit or none
    /// (`defer_foreign_keys`); IMMEDIATE also checks what is pending now, as PostgreSQL does.
    fn set_constraints(&mut self, deferred: bool, out: &mut BytesMut) -> Result<(), PgError> {
        if self.tx == Tx::Idle {
            let mut f = ErrorFields::error(
                "25P01",
                "SET CONSTRAINTS can only be used in transaction blocks",
            );
            f.severity = build::Severity::Warning;
            build::notice_response(out, &f);
        } else {
            self.ensure_started(false)?;
            self.sqlite(if deferred {
                "PRAGMA defer_foreign_keys = ON"
            } else {
                "PRAGMA defer_foreign_keys = OFF"
            })?;
            if !deferred && super::alter::any_row(&self.conn, "PRAGMA foreign_key_check")? {
                return Err(PgError::new(
                    "23503",
                    "insert or update violates foreign key constraint (checked by SET CONSTRAINTS … IMMEDIATE)",
                ));
            }
        }
        build::command_complete(out, "SET CONSTRAINTS");
        Ok(())
    }

    fn run_sql(&mut self, t: &Translated, params: &[Value], o: Output<'_>) -> Result<(), PgError> {
        if let Kind::Other { tag, .. } = &t.kind
            && matches!(
                tag.as_str(),
                "CREATE SCHEMA" | "CREATE EXTENSION" | "COMMENT"
            )
        {
            build::command_complete(o.out, tag);
            return Ok(());
        }
        // A REPEATABLE READ or SERIALIZABLE transaction that read keeps its snapshot; if
        // another connection holds the write lock when it first writes, SQLite refuses at
        // once, and that is the serialization failure PostgreSQL would report.
        let keeps_snapshot = t.kind.writes()
            && self.tx == Tx::Active
            && !self.writer
            && !self.isolation.restart_to_write();
        self.ensure_started(t.kind.writes())?;
        super::drops::before(&self.conn, t, o.out)?;
        let result = self.run_prepared(t, params, o);
        match result {
            Err(e) if keeps_snapshot && e.code == "55P03" => Err(PgError::new(
                "40001",
                "could not serialize access due to concurrent update",
            )
            .with_hint("retry the transaction")),
            other => other,
        }
    }

    fn run_prepared(
        &mut self,
        t: &Translated,
        params: &[Value],
        o: Output<'_>,
    ) -> Result<(), PgError> {
        if super::constraints::needed(&t.tables) {
            super::constraints::refresh(&self.conn)?;
        }
        let mut stmt = self
            .conn
            .prepare_cached(&t.sql)
            .map_err(|e| from_sqlite(&e))?;
        let conn = &self.conn;
        let overrides = |table: &str, col: &str| super::catalog::override_type(conn, table, col);
        let table = matches!(t.kind, Kind::Insert | Kind::Update | Kind::Delete)
            .then(|| t.tables.first().map(String::as_str))
            .flatten();
        let typed = if o.columns.is_none() && super::catalog::has_result_types(t) {
            super::catalog::result_types(conn, t)
        } else {
            Vec::new()
        };
        let zone = self.zone();
        let cache = &self.origins;
        cache.check(conn);
        let origins = |t: &str, c: &str| cache.get(conn, t, c);
        let o = Output {
            typed: &typed,
            zone: &zone,
            origins: &origins,
            ..o
        };
        let result = exec::run(&mut stmt, params, &t.kind, o, &overrides, table);
        drop(stmt);
        if result.is_ok() && !t.column_types.is_empty() {
            super::catalog::remember_column_types(&self.conn, &t.column_types)?;
            super::enums::enforce(&self.conn, &t.column_types)?;
        }
        if result.is_ok() && matches!(&t.kind, Kind::Other { tag, .. } if tag == "DROP TABLE") {
            super::catalog::forget_dropped(&self.conn)?;
        }
        if result.is_err() && self.tx == Tx::Idle && !self.conn.is_autocommit() {
            let _ = self.sqlite("ROLLBACK");
        }
        result
    }
}
