//! Raw-tuple comparison for verify from SQLite. Each SQLite row is encoded into the binary
//! tuple PostgreSQL's COPY sends for the target's column types, so a row whose values were
//! stored exactly is recognised by comparing bytes, without decoding the PostgreSQL side.
//! Used for tables keyed by one integer column whose columns all have an encoding here.
//! A value without an exact encoding (a REAL with more decimals than the column keeps,
//! text in an integer column, a timestamp that does not parse, …) sends its row down the
//! text path of [`crate::sync::verify::normalize`], and rows whose bytes differ are decoded and compared
//! in text form, so every verdict is the text comparison's.

use rusqlite::types::ValueRef;

use crate::backend::sqlite::types::parse_timestamp_bytes;
use crate::sync::source::cast;
use crate::sync::source::sqlite_scan::Scan;
use crate::sync::verify::copy_binary::{EPOCH_MICROS, Wire};
use crate::sync::verify::rows::Chunk;

/// How a column's SQLite values are encoded, from the target column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    Int8,
    Int4,
    Int2,
    Bool,
    Float8,
    /// numeric(p, s) with s ≤ 4.
    Numeric(u32),
    Timestamp,
    Text,
    Jsonb,
}

impl Enc {
    /// The encoding for a target column of type `pg_type` (as `format_type` names it).
    pub fn of(pg_type: &str) -> Option<Enc> {
        let t = pg_type.trim();
        if t.ends_with(']') {
            // Arrays: compared element by element (normalize), never raw.
            return None;
        }
        let (base, mods) = match t.split_once('(') {
            Some((b, m)) => (b.trim(), Some(m.split(')').next().unwrap_or(""))),
            None => (t, None),
        };
        Some(match base {
            "bigint" => Enc::Int8,
            "integer" => Enc::Int4,
            "smallint" => Enc::Int2,
            "boolean" => Enc::Bool,
            "double precision" => Enc::Float8,
            "numeric" => {
                let scale = mods?.split_once(',')?.1.trim().parse().ok()?;
                (scale <= 4).then_some(Enc::Numeric(scale))?
            }
            "timestamp without time zone" | "timestamp with time zone" | "timestamp" => {
                Enc::Timestamp
            }
            "text" | "character varying" => Enc::Text,
            "jsonb" => Enc::Jsonb,
            _ => return None,
        })
    }

    /// The form PostgreSQL sends this column in, which the encoding must reproduce.
    fn wire(self) -> Wire {
        match self {
            Enc::Int8 | Enc::Int4 | Enc::Int2 => Wire::Int,
            Enc::Bool => Wire::Bool,
            Enc::Float8 => Wire::Float8,
            Enc::Numeric(_) => Wire::Numeric,
            Enc::Timestamp => Wire::Timestamp,
            Enc::Text => Wire::Text,
            Enc::Jsonb => Wire::Jsonb,
        }
    }
}

