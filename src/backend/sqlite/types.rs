//! PostgreSQL types for SQLite values: declared column types map to exact PostgreSQL type
//! OIDs, values are written in PostgreSQL's text and binary formats, and parameters are
//! read from either format into SQLite values.
//!
//! Storage rules (also used by `switchyard sync`): booleans are 0/1 integers, timestamps are
//! text `YYYY-MM-DD HH:MM:SS[.ffffff]` (timestamptz in UTC with `+00`), dates
//! `YYYY-MM-DD`, uuids canonical text, json/jsonb text, numeric text, bytea blobs.

use bytes::{BufMut, BytesMut};
use rusqlite::types::Value;

#[cfg(test)]
use super::datetime::days_from_civil;
pub use super::datetime::{
    civil_from_days, format_timestamp_micros, parse_timestamp_bytes, parse_timestamp_micros,
};

pub const BOOL: u32 = 16;
pub const BYTEA: u32 = 17;
pub const INT8: u32 = 20;
pub const INT2: u32 = 21;
pub const INT4: u32 = 23;
pub const TEXT: u32 = 25;
pub const OID: u32 = 26;
pub const JSON: u32 = 114;
pub const FLOAT4: u32 = 700;
pub const FLOAT8: u32 = 701;
pub const BPCHAR: u32 = 1042;
pub const VARCHAR: u32 = 1043;
pub const DATE: u32 = 1082;
pub const TIME: u32 = 1083;
pub const TIMESTAMP: u32 = 1114;
pub const TIMESTAMPTZ: u32 = 1184;
pub const NUMERIC: u32 = 1700;
pub const UUID: u32 = 2950;
pub const JSONB: u32 = 3802;
pub const NAME: u32 = 19;
pub const CHAR: u32 = 18;
pub const INTERVAL: u32 = 1186;

/// The PostgreSQL type of a column declared as `decl` in SQLite (as our DDL writes it).
pub fn oid_for_decltype(decl: &str) -> u32 {
    if let Some(elem) = decl.trim().strip_suffix("[]") {
        return super::arrays::array_of(oid_for_decltype(elem));
    }
    let d = decl.trim().to_ascii_lowercase();
    let d = d.split('(').next().unwrap_or("").trim();
    match d {
        "bool" | "boolean" => BOOL,
        "smallint" | "int2" | "smallserial" => INT2,
        "int" | "integer" | "int4" | "serial" | "mediumint" => INT4,
        "bigint" | "int8" | "bigserial" => INT8,
        "real" | "float4" => FLOAT4,
        "double" | "double precision" | "float8" | "float" => FLOAT8,
        "numeric" | "decimal" => NUMERIC,
        "text" | "clob" | "citext" => TEXT,
        "varchar" | "character varying" | "nvarchar" => VARCHAR,
        "char" | "character" | "bpchar" | "nchar" => BPCHAR,
        "bytea" | "blob" => BYTEA,
        "date" => DATE,
        "time" | "time without time zone" => TIME,
        "timestamp" | "datetime" | "timestamp without time zone" => TIMESTAMP,
        "timestamptz" | "timestamp with time zone" => TIMESTAMPTZ,
        "json" => JSON,
        "jsonb" => JSONB,
        "uuid" => UUID,
        "name" => NAME,
        "oid" | "regclass" | "regtype" | "regproc" => OID,
        "interval" => INTERVAL,
        _ if d.contains("int") => INT8,
        _ if d.contains("char") || d.contains("text") => TEXT,
        _ => TEXT,
    }
}

/// The PostgreSQL type of a value whose column has no declared type.
pub fn oid_for_value(v: &Value) -> u32 {
    match v {
        Value::Integer(_) => INT8,
        Value::Real(_) => FLOAT8,
        Value::Blob(_) => BYTEA,
        Value::Text(_) | Value::Null => TEXT,
    }
}

