//! PostgreSQL's `ALTER TABLE` forms that SQLite's own lacks, inside the client's
//! transaction: adding and dropping constraints, changing a column's type, nullability or
//! default, adding a NOT NULL column, dropping a column that indexes or keys use.
//!
//! Changes that leave the stored rows as they are (a constraint, a declared type, NOT
//! NULL, a default) edit the table's definition in `sqlite_schema` — SQLite's documented
//! procedure for such changes (writable_schema, then a new schema_version), which keeps
//! the table, its rowids, indexes and triggers (live sync's capture included) — and then
//! check the existing rows the way PostgreSQL would (NULLs, foreign keys, CHECKs), so a
//! change PostgreSQL refuses is refused here with its SQLSTATE. UNIQUE constraints are
//! unique indexes of the constraint's name.

use rusqlite::{Connection, OptionalExtension};
use sqlparser::ast::{
    AlterTableOperation, ColumnOption, ColumnOptionDef, CreateTable, Expr, Ident, Statement,
    TableConstraint,
};

use super::error::{PgError, from_sqlite};

/// An ALTER TABLE the session runs operation by operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alter {
    pub table: String,
    pub ops: Vec<AlterTableOperation>,
}

/// Whether SQLite runs `op` itself, as written (renames also update what switchyard
/// remembers of the columns: [`run`] does both). Not an ADD COLUMN with a default, even a
/// constant one: SQLite would keep that default only in the table's definition, where
/// the existing rows read it from, and a later SET/DROP DEFAULT (which edits that
/// definition) would change those rows; [`super::alter_column`] stores it in them.
pub fn native(op: &AlterTableOperation) -> bool {
    match op {
        AlterTableOperation::AddColumn { column_def, .. } => !column_def.options.iter().any(|o| {
            matches!(
                o.option,
                ColumnOption::NotNull | ColumnOption::Unique(_) | ColumnOption::Default(_)
            )
        }),
        _ => false,
    }
}

/// Runs every operation in order (the caller holds the write transaction).
pub fn run(conn: &Connection, a: &Alter) -> Result<(), PgError> {
    let table = real_name(conn, &a.table)?;
    for op in &a.ops {
        run_op(conn, &table, op)?;
    }
    Ok(())
}

fn run_op(conn: &Connection, table: &str, op: &AlterTableOperation) -> Result<(), PgError> {
    use AlterTableOperation as Op;
    match op {
        Op::AddColumn { column_def, .. } => {
            super::alter_column::add_column(conn, table, column_def)
        }
        Op::AddConstraint { constraint, .. } => add_constraint(conn, table, constraint),
        Op::DropConstraint {
            name, if_exists, ..
        } => drop_constraint(conn, table, &name.value, *if_exists),
        Op::AlterColumn { column_name, op } => {
            super::alter_column::alter_column(conn, table, &column_name.value, op)
        }
        Op::DropColumn {
            column_names,
            if_exists,
            ..
        } => {
            for c in column_names {
                super::alter_column::drop_column(conn, table, &c.value, *if_exists)?;
            }
            Ok(())
        }
        Op::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            sql(conn, &format!("ALTER TABLE {} {op}", q(table)))?;
            super::defaults::renamed_column(
                conn,
                table,
                &old_column_name.value,
                &new_column_name.value,
            )
        }
        Op::RenameTable { table_name } => {
            sql(conn, &format!("ALTER TABLE {} {op}", q(table)))?;
            let (sqlparser::ast::RenameTableNameKind::As(n)
            | sqlparser::ast::RenameTableNameKind::To(n)) = table_name;
            let new =
                n.0.last()
                    .and_then(|p| p.as_ident())
                    .map(|i| i.value.clone())
                    .unwrap_or_default();
            super::defaults::renamed_table(conn, table, &new)
        }
        other if native(other) => sql(conn, &format!("ALTER TABLE {} {other}", q(table))),
        other => Err(PgError::new(
            "0A000",
            format!("ALTER TABLE … {other} is not supported by switchyard's SQLite backend"),
        )
        .with_hint("rewrite the migration, or run this application on a PostgreSQL backend")),
    }
}

pub(super) fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(super) fn sql(conn: &Connection, text: &str) -> Result<(), PgError> {
    conn.execute_batch(text).map_err(|e| from_sqlite(&e))
}

