//! PostgreSQL's binary COPY format as verify reads it: which columns are sent in binary
//! (decided per column from its PostgreSQL type and how it is compared; anything else is
//! cast to text on the server), the tuple framing, and the decoding of each binary value
//! straight into the cheap form [`crate::sync::verify::normalize`] compares (integers in decimal,
//! timestamps as microseconds since 1970, numerics without trailing zeros, floats in
//! shortest form, bytea in hex), with no text output or escaping on either side.

use crate::sync::verify::normalize::{NULL, Norm, date, hex, push_float, push_int};

/// The binary COPY signature, flags and header-extension length come first.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds and days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
pub(super) const EPOCH_MICROS: i64 = 946_684_800_000_000;
const EPOCH_DAYS: i64 = 10_957;

/// How one column travels: its binary form, decoded here, or text made by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Int,
    Bool,
    Float4,
    Float8,
    Numeric,
    Timestamp,
    Date,
    Bytea,
    Uuid,
    Jsonb,
    /// Sent as text: text types themselves, or any column cast with `::text`.
    Text,
}

impl Wire {
    /// The form for a column of PostgreSQL type `pg_type` (as `format_type` names it)
    /// compared as `norm`: binary where its decoding gives what `norm` compares.
    pub fn of(norm: Norm, pg_type: &str) -> Wire {
        match (norm, base(pg_type)) {
            (Norm::Text, "bigint" | "integer" | "smallint") => Wire::Int,
            (Norm::Bool, "boolean") => Wire::Bool,
            (Norm::Float, "real") => Wire::Float4,
            (Norm::Float, "double precision") => Wire::Float8,
            (Norm::Numeric, "numeric") => Wire::Numeric,
            (
                Norm::Timestamp,
                "timestamp without time zone" | "timestamp with time zone" | "timestamp",
            ) => Wire::Timestamp,
            (Norm::Date, "date") => Wire::Date,
            (Norm::Bytea, "bytea") => Wire::Bytea,
            (Norm::Uuid, "uuid") => Wire::Uuid,
            (Norm::Json, "jsonb") => Wire::Jsonb,
            _ => Wire::Text,
        }
    }

    /// Whether the server must cast the column to text for it to arrive as [`Wire::Text`].
    pub fn needs_cast(self, pg_type: &str) -> bool {
        self == Wire::Text
            && !matches!(
                base(pg_type),
                "text" | "character varying" | "character" | "json"
            )
    }
}

/// A type's name without its modifiers (`numeric(10,2)` → `numeric`); arrays keep their
/// `[]`, so that no array is taken for its element type.
fn base(pg_type: &str) -> &str {
    let t = pg_type.trim();
    if t.ends_with(']') {
        return t;
    }
    t.split('(').next().unwrap_or(t).trim()
}

/// Appends the cheap form of one binary value (None = NULL); false if it is malformed.
pub fn write_value(out: &mut String, v: Option<&[u8]>, wire: Wire) -> bool {
    let Some(b) = v else {
        out.push_str(NULL);
        return true;
    };
    match wire {
        Wire::Int => match b.len() {
            2 => push_int(out, i16::from_be_bytes([b[0], b[1]]) as i64),
            4 => push_int(out, i32::from_be_bytes(b.try_into().unwrap()) as i64),
            8 => push_int(out, i64::from_be_bytes(b.try_into().unwrap())),
            _ => return false,
        },
        Wire::Bool => match b {
            [0] => out.push('f'),
            [1] => out.push('t'),
            _ => return false,
        },
        Wire::Float4 => match <[u8; 4]>::try_from(b) {
            Ok(x) => push_f32(out, f32::from_be_bytes(x)),
            Err(_) => return false,
        },
        Wire::Float8 => match <[u8; 8]>::try_from(b) {
            Ok(x) => push_float(out, f64::from_be_bytes(x)),
            Err(_) => return false,
        },
        Wire::Numeric => return numeric(out, b),
        Wire::Timestamp => match <[u8; 8]>::try_from(b).map(i64::from_be_bytes) {
            Ok(i64::MAX) => out.push_str("infinity"),
            Ok(i64::MIN) => out.push_str("-infinity"),
            Ok(us) => push_int(out, us.saturating_add(EPOCH_MICROS)),
            Err(_) => return false,
        },
        Wire::Date => match <[u8; 4]>::try_from(b).map(i32::from_be_bytes) {
            Ok(i32::MAX) => out.push_str("infinity"),
            Ok(i32::MIN) => out.push_str("-infinity"),
            Ok(days) => date(out, (days as i64 + EPOCH_DAYS) * 86_400_000_000),
            Err(_) => return false,
        },
        Wire::Bytea => hex(out, b),
        Wire::Uuid if b.len() == 16 => {
            for (i, part) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]]
                .iter()
                .enumerate()
            {
                if i > 0 {
                    out.push('-');
                }
                hex(out, part);
            }
        }
        Wire::Uuid => return false,
        Wire::Jsonb => match b.split_first() {
            Some((&1, text)) => return push_text(out, text),
            _ => return false,
        },
        Wire::Text => return push_text(out, b),
    }
    true
}

