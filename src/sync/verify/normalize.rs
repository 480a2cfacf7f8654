//! Canonical forms for comparing a source value with a target value of PostgreSQL type
//! `pg_type`, whatever side it comes from. The rule, per type:
//!
//! - boolean: `t`/`f` (SQLite 0/1, `true`/`false` and PostgreSQL `t`/`f` all map to it);
//! - integers: decimal; double precision: the shortest text that round-trips the float;
//! - numeric: decimal without leading zeros or trailing fractional zeros (`1.50` = `1.5`);
//! - timestamp and timestamptz: microseconds since 1970 UTC (naive text is UTC);
//! - date: `YYYY-MM-DD`; bytea: lowercase hex; uuid: lowercase hyphenated;
//! - json/jsonb: the parsed document (key order and spacing do not matter);
//! - arrays (PostgreSQL's literal, or the JSON array SQLite keeps): the nested list of
//!   their elements, each in its element type's form;
//! - everything else: the text itself. NULL only equals NULL.
//!
//! Writers append to a caller's buffer, so a verify of millions of rows does not allocate
//! per value.

use std::fmt::Write;

use rusqlite::types::ValueRef;

use crate::backend::sqlite::types::{civil_from_days, parse_timestamp_micros};
use crate::sync::source::cast;

/// The marker for NULL (cannot collide with any text value).
pub const NULL: &str = "\u{0}NULL";

/// How a column's values are normalised, decided once per column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    Bool,
    Float,
    Numeric,
    Timestamp,
    Date,
    Bytea,
    Json,
    Uuid,
    Text,
    /// An array of elements compared as the given (non-array) form.
    Array(&'static Norm),
}

impl Norm {
    pub fn of(pg_type: &str) -> Norm {
        if let Some(elem) = crate::sync::source::array::element_type(pg_type) {
            return Norm::Array(match Norm::of(elem) {
                Norm::Bool => &Norm::Bool,
                Norm::Float => &Norm::Float,
                Norm::Numeric => &Norm::Numeric,
                Norm::Timestamp => &Norm::Timestamp,
                Norm::Date => &Norm::Date,
                Norm::Bytea => &Norm::Bytea,
                Norm::Json => &Norm::Json,
                Norm::Uuid => &Norm::Uuid,
                Norm::Text | Norm::Array(_) => &Norm::Text,
            });
        }
        match pg_type.split('(').next().unwrap_or(pg_type).trim() {
            "boolean" => Norm::Bool,
            "double precision" | "real" => Norm::Float,
            "numeric" => Norm::Numeric,
            "timestamp" | "timestamp with time zone" | "timestamp without time zone" => {
                Norm::Timestamp
            }
            "date" => Norm::Date,
            "bytea" => Norm::Bytea,
            "json" | "jsonb" => Norm::Json,
            "uuid" => Norm::Uuid,
            _ => Norm::Text,
        }
    }
}

/// Appends an integer in decimal.
pub(super) fn push_int(out: &mut String, i: i64) {
    out.push_str(itoa::Buffer::new().format(i));
}

/// Appends a float's canonical form: the shortest text that round-trips it.
pub(super) fn push_float(out: &mut String, f: f64) {
    out.push_str(ryu::Buffer::new().format(f));
}

/// Appends a float as `{f}` (Display) writes it, the form sync gives a REAL stored as text:
/// shortest round-trip digits, never an exponent, no `.0` on whole numbers.
fn push_float_display(out: &mut String, f: f64) {
    if push_fixed(out, f) {
        return;
    }
    let mut b = ryu::Buffer::new();
    let s = b.format(f);
    if !f.is_finite() || s.contains('e') {
        let _ = write!(out, "{f}");
    } else {
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
    }
}

