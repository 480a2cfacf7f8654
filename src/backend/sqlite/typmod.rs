//! Type modifiers as PostgreSQL's catalog gives them: `atttypmod` from a declared type
//! (`varchar(150)` → 154, `numeric(10,2)` → 655366), and `format_type(oid, typmod)` that
//! prints them back (`character varying(150)`, `numeric(10,2)`), with enum types by name —
//! what SQLAlchemy's and Alembic's reflection, psql's `\d` and JDBC metadata read.

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

use super::types;

/// `atttypmod` for a SQLite declared type (-1: none).
pub fn of_decl(decl: &str) -> i64 {
    let d = decl.trim().to_ascii_lowercase();
    // An array's typmod is its element's (`varchar(20)[]`).
    let d = d.trim_end_matches("[]");
    let Some((base, args)) = d.split_once('(') else {
        return -1;
    };
    let nums: Vec<i64> = args
        .trim_end_matches(')')
        .split(',')
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    match (types::oid_for_decltype(base.trim()), nums.as_slice()) {
        (types::VARCHAR | types::BPCHAR, [n]) => n + 4,
        (types::NUMERIC, [p]) => (p << 16) + 4,
        (types::NUMERIC, [p, s]) => ((p << 16) | s) + 4,
        _ => -1,
    }
}

/// `format_type(oid, typmod)`; `enum_name` is the name of an enum type's OID.
pub fn format(oid: u32, typmod: i64, enum_name: Option<String>) -> String {
    if let Some(name) = enum_name {
        return name;
    }
    if let Some(elem) = super::arrays::element_of(oid) {
        return format!("{}[]", format(elem, typmod, None));
    }
    let name = types::type_name(oid);
    if typmod < 4 {
        return name.to_string();
    }
    let m = typmod - 4;
    match oid {
        types::VARCHAR | types::BPCHAR => format!("{name}({m})"),
        types::NUMERIC => format!("numeric({},{})", (m >> 16) & 0xffff, m & 0xffff),
        _ => name.to_string(),
    }
}

/// Where the catalog's enum type OIDs start (`pg_type`: 200000 + the first label's rowid).
pub const ENUM_OIDS: i64 = 200_000;

fn enum_name(conn: &Connection, oid: i64) -> Option<String> {
    conn.query_row(
        "SELECT typname FROM _switchyard_enums GROUP BY typname HAVING min(rowid) = ?1",
        [oid - ENUM_OIDS],
        |r| r.get(0),
    )
    .ok()
}

/// An integer argument, also when written as text (`'23'` from psql's `\gdesc`).
fn int_arg(ctx: &rusqlite::functions::Context<'_>, i: usize) -> Option<i64> {
    use rusqlite::types::ValueRef;
    match ctx.get_raw(i) {
        ValueRef::Integer(n) => Some(n),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

/// Registers `pg_typmod(decl)`, `format_type(oid, typmod)` (enum types by name),
/// `pg_get_serial_sequence` and `sy_relname`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("pg_typmod", 1, det, |ctx| {
        Ok(ctx
            .get::<Option<String>>(0)?
            .map(|d| of_decl(&d))
            .unwrap_or(-1))
    })?;
    conn.create_scalar_function("format_type", 2, det, |ctx| {
        let Some(oid) = int_arg(ctx, 0) else {
            return Ok(None);
        };
        let typmod = int_arg(ctx, 1).unwrap_or(-1);
        let name = if oid >= ENUM_OIDS {
            // SAFETY: the handle is this function's own connection, used on its thread
            // for one lookup while the calling statement runs.
            let conn = unsafe { ctx.get_connection()? };
            enum_name(&conn, oid)
        } else {
            None
        };
        Ok(Some(format(oid as u32, typmod, name)))
    })?;
    // The name PostgreSQL gives a serial column's sequence (SQLite keeps the counter of an
    // AUTOINCREMENT key in sqlite_sequence; see `sequences`).
    conn.create_scalar_function("pg_get_serial_sequence", 2, det, |ctx| {
        let (Some(t), Some(c)) = (ctx.get::<Option<String>>(0)?, ctx.get::<Option<String>>(1)?)
        else {
            return Ok(None);
        };
        // SAFETY: the handle is this function's own connection, used on its thread for a
        // lookup while the calling statement runs.
        let conn = unsafe { ctx.get_connection()? };
        let seq = super::sequences::name_of(&conn, &relname(&t), &relname(&c));
        Ok(Some(format!("public.{seq}")))
    })?;
    // A regclass's text (`public."Order"`, `t`) as the table name SQLite knows.
    conn.create_scalar_function("sy_relname", 1, det, |ctx| {
        Ok(ctx.get::<Option<String>>(0)?.map(|t| relname(&t)))
    })?;
    Ok(())
}

/// The table name in a regclass text: the last dotted part, unquoted (an unquoted one
/// folded to lower case, as PostgreSQL does).
pub fn relname(text: &str) -> String {
    let last = text.rsplit('.').next().unwrap_or(text).trim();
    match last.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => last.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typmods_read_and_print_as_postgresql_s() {
        assert_eq!(of_decl("VARCHAR(150)"), 154);
        assert_eq!(of_decl("NUMERIC(10,2)"), 655366);
        assert_eq!(of_decl("TEXT"), -1);
        assert_eq!(format(types::VARCHAR, 154, None), "character varying(150)");
        assert_eq!(format(types::NUMERIC, 655366, None), "numeric(10,2)");
        assert_eq!(format(types::VARCHAR, -1, None), "character varying");
        assert_eq!(format(200001, -1, Some("mood".into())), "mood");
        assert_eq!(relname("public.\"Order\""), "Order");
        assert_eq!(relname("Users"), "users");
    }
}