/// A real in the shortest form that round-trips it as a real (what PostgreSQL prints).
fn push_f32(out: &mut String, f: f32) {
    out.push_str(ryu::Buffer::new().format(f));
}

fn push_text(out: &mut String, b: &[u8]) -> bool {
    match std::str::from_utf8(b) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(b)),
    }
    true
}

/// A binary numeric (base-10000 digits) in decimal, without leading zeros or trailing
/// fractional zeros: the canonical numeric form.
fn numeric(out: &mut String, b: &[u8]) -> bool {
    let word = |i: usize| {
        b.get(i * 2..i * 2 + 2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
    };
    let (Some(n), Some(weight), Some(sign)) = (word(0), word(1), word(2)) else {
        return false;
    };
    let (n, weight) = (n as usize, weight as i16 as i64);
    if b.len() != 8 + 2 * n {
        return false;
    }
    match sign {
        0xC000 | 0xD000 | 0xF000 => {
            out.push_str(match sign {
                0xC000 => "NaN",
                0xD000 => "Infinity",
                _ => "-Infinity",
            });
            return true;
        }
        _ => {}
    }
    let digit = |i: i64| -> u16 {
        if i >= 0 && (i as usize) < n {
            word(4 + i as usize).unwrap_or(0)
        } else {
            0
        }
    };
    // PostgreSQL stores zero with no digits, so only a non-zero value gets its sign.
    if sign == 0x4000 && n > 0 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        push_int(out, digit(0) as i64);
        for i in 1..=weight {
            push_group(out, digit(i));
        }
    }
    let last = n as i64 - 1;
    if last > weight {
        out.push('.');
        let dot = out.len();
        for i in weight + 1..=last {
            push_group(out, digit(i));
        }
        let trimmed = dot + out[dot..].trim_end_matches('0').len();
        out.truncate(if trimmed == dot { dot - 1 } else { trimmed });
    }
    true
}

/// Appends one base-10000 digit as four decimal digits.
fn push_group(out: &mut String, g: u16) {
    let g = g.min(9999);
    for d in [g / 1000, g / 100 % 10, g / 10 % 10, g % 10] {
        out.push((b'0' + d as u8) as char);
    }
}

/// Splits binary COPY data into tuples; `row` gets each tuple's fields (None = NULL).
/// Tuples may arrive split across CopyData messages; only a split one is buffered.
#[derive(Default)]
pub struct Tuples {
    pending: Vec<u8>,
    header_done: bool,
    fields: Vec<Option<(usize, usize)>>,
}

