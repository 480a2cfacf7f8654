//! One SQLite connection's session: settings, PostgreSQL transaction semantics on top of
//! SQLite's (a BEGIN becomes `BEGIN IMMEDIATE` when the first statement writes or locks,
//! `BEGIN DEFERRED` otherwise; an error aborts the transaction until ROLLBACK), and the
//! simple query protocol.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rusqlite::Connection;
use rusqlite::types::Value;

use super::error::{PgError, from_sqlite};
use super::exec::{self, Column, Output};
use super::extended::{Portal, Prepared};
use super::setvar::Settings;
use super::translate::{Kind, Translated, translate};
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
        match translate(sql) {
            Ok(stmts) if stmts.is_empty() => build::empty(out, be::EMPTY_QUERY),
            Ok(stmts) => self.run_all(&stmts, out),
            Err(e) => self.fail(out, PgError::from(e)),
        }
        self.portals.remove("");
        build::ready_for_query(out, self.status());
    }

    fn run_all(&mut self, stmts: &[Translated], out: &mut BytesMut) {
        let controls = stmts
            .iter()
            .any(|t| matches!(t.kind, Kind::Begin { .. } | Kind::Commit | Kind::Rollback));
        if stmts.len() > 1 && self.tx == Tx::Idle && !controls {
            self.tx = Tx::Pending;
            self.implicit = true;
        }
        for t in stmts {
            let o = Output {
                out,
                describe: true,
                formats: &[],
                columns: None,
                hints: &t.hints,
            };
            if let Err(e) = self.execute(t, &[], o) {
                self.fail(out, e);
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
            self.tx = Tx::Idle;
        }
    }

    /// Reports an error and aborts an open transaction.
    pub fn fail(&mut self, out: &mut BytesMut, e: PgError) {
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

    /// Starts SQLite's transaction for a pending BEGIN, locking for writes if needed.
    fn ensure_started(&mut self, writes: bool) -> Result<(), PgError> {
        if self.tx == Tx::Pending {
            self.sqlite(if writes {
                "BEGIN IMMEDIATE"
            } else {
                "BEGIN DEFERRED"
            })?;
            self.tx = Tx::Active;
        }
        Ok(())
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
        match &t.kind {
            Kind::Begin { .. } => {
                if self.tx == Tx::Idle || self.implicit {
                    self.implicit = false;
                    if self.tx == Tx::Idle {
                        self.tx = Tx::Pending;
                    }
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
                build::command_complete(o.out, "SAVEPOINT");
            }
            Kind::Release(name) => {
                self.sqlite(&format!("RELEASE SAVEPOINT \"{name}\""))?;
                build::command_complete(o.out, "RELEASE");
            }
            Kind::RollbackTo(name) => {
                self.sqlite(&format!("ROLLBACK TO SAVEPOINT \"{name}\""))?;
                if self.tx == Tx::Failed {
                    self.tx = Tx::Active;
                }
                build::command_complete(o.out, "ROLLBACK");
            }
            Kind::Set { name, value, .. } => self.set(name, value.as_deref(), o.out),
            Kind::Show(name) => self.show(name, o.out, o.describe)?,
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
                    self.tx = Tx::Idle;
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
        self.tx = Tx::Idle;
        build::command_complete(out, tag);
        Ok(())
    }

    fn set(&mut self, name: &str, value: Option<&str>, out: &mut BytesMut) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let reported = match value {
            Some(v) => s.set(name, v),
            None if name == "all" => {
                *s = Default::default();
                None
            }
            None => s.reset(name),
        };
        if let Some(display) = reported {
            let v = s.get(display).unwrap_or_default().to_string();
            build::parameter_status(out, display, &v);
        }
        build::command_complete(out, "SET");
    }

    fn show(&mut self, name: &str, out: &mut BytesMut, describe: bool) -> Result<(), PgError> {
        let value = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(str::to_string);
        let Some(value) = value else {
            return Err(PgError::new(
                "42704",
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        };
        let col = [Column {
            name: name.to_string(),
            oid: super::types::TEXT,
        }];
        if describe {
            exec::row_description(out, &col, &[]);
        }
        exec::data_row(out, &[Value::Text(value)], &col, &[])?;
        build::command_complete(out, "SHOW");
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
        self.ensure_started(t.kind.writes())?;
        let mut stmt = self
            .conn
            .prepare_cached(&t.sql)
            .map_err(|e| from_sqlite(&e))?;
        let conn = &self.conn;
        let overrides = |table: &str, col: &str| super::catalog::override_type(conn, table, col);
        let table = matches!(t.kind, Kind::Insert | Kind::Update | Kind::Delete)
            .then(|| t.tables.first().map(String::as_str))
            .flatten();
        let result = exec::run(&mut stmt, params, &t.kind, o, &overrides, table);
        drop(stmt);
        if result.is_ok() && !t.column_types.is_empty() {
            super::catalog::remember_column_types(&self.conn, &t.column_types)?;
        }
        if result.is_err() && self.tx == Tx::Idle && !self.conn.is_autocommit() {
            let _ = self.sqlite("ROLLBACK");
        }
        result
    }
}
