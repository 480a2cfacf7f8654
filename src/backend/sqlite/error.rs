//! Errors of the SQLite backend as PostgreSQL reports them: a SQLSTATE that drivers and
//! ORMs act on (23505 for a unique violation, 40001 for a write conflict, …) and a message
//! that still says what SQLite said.

use rusqlite::ffi;

use super::translate::TranslateError;
use crate::protocol::build::{ErrorFields, ObjectNames};
use crate::protocol::sqlstate;

/// An error for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgError {
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The table, column or constraint the error is about.
    pub names: Option<Box<ObjectNames>>,
    /// A unique violation's columns as SQLite names them, until [`Self::named`] finds the
    /// constraint they belong to.
    pub key: Box<[String]>,
    /// Where in the statement (1-based characters; see `positions.rs`).
    pub position: Option<u32>,
}

impl PgError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        PgError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
            names: None,
            key: Box::default(),
            position: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn fields(&self) -> ErrorFields {
        let mut f = ErrorFields::error(self.code, self.message.clone());
        f.detail = self.detail.clone();
        f.hint = self.hint.clone();
        f.names = self.names.as_deref().cloned().unwrap_or_default();
        f.position = self.position;
        f
    }

    /// A unique violation named as PostgreSQL names it, by the constraint (or unique
    /// index) `constraint` finds for its table and columns; other errors as they are.
    pub fn named(mut self, constraint: impl FnOnce(&str, &[String]) -> Option<String>) -> Self {
        if self.code != "23505" || self.key.is_empty() {
            return self;
        }
        let Some(names) = self.names.as_mut() else {
            return self;
        };
        let Some(table) = names.table.clone() else {
            return self;
        };
        if let Some(name) = constraint(&table, &self.key) {
            self.message = format!("duplicate key value violates unique constraint \"{name}\"");
            names.constraint = Some(name);
            self.detail = None;
        }
        self
    }

    pub fn aborted() -> Self {
        PgError::new(
            sqlstate::IN_FAILED_TRANSACTION,
            "current transaction is aborted, commands ignored until end of transaction block",
        )
    }
}

impl From<TranslateError> for PgError {
    fn from(e: TranslateError) -> Self {
        match e {
            TranslateError::Syntax(m) => PgError::new("42601", m),
            TranslateError::Refused(_) => {
                PgError::new(sqlstate::FEATURE_NOT_SUPPORTED, e.to_string()).with_hint(
                    "rewrite the statement, or run this application on a PostgreSQL backend",
                )
            }
        }
    }
}

fn constraint(extended: i32, msg: &str) -> PgError {
    let what = msg.split_once(": ").map(|(_, w)| w).unwrap_or(msg);
    if let Some(n) = what.strip_prefix(super::ddl::VARCHAR_CHECK) {
        // The CHECK the DDL added for varchar(n): PostgreSQL's own error.
        return PgError::new(
            "22001",
            format!("value too long for type character varying({n})"),
        );
    }
    if let Some(ty) = what.strip_prefix(super::enums::ENUM_CHECK) {
        return PgError::new("22P02", format!("invalid input value for enum {ty}"));
    }
    // SQLite names the columns as `table.column, table.column`.
    let columns: Vec<(&str, &str)> = what.split(", ").filter_map(|c| c.split_once('.')).collect();
    let table = columns.first().map(|c| c.0.to_string());
    if what == "FOREIGN KEY constraint failed" || extended == ffi::SQLITE_CONSTRAINT_FOREIGNKEY {
        // SQLite does not say which key (ON DELETE RESTRICT fails in a trigger of its own,
        // with this message and another extended code).
        let mut e = PgError::new(
            "23503",
            "insert, update or delete violates a foreign key constraint",
        );
        e.detail = Some(format!("SQLite: {msg}"));
        return e;
    }
    let (code, text) = match extended {
        ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            ("23505", "duplicate key value violates unique constraint")
        }
        ffi::SQLITE_CONSTRAINT_NOTNULL if columns.len() == 1 => {
            let (t, c) = columns[0];
            let mut e = PgError::new(
                "23502",
                format!(
                    "null value in column \"{c}\" of relation \"{t}\" violates not-null constraint"
                ),
            );
            e.names = names(t, Some(c));
            return e;
        }
        ffi::SQLITE_CONSTRAINT_NOTNULL => ("23502", "null value violates not-null constraint"),
        ffi::SQLITE_CONSTRAINT_CHECK => ("23514", "new row violates check constraint"),
        _ => ("23000", "integrity constraint violation"),
    };
    let mut e = PgError::new(code, format!("{text} \"{what}\""));
    e.detail = Some(format!("SQLite: {msg}"));
    if code == "23505"
        && let Some(t) = &table
    {
        e.names = names(t, None);
        e.key = columns.iter().map(|c| c.1.to_string()).collect();
    }
    e
}