/// Appends `f` as fixed-point decimal when it is exactly the double nearest a decimal with
/// at most four fractional digits and fewer than 15 significant digits (money, scores):
/// that decimal is then its shortest round-trip form, written here with integer
/// arithmetic instead of a float formatter. False (nothing written) otherwise.
fn push_fixed(out: &mut String, f: f64) -> bool {
    if f == 0.0 || !f.is_finite() || f.abs() >= 1e11 {
        return false;
    }
    for (k, scale) in [1i64, 10, 100, 1_000, 10_000].into_iter().enumerate() {
        let x = (f * scale as f64).round();
        // Both operands are exact, so the division rounds once, as parsing the decimal would.
        if x / scale as f64 != f {
            continue;
        }
        let x = x as i64;
        if x < 0 {
            out.push('-');
        }
        let x = x.unsigned_abs();
        out.push_str(itoa::Buffer::new().format(x / scale as u64));
        let frac = x % scale as u64;
        if frac != 0 {
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(frac);
            out.push('.');
            (digits.len()..k).for_each(|_| out.push('0'));
            out.push_str(digits.trim_end_matches('0'));
        }
        return true;
    }
    false
}

fn numeric(out: &mut String, s: &str) {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.contains(['e', 'E']) {
        match digits.parse::<f64>() {
            Ok(f) => return numeric(out, &format!("{}{f}", if neg { "-" } else { "" })),
            Err(_) => return out.push_str(s),
        }
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if int.is_empty() && frac.is_empty() {
        out.push('0');
        return;
    }
    if neg {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
}

fn float(out: &mut String, s: &str) {
    match s.trim() {
        "NaN" => out.push_str("NaN"),
        "Infinity" => out.push_str("inf"),
        "-Infinity" => out.push_str("-inf"),
        t => match t.parse::<f64>() {
            Ok(f) => push_float(out, f),
            Err(_) => out.push_str(t),
        },
    }
}

fn json(out: &mut String, s: &str) {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) => {
            let _ = write!(out, "{v}");
        }
        Err(_) => out.push_str(s),
    }
}

/// Appends the day of a time (microseconds since 1970) as `YYYY-MM-DD`.
pub(super) fn date(out: &mut String, us: i64) {
    let (y, m, d) = civil_from_days(us.div_euclid(86_400_000_000));
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// Appends bytes in lowercase hex.
pub(super) fn hex(out: &mut String, b: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(b.len() * 2);
    for &x in b {
        out.push(DIGITS[(x >> 4) as usize] as char);
        out.push(DIGITS[(x & 15) as usize] as char);
    }
}

fn lower(out: &mut String, s: &str) {
    out.extend(s.trim().chars().map(|c| c.to_ascii_lowercase()));
}

/// Appends the canonical form of a SQLite value.
pub fn write_sqlite(out: &mut String, v: ValueRef<'_>, norm: Norm) {
    let text = match v {
        ValueRef::Null => return out.push_str(NULL),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t)),
        _ => None,
    };
    let owned = || -> rusqlite::types::Value {
        rusqlite::types::Value::try_from(v).unwrap_or(rusqlite::types::Value::Null)
    };
    match (norm, &text) {
        (Norm::Bool, _) => match cast::as_bool(&owned()) {
            Ok(b) => out.push(if b { 't' } else { 'f' }),
            Err(_) => plain(out, v),
        },
        (Norm::Float, Some(t)) => float(out, t),
        (Norm::Float, None) => match v {
            ValueRef::Real(f) => push_float(out, f),
            ValueRef::Integer(i) => push_float(out, i as f64),
            _ => plain(out, v),
        },
        (Norm::Numeric, Some(t)) => numeric(out, t),
        (Norm::Numeric, None) => numeric(out, &plain_string(v)),
        (Norm::Timestamp, _) => match cast::timestamp_micros(&owned()) {
            Ok(u) => push_int(out, u),
            Err(_) => plain(out, v),
        },
        (Norm::Date, Some(t)) => match parse_timestamp_micros(t) {
            Some(us) => date(out, us),
            None => out.push_str(t),
        },
        (Norm::Date, None) => match cast::timestamp_micros(&owned()) {
            Ok(us) => date(out, us),
            Err(_) => plain(out, v),
        },
        (Norm::Bytea, Some(t)) => hex(out, t.as_bytes()),
        (Norm::Bytea, None) => match v {
            ValueRef::Blob(b) => hex(out, b),
            _ => plain(out, v),
        },
        (Norm::Json, Some(t)) => json(out, t),
        (Norm::Array(elem), Some(t)) => array(out, t, *elem),
        (Norm::Uuid, None) => match v {
            ValueRef::Blob(b) if b.len() == 16 => {
                let mut h = String::with_capacity(32);
                hex(&mut h, b);
                let _ = write!(
                    out,
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                );
            }
            _ => plain(out, v),
        },
        (Norm::Uuid, Some(t)) => lower(out, t),
        (_, Some(t)) => out.push_str(t),
        _ => plain(out, v),
    }
}

