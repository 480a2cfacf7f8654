//! Table rebuilds for the ALTER TABLE forms SQLite can do no other way: a primary key
//! added, or a key or UNIQUE declared in CREATE TABLE dropped (with its constraint, or
//! with a column it names). SQLite keeps those as automatic indexes tied to the table's
//! definition, so the table is made again, inside the client's transaction, as SQLite's
//! own documentation and Django's SQLite schema editor do: the rows held in a temporary
//! table, the table dropped and made again with the changed definition under its own
//! name, the rows put back (ids and the AUTOINCREMENT counter kept), and its indexes and
//! triggers (live sync's capture triggers included) made again.
//!
//! Foreign keys stay enforced inside a transaction, and dropping the table deletes its
//! rows first: the foreign keys of tables that refer to it are deferred for the rebuild
//! (the rows put back satisfy them again before commit, which checks). A referring
//! foreign key with an action on delete (CASCADE, SET NULL, SET DEFAULT, RESTRICT) would
//! act on that delete, so for the rebuild the referring table's definition says no action
//! (edited in place, as [`super::alter`] edits definitions, and put back word for word
//! after): its rows are never touched, as PostgreSQL's are not.

use rusqlite::{Connection, OptionalExtension};
use sqlparser::ast::{CreateTable, Statement};
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

/// Tables other than `table` whose foreign keys refer to it, each with whether one of
/// those keys has an action on delete.
fn referring(conn: &Connection, table: &str) -> Result<Vec<(String, bool)>, PgError> {
    let mut st = conn
        .prepare(
            "SELECT m.name, max(f.on_delete <> 'NO ACTION') \
             FROM sqlite_schema m, pragma_foreign_key_list(m.name) f \
             WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE AND m.name <> ?1 COLLATE NOCASE \
             GROUP BY m.name",
        )
        .map_err(|e| from_sqlite(&e))?;
    let names: Vec<(String, bool)> = st
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
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

/// Holds `table`'s rows in a temporary table, makes the table again as `new`, and puts
/// the rows (their `cols`) and its AUTOINCREMENT counter back.
fn move_rows(
    conn: &Connection,
    table: &str,
    old: &str,
    new: &str,
    cols: &str,
) -> Result<(), PgError> {
    let hold = q(&format!("_sy_rebuild_{table}"));
    sql(
        conn,
        &format!(
            "CREATE TEMP TABLE {hold} AS SELECT {cols} FROM {}",
            q(table)
        ),
    )?;
    let counter: Option<i64> = if old.contains("AUTOINCREMENT") {
        conn.query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| from_sqlite(&e))?
    } else {
        None
    };
    sql(conn, &format!("DROP TABLE {}", q(table)))?;
    sql(conn, new)?;
    sql(
        conn,
        &format!(
            "INSERT INTO {} ({cols}) SELECT {cols} FROM temp.{hold}",
            q(table)
        ),
    )?;
    sql(conn, &format!("DROP TABLE temp.{hold}"))?;
    // The counter goes on from where it was, not from the highest id left.
    if let Some(seq) = counter {
        conn.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1",
            rusqlite::params![table, seq],
        )
        .map_err(|e| from_sqlite(&e))?;
        if conn.changes() == 0 {
            conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
                rusqlite::params![table, seq],
            )
            .map_err(|e| from_sqlite(&e))?;
        }
    }
    Ok(())
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
/// names the change in the log.
pub fn rebuild(
    conn: &Connection,
    table: &str,
    what: &str,
    edit: impl FnOnce(&mut CreateTable) -> Result<(), PgError>,
) -> Result<(), PgError> {
    let others = referring(conn, table)?;
    // Definitions of referring tables whose keys act on delete, to put back after.
    let mut acting = Vec::new();
    for (other, _) in others.iter().filter(|o| o.1) {
        acting.push((other.clone(), definition(conn, other)?.0));
        super::alter::edit_table(conn, other, |ct| {
            no_delete_actions(ct, table);
            Ok(())
        })?;
    }
    let rebuilt = rebuild_alone(conn, table, what, !others.is_empty(), edit);
    for (other, text) in &acting {
        super::alter::store_definition(conn, other, text)?;
    }
    rebuilt
}

/// Takes the ON DELETE action off `ct`'s foreign keys that refer to `parent`.
fn no_delete_actions(ct: &mut CreateTable, parent: &str) {
    use sqlparser::ast::{ColumnOption, TableConstraint};
    let refers = |name: &sqlparser::ast::ObjectName| {
        name.0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case(parent))
    };
    for c in &mut ct.constraints {
        if let TableConstraint::ForeignKey(fk) = c
            && refers(&fk.foreign_table)
        {
            fk.on_delete = None;
        }
    }
    for col in &mut ct.columns {
        for o in &mut col.options {
            if let ColumnOption::ForeignKey(fk) = &mut o.option
                && refers(&fk.foreign_table)
            {
                fk.on_delete = None;
            }
        }
    }
}

/// The rebuild itself, with the foreign keys of `referred` tables deferred.
fn rebuild_alone(
    conn: &Connection,
    table: &str,
    what: &str,
    referred: bool,
    edit: impl FnOnce(&mut CreateTable) -> Result<(), PgError>,
) -> Result<(), PgError> {
    let (text, mut ct) = definition(conn, table)?;
    let old_columns: Vec<String> = ct.columns.iter().map(|c| c.name.value.clone()).collect();
    edit(&mut ct)?;
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
    let deferred: bool = conn
        .query_row("PRAGMA defer_foreign_keys", [], |r| r.get(0))
        .map_err(|e| from_sqlite(&e))?;
    if referred {
        sql(conn, "PRAGMA defer_foreign_keys = ON")?;
    }
    let moved = move_rows(conn, table, &text, &new, &kept.join(", "));
    if referred && !deferred {
        sql(conn, "PRAGMA defer_foreign_keys = OFF")?;
    }
    moved?;
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
