//! SQLite values into PostgreSQL binary COPY fields, by target type. A value that does not
//! fit (an integer out of range, 2 in a boolean column, text that is not a timestamp, a
//! string longer than varchar(n)) is an error naming why — never a silent coercion.
//!
//! Timestamps: text in any of `YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|±HH[:MM]]` is read as UTC
//! when it has no offset; integers are Unix epoch seconds, or milliseconds when their
//! magnitude is at least 10^11 (after the year 5138 in seconds).

use bytes::{BufMut, BytesMut};
use rusqlite::types::Value;

use crate::backend::sqlite::types::parse_timestamp_micros;

const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The PostgreSQL base type name and its modifiers: `varchar(80)` → (`varchar`, Some(80)).
fn split_type(pg_type: &str) -> (&str, Vec<i64>) {
    match pg_type.find('(') {
        Some(i) => {
            let args = pg_type[i + 1..]
                .trim_end_matches(')')
                .split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect();
            (pg_type[..i].trim(), args)
        }
        None => (pg_type.trim(), Vec::new()),
    }
}

fn preview(v: &Value) -> String {
    let s = match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => format!("{t:?}"),
        Value::Blob(b) => format!("<{} bytes>", b.len()),
    };
    if s.len() > 60 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(57).map(|(i, _)| i).unwrap_or(57)]
        )
    } else {
        s
    }
}

/// Appends one field (length and bytes) for `v` as PostgreSQL type `pg_type`.
pub fn put_field(out: &mut BytesMut, v: &Value, pg_type: &str) -> Result<(), String> {
    if matches!(v, Value::Null) {
        out.put_i32(-1);
        return Ok(());
    }
    let at = out.len();
    out.put_i32(0);
    encode(out, v, pg_type)
        .map_err(|reason| format!("value {} does not fit {pg_type}: {reason}", preview(v)))?;
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn as_i64(v: &Value) -> Result<i64, String> {
    match v {
        Value::Integer(i) => Ok(*i),
        Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
        Value::Text(s) => s.trim().parse().map_err(|_| "not an integer".into()),
        _ => Err("not an integer".into()),
    }
}

fn as_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Integer(i) => Ok(*i as f64),
        Value::Real(f) => Ok(*f),
        Value::Text(s) => s.trim().parse().map_err(|_| "not a number".into()),
        _ => Err("not a number".into()),
    }
}

fn as_text(v: &Value) -> Result<String, String> {
    match v {
        Value::Text(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Real(f) => Ok(f.to_string()),
        Value::Blob(b) => {
            String::from_utf8(b.clone()).map_err(|_| "binary data that is not UTF-8 text".into())
        }
        Value::Null => Err("null".into()),
    }
}

/// Epoch integers: seconds, or milliseconds from 10^11 up.
fn epoch_micros(i: i64) -> i64 {
    if i.abs() >= 100_000_000_000 {
        i * 1000
    } else {
        i * 1_000_000
    }
}

pub fn timestamp_micros(v: &Value) -> Result<i64, String> {
    match v {
        Value::Integer(i) => Ok(epoch_micros(*i)),
        Value::Real(f) => Ok((*f * 1_000_000.0) as i64),
        Value::Text(s) => parse_timestamp_micros(s).ok_or_else(|| "not a timestamp".into()),
        _ => Err("not a timestamp".into()),
    }
}

fn encode(out: &mut BytesMut, v: &Value, pg_type: &str) -> Result<(), String> {
    if let Some(elem) = super::array::element_type(pg_type) {
        return super::array::encode(out, v, elem, put_field);
    }
    let (base, args) = split_type(pg_type);
    match base {
        "bigint" => out.put_i64(as_i64(v)?),
        "integer" => {
            out.put_i32(i32::try_from(as_i64(v)?).map_err(|_| "out of range for integer")?)
        }
        "smallint" => {
            out.put_i16(i16::try_from(as_i64(v)?).map_err(|_| "out of range for smallint")?)
        }
        "boolean" => out.put_u8(as_bool(v)? as u8),
        "double precision" => out.put_f64(as_f64(v)?),
        "real" => out.put_f32(as_f64(v)? as f32),
        "timestamp" | "timestamp with time zone" | "timestamp without time zone" => {
            out.put_i64(timestamp_micros(v)? - PG_EPOCH_MICROS)
        }
        "date" => {
            let us = match v {
                Value::Text(s) => parse_timestamp_micros(s).ok_or("not a date")?,
                other => timestamp_micros(other)?,
            };
            out.put_i32(((us - PG_EPOCH_MICROS).div_euclid(86_400_000_000)) as i32);
        }
        "time" | "time without time zone" => out.put_i64(time_micros(&as_text(v)?)?),
        "numeric" => put_numeric(out, &numeric_text(v)?, &args)?,
        "bytea" => match v {
            Value::Blob(b) => out.put_slice(b),
            other => out.put_slice(as_text(other)?.as_bytes()),
        },
        "jsonb" | "json" => {
            let text = as_text(v)?;
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| format!("not valid JSON ({e})"))?;
            if base == "jsonb" {
                out.put_u8(1);
            }
            out.put_slice(text.as_bytes());
        }
        "uuid" => out.put_slice(&uuid_bytes(v)?),
        "interval" => {
            let iv = crate::backend::sqlite::interval::Interval::parse(&as_text(v)?)?;
            let narrow = |n: i64| i32::try_from(n).map_err(|_| "out of range for interval");
            out.put_i64(iv.micros);
            out.put_i32(narrow(iv.days)?);
            out.put_i32(narrow(iv.months)?);
        }
        "varchar" | "character varying" | "text" | "char" | "character" => {
            let text = as_text(v)?;
            if let Some(&n) = args.first()
                && text.chars().count() as i64 > n
            {
                return Err(format!("longer than {n} characters"));
            }
            out.put_slice(text.as_bytes());
        }
        other => return Err(format!("switchyard cannot write type {other}")),
    }
    Ok(())
}

