//! The column half of [`super::alter`]: `ADD COLUMN` with what SQLite's own refuses (NOT
//! NULL without a default, UNIQUE, a default that is not a constant), `ALTER COLUMN …
//! TYPE / SET NOT NULL / DROP NOT NULL / SET DEFAULT / DROP DEFAULT`, and `DROP COLUMN`
//! of a column that indexes or foreign keys use (PostgreSQL drops those with it).

use rusqlite::Connection;
use sqlparser::ast::{AlterColumnOperation, ColumnDef, ColumnOption, Expr, TableConstraint};

use super::alter::{any_row, column_mut, default_expr, edit_table, lit, no_column, q, sql};
use super::error::{PgError, from_sqlite};

fn has_nulls(conn: &Connection, table: &str, column: &str) -> Result<bool, PgError> {
    any_row(
        conn,
        &format!(
            "SELECT 1 FROM {} WHERE {} IS NULL LIMIT 1",
            q(table),
            q(column)
        ),
    )
}

fn contains_nulls(table: &str, column: &str) -> PgError {
    PgError::new(
        "23502",
        format!("column \"{column}\" of relation \"{table}\" contains null values"),
    )
}

/// ADD COLUMN: the column as SQLite takes it, then its default (given to the existing
/// rows, as PostgreSQL does), NOT NULL (checked) and UNIQUE (an index).
pub fn add_column(conn: &Connection, table: &str, def: &ColumnDef) -> Result<(), PgError> {
    let name = def.name.value.clone();
    let mut plain = def.clone();
    plain.options.retain(|o| {
        !matches!(
            o.option,
            ColumnOption::NotNull | ColumnOption::Unique(_) | ColumnOption::Default(_)
        )
    });
    if def
        .options
        .iter()
        .any(|o| matches!(o.option, ColumnOption::PrimaryKey(_)))
    {
        return Err(PgError::new(
            "0A000",
            "ADD COLUMN … PRIMARY KEY is not supported by switchyard's SQLite backend",
        ));
    }
    sql(
        conn,
        &format!("ALTER TABLE {} ADD COLUMN {plain}", q(table)),
    )?;
    let default = def.options.iter().find_map(|o| match &o.option {
        ColumnOption::Default(e) => Some(e.clone()),
        _ => None,
    });
    let not_null = def
        .options
        .iter()
        .any(|o| matches!(o.option, ColumnOption::NotNull));
    if let Some(e) = &default {
        sql(conn, &format!("UPDATE {} SET {} = {e}", q(table), q(&name)))?;
    }
    if not_null && has_nulls(conn, table, &name)? {
        return Err(contains_nulls(table, &name));
    }
    if default.is_some() || not_null {
        edit_table(conn, table, |ct| {
            let col = column_mut(ct, table, &name)?;
            if let Some(e) = &default {
                set_default(col, Some(e));
            }
            if not_null {
                col.options.push(option(ColumnOption::NotNull));
            }
            Ok(())
        })?;
    }
    if def
        .options
        .iter()
        .any(|o| matches!(o.option, ColumnOption::Unique(_)))
    {
        let index = format!("{table}_{name}_key");
        sql(
            conn,
            &format!(
                "CREATE UNIQUE INDEX {} ON {} ({})",
                q(&index),
                q(table),
                q(&name)
            ),
        )?;
    }
    Ok(())
}

fn option(o: ColumnOption) -> sqlparser::ast::ColumnOptionDef {
    sqlparser::ast::ColumnOptionDef {
        name: None,
        option: o,
    }
}

fn set_default(col: &mut ColumnDef, e: Option<&Expr>) {
    col.options
        .retain(|o| !matches!(o.option, ColumnOption::Default(_)));
    if let Some(e) = e {
        col.options
            .push(option(ColumnOption::Default(default_expr(e))));
    }
}

/// ALTER COLUMN.
pub fn alter_column(
    conn: &Connection,
    table: &str,
    column: &str,
    op: &AlterColumnOperation,
) -> Result<(), PgError> {
    use AlterColumnOperation as A;
    match op {
        A::SetNotNull => {
            let exists = edit_table(conn, table, |ct| column_mut(ct, table, column).map(|_| ()));
            exists?;
            if has_nulls(conn, table, column)? {
                return Err(contains_nulls(table, column));
            }
            edit_table(conn, table, |ct| {
                let col = column_mut(ct, table, column)?;
                if !col
                    .options
                    .iter()
                    .any(|o| matches!(o.option, ColumnOption::NotNull))
                {
                    col.options.push(option(ColumnOption::NotNull));
                }
                Ok(())
            })
        }
        A::DropNotNull => edit_table(conn, table, |ct| {
            let col = column_mut(ct, table, column)?;
            col.options
                .retain(|o| !matches!(o.option, ColumnOption::NotNull));
            Ok(())
        }),
        A::SetDefault { value } => edit_table(conn, table, |ct| {
            set_default(column_mut(ct, table, column)?, Some(value));
            Ok(())
        }),
        A::DropDefault => edit_table(conn, table, |ct| {
            set_default(column_mut(ct, table, column)?, None);
            Ok(())
        }),
        A::SetDataType {
            data_type, using, ..
        } => set_type(conn, table, column, data_type, using.as_ref()),
        A::AddGenerated { .. } => Err(PgError::new(
            "0A000",
            "ALTER COLUMN … ADD GENERATED is not supported by switchyard's SQLite backend",
        )
        .with_hint("declare the column SERIAL or IDENTITY when the table is made")),
    }
}

