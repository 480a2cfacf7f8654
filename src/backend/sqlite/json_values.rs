//! JSON built as PostgreSQL builds it, for the SQLite backend. SQLite's `json_object`
//! and `json_group_array` take any text as a string and a boolean as 0/1, so a jsonb
//! column came out as an escaped string (`{"x":"{\"a\":1}"}`) and `true` as `1`.
//! `json_build.rs` wraps each value in `sy_json_value(x, kind)` — its JSON text by the
//! type the statement gives it — and the builders here join those texts with
//! PostgreSQL's separators: `json_build_object` `{"a" : 1, "b" : 2}`, `json_build_array`
//! and `json_agg` `[1, 2]` (arrays of arrays a line apart), `json_object_agg`
//! `{ "a" : 1 }`; the `jsonb` forms as `jsonb` prints (`{"a": 1}`, keys ordered).

use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::Value;
use rusqlite::{Connection, Error};

fn failure(code: &str, msg: impl std::fmt::Display) -> Error {
    Error::UserFunctionError(format!("{code}: {msg}").into())
}

/// `text` as jsonb prints it.
fn jsonb(text: String) -> rusqlite::Result<String> {
    super::jsonb::normalize(&text).ok_or_else(|| {
        failure(
            "22P02",
            format!("invalid input syntax for type json: {text}"),
        )
    })
}

/// A JSON string of `s`, escaped as PostgreSQL's `escape_json` does.
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The JSON text of a value the rewrite saw as `kind`: `jsonb` (printed as jsonb
/// prints), `json`/`array`/`number` (its text is JSON already), `bool` (0/1),
/// `timestamp`/`timestamptz` (ISO 8601 with a `T`; a timestamptz already in the session's
/// zone), `interval` (as PostgreSQL prints it), or `auto` (by what SQLite holds: a
/// number, or text as a string).
pub fn fragment(v: Value, kind: &str) -> rusqlite::Result<String> {
    Ok(match (kind, v) {
        (_, Value::Null) => "null".into(),
        ("jsonb", Value::Text(t)) => jsonb(t)?,
        ("json" | "array" | "number", Value::Text(t)) => t,
        ("timestamp", Value::Text(t)) => quoted(&t.replacen(' ', "T", 1)),
        ("timestamptz", Value::Text(t)) => quoted(&iso_instant(&t)),
        ("interval", Value::Text(t)) => quoted(
            &super::interval::Interval::parse(&t)
                .map(|iv| iv.show())
                .unwrap_or(t),
        ),
        ("bool", Value::Integer(n)) => (if n != 0 { "true" } else { "false" }).into(),
        ("bool", Value::Text(t)) => (if matches!(t.as_str(), "t" | "true" | "1") {
            "true"
        } else {
            "false"
        })
        .into(),
        (_, Value::Integer(n)) => n.to_string(),
        (_, Value::Real(f)) if f.is_finite() => super::types::float_text(f),
        (_, Value::Real(f)) => quoted(&super::types::float_text(f)),
        (_, Value::Text(t)) => quoted(&t),
        (_, Value::Blob(b)) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            quoted(&format!("\\x{hex}"))
        }
    })
}

/// A timestamptz shown in the session's zone (`2024-05-06 09:08:09+02`) as JSON writes
/// it (`2024-05-06T09:08:09+02:00`).
fn iso_instant(t: &str) -> String {
    let iso = t.replacen(' ', "T", 1);
    let offset_at = iso
        .char_indices()
        .skip(10)
        .filter(|(_, c)| matches!(c, '+' | '-'))
        .map(|(i, _)| i)
        .last();
    match offset_at {
        Some(i) if iso.len() - i == 3 => format!("{iso}:00"),
        _ => iso,
    }
}

/// A key of an object: text as it is, a number as its digits; NULL is refused with
/// `null_key`, PostgreSQL's words where it was found.
fn key(v: Value, null_key: impl FnOnce() -> String) -> rusqlite::Result<String> {
    match v {
        Value::Null => Err(failure("22023", null_key())),
        Value::Text(t) => Ok(quoted(&t)),
        Value::Integer(n) => Ok(quoted(&n.to_string())),
        Value::Real(f) => Ok(quoted(&super::types::float_text(f))),
        Value::Blob(b) => Ok(quoted(&String::from_utf8_lossy(&b))),
    }
}

fn fragment_text(v: Value) -> String {
    match v {
        Value::Text(t) => t,
        Value::Null => "null".into(),
        Value::Integer(n) => n.to_string(),
        Value::Real(f) => super::types::float_text(f),
        Value::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
    }
}

fn args(ctx: &Context<'_>) -> rusqlite::Result<Vec<Value>> {
    (0..ctx.len()).map(|i| ctx.get::<Value>(i)).collect()
}

/// `json_build_object(k, v, …)` over fragments.
fn object(values: Vec<Value>, binary: bool) -> rusqlite::Result<String> {
    if !values.len().is_multiple_of(2) {
        return Err(failure(
            "22023",
            "argument list must have even number of elements",
        ));
    }
    let mut pairs = Vec::with_capacity(values.len() / 2);
    let mut it = values.into_iter();
    let mut n = 1;
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let null_key = || match binary {
            false => format!("argument {n} cannot be null"),
            true => format!("argument {n}: key must not be null"),
        };
        pairs.push(format!("{} : {}", key(k, null_key)?, fragment_text(v)));
        n += 2;
    }
    let text = format!("{{{}}}", pairs.join(", "));
    if binary { jsonb(text) } else { Ok(text) }
}

/// `json_build_array(v, …)` over fragments.
fn array(values: Vec<Value>, binary: bool) -> rusqlite::Result<String> {
    let items: Vec<String> = values.into_iter().map(fragment_text).collect();
    let text = format!("[{}]", items.join(", "));
    if binary { jsonb(text) } else { Ok(text) }
}