/// The encodings for a table's columns when every one has one matching how the target
/// sends it (`wires`, from the target's types); None otherwise.
pub fn encodings(types: &[String], wires: &[Wire]) -> Option<Vec<Enc>> {
    types
        .iter()
        .zip(wires)
        .map(|(ty, w)| Enc::of(ty).filter(|e| e.wire() == *w))
        .collect()
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends one field (length and bytes) as PostgreSQL would send the value stored from
/// `v`; false (with `out` possibly extended) when there is no exact encoding.
pub fn put(out: &mut Vec<u8>, v: ValueRef<'_>, enc: Enc) -> bool {
    match (enc, v) {
        (_, ValueRef::Null) => out.extend_from_slice(&(-1i32).to_be_bytes()),
        (Enc::Int8, ValueRef::Integer(i)) => field(out, &i.to_be_bytes()),
        (Enc::Int4, ValueRef::Integer(i)) => match i32::try_from(i) {
            Ok(x) => field(out, &x.to_be_bytes()),
            Err(_) => return false,
        },
        (Enc::Int2, ValueRef::Integer(i)) => match i16::try_from(i) {
            Ok(x) => field(out, &x.to_be_bytes()),
            Err(_) => return false,
        },
        (Enc::Bool, ValueRef::Integer(i @ (0 | 1))) => field(out, &[i as u8]),
        (Enc::Float8, ValueRef::Real(f)) => field(out, &f.to_be_bytes()),
        (Enc::Numeric(scale), ValueRef::Real(f)) => match scaled(f, scale) {
            Some(x) => numeric(out, x, scale),
            None => return false,
        },
        (Enc::Numeric(scale), ValueRef::Integer(i)) => {
            numeric(out, i as i128 * 10i128.pow(scale), scale)
        }
        (Enc::Timestamp, ValueRef::Text(t)) => match parse_timestamp_bytes(t) {
            Some(us) => field(out, &(us - EPOCH_MICROS).to_be_bytes()),
            None => return false,
        },
        (Enc::Timestamp, ValueRef::Integer(i)) => {
            match cast::timestamp_micros(&rusqlite::types::Value::Integer(i)) {
                Ok(us) => field(out, &(us - EPOCH_MICROS).to_be_bytes()),
                Err(_) => return false,
            }
        }
        (Enc::Text, ValueRef::Text(t)) => field(out, t),
        (Enc::Jsonb, ValueRef::Text(t)) => {
            out.extend_from_slice(&(t.len() as i32 + 1).to_be_bytes());
            out.push(1);
            out.extend_from_slice(t);
        }
        _ => return false,
    }
    true
}

/// `f` as an integer count of 10^-scale when it is exactly the double nearest that
/// decimal (fewer than 15 significant digits): the value sync stored for it.
fn scaled(f: f64, scale: u32) -> Option<i128> {
    let unit = 10f64.powi(scale as i32);
    let x = (f * unit).round();
    (f.is_finite() && x.abs() < 1e15 && x / unit == f).then_some(x as i128)
}

/// PostgreSQL's binary numeric for `x` × 10^-scale: base-10000 digits without leading or
/// trailing zero digits, as the server stores and sends it, with display scale `scale`.
fn numeric(out: &mut Vec<u8>, x: i128, scale: u32) {
    let frac_groups = scale.div_ceil(4);
    let a = x.unsigned_abs() * 10u128.pow(4 * frac_groups - scale);
    // Base-10000 groups, least significant first (a u128 has at most 10), with 64-bit
    // division where the value fits: a 128-bit one is a library call.
    let mut all = [0u16; 10];
    let mut n = 0;
    match u64::try_from(a) {
        Ok(mut a) => {
            while a > 0 {
                all[n] = (a % 10_000) as u16;
                a /= 10_000;
                n += 1;
            }
        }
        Err(_) => {
            let mut a = a;
            while a > 0 {
                all[n] = (a % 10_000) as u16;
                a /= 10_000;
                n += 1;
            }
        }
    }
    let groups = &all[..n];
    // Least significant first; the weight counts from the most significant group.
    let weight = groups.len() as i16 - frac_groups as i16 - 1;
    let trailing = groups.iter().take_while(|g| **g == 0).count();
    let digits = &groups[trailing..];
    let (weight, sign) = if digits.is_empty() {
        (0, 0u16)
    } else {
        (weight, if x < 0 { 0x4000 } else { 0 })
    };
    out.extend_from_slice(&(8 + 2 * digits.len() as i32).to_be_bytes());
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as i16).to_be_bytes());
    for g in digits.iter().rev() {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

/// The fields of a raw tuple (its 2-byte count first), None for NULL; None if malformed.
pub fn fields(tuple: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    let mut at = 2;
    let count = i16::from_be_bytes(tuple.get(..2)?.try_into().ok()?);
    let mut out = Vec::with_capacity(count.max(0) as usize);
    for _ in 0..count {
        let len = i32::from_be_bytes(tuple.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            out.push(Some(tuple.get(at..at + len as usize)?));
            at += len as usize;
        }
    }
    Some(out)
}

/// Adds the scan's current row as its raw tuple; false (nothing added) when a value has
/// no exact encoding or the key is not an integer.
pub(super) fn raw_row(chunk: &mut Chunk, r: &Scan<'_>, encs: &[Enc], pk: usize) -> bool {
    let start = chunk.raw.len();
    chunk
        .raw
        .extend_from_slice(&(encs.len() as i16).to_be_bytes());
    let mut key = None;
    for (i, e) in encs.iter().enumerate() {
        let v = r.value(i);
        if i == pk
            && let ValueRef::Integer(k) = v
        {
            key = Some(k);
        }
        if !put(&mut chunk.raw, v, *e) {
            chunk.raw.truncate(start);
            return false;
        }
    }
    match key {
        Some(k) => {
            chunk.push_raw(start, k);
            true
        }
        None => {
            chunk.raw.truncate(start);
            false
        }
    }
}

/// Adds a PostgreSQL tuple as it came, keyed by its integer column `pk`.
pub(super) fn raw_tuple(
    chunk: &mut Chunk,
    tuple: &[u8],
    fields: &[Option<(usize, usize)>],
    columns: usize,
    pk: usize,
    bad: &mut Option<String>,
) {
    let key = fields
        .get(pk)
        .copied()
        .flatten()
        .and_then(|(a, b)| match &tuple[a..b] {
            [x, y] => Some(i16::from_be_bytes([*x, *y]) as i64),
            b4 if b4.len() == 4 => Some(i32::from_be_bytes(b4.try_into().ok()?) as i64),
            b8 if b8.len() == 8 => Some(i64::from_be_bytes(b8.try_into().ok()?)),
            _ => None,
        });
    match key {
        Some(k) if fields.len() == columns => {
            let start = chunk.raw.len();
            chunk.raw.extend_from_slice(tuple);
            chunk.push_raw(start, k);
        }
        _ => {
            bad.get_or_insert_with(|| {
                format!(
                    "binary COPY row with {} of {columns} columns or a malformed key",
                    fields.len()
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(x: i128, scale: u32) -> Vec<u8> {
        let mut out = Vec::new();
        numeric(&mut out, x, scale);
        out[4..].to_vec()
    }

    /// The binary numeric PostgreSQL sends: ndigits, weight, sign, dscale, digits.
    fn pg(weight: i16, sign: u16, dscale: i16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, dscale as u16] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numerics_are_encoded_as_the_server_stores_them() {
        // Checked against `SELECT numeric_send(v::numeric(p, s))` on PostgreSQL 15.
        assert_eq!(num(89580, 2), pg(0, 0, 2, &[895, 8000]));
        assert_eq!(num(10000, 2), pg(0, 0, 2, &[100]));
        assert_eq!(num(5, 2), pg(-1, 0, 2, &[500]));
        assert_eq!(num(0, 2), pg(0, 0, 2, &[]));
        assert_eq!(num(-123_456_789, 4), pg(1, 0x4000, 4, &[1, 2345, 6789]));
        assert_eq!(num(1_0000_0000, 0), pg(2, 0, 0, &[1]));
        assert_eq!(num(7, 3), pg(-1, 0, 3, &[70]));
    }

    #[test]
    fn only_exact_values_are_encoded() {
        assert_eq!(scaled(895.8, 2), Some(89580));
        assert_eq!(scaled(-0.05, 2), Some(-5));
        assert_eq!(scaled(1.005, 2), None);
        assert_eq!(scaled(f64::NAN, 2), None);
        let mut out = Vec::new();
        assert!(!put(&mut out, ValueRef::Integer(1 << 40), Enc::Int4));
        assert!(!put(&mut out, ValueRef::Integer(2), Enc::Bool));
        assert!(!put(&mut out, ValueRef::Text(b"12"), Enc::Int8));
        assert!(!put(
            &mut out,
            ValueRef::Text(b"not a time"),
            Enc::Timestamp
        ));
    }

    #[test]
    fn encodings_follow_the_target_types() {
        assert_eq!(Enc::of("numeric(10,2)"), Some(Enc::Numeric(2)));
        assert_eq!(Enc::of("numeric"), None);
        assert_eq!(Enc::of("numeric(20,6)"), None);
        assert_eq!(Enc::of("character varying(120)"), Some(Enc::Text));
        assert_eq!(Enc::of("character(4)"), None);
        assert_eq!(
            Enc::of("timestamp(3) without time zone"),
            Some(Enc::Timestamp)
        );
        let types = ["bigint".to_string(), "jsonb".to_string()];
        assert!(encodings(&types, &[Wire::Int, Wire::Jsonb]).is_some());
        // A json column the server casts to text is not sent as jsonb.
        assert!(encodings(&types, &[Wire::Int, Wire::Text]).is_none());
    }

    #[test]
    fn raw_tuples_split_into_fields() {
        let mut t = 3i16.to_be_bytes().to_vec();
        assert!(put(&mut t, ValueRef::Integer(7), Enc::Int8));
        assert!(put(&mut t, ValueRef::Null, Enc::Text));
        assert!(put(&mut t, ValueRef::Text(b"{}"), Enc::Jsonb));
        let f = fields(&t).unwrap();
        assert_eq!(
            f,
            vec![Some(&7i64.to_be_bytes()[..]), None, Some(&b"\x01{}"[..])]
        );
        assert!(fields(&t[..t.len() - 1]).is_none());
    }
}
