//! PostgreSQL enum types on the SQLite backend: `CREATE TYPE … AS ENUM`, `ALTER TYPE … ADD
//! VALUE`, `DROP TYPE`. The labels are kept in `_switchyard_enums` (shown by the catalog's
//! `pg_type` and `pg_enum`); a column of an enum type gets a CHECK listing its labels
//! (`sy_enum_TYPE`, failing as PostgreSQL's 22P02), written into the table's definition
//! so any SQLite tool writing the file keeps to it too, and rewritten when a value is
//! added.

use rusqlite::Connection;
use sqlparser::ast::{ColumnOption, ColumnOptionDef, Ident};

use super::alter::{edit_table, lit, q, sql};
use super::error::{PgError, from_sqlite};

/// The labels of every enum type.
pub const SETUP: &str = "CREATE TABLE IF NOT EXISTS _switchyard_enums (typname TEXT NOT NULL, \
    sortorder REAL NOT NULL, label TEXT NOT NULL, PRIMARY KEY (typname, label))";

/// The prefix of the CHECK that holds a column to its enum's labels.
pub const ENUM_CHECK: &str = "sy_enum_";

/// A type statement, run by [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeOp {
    Create {
        name: String,
        labels: Vec<String>,
    },
    Drop {
        names: Vec<String>,
        if_exists: bool,
    },
    AddValue {
        name: String,
        value: String,
        if_not_exists: bool,
        /// (before, neighbour)
        position: Option<(bool, String)>,
    },
}

/// Runs `op`; returns its command tag.
pub fn run(conn: &Connection, op: &TypeOp) -> Result<&'static str, PgError> {
    match op {
        TypeOp::Create { name, labels } => create(conn, name, labels).map(|_| "CREATE TYPE"),
        TypeOp::Drop { names, if_exists } => {
            for n in names {
                drop_type(conn, n, *if_exists)?;
            }
            Ok("DROP TYPE")
        }
        TypeOp::AddValue {
            name,
            value,
            if_not_exists,
            position,
        } => add_value(conn, name, value, *if_not_exists, position.as_ref()).map(|_| "ALTER TYPE"),
    }
}

/// The labels of enum type `name`, in order (empty when it is not one).
pub fn labels(conn: &Connection, name: &str) -> Result<Vec<String>, PgError> {
    let mut st = conn
        .prepare_cached("SELECT label FROM _switchyard_enums WHERE typname = ?1 ORDER BY sortorder")
        .map_err(|e| from_sqlite(&e))?;
    let rows = st
        .query_map([name], |r| r.get(0))
        .map_err(|e| from_sqlite(&e))?;
    rows.collect::<Result<_, _>>().map_err(|e| from_sqlite(&e))
}

fn create(conn: &Connection, name: &str, new: &[String]) -> Result<(), PgError> {
    if !labels(conn, name)?.is_empty() {
        return Err(PgError::new(
            "42710",
            format!("type \"{name}\" already exists"),
        ));
    }
    for (i, l) in new.iter().enumerate() {
        conn.execute(
            "INSERT INTO _switchyard_enums (typname, sortorder, label) VALUES (?1, ?2, ?3)",
            rusqlite::params![name, (i + 1) as f64, l],
        )
        .map_err(|e| from_sqlite(&e))?;
    }
    Ok(())
}

/// Columns (table, column) of type `name`.
fn columns_of(conn: &Connection, name: &str) -> Result<Vec<(String, String)>, PgError> {
    let mut st = conn
        .prepare("SELECT tbl, col FROM _switchyard_columns WHERE pg_type = ?1")
        .map_err(|e| from_sqlite(&e))?;
    let rows = st
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| from_sqlite(&e))?;
    rows.collect::<Result<_, _>>().map_err(|e| from_sqlite(&e))
}

fn drop_type(conn: &Connection, name: &str, if_exists: bool) -> Result<(), PgError> {
    if labels(conn, name)?.is_empty() {
        return if if_exists {
            Ok(())
        } else {
            Err(PgError::new(
                "42704",
                format!("type \"{name}\" does not exist"),
            ))
        };
    }
    if let Some((t, c)) = columns_of(conn, name)?.into_iter().next() {
        return Err(PgError::new(
            "2BP01",
            format!(
                "cannot drop type {name} because other objects depend on it (column {c} of table {t})"
            ),
        ));
    }
    conn.execute("DELETE FROM _switchyard_enums WHERE typname = ?1", [name])
        .map_err(|e| from_sqlite(&e))?;
    Ok(())
}