/// How an aggregate joins its group: `json_agg` (`arrays` a line apart, as PostgreSQL
/// writes arrays and rows), `json_object_agg`, or either's jsonb form.
#[derive(Clone, Copy)]
struct Agg {
    object: bool,
    binary: bool,
    arrays: bool,
}

impl Aggregate<Vec<String>, Option<String>> for Agg {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut Vec<String>) -> rusqlite::Result<()> {
        if self.object {
            let k = key(ctx.get(0)?, || "field name must not be null".into())?;
            acc.push(format!("{k} : {}", fragment_text(ctx.get(1)?)));
        } else {
            acc.push(fragment_text(ctx.get(0)?));
        }
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<Vec<String>>,
    ) -> rusqlite::Result<Option<String>> {
        let Some(items) = acc else { return Ok(None) };
        let text = if self.object {
            format!("{{ {} }}", items.join(", "))
        } else if self.arrays {
            // A line apart before each array after the first (not before a NULL).
            let mut text = String::from("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    text.push_str(if item == "null" { ", " } else { ", \n " });
                }
                text.push_str(item);
            }
            text.push(']');
            text
        } else {
            format!("[{}]", items.join(", "))
        };
        (if self.binary { jsonb(text) } else { Ok(text) }).map(Some)
    }
}

/// Registers `sy_json_value(x, kind, flags)`, `jsonb_pretty`, `sy_json[b]_object`, `sy_json[b]_array`,
/// and the aggregates `sy_json[b]_agg`, `sy_json_agg_arrays`, `sy_json[b]_object_agg`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    // Flags: 1 the jsonb form, 2 strict (`to_json(NULL)` is NULL, not `null`).
    conn.create_scalar_function("sy_json_value", 3, det, |ctx| {
        let kind: String = ctx.get(1)?;
        let flags: i64 = ctx.get(2)?;
        let v: Value = ctx.get(0)?;
        if flags & 2 != 0 && v == Value::Null {
            return Ok(None);
        }
        let text = fragment(v, &kind)?;
        (if flags & 1 != 0 {
            jsonb(text)
        } else {
            Ok(text)
        })
        .map(Some)
    })?;
    conn.create_scalar_function("jsonb_pretty", 1, det, |ctx| {
        let Some(text) = ctx.get::<Option<String>>(0)? else {
            return Ok(None);
        };
        super::jsonb::pretty(&text).map(Some).ok_or_else(|| {
            failure(
                "22P02",
                format!("invalid input syntax for type json: {text}"),
            )
        })
    })?;
    for (name, binary) in [("sy_json_object", false), ("sy_jsonb_object", true)] {
        conn.create_scalar_function(name, -1, det, move |ctx| object(args(ctx)?, binary))?;
    }
    for (name, binary) in [("sy_json_array", false), ("sy_jsonb_array", true)] {
        conn.create_scalar_function(name, -1, det, move |ctx| array(args(ctx)?, binary))?;
    }
    let aggs = [
        ("sy_json_agg", 1, false, false, false),
        ("sy_json_agg_arrays", 1, false, false, true),
        ("sy_jsonb_agg", 1, false, true, false),
        ("sy_json_object_agg", 2, true, false, false),
        ("sy_jsonb_object_agg", 2, true, true, false),
    ];
    for (name, n, object, binary, arrays) in aggs {
        let agg = Agg {
            object,
            binary,
            arrays,
        };
        conn.create_aggregate_function(name, n, det, agg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts PostgreSQL 15 printed for the same values.
    #[test]
    fn built_as_postgresql_builds_them() {
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(
            fragment(t("{\"b\":1,\"a\":[1,2]}"), "jsonb").unwrap(),
            "{\"a\": [1, 2], \"b\": 1}"
        );
        assert_eq!(
            fragment(t("{\"z\":1,  \"y\":2}"), "json").unwrap(),
            "{\"z\":1,  \"y\":2}"
        );
        assert_eq!(fragment(Value::Integer(1), "bool").unwrap(), "true");
        assert_eq!(fragment(t("a\"\n"), "auto").unwrap(), "\"a\\\"\\n\"");
        assert_eq!(fragment(Value::Real(2.5), "auto").unwrap(), "2.5");
        assert_eq!(fragment(Value::Null, "jsonb").unwrap(), "null");
        assert_eq!(
            fragment(t("2024-05-06 09:08:09+02"), "timestamptz").unwrap(),
            "\"2024-05-06T09:08:09+02:00\""
        );
        assert_eq!(
            fragment(t("2024-01-06 02:38:09.123+05:30"), "timestamptz").unwrap(),
            "\"2024-01-06T02:38:09.123+05:30\""
        );
        assert_eq!(
            fragment(t("2024-05-06 07:08:09.5"), "timestamp").unwrap(),
            "\"2024-05-06T07:08:09.5\""
        );
        assert_eq!(
            fragment(t("1 day 2 hours"), "interval").unwrap(),
            "\"1 day 02:00:00\""
        );
        assert_eq!(
            object(vec![t("a"), t("1"), t("b"), t("\"x\"")], false).unwrap(),
            "{\"a\" : 1, \"b\" : \"x\"}"
        );
        assert_eq!(
            object(vec![t("b"), t("1"), t("a"), t("true")], true).unwrap(),
            "{\"a\": true, \"b\": 1}"
        );
        assert!(object(vec![Value::Null, t("1")], false).is_err());
        assert_eq!(
            array(vec![t("1"), t("\"a\""), t("null")], false).unwrap(),
            "[1, \"a\", null]"
        );
        assert_eq!(array(Vec::new(), false).unwrap(), "[]");
    }
}