impl Tuples {
    /// Whether part of a tuple is still waiting for the rest of it.
    pub fn incomplete(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Feeds one CopyData body; calls `row` for every complete tuple.
    pub fn feed(
        &mut self,
        data: &[u8],
        mut row: impl FnMut(&[u8], &[Option<(usize, usize)>]),
    ) -> Result<(), String> {
        if self.pending.is_empty() {
            let used = self.tuples(data, &mut row)?;
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let pending = std::mem::take(&mut self.pending);
            let used = self.tuples(&pending, &mut row);
            self.pending = pending;
            self.pending.drain(..used?);
        }
        Ok(())
    }

    /// Handles every complete tuple of `data`; returns the bytes used.
    fn tuples(
        &mut self,
        data: &[u8],
        row: &mut impl FnMut(&[u8], &[Option<(usize, usize)>]),
    ) -> Result<usize, String> {
        let mut at = 0;
        if !self.header_done {
            if !SIGNATURE.starts_with(&data[..data.len().min(SIGNATURE.len())]) {
                return Err("COPY data without the binary signature".into());
            }
            let Some(ext) = data.get(15..19) else {
                return Ok(0);
            };
            let ext = u32::from_be_bytes(ext.try_into().unwrap()) as usize;
            if data.len() < 19 + ext {
                return Ok(0);
            }
            at = 19 + ext;
            self.header_done = true;
        }
        while let Some(end) = self.tuple(&data[at..])? {
            if !self.fields.is_empty() {
                row(&data[at..at + end], &self.fields);
            }
            at += end;
        }
        Ok(at)
    }

    /// Reads one tuple's field bounds (relative to `data`); None when incomplete.
    fn tuple(&mut self, data: &[u8]) -> Result<Option<usize>, String> {
        let Some(count) = data.get(..2) else {
            return Ok(None);
        };
        let count = i16::from_be_bytes([count[0], count[1]]);
        self.fields.clear();
        if count == -1 {
            return Ok(Some(2));
        }
        if count < 0 {
            return Err(format!("binary COPY tuple with {count} fields"));
        }
        let mut at = 2;
        for _ in 0..count {
            let Some(len) = data.get(at..at + 4) else {
                return Ok(None);
            };
            let len = i32::from_be_bytes(len.try_into().unwrap());
            at += 4;
            if len < 0 {
                self.fields.push(None);
                continue;
            }
            let len = len as usize;
            if data.len() < at + len {
                return Ok(None);
            }
            self.fields.push(Some((at, at + len)));
            at += len;
        }
        Ok(Some(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(v: &[u8], wire: Wire) -> String {
        let mut out = String::new();
        assert!(write_value(&mut out, Some(v), wire), "{wire:?} {v:?}");
        out
    }

    /// A binary numeric from its parts.
    fn num(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, dscale] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numerics_are_written_without_trailing_zeros() {
        // 123.40 (numeric(10,2)): digits 123 | 4000, weight 0.
        assert_eq!(cheap(&num(0, 0, 2, &[123, 4000]), Wire::Numeric), "123.4");
        assert_eq!(cheap(&num(1, 0x4000, 0, &[1, 5]), Wire::Numeric), "-10005");
        assert_eq!(cheap(&num(1, 0, 0, &[1]), Wire::Numeric), "10000");
        assert_eq!(cheap(&num(-2, 0, 8, &[1234]), Wire::Numeric), "0.00001234");
        assert_eq!(cheap(&num(0, 0, 2, &[]), Wire::Numeric), "0");
        assert_eq!(cheap(&num(0, 0, 4, &[10, 0]), Wire::Numeric), "10");
        assert_eq!(cheap(&num(0, 0xC000, 0, &[]), Wire::Numeric), "NaN");
        let mut out = String::new();
        assert!(!write_value(&mut out, Some(&[0, 2, 0]), Wire::Numeric));
    }

    #[test]
    fn times_uuids_floats_and_bytes() {
        // 2024-02-29 12:00:00.5 is 762 004 800.5 s after 2000-01-01.
        let ts = 762_523_200_500_000i64.to_be_bytes();
        assert_eq!(cheap(&ts, Wire::Timestamp), "1709208000500000");
        assert_eq!(cheap(&i64::MAX.to_be_bytes(), Wire::Timestamp), "infinity");
        assert_eq!(cheap(&8825i32.to_be_bytes(), Wire::Date), "2024-02-29");
        assert_eq!(cheap(&(-1i32).to_be_bytes(), Wire::Date), "1999-12-31");
        let u: Vec<u8> = (0..16).collect();
        assert_eq!(
            cheap(&u, Wire::Uuid),
            "00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
        assert_eq!(cheap(&0.1f32.to_be_bytes(), Wire::Float4), "0.1");
        assert_eq!(cheap(&1e20f64.to_be_bytes(), Wire::Float8), "1e20");
        assert_eq!(cheap(&[0xde, 0xad], Wire::Bytea), "dead");
        assert_eq!(cheap(&[1], Wire::Bool), "t");
        assert_eq!(cheap(&(-5i16).to_be_bytes(), Wire::Int), "-5");
        assert_eq!(cheap(b"\x01{\"a\": 1}", Wire::Jsonb), "{\"a\": 1}");
        let mut out = String::new();
        write_value(&mut out, None, Wire::Int);
        assert_eq!(out, NULL);
    }

    #[test]
    fn only_types_with_a_decoding_for_their_comparison_travel_in_binary() {
        assert_eq!(Wire::of(Norm::Text, "bigint"), Wire::Int);
        assert_eq!(
            Wire::of(Norm::Timestamp, "timestamp with time zone"),
            Wire::Timestamp
        );
        assert_eq!(Wire::of(Norm::Numeric, "numeric(10,2)"), Wire::Numeric);
        // A timestamp compared as text keeps its text form; unknown types are cast.
        let w = Wire::of(Norm::Text, "timestamp without time zone");
        assert!(w == Wire::Text && w.needs_cast("timestamp without time zone"));
        assert!(Wire::of(Norm::Text, "inet").needs_cast("inet"));
        // Arrays are sent as text, whatever their element type.
        for array in ["character varying(20)[]", "numeric(10,2)[]", "bigint[]"] {
            assert!(matches!(Norm::of(array), Norm::Array(_)), "{array}");
            let w = Wire::of(Norm::of(array), array);
            assert!(w == Wire::Text && w.needs_cast(array), "{array}");
        }
        assert!(!Wire::of(Norm::Text, "character varying(20)").needs_cast("character varying(20)"));
    }
}
