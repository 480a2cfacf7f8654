//! PostgreSQL's input rules for values written into (or compared with) typed columns on
//! the SQLite backend. SQLite keeps whatever it is given — `'abc'` in an integer column,
//! `'maybe'` in a boolean one — where PostgreSQL refuses it with 22P02 (or 22003 out of
//! range). `coerce.rs` wraps a constant or parameter bound for an integer, boolean,
//! float or uuid column in these functions; each returns the value as it is stored
//! (integers, 0/1, doubles, canonical uuid text) or fails as PostgreSQL's input
//! function would.

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::Value;

fn fail(code: &str, msg: String) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(format!("{code}: {msg}").into())
}

fn syntax(ty: &str, text: &str) -> rusqlite::Error {
    fail(
        "22P02",
        format!("invalid input syntax for type {ty}: \"{text}\""),
    )
}

/// An integer of `ty` ("smallint", "integer" or "bigint") within [min, max].
fn integer(ctx: &Context<'_>, ty: &str, min: i64, max: i64) -> rusqlite::Result<Value> {
    let i = match ctx.get::<Value>(0)? {
        Value::Null => return Ok(Value::Null),
        Value::Integer(i) => i,
        // A fraction rounds half away from zero, as PostgreSQL rounds numeric to integer.
        Value::Real(f) if f.is_finite() && f.abs() < 9.2e18 => f.round() as i64,
        Value::Real(f) => return Err(syntax(ty, &f.to_string())),
        Value::Text(t) => t.trim().parse().map_err(|_| syntax(ty, &t))?,
        Value::Blob(_) => return Err(syntax(ty, "(binary)")),
    };
    if i < min || i > max {
        return Err(fail("22003", format!("{ty} out of range")));
    }
    Ok(Value::Integer(i))
}

/// PostgreSQL's boolean input: true/false, yes/no, on/off, 1/0 and their unique
/// prefixes, any case.
fn boolean(text: &str) -> Option<bool> {
    let t = text.trim().to_ascii_lowercase();
    let prefix = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    if prefix("true", 1) || prefix("yes", 1) || prefix("on", 2) || t == "1" {
        Some(true)
    } else if prefix("false", 1) || prefix("no", 1) || prefix("off", 2) || t == "0" {
        Some(false)
    } else {
        None
    }
}

fn float(text: &str) -> Option<f64> {
    match text.trim().to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// Registers `sy_int2`, `sy_int4`, `sy_int8`, `sy_bool`, `sy_float8` and `sy_uuid`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("sy_int2", 1, det, |ctx| {
        integer(ctx, "smallint", i16::MIN.into(), i16::MAX.into())
    })?;
    conn.create_scalar_function("sy_int4", 1, det, |ctx| {
        integer(ctx, "integer", i32::MIN.into(), i32::MAX.into())
    })?;
    conn.create_scalar_function("sy_int8", 1, det, |ctx| {
        integer(ctx, "bigint", i64::MIN, i64::MAX)
    })?;
    conn.create_scalar_function("sy_bool", 1, det, |ctx| match ctx.get::<Value>(0)? {
        Value::Text(t) => boolean(&t)
            .map(|b| Value::Integer(b as i64))
            .ok_or_else(|| syntax("boolean", &t)),
        other => Ok(other),
    })?;
    conn.create_scalar_function("sy_float8", 1, det, |ctx| match ctx.get::<Value>(0)? {
        Value::Text(t) => float(&t)
            .map(Value::Real)
            .ok_or_else(|| syntax("double precision", &t)),
        Value::Integer(i) => Ok(Value::Real(i as f64)),
        other => Ok(other),
    })?;
    conn.create_scalar_function("sy_uuid", 1, det, |ctx| match ctx.get::<Value>(0)? {
        Value::Text(t) => super::types::parse_uuid(t.trim())
            .map(|b| Value::Text(super::types::uuid_text(&b)))
            .ok_or_else(|| syntax("uuid", &t)),
        other => Ok(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Result<Value, String> {
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        c.query_row(sql, [], |r| r.get(0))
            .map_err(|e| super::super::error::from_sqlite(&e).message)
    }

    /// What PostgreSQL 15 answered for the same input.
    #[test]
    fn input_is_read_as_postgresql_reads_it() {
        assert_eq!(one("SELECT sy_int4(' 7 ')"), Ok(Value::Integer(7)));
        assert_eq!(one("SELECT sy_int4(1.5)"), Ok(Value::Integer(2)));
        assert_eq!(one("SELECT sy_int4(-2.5)"), Ok(Value::Integer(-3)));
        assert_eq!(
            one("SELECT sy_int4('abc')"),
            Err("invalid input syntax for type integer: \"abc\"".into())
        );
        assert_eq!(
            one("SELECT sy_int2(40000)"),
            Err("smallint out of range".into())
        );
        assert_eq!(one("SELECT sy_bool('YES')"), Ok(Value::Integer(1)));
        assert_eq!(one("SELECT sy_bool('of')"), Ok(Value::Integer(0)));
        assert_eq!(
            one("SELECT sy_bool('maybe')"),
            Err("invalid input syntax for type boolean: \"maybe\"".into())
        );
        assert_eq!(
            one("SELECT sy_float8('-Infinity')"),
            Ok(Value::Real(f64::NEG_INFINITY))
        );
        assert_eq!(
            one("SELECT sy_uuid('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')"),
            Ok(Value::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()))
        );
        assert_eq!(
            one("SELECT sy_uuid('nope')"),
            Err("invalid input syntax for type uuid: \"nope\"".into())
        );
    }
}
