//! Column defaults as PostgreSQL's catalog prints them (`pg_attrdef`, `pg_get_expr`,
//! `information_schema.columns.column_default`), from what SQLite keeps: a quoted
//! constant gets its type's label (`'anon'::character varying`, `'0'::smallint`), an
//! integer or decimal prints bare, the transaction time is `now()`, and a SERIAL key (an
//! AUTOINCREMENT rowid) shows its `nextval('t_id_seq'::regclass)`. Reflection (Alembic's
//! autogenerate, `alembic check`, Django's inspectdb) compares these texts with what
//! PostgreSQL would say, so they must match it exactly.
//!
//! Also keeps switchyard's record of PostgreSQL column types (`_switchyard_columns`) in
//! step with `ALTER TABLE … RENAME`.

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

use super::error::{PgError, from_sqlite};
use super::types;

/// Marks an identity column among the (table, column, type) pairs a CREATE TABLE
/// remembers: `identity:a` (ALWAYS) or `identity:d` (BY DEFAULT), kept in
/// `_switchyard_identity_columns` (SQLite's AUTOINCREMENT cannot tell it from SERIAL).
pub const IDENTITY: &str = "identity:";

/// The table of identity columns.
pub const SETUP: &str = "CREATE TABLE IF NOT EXISTS _switchyard_identity_columns (tbl TEXT NOT NULL, \
    col TEXT NOT NULL, kind TEXT NOT NULL, PRIMARY KEY (tbl, col))";

/// How the DDL translation writes `now()` into a table's definition.
pub const NOW_TZ: &str = "strftime('%Y-%m-%d %H:%M:%f+00', 'now')";

/// Registers `sy_pg_default(default, declared type, remembered type)` and
/// `sy_serial_default(sequence)`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("sy_pg_default", 3, det, |ctx| {
        let Some(default) = ctx.get::<Option<String>>(0)? else {
            return Ok(None);
        };
        let decl = ctx.get::<Option<String>>(1)?.unwrap_or_default();
        let remembered = ctx.get::<Option<String>>(2)?;
        Ok(Some(pg_default(&default, &decl, remembered.as_deref())))
    })?;
    conn.create_scalar_function("sy_serial_default", 1, det, |ctx| {
        let seq: String = ctx.get(0)?;
        Ok(serial_default(&seq))
    })?;
    Ok(())
}

/// `nextval('t_id_seq'::regclass)`, the sequence name quoted as PostgreSQL would.
pub fn serial_default(seq: &str) -> String {
    let name = super::functions::quote_ident(seq);
    format!("nextval('{}'::regclass)", name.replace('\'', "''"))
}

/// A constant as written in a default: quoted text, or a bare number.
enum Constant {
    Quoted(String),
    Number(String),
}

fn constant(default: &str) -> Option<Constant> {
    let d = default.trim();
    if let Some(body) = d.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))
        && !body.replace("''", "").contains('\'')
    {
        return Some(Constant::Quoted(body.replace("''", "'")));
    }
    let digits = d.strip_prefix('-').unwrap_or(d);
    (!digits.is_empty()
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.parse::<f64>().is_ok())
    .then(|| Constant::Number(d.to_string()))
}

/// PostgreSQL's text for a default SQLite keeps as `default`, on a column declared as
/// `decl` (or remembered as the PostgreSQL type `remembered`: bigint, an enum's name).
pub fn pg_default(default: &str, decl: &str, remembered: Option<&str>) -> String {
    let d = default.trim();
    let inner = d
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(d);
    if inner == NOW_TZ {
        return "now()".into();
    }
    let oid = types::oid_for_decltype(remembered.unwrap_or(decl));
    let enum_name =
        remembered.filter(|r| types::oid_for_decltype(r) == types::TEXT && *r != "text");
    match constant(d) {
        Some(Constant::Number(n)) => match oid {
            // An integer or decimal constant: an implicit cast, which PostgreSQL does not
            // print (a negative integer prints as the quoted int4 it parses to).
            _ if n.starts_with('-') && !n.contains(['.', 'e', 'E']) => format!("'{n}'::integer"),
            types::BOOL => bool_text(&n),
            _ => n,
        },
        Some(Constant::Quoted(v)) => match oid {
            types::INT4 if !v.starts_with('-') && v.parse::<i64>().is_ok() => v,
            types::NUMERIC
                if v.starts_with(|c: char| c.is_ascii_digit()) && v.contains(['.', 'e', 'E']) =>
            {
                v
            }
            types::BOOL => bool_text(&v),
            _ => labelled(&v, oid, enum_name),
        },
        None => match d.to_ascii_lowercase().as_str() {
            "true" | "false" => d.to_ascii_lowercase(),
            _ => d.to_string(),
        },
    }
}