pub fn as_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Integer(0) => Ok(false),
        Value::Integer(1) => Ok(true),
        Value::Real(f) if *f == 0.0 || *f == 1.0 => Ok(*f == 1.0),
        Value::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "yes" | "y" | "on" => Ok(true),
            "f" | "false" | "0" | "no" | "n" | "off" => Ok(false),
            _ => Err("not a boolean".into()),
        },
        _ => Err("not a boolean (only 0 and 1 are)".into()),
    }
}

fn time_micros(s: &str) -> Result<i64, String> {
    let us = parse_timestamp_micros(&format!("2000-01-01 {}", s.trim())).ok_or("not a time")?;
    Ok(us - PG_EPOCH_MICROS)
}

fn uuid_bytes(v: &Value) -> Result<[u8; 16], String> {
    if let Value::Blob(b) = v {
        return b
            .as_slice()
            .try_into()
            .map_err(|_| "a uuid blob must be 16 bytes".into());
    }
    let hex: String = as_text(v)?
        .chars()
        .filter(|c| *c != '-' && *c != '{' && *c != '}')
        .collect();
    if hex.len() != 32 {
        return Err("not a uuid".into());
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| "not a uuid")?;
    }
    Ok(out)
}

/// The decimal text of a numeric value.
fn numeric_text(v: &Value) -> Result<String, String> {
    match v {
        Value::Integer(i) => Ok(i.to_string()),
        Value::Real(f) if f.is_finite() => Ok(format!("{f}")),
        Value::Text(s) => Ok(s.trim().to_string()),
        _ => Err("not a number".into()),
    }
}

/// PostgreSQL's binary numeric: base-10000 digits with weight, sign and display scale.
pub fn put_numeric(out: &mut BytesMut, text: &str, typmod: &[i64]) -> Result<(), String> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let t = if t.contains(['e', 'E']) {
        let f: f64 = t.parse().map_err(|_| "not a number")?;
        format!("{f:.15}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        t.to_string()
    };
    let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return Err("not a number".into());
    }
    let int = int.trim_start_matches('0');
    if let [p, s] = typmod[..]
        && int.len() as i64 > p - s
    {
        return Err(format!(
            "needs more than {} digits before the decimal point",
            p - s
        ));
    }
    let dscale = match typmod {
        [_, s] => *s as usize,
        _ => frac.len(),
    };
    let mut frac: String = frac.chars().take(dscale.max(frac.len())).collect();
    while !frac.len().is_multiple_of(4) {
        frac.push('0');
    }
    let pad = (4 - int.len() % 4) % 4;
    let int_padded = format!("{}{int}", "0".repeat(pad));
    let mut digits: Vec<i16> = int_padded
        .as_bytes()
        .chunks(4)
        .chain(frac.as_bytes().chunks(4))
        .map(|c| std::str::from_utf8(c).unwrap_or("0").parse().unwrap_or(0))
        .collect();
    let mut weight = (int_padded.len() / 4) as i16 - 1;
    while digits.first() == Some(&0) && !digits.is_empty() {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    out.put_i16(digits.len() as i16);
    out.put_i16(weight);
    out.put_u16(if neg && !digits.is_empty() { 0x4000 } else { 0 });
    out.put_i16(dscale as i16);
    for d in digits {
        out.put_i16(d);
    }
    Ok(())
}