fn names(table: &str, column: Option<&str>) -> Option<Box<ObjectNames>> {
    Some(Box::new(ObjectNames {
        schema: Some("public".into()),
        table: Some(table.to_string()),
        column: column.map(str::to_string),
        constraint: None,
    }))
}

/// Maps a rusqlite error to the PostgreSQL error a client expects.
pub fn from_sqlite(e: &rusqlite::Error) -> PgError {
    if let rusqlite::Error::SqlInputError { msg, sql, .. } = e {
        // SQL that passed PostgreSQL's grammar but not SQLite's: a construct the translation
        // does not cover. Said so, with SQLite's word for where, never a bare parser error.
        if msg.contains("syntax error") || msg.starts_with("near ") {
            let mut err = PgError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!("switchyard's SQLite backend cannot run this statement (SQLite: {msg})"),
            )
            .with_hint("rewrite the statement, or run this application on a PostgreSQL backend");
            err.detail = Some(format!("as translated for SQLite: {sql}"));
            return err;
        }
        return by_message(msg);
    }
    if let rusqlite::Error::SqliteFailure(f, msg) = e {
        let msg = msg.clone().unwrap_or_else(|| f.to_string());
        return match f.code {
            rusqlite::ErrorCode::ConstraintViolation => constraint(f.extended_code, &msg),
            rusqlite::ErrorCode::DatabaseBusy if f.extended_code == ffi::SQLITE_BUSY_SNAPSHOT => PgError::new(
                "40001",
                "could not serialize access: another connection wrote since this transaction started reading",
            )
            .with_hint("retry the transaction"),
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                PgError::new("55P03", format!("could not obtain the SQLite write lock: {msg}")).with_hint(
                    "another connection held it for longer than lock_timeout (30 s when unset); retry the transaction",
                )
            }
            rusqlite::ErrorCode::OperationInterrupted => PgError::new(sqlstate::QUERY_CANCELED, "canceling statement due to user request"),
            rusqlite::ErrorCode::ReadOnly => PgError::new("25006", msg),
            rusqlite::ErrorCode::TooBig => PgError::new(sqlstate::PROGRAM_LIMIT_EXCEEDED, msg),
            _ => by_message(&msg),
        };
    }
    by_message(&e.to_string())
}

/// The SQLSTATEs switchyard's SQL functions fail with.
const FUNCTION_CODES: &[&str] = &[
    "22012", "22P02", "22003", "22001", "22007", "22008", "22023", "2201E", "2201F", "54000",
    "2201B", "22004", "0A000", "42P01", "42883",
];