fn bool_text(v: &str) -> String {
    let t = matches!(
        v.to_ascii_lowercase().as_str(),
        "t" | "true" | "1" | "yes" | "on" | "y"
    );
    (if t { "true" } else { "false" }).into()
}

/// `'value'::type`, as PostgreSQL labels a constant of a type it cannot print bare.
fn labelled(value: &str, oid: u32, enum_name: Option<&str>) -> String {
    let label = match (enum_name, oid) {
        (Some(e), _) => e,
        (None, types::BPCHAR) => "bpchar",
        (None, o) => match super::arrays::element_of(o) {
            Some(elem) => {
                return format!(
                    "'{}'::{}[]",
                    value.replace('\'', "''"),
                    types::type_name(elem)
                );
            }
            None => types::type_name(o),
        },
    };
    format!("'{}'::{label}", value.replace('\'', "''"))
}

/// `ALTER TABLE t RENAME TO n` ran: the remembered column types follow the table.
pub fn renamed_table(conn: &Connection, old: &str, new: &str) -> Result<(), PgError> {
    for side in ["_switchyard_columns", "_switchyard_identity_columns"] {
        conn.execute(
            &format!("UPDATE {side} SET tbl = ?2 WHERE tbl = ?1 COLLATE NOCASE"),
            [old, new],
        )
        .map_err(|e| from_sqlite(&e))?;
    }
    Ok(())
}

/// `ALTER TABLE t RENAME c TO n` ran: the column's remembered type follows it.
pub fn renamed_column(conn: &Connection, table: &str, old: &str, new: &str) -> Result<(), PgError> {
    for side in ["_switchyard_columns", "_switchyard_identity_columns"] {
        conn.execute(
            &format!(
                "UPDATE {side} SET col = ?3 WHERE tbl = ?1 COLLATE NOCASE AND col = ?2 COLLATE NOCASE"
            ),
            [table, old, new],
        )
        .map_err(|e| from_sqlite(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_print_as_postgresql_prints_them() {
        assert_eq!(
            pg_default("'anon'", "VARCHAR(80)", None),
            "'anon'::character varying"
        );
        assert_eq!(
            pg_default("'0'", "INTEGER", Some("smallint")),
            "'0'::smallint"
        );
        assert_eq!(pg_default("'1'", "INTEGER", None), "1");
        assert_eq!(pg_default("1", "INTEGER", None), "1");
        assert_eq!(pg_default("0", "INTEGER", Some("smallint")), "0");
        assert_eq!(pg_default("-1", "INTEGER", None), "'-1'::integer");
        assert_eq!(pg_default("'1.50'", "NUMERIC(10,2)", None), "1.50");
        assert_eq!(pg_default("'5'", "NUMERIC", None), "'5'::numeric");
        assert_eq!(pg_default("'x'", "TEXT", None), "'x'::text");
        assert_eq!(pg_default("'it''s'", "TEXT", None), "'it''s'::text");
        assert_eq!(
            pg_default("'new'", "TEXT", Some("invoice_status")),
            "'new'::invoice_status"
        );
        assert_eq!(pg_default("'{}'", "JSONB", None), "'{}'::jsonb");
        assert_eq!(pg_default("false", "BOOLEAN", None), "false");
        assert_eq!(pg_default("'t'", "BOOLEAN", None), "true");
        assert_eq!(pg_default(NOW_TZ, "TIMESTAMPTZ", None), "now()");
        assert_eq!(
            pg_default("gen_random_uuid()", "UUID", None),
            "gen_random_uuid()"
        );
        assert_eq!(
            serial_default("customers_id_seq"),
            "nextval('customers_id_seq'::regclass)"
        );
        assert_eq!(
            serial_default("Order_id_seq"),
            "nextval('\"Order_id_seq\"'::regclass)"
        );
    }
}
