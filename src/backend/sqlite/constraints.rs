//! `pg_constraint` for the SQLite backend: primary keys, UNIQUE and CHECK constraints and
//! foreign keys, read from each table's definition (with their names, columns, actions and
//! deferrability) into a temporary table that the catalog views read — refreshed before
//! a statement that reads the catalog's constraints or indexes (SQLAlchemy's and Alembic's
//! reflection, psql's `\d`). Keys and UNIQUE constraints also appear as indexes of their
//! name (`pg_index`, `pg_class`), as in PostgreSQL; `pg_get_constraintdef` prints a
//! foreign key as PostgreSQL does.

use rusqlite::Connection;
use sqlparser::ast::{
    CheckConstraint, ColumnOption, CreateTable, Expr, ForeignKeyConstraint, ReferentialAction,
    Statement, TableConstraint,
};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;

use super::error::{PgError, from_sqlite};

/// The rows `pg_constraint` shows (oids as the catalog's: a table's is 16384 + its
/// sqlite_schema rowid; a key's index gets 1000000 + 64 × the table's + n).
pub const SETUP: &str = "CREATE TEMP TABLE IF NOT EXISTS _sy_constraints (oid INTEGER, conname TEXT, \
    contype TEXT, conrelid INTEGER, confrelid INTEGER, conkey TEXT, confkey TEXT, conindid INTEGER, \
    condeferrable INTEGER, condeferred INTEGER, confupdtype TEXT, confdeltype TEXT, def TEXT)";

/// The comment in a unique index's definition that makes it a UNIQUE constraint (one
/// `ALTER TABLE … ADD CONSTRAINT … UNIQUE` made), as PostgreSQL would list it.
pub const UNIQUE_MARK: &str = "/* unique constraint */";

/// Whether a statement naming these relations needs [`refresh`] first.
pub fn needed(tables: &[String]) -> bool {
    tables.iter().any(|t| {
        matches!(
            t.as_str(),
            "pg_constraint" | "pg_index" | "pg_class" | "pg_indexes"
        )
    })
}

struct Table {
    oid: i64,
    name: String,
    columns: Vec<String>,
    /// Each column's PostgreSQL type, by its declared type.
    types: Vec<u32>,
    pk: Vec<String>,
    def: Option<CreateTable>,
}

