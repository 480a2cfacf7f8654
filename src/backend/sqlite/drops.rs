//! What SQLite's DROP lacks: PostgreSQL's notice for `DROP … IF EXISTS` of something that
//! is not there (`table "x" does not exist, skipping`, which psql and the logs of
//! migration tools print), and several tables, indexes or views in one DROP.

use bytes::BytesMut;
use rusqlite::Connection;
use sqlparser::ast::{ObjectType, Statement};

use super::error::{PgError, from_sqlite};
use crate::protocol::build::{self, ErrorFields, Severity};

/// What a `DROP … IF EXISTS` names: (kind as PostgreSQL words it, SQLite's type, name).
pub type Dropped = Vec<(&'static str, &'static str, String)>;

/// The objects `stmt` drops if they exist (none for any other statement).
pub fn named(stmt: &Statement) -> Dropped {
    let Statement::Drop {
        object_type,
        if_exists: true,
        names,
        ..
    } = stmt
    else {
        return Vec::new();
    };
    let (kind, sqlite) = match object_type {
        ObjectType::Table => ("table", "table"),
        ObjectType::Index => ("index", "index"),
        ObjectType::View => ("view", "view"),
        _ => return Vec::new(),
    };
    names
        .iter()
        .filter_map(|n| n.0.last().and_then(|p| p.as_ident()))
        .map(|i| {
            let name = if i.quote_style.is_some() {
                i.value.clone()
            } else {
                i.value.to_lowercase()
            };
            (kind, sqlite, name)
        })
        .collect()
}

/// What a DROP does before SQLite runs it: the notices for what `IF EXISTS` did not
/// find, then the DROPs of a statement that names several objects.
pub fn before(
    conn: &Connection,
    t: &super::translate::Translated,
    out: &mut BytesMut,
) -> Result<(), PgError> {
    notice_missing(conn, &t.if_exists, out);
    run_all(conn, &t.drops)
}

/// Writes the notice for each of `dropped` that does not exist.
fn notice_missing(conn: &Connection, dropped: &Dropped, out: &mut BytesMut) {
    for (kind, sqlite, name) in dropped {
        let exists = conn
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = ?1 AND name = ?2 COLLATE NOCASE",
                [sqlite, name.as_str()],
                |_| Ok(()),
            )
            .is_ok();
        if !exists {
            let mut f = ErrorFields::error(
                "00000",
                format!("{kind} \"{name}\" does not exist, skipping"),
            );
            f.severity = Severity::Notice;
            build::notice_response(out, &f);
        }
    }
}

/// For a DROP of tables, indexes or views: one DROP for each (run by [`run_all`]), and
/// `stmt` left as `DROP … IF EXISTS` of the first, which then finds nothing to do and
/// answers with the command's tag.
pub fn split(stmt: &mut Statement) -> Vec<String> {
    let Statement::Drop {
        object_type: ObjectType::Table | ObjectType::Index | ObjectType::View,
        names,
        ..
    } = stmt
    else {
        return Vec::new();
    };
    let all = std::mem::take(names);
    let each: Vec<String> = all
        .iter()
        .map(|n| {
            let mut one = stmt.clone();
            if let Statement::Drop { names, .. } = &mut one {
                *names = vec![n.clone()];
            }
            one.to_string()
        })
        .collect();
    if let Statement::Drop {
        names, if_exists, ..
    } = stmt
    {
        *names = all.into_iter().take(1).collect();
        *if_exists = true;
    }
    each
}

/// SQLite's error for a missing object as PostgreSQL words it for a DROP.
fn missing(e: &rusqlite::Error) -> PgError {
    let msg = e.to_string();
    for (sqlite, kind, code) in [
        ("no such table: ", "table", "42P01"),
        ("no such view: ", "view", "42P01"),
        ("no such index: ", "index", "42704"),
    ] {
        if let Some(name) = msg.strip_prefix(sqlite) {
            return PgError::new(code, format!("{kind} \"{name}\" does not exist"));
        }
    }
    from_sqlite(e)
}

/// Runs the DROPs [`split`] made, all or none (a savepoint around them).
fn run_all(conn: &Connection, drops: &[String]) -> Result<(), PgError> {
    if drops.is_empty() {
        return Ok(());
    }
    let sql = |s: &str| conn.execute_batch(s).map_err(|e| missing(&e));
    sql("SAVEPOINT _sy_drops")?;
    let ran = drops.iter().try_for_each(|d| sql(d));
    if ran.is_err() {
        let _ = sql("ROLLBACK TO _sy_drops");
    }
    sql("RELEASE _sy_drops")?;
    ran
}