/// The binary COPY header.
pub fn copy_header(out: &mut BytesMut) {
    out.put_slice(b"PGCOPY\n\xff\r\n\0");
    out.put_i32(0);
    out.put_i32(0);
}

/// The binary COPY trailer.
pub fn copy_trailer(out: &mut BytesMut) {
    out.put_i16(-1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(v: Value, ty: &str) -> Result<Vec<u8>, String> {
        let mut b = BytesMut::new();
        put_field(&mut b, &v, ty)?;
        Ok(b[4..].to_vec())
    }

    #[test]
    fn integers_and_booleans() {
        assert_eq!(
            field(Value::Integer(7), "bigint").unwrap(),
            7i64.to_be_bytes()
        );
        assert!(
            field(Value::Integer(70_000), "smallint")
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(field(Value::Integer(1), "boolean").unwrap(), vec![1]);
        assert!(
            field(Value::Integer(2), "boolean")
                .unwrap_err()
                .contains("does not fit boolean")
        );
        assert_eq!(field(Value::Text("f".into()), "boolean").unwrap(), vec![0]);
    }

    #[test]
    fn timestamps() {
        let t = field(Value::Text("2000-01-01 00:00:01".into()), "timestamp").unwrap();
        assert_eq!(t, 1_000_000i64.to_be_bytes());
        let e = field(Value::Integer(946_684_801), "timestamp").unwrap();
        assert_eq!(e, 1_000_000i64.to_be_bytes());
        let ms = field(Value::Integer(946_684_801_000), "timestamp with time zone").unwrap();
        assert_eq!(ms, 1_000_000i64.to_be_bytes());
        assert!(field(Value::Text("yesterday".into()), "timestamp").is_err());
        assert_eq!(
            field(Value::Text("2000-01-02".into()), "date").unwrap(),
            1i32.to_be_bytes()
        );
    }

    #[test]
    fn numerics() {
        let mut b = BytesMut::new();
        put_numeric(&mut b, "12345.678", &[]).unwrap();
        // 2 groups before the point (1, 2345), 1 after (6780): weight 1, dscale 3.
        assert_eq!(
            &b[..],
            &[0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
        );
        let mut b = BytesMut::new();
        assert!(put_numeric(&mut b, "1234567.7", &[8, 2]).is_err());
        let mut b = BytesMut::new();
        assert!(put_numeric(&mut b, "123456.7", &[8, 2]).is_ok());
        let mut b = BytesMut::new();
        put_numeric(&mut b, "-0.5", &[]).unwrap();
        assert_eq!(&b[..], &[0, 1, 0xff, 0xff, 0x40, 0, 0, 1, 0x13, 0x88]);
        let mut b = BytesMut::new();
        put_numeric(&mut b, "0", &[]).unwrap();
        assert_eq!(&b[..], &[0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn text_json_uuid() {
        assert!(
            field(Value::Text("abcdef".into()), "varchar(3)")
                .unwrap_err()
                .contains("longer than 3")
        );
        assert_eq!(
            field(Value::Text("{\"a\":1}".into()), "jsonb").unwrap(),
            b"\x01{\"a\":1}"
        );
        assert!(
            field(Value::Text("{nope".into()), "jsonb")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert_eq!(
            field(
                Value::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
                "uuid"
            )
            .unwrap()
            .len(),
            16
        );
        // PostgreSQL's binary interval: microseconds, days, months.
        assert_eq!(
            field(Value::Text("1 mon 2 days 00:00:03".into()), "interval").unwrap(),
            [
                &3_000_000i64.to_be_bytes()[..],
                &2i32.to_be_bytes(),
                &1i32.to_be_bytes()
            ]
            .concat()
        );
        assert!(field(Value::Text("soon".into()), "interval").is_err());
        let mut b = BytesMut::new();
        put_field(&mut b, &Value::Null, "text").unwrap();
        assert_eq!(&b[..], &(-1i32).to_be_bytes());
    }
}
