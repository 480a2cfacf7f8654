//! Table rebuilds for the ALTER TABLE forms SQLite can do no other way: a primary key
//! added, or a key or UNIQUE declared in CREATE TABLE dropped (with its constraint, or
//! with a column it names). SQLite keeps those as automatic indexes tied to the table's
//! definition, so the table is made again, inside the client's transaction, as SQLite's
//! own documentation and Django's SQLite schema editor do: a new table with the changed
//! definition, the rows copied (ids and the AUTOINCREMENT counter kept), the old table
//! dropped, the new one renamed, and its indexes and triggers (live sync's capture
//! triggers included) made again.
//!
//! Dropping the old table deletes its rows first while foreign keys are enforced, which
//! would run the ON DELETE actions of tables that refer to it: a table others refer to is
//! not rebuilt; the error names them.

use rusqlite::Connection;
use sqlparser::ast::{CreateTable, ObjectName, Statement};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;

use super::alter::{q, sql};
use super::error::{PgError, from_sqlite};

/// Whether a table constraint names `column` (PostgreSQL drops such constraints with it).
pub fn names_column(c: &sqlparser::ast::TableConstraint, column: &str) -> bool {
    use sqlparser::ast::TableConstraint as T;
    let is = |s: String| s.trim_matches('"').eq_ignore_ascii_case(column);
    match c {
        T::PrimaryKey(p) => p.columns.iter().any(|c| is(c.column.expr.to_string())),
        T::Unique(u) => u.columns.iter().any(|c| is(c.column.expr.to_string())),
        T::ForeignKey(f) => f.columns.iter().any(|c| is(c.value.clone())),
        T::Check(ch) => {
            let mut found = false;
            let _ = sqlparser::ast::visit_expressions(&ch.expr, |e| {
                found |= matches!(e, sqlparser::ast::Expr::Identifier(i) if is(i.value.clone()));
                std::ops::ControlFlow::<()>::Continue(())
            });
            found
        }
        _ => false,
    }
}

/// Tables other than `table` whose foreign keys refer to it.
fn referring(conn: &Connection, table: &str) -> Result<Vec<String>, PgError> {
    let mut st = conn
        .prepare(
            "SELECT DISTINCT m.name FROM sqlite_schema m, pragma_foreign_key_list(m.name) f \
             WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE AND m.name <> ?1 COLLATE NOCASE",
        )
        .map_err(|e| from_sqlite(&e))?;
    let names: Vec<String> = st
        .query_map([table], |r| r.get::<_, String>(0))
        .map_err(|e| from_sqlite(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| from_sqlite(&e))?;
    Ok(names)
}

/// The definitions of `table`'s own indexes and triggers (not the automatic ones).
fn dependents(conn: &Connection, table: &str) -> Result<Vec<(String, String)>, PgError> {
    let mut st = conn
        .prepare(
            "SELECT type, sql FROM sqlite_schema WHERE tbl_name = ?1 AND type IN ('index', 'trigger') \
             AND sql IS NOT NULL ORDER BY rowid",
        )
        .map_err(|e| from_sqlite(&e))?;
    let rows: Vec<(String, String)> = st
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| from_sqlite(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| from_sqlite(&e))?;
    Ok(rows)
}

/// `table`'s definition as stored, and as parsed.
pub(super) fn definition(conn: &Connection, table: &str) -> Result<(String, CreateTable), PgError> {
    let text: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .map_err(|e| from_sqlite(&e))?;
    match Parser::parse_sql(&SQLiteDialect {}, &text).map(|mut v| v.pop()) {
        Ok(Some(Statement::CreateTable(ct))) => Ok((text, ct)),
        _ => Err(PgError::new(
            "XX000",
            format!("switchyard cannot read the definition of table \"{table}\""),
        )),
    }
}

/// Rebuilds `table` with `edit` applied to its definition (see the module doc). `what`
/// names the change for the error when others refer to the table.
pub fn rebuild(
    conn: &Connection,
    table: &str,
    what: &str,
    edit: impl FnOnce(&mut CreateTable) -> Result<(), PgError>,
) -> Result<(), PgError> {
    let others = referring(conn, table)?;
    if !others.is_empty() {
        return Err(PgError::new(
            "0A000",
            format!(
                "{what} rebuilds table \"{table}\" on switchyard's SQLite backend, which it cannot do while {} refer to it by foreign key",
                others.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ")
            ),
        )
        .with_hint("drop those foreign keys first and add them back after, or run this migration on a PostgreSQL backend"));
    }
    let (text, mut ct) = definition(conn, table)?;
    let old_columns: Vec<String> = ct.columns.iter().map(|c| c.name.value.clone()).collect();
    edit(&mut ct)?;
    let temp = format!("_sy_rebuild_{table}");
    ct.name = ObjectName::from(vec![sqlparser::ast::Ident::with_quote('"', &temp)]);
    let kept: Vec<String> = ct
        .columns
        .iter()
        .map(|c| c.name.value.clone())
        .filter(|c| old_columns.iter().any(|o| o.eq_ignore_ascii_case(c)))
        .map(|c| q(&c))
        .collect();
    let mut new = Statement::CreateTable(ct).to_string();
    super::sequences::keep_mark(&text, &mut new);
    let saved = dependents(conn, table)?;
    sql(conn, &new)?;
    let cols = kept.join(", ");
    sql(
        conn,
        &format!(
            "INSERT INTO {} ({cols}) SELECT {cols} FROM {}",
            q(&temp),
            q(table)
        ),
    )?;
    // The counter goes on from where it was, not from the highest id left.
    if text.contains("AUTOINCREMENT") {
        conn.execute_batch(&format!(
        "DELETE FROM sqlite_sequence WHERE name = {t}; \
         INSERT INTO sqlite_sequence (name, seq) SELECT {t}, seq FROM sqlite_sequence WHERE name = {o}",
        t = super::alter::lit(&temp),
        o = super::alter::lit(table)
        ))
        .map_err(|e| from_sqlite(&e))?;
    }
    sql(conn, &format!("DROP TABLE {}", q(table)))?;
    // Legacy renaming leaves the views that name the table alone (they read the new one).
    sql(conn, "PRAGMA legacy_alter_table = ON")?;
    let renamed = sql(
        conn,
        &format!("ALTER TABLE {} RENAME TO {}", q(&temp), q(table)),
    );
    sql(conn, "PRAGMA legacy_alter_table = OFF")?;
    renamed?;
    for (kind, def) in saved {
        // An index on a column that went is gone with it, as in PostgreSQL.
        match sql(conn, &def) {
            Err(e) if kind == "index" && e.code == "42703" => {}
            other => other?,
        }
    }
    tracing::info!(table, what, "sqlite table rebuilt");
    Ok(())
}