/// The table's name as stored (SQLite's names ignore case; PostgreSQL folds unquoted ones).
fn real_name(conn: &Connection, table: &str) -> Result<String, PgError> {
    conn.query_row(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        [table],
        |r| r.get(0),
    )
    .optional()
    .map_err(|e| from_sqlite(&e))?
    .ok_or_else(|| PgError::new("42P01", format!("relation \"{table}\" does not exist")))
}

/// True when `sql` finds a row.
pub fn any_row(conn: &Connection, sql: &str) -> Result<bool, PgError> {
    conn.query_row(sql, [], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(|e| from_sqlite(&e))
}

/// Reads the table's definition, lets `edit` change it, and stores it back (SQLite's
/// procedure for changes that leave the stored rows as they are).
pub(super) fn edit_table(
    conn: &Connection,
    table: &str,
    edit: impl FnOnce(&mut CreateTable) -> Result<(), PgError>,
) -> Result<(), PgError> {
    let (text, mut ct) = super::rebuild::definition(conn, table)?;
    edit(&mut ct)?;
    let mut new = Statement::CreateTable(ct).to_string();
    super::sequences::keep_mark(&text, &mut new);
    store_definition(conn, table, &new)
}

/// Stores `new` as the table's definition (SQLite's procedure for changes that leave the
/// stored rows as they are) and reloads this connection's schema.
pub(super) fn store_definition(conn: &Connection, table: &str, new: &str) -> Result<(), PgError> {
    let version: i64 = conn
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .map_err(|e| from_sqlite(&e))?;
    sql(conn, "PRAGMA writable_schema = ON")?;
    let updated = conn
        .execute(
            "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = ?2",
            [new, table],
        )
        .map_err(|e| from_sqlite(&e));
    let bumped = sql(conn, &format!("PRAGMA schema_version = {}", version + 1));
    // RESET also reloads this connection's schema, so the checks that follow see it.
    sql(conn, "PRAGMA writable_schema = RESET")?;
    updated?;
    bumped
}

/// The column named `name` (any case), or PostgreSQL's 42703.
pub(super) fn column_mut<'a>(
    ct: &'a mut CreateTable,
    table: &str,
    name: &str,
) -> Result<&'a mut sqlparser::ast::ColumnDef, PgError> {
    ct.columns
        .iter_mut()
        .find(|c| c.name.value.eq_ignore_ascii_case(name))
        .ok_or_else(|| no_column(table, name))
}

pub(super) fn no_column(table: &str, name: &str) -> PgError {
    PgError::new(
        "42703",
        format!("column \"{name}\" of relation \"{table}\" does not exist"),
    )
}

fn add_constraint(conn: &Connection, table: &str, c: &TableConstraint) -> Result<(), PgError> {
    match c {
        TableConstraint::Unique(u) => {
            let cols: Vec<String> = u.columns.iter().map(|c| c.to_string()).collect();
            let name = u.name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| {
                let plain: Vec<String> = cols.iter().map(|c| c.trim_matches('"').into()).collect();
                format!("{table}_{}_key", plain.join("_"))
            });
            sql(
                conn,
                &format!(
                    "CREATE UNIQUE INDEX {} ON {} {} ({})",
                    q(&name),
                    q(table),
                    super::constraints::UNIQUE_MARK,
                    cols.join(", ")
                ),
            )
            .map_err(|e| match e.code {
                "23505" => {
                    PgError::new("23505", format!("could not create unique index \"{name}\""))
                }
                _ => e,
            })
        }
        TableConstraint::ForeignKey(fk) => {
            let name = constraint_name(c);
            edit_table(conn, table, |ct| {
                ct.constraints.push(c.clone());
                Ok(())
            })?;
            let violated = any_row(conn, &format!("PRAGMA foreign_key_check({})", q(table)))?;
            if violated && !deferred(fk) {
                return Err(PgError::new(
                    "23503",
                    format!(
                        "insert or update on table \"{table}\" violates foreign key constraint \"{name}\""
                    ),
                ));
            }
            Ok(())
        }
        TableConstraint::Check(ch) => {
            let name = constraint_name(c);
            edit_table(conn, table, |ct| {
                ct.constraints.push(c.clone());
                Ok(())
            })?;
            let test = format!("SELECT 1 FROM {} WHERE NOT ({}) LIMIT 1", q(table), ch.expr);
            if any_row(conn, &test)? {
                return Err(PgError::new(
                    "23514",
                    format!(
                        "check constraint \"{name}\" of relation \"{table}\" is violated by some row"
                    ),
                ));
            }
            Ok(())
        }
        TableConstraint::PrimaryKey(pk) => add_primary_key(conn, table, pk),
        other => Err(PgError::new(
            "0A000",
            format!("ALTER TABLE … ADD {other} is not supported by switchyard's SQLite backend"),
        )
        .with_hint("declare it in CREATE TABLE, or run this application on a PostgreSQL backend")),
    }
}

