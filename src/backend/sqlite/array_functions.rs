//! PostgreSQL's array functions for the SQLite backend, over arrays kept as JSON (or
//! still written as PostgreSQL's literal `{a,b}`): `array_length(a, 1)` (NULL for an
//! empty array, as in PostgreSQL), `cardinality`, `array_upper`, `array_lower`,
//! `array_position`, `array_append`, `array_prepend`, `array_cat`, `array_remove` and
//! `string_to_array`. One dimension; results are JSON arrays, which the wire shows as
//! PostgreSQL's literal where the column is typed an array.

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::Value;
use serde_json::Value as Json;

fn fail(m: String) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(m.into())
}

/// The items of the array in argument `at` (None for NULL).
fn items(ctx: &Context<'_>, at: usize) -> rusqlite::Result<Option<Vec<Json>>> {
    let Some(text) = ctx.get::<Option<String>>(at)? else {
        return Ok(None);
    };
    let t = text.trim_start();
    let json = if t.starts_with('[') {
        t.to_string()
    } else {
        crate::sync::source::array::pg_text_to_json(t, "text")
            .ok_or_else(|| fail(format!("22P02: malformed array literal: \"{text}\"")))?
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|_| fail(format!("22P02: malformed array literal: \"{text}\"")))
}

/// A value as an array element.
fn element(v: Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Integer(n) => n.into(),
        Value::Real(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Value::Text(s) => Json::String(s),
        Value::Blob(b) => Json::String(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// Whether an element equals a value (numbers by value, text by text).
fn same(item: &Json, v: &Json) -> bool {
    match (item, v) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        (Json::String(a), Json::Number(b)) | (Json::Number(b), Json::String(a)) => {
            a.parse::<f64>().ok() == b.as_f64()
        }
        (a, b) => a == b,
    }
}

fn array(items: Vec<Json>) -> String {
    Json::Array(items).to_string()
}

fn dimension_one(ctx: &Context<'_>) -> rusqlite::Result<bool> {
    Ok(ctx.get::<Option<i64>>(1)? == Some(1))
}

fn sizes(conn: &Connection, det: FunctionFlags) -> rusqlite::Result<()> {
    conn.create_scalar_function("array_length", 2, det, |ctx| {
        let n = items(ctx, 0)?.map(|a| a.len() as i64);
        Ok(n.filter(|&n| n > 0 && dimension_one(ctx).unwrap_or(false)))
    })?;
    conn.create_scalar_function("array_upper", 2, det, |ctx| {
        let n = items(ctx, 0)?.map(|a| a.len() as i64);
        Ok(n.filter(|&n| n > 0 && dimension_one(ctx).unwrap_or(false)))
    })?;
    conn.create_scalar_function("array_lower", 2, det, |ctx| {
        let n = items(ctx, 0)?.map(|a| a.len() as i64);
        Ok(n.filter(|&n| n > 0 && dimension_one(ctx).unwrap_or(false))
            .map(|_| 1i64))
    })?;
    conn.create_scalar_function("cardinality", 1, det, |ctx| {
        Ok(items(ctx, 0)?.map(|a| a.len() as i64))
    })
}

fn edits(conn: &Connection, det: FunctionFlags) -> rusqlite::Result<()> {
    conn.create_scalar_function("array_position", 2, det, |ctx| {
        let Some(a) = items(ctx, 0)? else {
            return Ok(None);
        };
        let v = element(ctx.get(1)?);
        Ok(a.iter().position(|i| same(i, &v)).map(|p| p as i64 + 1))
    })?;
    conn.create_scalar_function("array_append", 2, det, |ctx| {
        let mut a = items(ctx, 0)?.unwrap_or_default();
        a.push(element(ctx.get(1)?));
        Ok(array(a))
    })?;
    conn.create_scalar_function("array_prepend", 2, det, |ctx| {
        let mut a = items(ctx, 1)?.unwrap_or_default();
        a.insert(0, element(ctx.get(0)?));
        Ok(array(a))
    })?;
    conn.create_scalar_function("array_cat", 2, det, |ctx| {
        let (a, b) = (items(ctx, 0)?, items(ctx, 1)?);
        if a.is_none() && b.is_none() {
            return Ok(None);
        }
        let mut all = a.unwrap_or_default();
        all.extend(b.unwrap_or_default());
        Ok(Some(array(all)))
    })?;
    conn.create_scalar_function("array_remove", 2, det, |ctx| {
        let v = element(ctx.get(1)?);
        Ok(items(ctx, 0)?.map(|a| array(a.into_iter().filter(|i| !same(i, &v)).collect())))
    })
}

/// Registers the functions of this module.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    sizes(conn, det)?;
    edits(conn, det)?;
    conn.create_scalar_function("string_to_array", -1, det, |ctx| {
        let Some(text) = ctx.get::<Option<String>>(0)? else {
            return Ok(None);
        };
        let delim = ctx.get::<Option<String>>(1)?;
        let null = if ctx.len() > 2 {
            ctx.get::<Option<String>>(2)?
        } else {
            None
        };
        if text.is_empty() {
            return Ok(Some(array(Vec::new())));
        }
        let parts: Vec<String> = match delim.as_deref() {
            None => text.chars().map(String::from).collect(),
            Some("") => vec![text.clone()],
            Some(d) => text.split(d).map(String::from).collect(),
        };
        Ok(Some(array(
            parts
                .into_iter()
                .map(|p| {
                    if null.as_deref() == Some(p.as_str()) {
                        Json::Null
                    } else {
                        Json::String(p)
                    }
                })
                .collect(),
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers PostgreSQL 15 gave (arrays as JSON here, as the backend keeps them).
    #[test]
    fn arrays_answer_as_postgresql_does() {
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        let one = |sql: &str| super::super::pg_functions::answer(&c, sql);
        let cases = [
            ("array_length('[1,2]', 1)", "2"),
            ("array_length('{}', 1)", "NULL"),
            ("array_length('{a,b}', 2)", "NULL"),
            ("cardinality('{}')", "0"),
            ("cardinality('{x,y,z}')", "3"),
            ("array_position('{a,b,c}', 'b')", "2"),
            ("array_position('[1,2,3]', 3)", "3"),
            ("array_position('[1,2]', 9)", "NULL"),
            ("array_append('{a}', 'b')", "[\"a\",\"b\"]"),
            ("array_prepend(0, '[1]')", "[0,1]"),
            ("array_cat('[1]', '[2,3]')", "[1,2,3]"),
            ("array_remove('[1,2,1]', 1)", "[2]"),
            (
                "string_to_array('a,b,,c', ',', '')",
                "[\"a\",\"b\",null,\"c\"]",
            ),
            ("string_to_array('abc', NULL)", "[\"a\",\"b\",\"c\"]"),
            ("string_to_array('', ',')", "[]"),
        ];
        for (sql, want) in cases {
            assert_eq!(one(sql), want, "{sql}");
        }
    }
}