fn plain_string(v: ValueRef<'_>) -> String {
    let mut s = String::new();
    plain(&mut s, v);
    s
}

fn plain(out: &mut String, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => out.push_str(NULL),
        ValueRef::Integer(i) => push_int(out, i),
        ValueRef::Real(f) => push_float_display(out, f),
        ValueRef::Text(t) | ValueRef::Blob(t) => match std::str::from_utf8(t) {
            Ok(s) => out.push_str(s),
            Err(_) => out.push_str(&String::from_utf8_lossy(t)),
        },
    }
}

/// Appends the canonical form of a PostgreSQL text-format value (None = NULL).
pub fn write_pg(out: &mut String, v: Option<&str>, norm: Norm) {
    let Some(s) = v else {
        return out.push_str(NULL);
    };
    match norm {
        Norm::Float => float(out, s),
        Norm::Numeric => numeric(out, s),
        Norm::Timestamp => match parse_timestamp_micros(s) {
            Some(u) => push_int(out, u),
            None => out.push_str(s),
        },
        Norm::Bytea => lower(out, s.strip_prefix("\\x").unwrap_or(s)),
        Norm::Json => json(out, s),
        Norm::Uuid => lower(out, s),
        Norm::Array(elem) => array(out, s, *elem),
        Norm::Bool | Norm::Date | Norm::Text => out.push_str(s),
    }
}

/// An array's canonical form: a JSON list (nested as the array is) of each element's
/// canonical form as a string, NULL as null. Text that is no array stays as it is.
fn array(out: &mut String, text: &str, elem: Norm) {
    use crate::sync::source::array::{Node, parse_text};
    fn tree(n: &Node, elem: Norm) -> serde_json::Value {
        match n {
            Node::Null => serde_json::Value::Null,
            Node::List(items) => items.iter().map(|i| tree(i, elem)).collect(),
            Node::Leaf(v) => {
                let mut s = String::new();
                match (elem, v) {
                    // JSON's true and PostgreSQL's t.
                    (Norm::Bool, _) => write_sqlite(&mut s, v.into(), elem),
                    (_, rusqlite::types::Value::Text(t)) => write_pg(&mut s, Some(t), elem),
                    _ => write_sqlite(&mut s, v.into(), elem),
                }
                serde_json::Value::String(s)
            }
        }
    }
    match parse_text(text) {
        Ok(node) => out.push_str(&tree(&node, elem).to_string()),
        Err(_) => out.push_str(text),
    }
}