/// Every table's definition, or the one table `only` names.
fn tables(conn: &Connection, only: Option<&str>) -> Result<Vec<Table>, PgError> {
    let mut st = conn
        .prepare(
            "SELECT rowid, name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             AND name NOT LIKE '\\_switchyard\\_%' ESCAPE '\\' AND (?1 IS NULL OR name = ?1)",
        )
        .map_err(|e| from_sqlite(&e))?;
    let rows: Vec<(i64, String, Option<String>)> = st
        .query_map([only], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(|e| from_sqlite(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| from_sqlite(&e))?;
    let mut out = Vec::with_capacity(rows.len());
    for (rowid, name, sql) in rows {
        let mut cols = conn
            .prepare("SELECT name, pk, type FROM pragma_table_info(?1) ORDER BY cid")
            .map_err(|e| from_sqlite(&e))?;
        let info: Vec<(String, i64, String)> = cols
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| from_sqlite(&e))?
            .collect::<Result<_, _>>()
            .map_err(|e| from_sqlite(&e))?;
        let mut pk: Vec<(i64, String)> = info
            .iter()
            .filter(|c| c.1 > 0)
            .map(|c| (c.1, c.0.clone()))
            .collect();
        pk.sort();
        let def = sql.and_then(|s| match Parser::parse_sql(&SQLiteDialect {}, &s) {
            Ok(mut v) => match v.pop() {
                Some(Statement::CreateTable(ct)) => Some(ct),
                _ => None,
            },
            Err(_) => None,
        });
        out.push(Table {
            oid: 16384 + rowid,
            name,
            types: info
                .iter()
                .map(|c| super::types::oid_for_decltype(&c.2))
                .collect(),
            columns: info.into_iter().map(|c| c.0).collect(),
            pk: pk.into_iter().map(|p| p.1).collect(),
            def,
        });
    }
    Ok(out)
}

/// One row of `_sy_constraints`.
struct Row {
    name: String,
    contype: &'static str,
    conrelid: i64,
    confrelid: i64,
    conkey: Vec<usize>,
    confkey: Vec<usize>,
    conindid: i64,
    deferrable: bool,
    deferred: bool,
    upd: char,
    del: char,
    def: String,
}

fn attnums(t: &Table, names: &[String]) -> Vec<usize> {
    names
        .iter()
        .filter_map(|n| t.columns.iter().position(|c| c.eq_ignore_ascii_case(n)))
        .map(|i| i + 1)
        .collect()
}

fn action(a: Option<&ReferentialAction>) -> (char, &'static str) {
    match a {
        Some(ReferentialAction::Cascade) => ('c', "CASCADE"),
        Some(ReferentialAction::Restrict) => ('r', "RESTRICT"),
        Some(ReferentialAction::SetNull) => ('n', "SET NULL"),
        Some(ReferentialAction::SetDefault) => ('d', "SET DEFAULT"),
        _ => ('a', ""),
    }
}

fn foreign_key(
    all: &[Table],
    t: &Table,
    fk: &ForeignKeyConstraint,
    name: Option<String>,
    cols: Vec<String>,
) -> Row {
    let target = fk
        .foreign_table
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let parent = all.iter().find(|p| p.name.eq_ignore_ascii_case(&target));
    let mut refs: Vec<String> = fk
        .referred_columns
        .iter()
        .map(|c| c.value.clone())
        .collect();
    if refs.is_empty() {
        refs = parent.map(|p| p.pk.clone()).unwrap_or_default();
    }
    let (upd, upd_text) = action(fk.on_update.as_ref());
    let (del, del_text) = action(fk.on_delete.as_ref());
    let ch = fk.characteristics.as_ref();
    let deferrable = ch.and_then(|c| c.deferrable).unwrap_or(false);
    let deferred = ch
        .and_then(|c| c.initially)
        .is_some_and(|i| matches!(i, sqlparser::ast::DeferrableInitial::Deferred));
    let mut def = format!(
        "FOREIGN KEY ({}) REFERENCES {}({})",
        cols.join(", "),
        parent.map(|p| p.name.as_str()).unwrap_or(&target),
        refs.join(", ")
    );
    for (kw, text) in [("ON UPDATE", upd_text), ("ON DELETE", del_text)] {
        if !text.is_empty() {
            def.push_str(&format!(" {kw} {text}"));
        }
    }
    if deferrable || deferred {
        def.push_str(" DEFERRABLE");
    }
    if deferred {
        def.push_str(" INITIALLY DEFERRED");
    }
    Row {
        name: name.unwrap_or_else(|| format!("{}_{}_fkey", t.name, cols.join("_"))),
        contype: "f",
        conrelid: t.oid,
        confrelid: parent.map(|p| p.oid).unwrap_or(0),
        conkey: attnums(t, &cols),
        confkey: parent.map(|p| attnums(p, &refs)).unwrap_or_default(),
        // The index that holds the referenced key (pgjdbc names the key from it): the
        // parent's primary key's, when that is what is referenced.
        conindid: parent
            .filter(|p| {
                !p.pk.is_empty()
                    && p.pk.len() == refs.len()
                    && p.pk
                        .iter()
                        .zip(&refs)
                        .all(|(a, b)| a.eq_ignore_ascii_case(b))
            })
            .map_or(0, |p| 1_000_000 + p.oid * 64),
        deferrable: deferrable || deferred,
        deferred,
        upd,
        del,
        def,
    }
}

fn key(t: &Table, contype: &'static str, name: String, cols: &[String], n: i64) -> Row {
    let kind = if contype == "p" {
        "PRIMARY KEY"
    } else {
        "UNIQUE"
    };
    Row {
        def: format!("{kind} ({})", cols.join(", ")),
        name,
        contype,
        conrelid: t.oid,
        confrelid: 0,
        conkey: attnums(t, cols),
        confkey: Vec::new(),
        conindid: 1_000_000 + t.oid * 64 + n,
        deferrable: false,
        deferred: false,
        upd: ' ',
        del: ' ',
    }
}

/// A CHECK constraint the application wrote (not the ones switchyard adds to hold
/// `varchar(n)` and enum values), named as PostgreSQL names it when it has no name:
/// `t_col_check` when it reads one column, else `t_check`.
fn check(t: &Table, c: &CheckConstraint, column: Option<&str>) -> Option<Row> {
    let name = c.name.as_ref().map(|n| n.value.clone());
    if name.as_deref().is_some_and(|n| {
        n.starts_with(super::ddl::VARCHAR_CHECK) || n.starts_with(super::enums::ENUM_CHECK)
    }) {
        return None;
    }
    let mut read: Vec<String> = Vec::new();
    let _ = sqlparser::ast::visit_expressions(&c.expr, |e| {
        if let Expr::Identifier(i) = e
            && let Some(col) = t.columns.iter().find(|c| c.eq_ignore_ascii_case(&i.value))
            && !read.contains(col)
        {
            read.push(col.clone());
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    if read.is_empty()
        && let Some(col) = column
    {
        read.push(col.to_string());
    }
    let name = name.unwrap_or_else(|| match read.as_slice() {
        [one] => format!("{}_{one}_check", t.name),
        _ => format!("{}_check", t.name),
    });
    Some(Row {
        def: format!("CHECK ({})", deparse(t, &c.expr)),
        name,
        contype: "c",
        conrelid: t.oid,
        confrelid: 0,
        conkey: attnums(t, &read),
        confkey: Vec::new(),
        conindid: 0,
        deferrable: false,
        deferred: false,
        upd: ' ',
        del: ' ',
    })
}

/// An expression as PostgreSQL's `pg_get_constraintdef` prints it: every operator
/// expression in parentheses of its own, the ones written dropped.
fn deparse(t: &Table, e: &Expr) -> String {
    match e {
        Expr::Nested(inner) => deparse(t, inner),
        Expr::BinaryOp { left, op, right } => {
            let (l, r) = (deparse(t, left), deparse(t, right));
            // A number compared with a numeric or float column is cast to its type.
            let (l, r) = match (column_type(t, left), column_type(t, right)) {
                (Some(ty), _) => (l, cast_number(right, ty).unwrap_or(r)),
                (_, Some(ty)) => (cast_number(left, ty).unwrap_or(l), r),
                _ => (l, r),
            };
            format!("({l} {op} {r})")
        }
        Expr::UnaryOp { op, expr } => format!("({op} {})", deparse(t, expr)),
        Expr::Identifier(i) => super::functions::quote_ident(&i.value),
        other => other.to_string(),
    }
}

fn column_type(t: &Table, e: &Expr) -> Option<u32> {
    let Expr::Identifier(i) = e else { return None };
    let at = t
        .columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case(&i.value))?;
    t.types.get(at).copied()
}

/// `(0)::numeric`: a number constant as PostgreSQL coerces it to a column's type.
fn cast_number(e: &Expr, ty: u32) -> Option<String> {
    use super::types::{FLOAT4, FLOAT8, NUMERIC};
    let Expr::Value(v) = e else { return None };
    let sqlparser::ast::Value::Number(n, _) = &v.value else {
        return None;
    };
    let integer = !n.contains(['.', 'e', 'E']);
    match ty {
        NUMERIC if integer => Some(format!("({n})::numeric")),
        FLOAT4 | FLOAT8 => Some(format!("({n})::{}", super::types::type_name(ty))),
        _ => None,
    }
}

fn rows_of(all: &[Table], t: &Table) -> Vec<Row> {
    let mut out = Vec::new();
    let Some(ct) = &t.def else { return out };
    let pk_name = ct
        .constraints
        .iter()
        .find_map(|c| match c {
            TableConstraint::PrimaryKey(p) => p.name.as_ref().map(|n| n.value.clone()),
            _ => None,
        })
        .or_else(|| {
            ct.columns.iter().flat_map(|c| &c.options).find_map(|o| {
                matches!(o.option, ColumnOption::PrimaryKey(_))
                    .then(|| o.name.as_ref().map(|n| n.value.clone()))
                    .flatten()
            })
        });
    if !t.pk.is_empty() {
        out.push(key(
            t,
            "p",
            pk_name.unwrap_or_else(|| format!("{}_pkey", t.name)),
            &t.pk,
            0,
        ));
    }
    for c in &ct.constraints {
        match c {
            TableConstraint::Unique(u) => {
                let cols: Vec<String> = u
                    .columns
                    .iter()
                    .map(|c| c.column.expr.to_string().trim_matches('"').to_string())
                    .collect();
                let name = u
                    .name
                    .as_ref()
                    .map(|n| n.value.clone())
                    .unwrap_or_else(|| format!("{}_{}_key", t.name, cols.join("_")));
                let n = out.len() as i64;
                out.push(key(t, "u", name, &cols, n));
            }
            TableConstraint::ForeignKey(fk) => {
                let cols = fk.columns.iter().map(|c| c.value.clone()).collect();
                out.push(foreign_key(
                    all,
                    t,
                    fk,
                    fk.name.as_ref().map(|n| n.value.clone()),
                    cols,
                ));
            }
            TableConstraint::Check(c) => out.extend(check(t, c, None)),
            _ => {}
        }
    }
    for col in &ct.columns {
        for o in &col.options {
            let named = o.name.as_ref().map(|n| n.value.clone());
            match &o.option {
                ColumnOption::Unique(_) => {
                    let n = out.len() as i64;
                    let name =
                        named.unwrap_or_else(|| format!("{}_{}_key", t.name, col.name.value));
                    out.push(key(t, "u", name, std::slice::from_ref(&col.name.value), n));
                }
                ColumnOption::ForeignKey(fk) => {
                    let name = named.or_else(|| fk.name.as_ref().map(|n| n.value.clone()));
                    out.push(foreign_key(all, t, fk, name, vec![col.name.value.clone()]));
                }
                ColumnOption::Check(c) => {
                    let mut c = c.clone();
                    c.name = c.name.or_else(|| o.name.clone());
                    out.extend(check(t, &c, Some(&col.name.value)));
                }
                _ => {}
            }
        }
    }
    out
}

/// UNIQUE constraints added by ALTER TABLE: unique indexes marked [`UNIQUE_MARK`].
fn marked_unique(conn: &Connection, t: &Table) -> Result<Vec<Row>, PgError> {
    let mut st = conn
        .prepare_cached(
            "SELECT rowid, name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 \
             AND instr(sql, ?2) > 0",
        )
        .map_err(|e| from_sqlite(&e))?;
    let found: Vec<(i64, String)> = st
        .query_map(rusqlite::params![t.name, UNIQUE_MARK], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(|e| from_sqlite(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| from_sqlite(&e))?;
    let mut out = Vec::new();
    for (rowid, name) in found {
        let mut cols = conn
            .prepare_cached("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
            .map_err(|e| from_sqlite(&e))?;
        let cols: Vec<String> = cols
            .query_map([&name], |r| r.get::<_, Option<String>>(0))
            .map_err(|e| from_sqlite(&e))?
            .filter_map(|c| c.ok().flatten())
            .collect();
        let mut row = key(t, "u", name, &cols, 0);
        row.conindid = 16384 + rowid;
        out.push(row);
    }
    Ok(out)
}

/// The name of the key, UNIQUE constraint or unique index of `table` over exactly
/// `columns`, as PostgreSQL's unique violation names it.
pub fn unique_name(conn: &Connection, table: &str, columns: &[String]) -> Option<String> {
    let lower = |v: &mut Vec<String>| {
        v.iter_mut().for_each(|c| *c = c.to_lowercase());
        v.sort();
    };
    let mut want = columns.to_vec();
    lower(&mut want);
    let t = tables(conn, Some(table)).ok()?.pop()?;
    let mut rows = rows_of(std::slice::from_ref(&t), &t);
    rows.extend(marked_unique(conn, &t).ok()?);
    for r in rows.into_iter().filter(|r| matches!(r.contype, "p" | "u")) {
        let mut cols: Vec<String> = r
            .conkey
            .iter()
            .filter_map(|i| t.columns.get(i - 1).cloned())
            .collect();
        lower(&mut cols);
        if cols == want {
            return Some(r.name);
        }
    }
    // A unique index made by CREATE UNIQUE INDEX: PostgreSQL names the index.
    let mut st = conn
        .prepare_cached(
            "SELECT l.name, group_concat(i.name, ',') FROM pragma_index_list(?1) l, \
             pragma_index_info(l.name) i WHERE l.\"unique\" AND l.origin = 'c' GROUP BY l.name",
        )
        .ok()?;
    let found: Vec<(String, String)> = st
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .ok()?
        .filter_map(Result::ok)
        .collect();
    found.into_iter().find_map(|(name, cols)| {
        let mut cols: Vec<String> = cols.split(',').map(str::to_string).collect();
        lower(&mut cols);
        (cols == want).then_some(name)
    })
}

fn json_list(v: &[usize]) -> String {
    format!(
        "[{}]",
        v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
    )
}

/// Reads every table's constraints into `_sy_constraints` again.
pub fn refresh(conn: &Connection) -> Result<(), PgError> {
    let all = tables(conn, None)?;
    conn.execute_batch("DELETE FROM temp._sy_constraints")
        .map_err(|e| from_sqlite(&e))?;
    let mut ins = conn
        .prepare_cached(
            "INSERT INTO temp._sy_constraints VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .map_err(|e| from_sqlite(&e))?;
    let mut next = 0i64;
    for t in &all {
        let mut rows = rows_of(&all, t);
        rows.extend(marked_unique(conn, t)?);
        for r in rows {
            next += 1;
            ins.execute(rusqlite::params![
                900_000 + next,
                r.name,
                r.contype,
                r.conrelid,
                r.confrelid,
                json_list(&r.conkey),
                json_list(&r.confkey),
                r.conindid,
                r.deferrable,
                r.deferred,
                r.upd.to_string(),
                r.del.to_string(),
                r.def,
            ])
            .map_err(|e| from_sqlite(&e))?;
        }
    }
    Ok(())
}

/// Registers `pg_get_constraintdef(oid [, pretty])`: the definition [`refresh`] read.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = rusqlite::functions::FunctionFlags::SQLITE_UTF8;
    conn.create_scalar_function("pg_get_constraintdef", -1, flags, |ctx| {
        let Some(oid) = ctx.get::<Option<i64>>(0)? else {
            return Ok(None);
        };
        // SAFETY: the handle is this function's own connection, used on its thread for
        // one lookup while the calling statement runs.
        let conn = unsafe { ctx.get_connection()? };
        let def: Option<String> = conn
            .query_row(
                "SELECT def FROM temp._sy_constraints WHERE oid = ?1",
                [oid],
                |r| r.get(0),
            )
            .ok();
        let pretty = ctx.len() > 1 && ctx.get::<Option<bool>>(1)?.unwrap_or(false);
        Ok(def.map(|d| if pretty { prettier(d) } else { d }))
    })
}

/// The pretty form (`pg_get_constraintdef(oid, true)`, as psql asks): a CHECK's
/// expression without the parentheses around it as a whole, nor around a cast number.
fn prettier(def: String) -> String {
    let def = match def
        .strip_prefix("CHECK ((")
        .and_then(|s| s.strip_suffix("))"))
    {
        Some(inner) => format!("CHECK ({inner})"),
        None => def,
    };
    let mut out = String::with_capacity(def.len());
    let mut rest = def.as_str();
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        let digits = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(after.len());
        if digits > 0 && after[digits..].starts_with(")::") {
            out.push_str(&rest[..open]);
            out.push_str(&after[..digits]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..=open]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