/// Type length for RowDescription (-1 = variable).
pub fn type_len(oid: u32) -> i16 {
    match oid {
        BOOL | CHAR => 1,
        INT2 => 2,
        INT4 | FLOAT4 | DATE | OID => 4,
        INT8 | FLOAT8 | TIMESTAMP | TIMESTAMPTZ | TIME => 8,
        UUID | INTERVAL => 16,
        NAME => 64,
        _ => -1,
    }
}

/// The PostgreSQL name of a type OID (for `format_type` and catalogs).
pub fn type_name(oid: u32) -> &'static str {
    match oid {
        BOOL => "boolean",
        BYTEA => "bytea",
        INT8 => "bigint",
        INT2 => "smallint",
        INT4 => "integer",
        TEXT => "text",
        OID => "oid",
        JSON => "json",
        FLOAT4 => "real",
        FLOAT8 => "double precision",
        BPCHAR => "character",
        VARCHAR => "character varying",
        DATE => "date",
        TIME => "time without time zone",
        TIMESTAMP => "timestamp without time zone",
        TIMESTAMPTZ => "timestamp with time zone",
        NUMERIC => "numeric",
        UUID => "uuid",
        JSONB => "jsonb",
        NAME => "name",
        INTERVAL => "interval",
        CHAR => "\"char\"",
        _ => "text",
    }
}