fn by_message(msg: &str) -> PgError {
    // switchyard's own functions fail as `SQLSTATE: message` (see `decimal.rs`).
    if let Some((code, text)) = msg.split_once(": ")
        && let Some(code) = FUNCTION_CODES.iter().find(|c| **c == code)
    {
        return PgError::new(code, text.to_string());
    }
    // SQLite's "no such …" as PostgreSQL words it.
    let named = |prefix: &str| msg.strip_prefix(prefix).map(|n| n.trim().to_string());
    if let Some(t) = named("no such table:") {
        return PgError::new("42P01", format!("relation \"{t}\" does not exist"));
    }
    // SQLite's "table x already exists" / "index x already exists", as PostgreSQL words it.
    for kind in ["table ", "index "] {
        if let Some(n) = msg
            .strip_prefix(kind)
            .and_then(|r| r.strip_suffix(" already exists"))
        {
            let n = n.trim_matches('"');
            return PgError::new("42P07", format!("relation \"{n}\" already exists"));
        }
    }
    if let Some(c) = named("no such column:") {
        // A qualified name is not quoted (`column t.c does not exist`).
        if c.contains('.') {
            return PgError::new("42703", format!("column {c} does not exist"));
        }
        return PgError::new("42703", format!("column \"{c}\" does not exist"));
    }
    if let Some(c) = named("ambiguous column name:") {
        return PgError::new("42702", format!("column reference \"{c}\" is ambiguous"));
    }
    if let Some((t, c)) = msg
        .strip_prefix("table ")
        .and_then(|r| r.split_once(" has no column named "))
    {
        return PgError::new(
            "42703",
            format!("column \"{c}\" of relation \"{t}\" does not exist"),
        );
    }
    if let Some(f) = named("no such function:") {
        return PgError::new("42883", format!("function {f} does not exist"))
            .with_hint(format!("switchyard's SQLite backend has no function {f}; rewrite the query, or run this application on a PostgreSQL backend"));
    }
    let code = if msg.contains("syntax error") || msg.starts_with("near ") {
        "42601"
    } else if msg.starts_with("invalid input syntax for type")
        || msg.starts_with("malformed array literal")
    {
        "22P02"
    } else if msg == "integer overflow" {
        "22003"
    } else if msg.starts_with("relation \"") && msg.contains("does not exist") {
        "42P01"
    } else if msg.contains("already exists") {
        "42P07"
    } else if msg.contains("datatype mismatch") {
        "42804"
    } else {
        "XX000"
    };
    PgError::new(code, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_errors_get_sqlstates() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
            .unwrap();
        c.execute("INSERT INTO t (v) VALUES ('a')", []).unwrap();
        let e = c.execute("INSERT INTO t (v) VALUES ('a')", []).unwrap_err();
        assert_eq!(from_sqlite(&e).code, "23505");
        let e = c
            .execute("INSERT INTO t (v) VALUES (NULL)", [])
            .unwrap_err();
        assert_eq!(from_sqlite(&e).code, "23502");
        let e = c.execute("SELECT * FROM nope", []).unwrap_err();
        assert_eq!(from_sqlite(&e).code, "42P01");
        let e = c.execute("SELECT nope FROM t", []).unwrap_err();
        assert_eq!(from_sqlite(&e).code, "42703");
        assert_eq!(from_sqlite(&e).message, "column \"nope\" does not exist");
        let e = c.execute("SELECT * FROM nope", []).unwrap_err();
        assert_eq!(from_sqlite(&e).message, "relation \"nope\" does not exist");
        let e = c.execute("CREATE TABLE t (x int)", []).unwrap_err();
        assert_eq!(
            (from_sqlite(&e).code, from_sqlite(&e).message.as_str()),
            ("42P07", "relation \"t\" already exists")
        );
        // Failures of switchyard's own SQL functions keep PostgreSQL's SQLSTATE.
        super::super::decimal::register(&c).unwrap();
        let e = c
            .query_row("SELECT sy_dec_div(1, 0)", [], |r| r.get::<_, String>(0))
            .unwrap_err();
        assert_eq!(
            (from_sqlite(&e).code, from_sqlite(&e).message.as_str()),
            ("22012", "division by zero")
        );
        let e = c
            .query_row("SELECT sy_dec_add('x', 1)", [], |r| r.get::<_, String>(0))
            .unwrap_err();
        assert_eq!(from_sqlite(&e).code, "22P02");
        // A construct SQLite's grammar refuses: 0A000, no offset in the message.
        let e = c.prepare("DECLARE x CURSOR FOR SELECT 1").unwrap_err();
        let pg = from_sqlite(&e);
        assert_eq!(pg.code, "0A000");
        assert!(
            pg.message.contains("SQLite backend") && !pg.message.contains("offset"),
            "{}",
            pg.message
        );
    }
}