/// `ADD PRIMARY KEY (…)`: the table is rebuilt with the key (its columns made NOT NULL,
/// as PostgreSQL makes them); NULLs or duplicates refuse it with PostgreSQL's SQLSTATEs.
fn add_primary_key(
    conn: &Connection,
    table: &str,
    pk: &sqlparser::ast::PrimaryKeyConstraint,
) -> Result<(), PgError> {
    if any_row(
        conn,
        &format!(
            "SELECT 1 FROM pragma_table_info({}) WHERE pk > 0",
            lit(table)
        ),
    )? {
        return Err(PgError::new(
            "42P16",
            format!("multiple primary keys for table \"{table}\" are not allowed"),
        ));
    }
    let cols: Vec<String> = pk
        .columns
        .iter()
        .map(|c| c.column.expr.to_string().trim_matches('"').to_string())
        .collect();
    let name = pk
        .name
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| format!("{table}_pkey"));
    // Checked first: an INTEGER key would number NULLs itself instead of refusing them.
    for c in &cols {
        let nulls = format!("SELECT 1 FROM {} WHERE {} IS NULL LIMIT 1", q(table), q(c));
        if any_row(conn, &nulls)? {
            return Err(PgError::new(
                "23502",
                format!("column \"{c}\" of relation \"{table}\" contains null values"),
            ));
        }
    }
    let list = cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let dup = format!(
        "SELECT {list} FROM {} GROUP BY {list} HAVING count(*) > 1 LIMIT 1",
        q(table)
    );
    let key: Option<Vec<String>> = conn
        .query_row(&dup, [], |r| {
            (0..cols.len())
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                        rusqlite::types::Value::Integer(i) => i.to_string(),
                        rusqlite::types::Value::Real(f) => f.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        _ => String::new(),
                    })
                })
                .collect()
        })
        .optional()
        .map_err(|e| from_sqlite(&e))?;
    if let Some(key) = key {
        let mut err = PgError::new("23505", format!("could not create unique index \"{name}\""));
        err.detail = Some(format!(
            "Key ({})=({}) is duplicated.",
            cols.join(", "),
            key.join(", ")
        ));
        return Err(err);
    }
    let mut pk = pk.clone();
    pk.name = Some(Ident::new(name.clone()));
    super::rebuild::rebuild(conn, table, "ADD PRIMARY KEY", |ct| {
        for c in &cols {
            let col = column_mut(ct, table, c)?;
            if !col
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::NotNull))
            {
                col.options.push(ColumnOptionDef {
                    name: None,
                    option: ColumnOption::NotNull,
                });
            }
        }
        ct.constraints.push(TableConstraint::PrimaryKey(pk));
        Ok(())
    })
}

/// A foreign key checked at commit (its violations are the transaction's to fix).
fn deferred(fk: &sqlparser::ast::ForeignKeyConstraint) -> bool {
    fk.characteristics
        .as_ref()
        .and_then(|c| c.initially)
        .is_some_and(|i| matches!(i, sqlparser::ast::DeferrableInitial::Deferred))
}

fn constraint_name(c: &TableConstraint) -> String {
    let name = match c {
        TableConstraint::ForeignKey(f) => f.name.as_ref(),
        TableConstraint::Check(ch) => ch.name.as_ref(),
        TableConstraint::Unique(u) => u.name.as_ref(),
        _ => None,
    };
    name.map(|n| n.value.clone()).unwrap_or_default()
}

fn named(n: Option<&Ident>, name: &str) -> bool {
    n.is_some_and(|n| n.value.eq_ignore_ascii_case(name))
}