/// The cheap form of a SQLite value: as close to PostgreSQL's text output as possible
/// without parsing (booleans as t/f, blobs as hex, epoch integers as microseconds,
/// floats in shortest form). Equal cheap forms mean equal values; different ones are
/// settled by [`canonical`].
pub fn write_sqlite_cheap(out: &mut String, v: ValueRef<'_>, norm: Norm) {
    match (norm, v) {
        (_, ValueRef::Null) => out.push_str(NULL),
        (Norm::Bool, _) => write_sqlite(out, v, norm),
        (Norm::Timestamp, ValueRef::Integer(i)) => push_int(
            out,
            cast::timestamp_micros(&rusqlite::types::Value::Integer(i)).unwrap_or(i),
        ),
        (Norm::Timestamp, ValueRef::Real(f)) => push_int(out, (f * 1_000_000.0) as i64),
        (Norm::Timestamp, ValueRef::Text(t)) => {
            match std::str::from_utf8(t).ok().and_then(parse_timestamp_micros) {
                Some(us) => push_int(out, us),
                None => plain(out, v),
            }
        }
        (Norm::Date, ValueRef::Integer(_) | ValueRef::Real(_)) => write_sqlite(out, v, norm),
        (Norm::Float, ValueRef::Real(f)) => push_float(out, f),
        (Norm::Float, ValueRef::Integer(i)) => push_float(out, i as f64),
        (Norm::Bytea | Norm::Uuid, ValueRef::Blob(_)) => write_sqlite(out, v, norm),
        (Norm::Bytea, ValueRef::Text(t)) => hex(out, t),
        _ => plain(out, v),
    }
}

/// The full canonical form of a cheap form (from either side).
pub fn canonical(cheap: &str, norm: Norm) -> String {
    if cheap == NULL {
        return cheap.to_string();
    }
    let mut out = String::new();
    match norm {
        Norm::Timestamp => match cheap.parse::<i64>() {
            Ok(us) => push_int(&mut out, us),
            Err(_) => write_pg(&mut out, Some(cheap), norm),
        },
        Norm::Date => match parse_timestamp_micros(cheap) {
            Some(us) => date(&mut out, us),
            None => out.push_str(cheap),
        },
        Norm::Bytea => lower(&mut out, cheap),
        _ => write_pg(&mut out, Some(cheap), norm),
    }
    out
}

/// A canonical value as PostgreSQL prints a value of `pg_type` (what a report shows):
/// timestamps as text (`+00` for timestamptz: the canonical form is the UTC instant),
/// bytea with its `\\x`, floats' infinities spelled out. NULL stays the marker.
pub fn display(canonical: &str, pg_type: &str) -> String {
    if canonical == NULL {
        return canonical.to_string();
    }
    match Norm::of(pg_type) {
        Norm::Timestamp => match canonical.parse::<i64>() {
            Ok(us) => {
                let text = crate::backend::sqlite::datetime::format_timestamp_micros(us);
                if pg_type.contains("with time zone") || pg_type.starts_with("timestamptz") {
                    format!("{text}+00")
                } else {
                    text
                }
            }
            Err(_) => canonical.to_string(),
        },
        Norm::Bytea => format!("\\x{canonical}"),
        Norm::Float => match canonical {
            "inf" => "Infinity".into(),
            "-inf" => "-Infinity".into(),
            _ => canonical.to_string(),
        },
        // numeric(p, s) prints s decimals (20.00).
        Norm::Numeric => numeric_scale(pg_type)
            .and_then(|s| crate::backend::sqlite::numeric::with_scale(canonical, s))
            .unwrap_or_else(|| canonical.to_string()),
        Norm::Array(_) => crate::sync::source::array::json_to_pg_literal(canonical)
            .unwrap_or_else(|| canonical.to_string()),
        _ => canonical.to_string(),
    }
}

/// The scale of `numeric(p, s)`.
fn numeric_scale(pg_type: &str) -> Option<usize> {
    let args = pg_type.split_once('(')?.1.trim_end_matches(')');
    args.split(',').nth(1)?.trim().parse().ok()
}

/// A SQLite value in canonical form.
#[cfg(test)]
pub fn from_sqlite(v: &rusqlite::types::Value, pg_type: &str) -> String {
    let mut s = String::new();
    write_sqlite(&mut s, v.into(), Norm::of(pg_type));
    s
}

