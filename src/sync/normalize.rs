//! Canonical forms for comparing a source value with a target value of PostgreSQL type
//! `pg_type`, whatever side it comes from. The rule, per type:
//!
//! - boolean: `t`/`f` (SQLite 0/1, `true`/`false` and PostgreSQL `t`/`f` all map to it);
//! - integers: decimal; double precision: the shortest text that round-trips the float;
//! - numeric: decimal without leading zeros or trailing fractional zeros (`1.50` = `1.5`);
//! - timestamp and timestamptz: microseconds since 1970 UTC (naive text is UTC);
//! - date: `YYYY-MM-DD`; bytea: lowercase hex; uuid: lowercase hyphenated;
//! - json/jsonb: the parsed document (key order and spacing do not matter);
//! - everything else: the text itself. NULL only equals NULL.

use rusqlite::types::Value;

use super::cast;
use crate::backend::sqlite::types::{civil_from_days, parse_timestamp_micros};

fn base(pg_type: &str) -> &str {
    pg_type.split('(').next().unwrap_or(pg_type).trim()
}

/// The marker for NULL (cannot collide with any text value).
pub const NULL: &str = "\u{0}NULL";

fn numeric(s: &str) -> String {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let digits = if digits.contains(['e', 'E']) {
        digits
            .parse::<f64>()
            .map(|f| format!("{f}"))
            .unwrap_or_else(|_| digits.to_string())
    } else {
        digits.to_string()
    };
    let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let body = match (int.is_empty(), frac.is_empty()) {
        (true, true) => return "0".into(),
        (_, true) => int.to_string(),
        (true, false) => format!("0.{frac}"),
        (false, false) => format!("{int}.{frac}"),
    };
    if neg { format!("-{body}") } else { body }
}

fn float(s: &str) -> String {
    match s.trim() {
        "NaN" => "NaN".into(),
        "Infinity" => "inf".into(),
        "-Infinity" => "-inf".into(),
        t => t
            .parse::<f64>()
            .map(|f| format!("{f:?}"))
            .unwrap_or_else(|_| t.to_string()),
    }
}

fn json(s: &str) -> String {
    serde_json::from_str::<serde_json::Value>(s)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| s.to_string())
}

fn uuid(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

fn date_text(us: i64) -> String {
    let (y, m, d) = civil_from_days(us.div_euclid(86_400_000_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// A SQLite value in canonical form for a target column of type `pg_type`.
pub fn from_sqlite(v: &Value, pg_type: &str) -> String {
    if matches!(v, Value::Null) {
        return NULL.into();
    }
    let text = || match v {
        Value::Text(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => format!("{f}"),
        Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Null => String::new(),
    };
    match base(pg_type) {
        "boolean" => match cast::as_bool(v) {
            Ok(true) => "t".into(),
            Ok(false) => "f".into(),
            Err(_) => text(),
        },
        "double precision" | "real" => float(&text()),
        "numeric" => numeric(&text()),
        "timestamp" | "timestamp with time zone" => cast::timestamp_micros(v)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| text()),
        "date" => match v {
            Value::Text(s) => parse_timestamp_micros(s)
                .map(date_text)
                .unwrap_or_else(|| s.clone()),
            other => cast::timestamp_micros(other)
                .map(date_text)
                .unwrap_or_else(|_| text()),
        },
        "bytea" => match v {
            Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            other => {
                let Value::Text(s) = other else { return text() };
                s.bytes().map(|x| format!("{x:02x}")).collect()
            }
        },
        "json" | "jsonb" => json(&text()),
        "uuid" => match v {
            Value::Blob(b) if b.len() == 16 => {
                let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                )
            }
            _ => uuid(&text()),
        },
        _ => text(),
    }
}

/// A PostgreSQL text-format value (as COPY TO writes it) in canonical form.
pub fn from_pg_text(v: Option<&str>, pg_type: &str) -> String {
    let Some(s) = v else { return NULL.into() };
    match base(pg_type) {
        "double precision" | "real" => float(s),
        "numeric" => numeric(s),
        "timestamp" | "timestamp with time zone" => parse_timestamp_micros(s)
            .map(|u| u.to_string())
            .unwrap_or_else(|| s.to_string()),
        "bytea" => s.strip_prefix("\\x").unwrap_or(s).to_ascii_lowercase(),
        "json" | "jsonb" => json(s),
        "uuid" => uuid(s),
        _ => s.to_string(),
    }
}

/// Decodes one line of COPY text format into fields (None = NULL).
pub fn copy_text_fields(line: &str) -> Vec<Option<String>> {
    line.split('\t')
        .map(|f| {
            if f == "\\N" {
                return None;
            }
            let mut out = String::with_capacity(f.len());
            let mut chars = f.chars().peekable();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('t') => out.push('\t'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('v') => out.push('\u{b}'),
                    Some(other) => out.push(other),
                    None => {}
                }
            }
            Some(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_and_postgres_forms_meet() {
        let pairs: [(Value, &str, Option<&str>); 10] = [
            (Value::Integer(1), "boolean", Some("t")),
            (Value::Real(1.5), "numeric(8,2)", Some("1.50")),
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
    fn copy_text_decoding() {
        assert_eq!(
            copy_text_fields("1\t\\N\ta\\tb\\\\c"),
            vec![Some("1".into()), None, Some("a\tb\\c".into())]
        );
        assert_eq!(numeric("-000.500"), "-0.5");
        assert_eq!(numeric("0.000"), "0");
    }
}