fn drop_constraint(
    conn: &Connection,
    table: &str,
    name: &str,
    if_exists: bool,
) -> Result<(), PgError> {
    let index = any_row(
        conn,
        &format!(
            "SELECT 1 FROM sqlite_schema WHERE type = 'index' AND tbl_name = {} AND name = {} COLLATE NOCASE",
            lit(table),
            lit(name)
        ),
    )?;
    if index {
        return sql(conn, &format!("DROP INDEX {}", q(name)));
    }
    let mut found = false;
    edit_table(conn, table, |ct| {
        let before = ct.constraints.len();
        ct.constraints.retain(|c| match c {
            TableConstraint::ForeignKey(f) => !named(f.name.as_ref(), name),
            TableConstraint::Check(ch) => !named(ch.name.as_ref(), name),
            _ => true,
        });
        found = ct.constraints.len() != before;
        for col in &mut ct.columns {
            let before = col.options.len();
            col.options.retain(|o: &ColumnOptionDef| {
                !(named(o.name.as_ref(), name)
                    && matches!(
                        o.option,
                        ColumnOption::ForeignKey(_) | ColumnOption::Check(_)
                    ))
            });
            found |= col.options.len() != before;
        }
        Ok(())
    })?;
    if found {
        return Ok(());
    }
    if key_named(conn, table, name)? {
        return drop_key(conn, table, name);
    }
    if if_exists {
        return Ok(());
    }
    Err(PgError::new(
        "42704",
        format!("constraint \"{name}\" of relation \"{table}\" does not exist"),
    ))
}

/// Whether `name` is a primary key or UNIQUE declared in `table`'s CREATE TABLE.
fn key_named(conn: &Connection, table: &str, name: &str) -> Result<bool, PgError> {
    super::constraints::refresh(conn)?;
    any_row(
        conn,
        &format!(
            "SELECT 1 FROM temp._sy_constraints k JOIN sqlite_schema m ON k.conrelid = 16384 + m.rowid \
             WHERE m.name = {} AND k.conname = {} AND k.contype IN ('p', 'u') AND k.conindid >= 1000000",
            lit(table),
            lit(name)
        ),
    )
}

/// Drops a key or UNIQUE declared in CREATE TABLE: the table is rebuilt without it.
fn drop_key(conn: &Connection, table: &str, name: &str) -> Result<(), PgError> {
    let what = format!("DROP CONSTRAINT {name}");
    super::rebuild::rebuild(conn, table, &what, |ct| {
        let derived = |kind: &str, cols: Vec<String>| match kind {
            "p" => format!("{table}_pkey"),
            _ => format!("{table}_{}_key", cols.join("_")),
        };
        let cols_of = |cols: &[sqlparser::ast::IndexColumn]| -> Vec<String> {
            cols.iter()
                .map(|c| c.column.expr.to_string().trim_matches('"').to_string())
                .collect()
        };
        ct.constraints.retain(|c| {
            let (explicit, kind, cols) = match c {
                TableConstraint::PrimaryKey(p) => (p.name.as_ref(), "p", cols_of(&p.columns)),
                TableConstraint::Unique(u) => (u.name.as_ref(), "u", cols_of(&u.columns)),
                _ => return true,
            };
            let n = explicit
                .map(|i| i.value.clone())
                .unwrap_or_else(|| derived(kind, cols));
            n != name
        });
        for col in &mut ct.columns {
            let column = col.name.value.clone();
            let serial = col
                .options
                .iter()
                .any(|o| o.option.to_string().contains("AUTOINCREMENT"));
            let mut refused = false;
            col.options.retain(|o| {
                let kind = match o.option {
                    ColumnOption::PrimaryKey(_) => "p",
                    ColumnOption::Unique(_) => "u",
                    _ => return true,
                };
                let n = o
                    .name
                    .as_ref()
                    .map(|i| i.value.clone())
                    .unwrap_or_else(|| derived(kind, vec![column.clone()]));
                refused |= n == name && kind == "p" && serial;
                n != name
            });
            if refused {
                return Err(PgError::new(
                    "0A000",
                    format!(
                        "dropping the primary key \"{name}\" of the serial column \"{column}\" is not supported by switchyard's SQLite backend"
                    ),
                ));
            }
        }
        Ok(())
    })
}

pub(super) fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `expr` as a column default SQLite accepts (anything but a literal in parentheses).
pub(super) fn default_expr(expr: &Expr) -> Expr {
    match expr {
        Expr::Value(_) | Expr::Nested(_) => expr.clone(),
        other => Expr::Nested(Box::new(other.clone())),
    }
}