/// A PostgreSQL text value in canonical form.
#[cfg(test)]
pub fn from_pg_text(v: Option<&str>, pg_type: &str) -> String {
    let mut s = String::new();
    write_pg(&mut s, v, Norm::of(pg_type));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::Value;

    #[test]
    fn reports_show_values_as_postgresql_prints_them() {
        assert_eq!(
            display("1796155365213310", "timestamp with time zone"),
            "2026-12-01 20:02:45.21331+00"
        );
        assert_eq!(
            display("1796155365000000", "timestamp without time zone"),
            "2026-12-01 20:02:45"
        );
        assert_eq!(display("00ff", "bytea"), "\\x00ff");
        assert_eq!(display("-inf", "double precision"), "-Infinity");
        assert_eq!(display("12.5", "numeric(10,2)"), "12.50");
        assert_eq!(display("12.5", "numeric"), "12.5");
        assert_eq!(display(NULL, "timestamp"), NULL);
    }

    #[test]
    fn sqlite_and_postgres_forms_meet() {
        let pairs: [(Value, &str, Option<&str>); 11] = [
            (Value::Integer(1), "boolean", Some("t")),
            (Value::Real(1.5), "numeric(8,2)", Some("1.50")),
            (Value::Text("12.30".into()), "numeric", Some("12.3")),
            (
                Value::Text("2024-01-06 03:07:36.554722".into()),
                "timestamp",
                Some("2024-01-06 03:07:36.554722"),
            ),
            (
                Value::Text("2024-01-06 03:07:36".into()),
                "timestamp with time zone",
                Some("2024-01-06 03:07:36+00"),
            ),
            (
                Value::Integer(1_704_510_456),
                "timestamp",
                Some("2024-01-06 03:07:36"),
            ),
            (Value::Blob(vec![0xde, 0xad]), "bytea", Some("\\xdead")),
            (
                Value::Text("{\"b\": 1, \"a\": [1, 2]}".into()),
                "jsonb",
                Some("{\"a\": [1, 2], \"b\": 1}"),
            ),
            (Value::Real(0.1), "double precision", Some("0.1")),
            (
                Value::Text("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11".into()),
                "uuid",
                Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            ),
            (Value::Null, "text", None),
        ];
        for (v, ty, pg) in pairs {
            assert_eq!(from_sqlite(&v, ty), from_pg_text(pg, ty), "{v:?} as {ty}");
        }
        assert_ne!(
            from_sqlite(&Value::Text(String::new()), "text"),
            from_pg_text(None, "text")
        );
        assert_ne!(
            from_sqlite(&Value::Integer(2), "bigint"),
            from_pg_text(Some("3"), "bigint")
        );
    }

    #[test]
    fn fast_number_forms_match_std() {
        let floats = [
            0.0,
            -0.0,
            1.0,
            100.0,
            0.1,
            123.45,
            1e-7,
            1e15,
            1e16,
            1.5e300,
            -2.5e-300,
            -0.5,
            0.0001,
            0.00015,
            1e-5,
            -7.05,
            99999999.99,
            12345678901.5,
            1e11,
            0.3,
            2.675,
        ];
        // Cents and basis points, as a money column holds them.
        for c in (-200_000i64..200_000).step_by(7) {
            for scale in [100.0, 10_000.0] {
                let f = c as f64 / scale;
                let mut s = String::new();
                push_float_display(&mut s, f);
                assert_eq!(s, format!("{f}"));
            }
        }
        for f in floats
            .into_iter()
            .chain([f64::NAN, f64::INFINITY, f64::NEG_INFINITY])
        {
            let mut s = String::new();
            push_float_display(&mut s, f);
            assert_eq!(s, format!("{f}"));
            s.clear();
            push_float(&mut s, f);
            assert_eq!(
                s.parse::<f64>()
                    .ok()
                    .map(f64::to_bits)
                    .filter(|_| f.is_finite()),
                f.is_finite().then(|| f.to_bits())
            );
        }
        let mut s = String::new();
        push_int(&mut s, i64::MIN);
        assert_eq!(s, i64::MIN.to_string());
    }

    #[test]
    fn numeric_text_is_trimmed() {
        let mut s = String::new();
        numeric(&mut s, "-000.500");
        assert_eq!(s, "-0.5");
        s.clear();
        numeric(&mut s, "0.000");
        assert_eq!(s, "0");
    }
}