fn add_value(
    conn: &Connection,
    name: &str,
    value: &str,
    if_not_exists: bool,
    position: Option<&(bool, String)>,
) -> Result<(), PgError> {
    let existing = labels(conn, name)?;
    if existing.is_empty() {
        return Err(PgError::new(
            "42704",
            format!("type \"{name}\" does not exist"),
        ));
    }
    if existing.iter().any(|l| l == value) {
        return if if_not_exists {
            Ok(())
        } else {
            Err(PgError::new(
                "42710",
                format!("enum label \"{value}\" already exists"),
            ))
        };
    }
    let order = |label: &str| -> Result<f64, PgError> {
        conn.query_row(
            "SELECT sortorder FROM _switchyard_enums WHERE typname = ?1 AND label = ?2",
            [name, label],
            |r| r.get(0),
        )
        .map_err(|_| {
            PgError::new(
                "22023",
                format!("\"{label}\" is not an existing enum label"),
            )
        })
    };
    let neighbour = |before: bool, at: f64| -> Result<f64, PgError> {
        let sql = if before {
            "SELECT max(sortorder) FROM _switchyard_enums WHERE typname = ?1 AND sortorder < ?2"
        } else {
            "SELECT min(sortorder) FROM _switchyard_enums WHERE typname = ?1 AND sortorder > ?2"
        };
        let other: Option<f64> = conn
            .query_row(sql, rusqlite::params![name, at], |r| r.get(0))
            .map_err(|e| from_sqlite(&e))?;
        Ok(match other {
            Some(o) => (o + at) / 2.0,
            None if before => at - 1.0,
            None => at + 1.0,
        })
    };
    let sortorder = match position {
        Some((before, label)) => neighbour(*before, order(label)?)?,
        None => next_order(conn, name)?,
    };
    conn.execute(
        "INSERT INTO _switchyard_enums (typname, sortorder, label) VALUES (?1, ?2, ?3)",
        rusqlite::params![name, sortorder, value],
    )
    .map_err(|e| from_sqlite(&e))?;
    for (t, c) in columns_of(conn, name)? {
        constrain(conn, &t, &c, name)?;
    }
    Ok(())
}

fn next_order(conn: &Connection, name: &str) -> Result<f64, PgError> {
    conn.query_row(
        "SELECT coalesce(max(sortorder), 0) + 1 FROM _switchyard_enums WHERE typname = ?1",
        [name],
        |r| r.get(0),
    )
    .map_err(|e| from_sqlite(&e))
}

/// Gives each (table, column, type) whose type is an enum the CHECK of its labels (after a
/// CREATE TABLE or ADD COLUMN), checking the rows already there.
pub fn enforce(conn: &Connection, columns: &[(String, String, String)]) -> Result<(), PgError> {
    for (t, c, ty) in columns {
        if labels(conn, ty)?.is_empty() {
            continue;
        }
        constrain(conn, t, c, ty)?;
        let allowed = labels(conn, ty)?.iter().map(|l| lit(l)).collect::<Vec<_>>();
        let bad = super::alter::any_row(
            conn,
            &format!(
                "SELECT 1 FROM {} WHERE {} NOT IN ({}) LIMIT 1",
                q(t),
                q(c),
                allowed.join(", ")
            ),
        )?;
        if bad {
            return Err(PgError::new(
                "22P02",
                format!("invalid input value for enum {ty}"),
            ));
        }
    }
    Ok(())
}

/// Writes the column's CHECK with the type's current labels.
fn constrain(conn: &Connection, table: &str, column: &str, ty: &str) -> Result<(), PgError> {
    let allowed: Vec<String> = labels(conn, ty)?.iter().map(|l| lit(l)).collect();
    let check = super::rewrite::raw(format!("{} IN ({})", q(column), allowed.join(", ")));
    let name = format!("{ENUM_CHECK}{ty}");
    sql(conn, "SAVEPOINT sy_enum")?;
    let r = edit_table(conn, table, |ct| {
        let col = super::alter::column_mut(ct, table, column)?;
        col.options.retain(|o| {
            !(matches!(o.option, ColumnOption::Check(_))
                && o.name
                    .as_ref()
                    .is_some_and(|n| n.value.starts_with(ENUM_CHECK)))
        });
        col.options.push(ColumnOptionDef {
            name: Some(Ident::new(name.clone())),
            option: ColumnOption::Check(sqlparser::ast::CheckConstraint {
                name: None,
                expr: Box::new(check),
                no_inherit: false,
                enforced: None,
            }),
        });
        Ok(())
    });
    sql(
        conn,
        if r.is_ok() {
            "RELEASE sy_enum"
        } else {
            "ROLLBACK TO sy_enum; RELEASE sy_enum"
        },
    )?;
    r
}