/// ALTER COLUMN … TYPE: the declared type (and varchar's length CHECK) changes; every
/// value is stored again (through USING when given), so SQLite applies the new type's
/// affinity and the CHECK refuses a value that no longer fits, as PostgreSQL would.
fn set_type(
    conn: &Connection,
    table: &str,
    column: &str,
    data_type: &sqlparser::ast::DataType,
    using: Option<&Expr>,
) -> Result<(), PgError> {
    let mut probe = ColumnDef {
        name: sqlparser::ast::Ident::with_quote('"', column),
        data_type: data_type.clone(),
        options: Vec::new(),
    };
    let mut remembered = Vec::new();
    super::ddl::rewrite_column(table, &mut probe, false, &mut remembered)?;
    edit_table(conn, table, |ct| {
        let col = column_mut(ct, table, column)?;
        col.data_type = probe.data_type.clone();
        col.options.retain(|o| !is_length_check(o));
        col.options.extend(probe.options.iter().cloned());
        Ok(())
    })?;
    conn.execute(
        "DELETE FROM _switchyard_columns WHERE tbl = ?1 AND col = ?2",
        [table, column],
    )
    .map_err(|e| from_sqlite(&e))?;
    super::catalog::remember_column_types(conn, &remembered)?;
    let value = using.map(|e| e.to_string()).unwrap_or_else(|| q(column));
    sql(
        conn,
        &format!("UPDATE {} SET {} = {value}", q(table), q(column)),
    )
}

/// The CHECK that holds a varchar(n) to n characters (named on the option when read
/// back from SQLite's schema, on the constraint when made by the DDL rewrite).
fn is_length_check(o: &sqlparser::ast::ColumnOptionDef) -> bool {
    let ColumnOption::Check(c) = &o.option else {
        return false;
    };
    o.name
        .as_ref()
        .or(c.name.as_ref())
        .is_some_and(|n| n.value.starts_with(super::ddl::VARCHAR_CHECK))
}

/// DROP COLUMN: the indexes and foreign keys that use it go first, as in PostgreSQL.
pub fn drop_column(
    conn: &Connection,
    table: &str,
    column: &str,
    if_exists: bool,
) -> Result<(), PgError> {
    let exists = any_row(
        conn,
        &format!(
            "SELECT 1 FROM pragma_table_info({}) WHERE name = {} COLLATE NOCASE",
            lit(table),
            lit(column)
        ),
    )?;
    if !exists {
        return if if_exists {
            Ok(())
        } else {
            Err(no_column(table, column))
        };
    }
    let mut indexes = conn
        .prepare(
            "SELECT DISTINCT il.name, il.origin FROM pragma_index_list(?1) il, pragma_index_info(il.name) ii \
             WHERE ii.name = ?2 COLLATE NOCASE",
        )
        .map_err(|e| from_sqlite(&e))?;
    let found: Vec<(String, String)> = indexes
        .query_map([table, column], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| from_sqlite(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| from_sqlite(&e))?;
    drop(indexes);
    if found.iter().any(|(_, origin)| origin != "c") {
        // Part of a key or UNIQUE declared in CREATE TABLE: the table is made again
        // without the column and the constraints that name it, as PostgreSQL drops them.
        super::rebuild::rebuild(conn, table, &format!("DROP COLUMN {column}"), |ct| {
            ct.columns
                .retain(|c| !c.name.value.eq_ignore_ascii_case(column));
            ct.constraints
                .retain(|c| !super::rebuild::names_column(c, column));
            Ok(())
        })?;
    } else {
        for (index, _) in found {
            sql(conn, &format!("DROP INDEX {}", q(&index)))?;
        }
        let uses = |cols: &[sqlparser::ast::Ident]| {
            cols.iter().any(|c| c.value.eq_ignore_ascii_case(column))
        };
        edit_table(conn, table, |ct| {
            ct.constraints.retain(|c| match c {
                TableConstraint::ForeignKey(f) => !uses(&f.columns),
                _ => true,
            });
            let col = column_mut(ct, table, column)?;
            col.options
                .retain(|o| !matches!(o.option, ColumnOption::ForeignKey(_)));
            Ok(())
        })?;
        sql(
            conn,
            &format!("ALTER TABLE {} DROP COLUMN {}", q(table), q(column)),
        )?;
    }
    conn.execute(
        "DELETE FROM _switchyard_columns WHERE tbl = ?1 AND col = ?2",
        [table, column],
    )
    .map_err(|e| from_sqlite(&e))?;
    Ok(())
}
