//! Calendar arithmetic for the SQLite backend and `switchyard sync`: days since 1970 to
//! and from civil dates (proleptic Gregorian), and timestamps as microseconds since 1970
//! parsed from and formatted to PostgreSQL's text form.

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp as i64 + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads an unsigned decimal number from the front of `b`; returns it and the rest.
fn digits(b: &[u8]) -> Option<(i64, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 18 {
        return None;
    }
    let v = b[..n]
        .iter()
        .fold(0i64, |acc, c| acc * 10 + (c - b'0') as i64);
    Some((v, &b[n..]))
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|±HH[[:]MM]]` into microseconds since 1970
/// (UTC when there is no offset). Allocation-free: it runs for every timestamp a sync or a
/// verify reads.
pub fn parse_timestamp_micros(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    fixed_timestamp(b).or_else(|| any_timestamp(b))
}

/// [`parse_timestamp_micros`] for bytes that may not be UTF-8 (None then): the common
/// fixed form is read before any UTF-8 check or trimming, which it does not need.
pub fn parse_timestamp_bytes(b: &[u8]) -> Option<i64> {
    fixed_timestamp(b).or_else(|| parse_timestamp_micros(std::str::from_utf8(b).ok()?))
}

/// `YYYY-MM-DD HH:MM:SS` with an optional `.` and 1–6 fraction digits, nothing after: the
/// form most apps store, read at fixed positions (None for anything else).
fn fixed_timestamp(b: &[u8]) -> Option<i64> {
    if !(19..=26).contains(&b.len()) || b.len() == 20 {
        return None;
    }
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut us = 0;
    if b.len() > 19 {
        if b[19] != b'.' {
            return None;
        }
        us = num(20..b.len())? * 10i64.pow((26 - b.len()) as u32);
    }
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 24 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    Some(days * 86_400_000_000 + ((hh * 60 + mm) * 60 + ss) * 1_000_000 + us)
}

/// Every form [`parse_timestamp_micros`] accepts, read field by field.
fn any_timestamp(b: &[u8]) -> Option<i64> {
    let (neg_year, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let (y, b) = digits(b)?;
    let b = b.strip_prefix(b"-")?;
    let (m, b) = digits(b)?;
    let b = b.strip_prefix(b"-")?;
    let (d, mut b) = digits(b)?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if neg_year { -y } else { y };
    let mut micros = days_from_civil(y, m as u32, d as u32) * 86_400_000_000;
    if b.is_empty() {
        return Some(micros);
    }
    b = b.strip_prefix(b" ").or_else(|| b.strip_prefix(b"T"))?;
    let (hh, rest) = digits(b)?;
    let rest = rest.strip_prefix(b":")?;
    let (mm, mut rest) = digits(rest)?;
    let mut ss = 0;
    let mut us = 0;
    if let Some(r) = rest.strip_prefix(b":") {
        let (sec, r) = digits(r)?;
        ss = sec;
        rest = r;
        if let Some(r) = rest.strip_prefix(b".") {
            let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut frac = 0i64;
            for (i, c) in r[..n].iter().enumerate().take(6) {
                frac += (c - b'0') as i64 * 10i64.pow(5 - i as u32);
            }
            us = frac;
            rest = &r[n..];
        }
    }
    if hh > 24 || mm > 59 || ss > 60 {
        return None;
    }
    micros += ((hh * 60 + mm) * 60 + ss) * 1_000_000 + us;
    let rest = match rest.first() {
        Some(b' ') => &rest[1..],
        _ => rest,
    };
    match rest.first() {
        None => Some(micros),
        Some(b'Z') if rest.len() == 1 => Some(micros),
        Some(&sign @ (b'+' | b'-')) => {
            let r = &rest[1..];
            let (oh, om) = if r.len() >= 4 && r[..4].iter().all(u8::is_ascii_digit) {
                (digits(&r[..2])?.0, digits(&r[2..4])?.0)
            } else {
                let (oh, r) = digits(r)?;
                let om = match r.strip_prefix(b":") {
                    Some(r) => digits(r)?.0,
                    None => 0,
                };
                (oh, om)
            };
            let off = (oh * 3600 + om * 60) * 1_000_000;
            Some(if sign == b'-' {
                micros + off
            } else {
                micros - off
            })
        }
        _ => None,
    }
}

/// Microseconds since 1970 → `YYYY-MM-DD HH:MM:SS[.ffffff]`.
pub fn format_timestamp_micros(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if frac != 0 {
        let f = format!(".{frac:06}");
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_position_reading_agrees_with_the_general_one() {
        let cases = [
            "2024-01-06 03:07:36",
            "2024-01-06T03:07:36",
            "2024-01-06 03:07:36.5",
            "2024-01-06 03:07:36.000123",
            "1969-12-31 23:59:59.999999",
            "0001-01-01 00:00:00",
            "2024-02-29 24:00:00",
            "2024-01-06 03:07:60",
        ];
        for c in cases {
            let fixed = fixed_timestamp(c.as_bytes());
            assert!(fixed.is_some(), "{c}");
            assert_eq!(fixed, any_timestamp(c.as_bytes()), "{c}");
        }
        // Anything else is left to the general reading.
        for c in [
            "2024-01-06 03:07:36.",
            "2024-01-06 03:07:36Z",
            "2024-13-06 03:07:36",
            "2024-01-06 03:07:3x",
            "2024-01-06 03:07:36.1234567",
            "2024-1-06 03:07:36.12345",
        ] {
            assert_eq!(fixed_timestamp(c.as_bytes()), None, "{c}");
        }
        assert_eq!(
            parse_timestamp_micros(" 2024-01-06 03:07:36.5 "),
            any_timestamp(b"2024-01-06 03:07:36.5")
        );
    }
}