fn bool_text(v: &Value) -> Option<bool> {
    match v {
        Value::Integer(i) => Some(*i != 0),
        Value::Real(f) => Some(*f != 0.0),
        Value::Text(s) => match s.to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "yes" | "on" | "y" => Some(true),
            "f" | "false" | "0" | "no" | "off" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// PostgreSQL's text form of a float.
pub(super) fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        let s = format!("{f}");
        s
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("\\x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A timestamp in PostgreSQL's text form: a timestamptz as the instant in UTC
/// (`2024-05-06 07:08:09+02` reads `05:08:09+00`), a timestamp without its offset (which
/// PostgreSQL ignores), both with the time of day a date alone leaves out and no trailing
/// zeros in the fraction. None when it is no timestamp this side reads (`infinity`, a BC
/// date). Also the form the SQLite backend stores (`coerce.rs`).
pub fn canonical_timestamp(s: &str, tz: bool) -> Option<String> {
    let mut t = s.trim().replacen('T', " ", 1);
    if t.ends_with('Z') {
        t.pop();
        t.push_str("+00");
    }
    if !tz
        && has_offset(&t)
        && let Some(i) = t.rfind(['+', '-']).filter(|&i| i > 10)
    {
        t.truncate(i);
    }
    let us = parse_timestamp_micros(&t)?;
    Some(if tz {
        format!("{}+00", format_timestamp_micros(us))
    } else {
        format_timestamp_micros(us)
    })
}

/// A stored timestamp as PostgreSQL shows it ([`canonical_timestamp`]); one this side
/// cannot read is shown as stored (with `+00` for a timestamptz that has no offset).
fn timestamp_text(s: &str, tz: bool) -> String {
    canonical_timestamp(s, tz).unwrap_or_else(|| {
        let t = s.trim().to_string();
        if tz && !has_offset(&t) { t + "+00" } else { t }
    })
}

pub(super) fn has_offset(t: &str) -> bool {
    // After the date (whose `-`s are not offsets); seconds may be left out (`00:00+00`).
    t.get(11..).is_some_and(|time| time.contains(['+', '-']))
}

/// Writes a value as PostgreSQL text of type `oid` into `out`. None means SQL NULL.
pub fn to_text(v: &Value, oid: u32) -> Option<String> {
    Some(match (v, oid) {
        (Value::Null, _) => return None,
        (_, BOOL) => match bool_text(v) {
            Some(true) => "t".into(),
            Some(false) => "f".into(),
            None => plain_text(v),
        },
        (Value::Real(f), _) => float_text(*f),
        (Value::Blob(b), _) => hex(b),
        (Value::Text(s), TIMESTAMP) => timestamp_text(s, false),
        (Value::Text(s), TIMESTAMPTZ) => timestamp_text(s, true),
        (Value::Text(s), JSONB) => super::jsonb::normalize(s).unwrap_or_else(|| s.clone()),
        (Value::Integer(i), TIMESTAMP | TIMESTAMPTZ) => epoch_text(*i, oid == TIMESTAMPTZ),
        (Value::Text(s), _) if super::arrays::element_of(oid).is_some() => {
            super::arrays::json_to_literal(s)
        }
        _ => plain_text(v),
    })
}

fn plain_text(v: &Value) -> String {
    match v {
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => float_text(*f),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => hex(b),
        Value::Null => String::new(),
    }
}

/// Epoch seconds stored as integers, shown as timestamps.
fn epoch_text(secs: i64, tz: bool) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if tz { s + "+00" } else { s }
}

/// PostgreSQL's epoch (2000-01-01) in microseconds since 1970.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Appends a value in PostgreSQL binary format of type `oid`; false if there is none we
/// can produce (the caller then reports an error).
pub fn put_binary(out: &mut BytesMut, v: &Value, oid: u32) -> bool {
    if let Some(elem) = super::arrays::element_of(oid) {
        return super::arrays::put_binary(out, v, elem);
    }
    let int = |v: &Value| match v {
        Value::Integer(i) => Some(*i),
        Value::Real(f) => Some(*f as i64),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    };
    let float = |v: &Value| match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Real(f) => Some(*f),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    };
    match oid {
        BOOL => bool_text(v).map(|b| out.put_u8(b as u8)).is_some(),
        INT2 => int(v).map(|i| out.put_i16(i as i16)).is_some(),
        INT4 | OID => int(v).map(|i| out.put_i32(i as i32)).is_some(),
        INT8 => int(v).map(|i| out.put_i64(i)).is_some(),
        FLOAT4 => float(v).map(|f| out.put_f32(f as f32)).is_some(),
        FLOAT8 => float(v).map(|f| out.put_f64(f)).is_some(),
        TIMESTAMP | TIMESTAMPTZ => {
            let us = match v {
                Value::Integer(secs) => Some(secs * 1_000_000),
                Value::Text(s) => parse_timestamp_micros(s),
                _ => None,
            };
            us.map(|us| out.put_i64(us - PG_EPOCH_MICROS)).is_some()
        }
        DATE => match v {
            Value::Text(s) => parse_timestamp_micros(s)
                .map(|us| out.put_i32(((us - PG_EPOCH_MICROS).div_euclid(86_400_000_000)) as i32))
                .is_some(),
            _ => false,
        },
        INTERVAL => match v {
            Value::Text(s) => super::interval::Interval::parse(s)
                .map(|iv| {
                    out.put_i64(iv.micros);
                    out.put_i32(iv.days as i32);
                    out.put_i32(iv.months as i32);
                })
                .is_ok(),
            _ => false,
        },
        UUID => match v {
            Value::Text(s) => parse_uuid(s).map(|b| out.put_slice(&b)).is_some(),
            Value::Blob(b) if b.len() == 16 => {
                out.put_slice(b);
                true
            }
            _ => false,
        },
        JSONB => {
            out.put_u8(1);
            let text = plain_text(v);
            out.put_slice(super::jsonb::normalize(&text).unwrap_or(text).as_bytes());
            true
        }
        BYTEA => {
            match v {
                Value::Blob(b) => out.put_slice(b),
                other => out.put_slice(plain_text(other).as_bytes()),
            }
            true
        }
        NUMERIC => match super::numeric::numeric_binary(&plain_text(v)) {
            Some(b) => {
                out.put_slice(&b);
                true
            }
            None => false,
        },
        _ => {
            out.put_slice(to_text(v, oid).unwrap_or_default().as_bytes());
            true
        }
    }
}

/// A uuid's 16 bytes from its text (hyphens anywhere, braces around, any case).
pub(super) fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(s);
    let hexs: String = s.chars().filter(|c| *c != '-').collect();
    if hexs.len() != 32 || !hexs.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hexs[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// A uuid's canonical text (lower case, hyphenated).
pub(super) fn uuid_text(b: &[u8]) -> String {
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

/// Reads a parameter value sent in text format with declared type `oid` (0 = unspecified).
pub fn param_from_text(s: &str, oid: u32) -> Value {
    match oid {
        INT2 | INT4 | INT8 | OID => s
            .trim()
            .parse()
            .map(Value::Integer)
            .unwrap_or_else(|_| Value::Text(s.into())),
        FLOAT4 | FLOAT8 => s
            .trim()
            .parse()
            .map(Value::Real)
            .unwrap_or_else(|_| Value::Text(s.into())),
        BOOL => match bool_text(&Value::Text(s.into())) {
            Some(b) => Value::Integer(b as i64),
            None => Value::Text(s.into()),
        },
        BYTEA => match s.strip_prefix("\\x") {
            Some(h) if h.len() % 2 == 0 => (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map(Value::Blob)
                .unwrap_or_else(|_| Value::Text(s.into())),
            _ => Value::Blob(s.as_bytes().to_vec()),
        },
        TIMESTAMPTZ => parse_timestamp_micros(s)
            .map(|us| Value::Text(format_timestamp_micros(us) + "+00"))
            .unwrap_or_else(|| Value::Text(s.into())),
        _ => Value::Text(s.into()),
    }
}

/// Reads a parameter value sent in binary format with declared type `oid`.
pub fn param_from_binary(b: &[u8], oid: u32) -> Result<Value, String> {
    let need = |n: usize| {
        if b.len() == n {
            Ok(())
        } else {
            Err(format!(
                "binary parameter of type {} must be {n} bytes, got {}",
                type_name(oid),
                b.len()
            ))
        }
    };
    Ok(match oid {
        INTERVAL => {
            need(16)?;
            let word = |at: usize, n: usize| {
                b[at..at + n]
                    .iter()
                    .fold(0i64, |acc, x| (acc << 8) | *x as i64)
            };
            let iv = super::interval::Interval {
                micros: word(0, 8),
                days: word(8, 4) as i32 as i64,
                months: word(12, 4) as i32 as i64,
            };
            Value::Text(iv.show())
        }
        BOOL => {
            need(1)?;
            Value::Integer((b[0] != 0) as i64)
        }
        INT2 => {
            need(2)?;
            Value::Integer(i16::from_be_bytes([b[0], b[1]]) as i64)
        }
        INT4 | OID => {
            need(4)?;
            Value::Integer(i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64)
        }
        INT8 => {
            need(8)?;
            Value::Integer(i64::from_be_bytes(b.try_into().map_err(|_| "int8")?))
        }
        FLOAT4 => {
            need(4)?;
            Value::Real(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64)
        }
        FLOAT8 => {
            need(8)?;
            Value::Real(f64::from_be_bytes(b.try_into().map_err(|_| "float8")?))
        }
        TIMESTAMP | TIMESTAMPTZ => {
            need(8)?;
            let us = i64::from_be_bytes(b.try_into().map_err(|_| "timestamp")?) + PG_EPOCH_MICROS;
            let s = format_timestamp_micros(us);
            Value::Text(if oid == TIMESTAMPTZ { s + "+00" } else { s })
        }
        DATE => {
            need(4)?;
            let days = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64 + 10_957;
            let (y, m, d) = civil_from_days(days);
            Value::Text(format!("{y:04}-{m:02}-{d:02}"))
        }
        UUID => {
            need(16)?;
            Value::Text(uuid_text(b))
        }
        BYTEA => Value::Blob(b.to_vec()),
        JSONB => Value::Text(String::from_utf8_lossy(b.get(1..).unwrap_or_default()).into_owned()),
        NUMERIC => param_from_text(&super::numeric::numeric_text(b)?, NUMERIC),
        _ if super::arrays::element_of(oid).is_some() => {
            super::arrays::from_binary(b, super::arrays::element_of(oid).unwrap_or(TEXT))?
        }
        _ => Value::Text(
            String::from_utf8(b.to_vec())
                .map_err(|_| format!("binary parameter of type {} is not UTF-8", type_name(oid)))?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decltypes() {
        assert_eq!(oid_for_decltype("INTEGER"), INT4);
        assert_eq!(oid_for_decltype("BIGINT"), INT8);
        assert_eq!(oid_for_decltype("VARCHAR(255)"), VARCHAR);
        assert_eq!(oid_for_decltype("timestamp with time zone"), TIMESTAMPTZ);
        assert_eq!(oid_for_decltype("DATETIME"), TIMESTAMP);
        assert_eq!(oid_for_decltype("BOOLEAN"), BOOL);
        assert_eq!(oid_for_decltype("JSONB"), JSONB);
        assert_eq!(oid_for_decltype("weird"), TEXT);
    }

    #[test]
    fn text_forms() {
        assert_eq!(to_text(&Value::Integer(1), BOOL).as_deref(), Some("t"));
        assert_eq!(
            to_text(&Value::Blob(vec![0xde, 0xad]), BYTEA).as_deref(),
            Some("\\xdead")
        );
        assert_eq!(
            to_text(&Value::Text("2024-01-06T03:07:36.5".into()), TIMESTAMPTZ).as_deref(),
            Some("2024-01-06 03:07:36.5+00")
        );
        assert_eq!(
            to_text(&Value::Integer(86_400), TIMESTAMP).as_deref(),
            Some("1970-01-02 00:00:00")
        );
        assert_eq!(to_text(&Value::Null, TEXT), None);
        assert_eq!(to_text(&Value::Real(1.5), FLOAT8).as_deref(), Some("1.5"));
    }

    #[test]
    fn timestamps_roundtrip() {
        let us = parse_timestamp_micros("2024-01-06 03:07:36.554722").unwrap();
        assert_eq!(format_timestamp_micros(us), "2024-01-06 03:07:36.554722");
        let a = parse_timestamp_micros("2024-01-06 05:07:36+02").unwrap();
        let b = parse_timestamp_micros("2024-01-06 03:07:36Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_timestamp_micros("2024-01-06T06:37:36+03:30"), Some(a));
        assert_eq!(parse_timestamp_micros("2024-01-06 01:07:36-0200"), Some(a));
        assert_eq!(
            parse_timestamp_micros("2024-01-06 03:07"),
            parse_timestamp_micros("2024-01-06 03:07:00.000")
        );
        for bad in [
            "",
            "2024-13-01",
            "2024-01-01 25:00",
            "yesterday",
            "2024-01-01 10:00:00 junk",
        ] {
            assert_eq!(parse_timestamp_micros(bad), None, "{bad}");
        }
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
    }

    #[test]
    fn binary_params() {
        assert_eq!(
            param_from_binary(&7i32.to_be_bytes(), INT4).unwrap(),
            Value::Integer(7)
        );
        assert_eq!(param_from_binary(&[1], BOOL).unwrap(), Value::Integer(1));
        assert!(param_from_binary(&[1, 2], INT4).is_err());
        let mut out = BytesMut::new();
        assert!(put_binary(
            &mut out,
            &Value::Text("2000-01-01 00:00:01".into()),
            TIMESTAMP
        ));
        assert_eq!(&out[..], &1_000_000i64.to_be_bytes());
        let u = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        let mut out = BytesMut::new();
        assert!(put_binary(&mut out, &Value::Text(u.into()), UUID));
        assert_eq!(
            param_from_binary(&out, UUID).unwrap(),
            Value::Text(u.into())
        );
    }
}
