//! PostgreSQL's `interval` for the SQLite backend: its input syntax (`'1 day'`,
//! `'2 hours 30 minutes'`, `'-01:30'`, `'1.5 months'`, `'3 weeks ago'`), its output
//! (`1 year 2 mons -3 days +04:05:06.5`), and the date and time arithmetic that uses it:
//! a timestamp or timestamptz plus or minus an interval (months and days on the calendar
//! — for a timestamptz in the session's `TimeZone`, so a day across a DST change keeps
//! the wall-clock time — then the time part), the difference of two timestamps, and
//! `date ± integer` / `date - date`. The values travel as text, as the backend stores
//! timestamps (see `coerce.rs`); the functions are called by `temporal_rewrite.rs`.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;

use super::datetime::{
    civil_from_days, days_from_civil, format_timestamp_micros, parse_timestamp_micros,
};

pub(super) const DAY_US: i64 = 86_400_000_000;

/// An interval as PostgreSQL keeps one: months, days and microseconds, each signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interval {
    pub months: i64,
    pub days: i64,
    pub micros: i64,
}

/// The error PostgreSQL gives for interval input it cannot read.
fn bad(text: &str) -> String {
    format!("22007: invalid input syntax for type interval: \"{text}\"")
}

/// `(months, days, micros)` one unit of `unit` is worth.
fn unit(unit: &str) -> Option<(f64, f64, f64)> {
    let u = unit.to_ascii_lowercase();
    let u = u.as_str();
    Some(match u {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" => (0.0, 0.0, 1.0),
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" => (0.0, 0.0, 1e3),
        "second" | "seconds" | "sec" | "secs" | "s" => (0.0, 0.0, 1e6),
        "minute" | "minutes" | "min" | "mins" | "m" => (0.0, 0.0, 60e6),
        "hour" | "hours" | "hr" | "hrs" | "h" => (0.0, 0.0, 3600e6),
        "day" | "days" | "d" => (0.0, 1.0, 0.0),
        "week" | "weeks" | "w" => (0.0, 7.0, 0.0),
        "month" | "months" | "mon" | "mons" => (1.0, 0.0, 0.0),
        "year" | "years" | "yr" | "yrs" | "y" => (12.0, 0.0, 0.0),
        "decade" | "decades" => (120.0, 0.0, 0.0),
        "century" | "centuries" => (1200.0, 0.0, 0.0),
        "millennium" | "millennia" => (12000.0, 0.0, 0.0),
        _ => return None,
    })
}

/// `[-]HH:MM[:SS[.ffffff]]` as microseconds.
fn clock(t: &str) -> Option<i64> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let mut parts = t.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next().map_or(Some(0.0), |s| s.parse().ok())?;
    if parts.next().is_some() || !(0..60).contains(&m) || !(0.0..60.0).contains(&s) {
        return None;
    }
    let us = h * 3_600_000_000 + m * 60_000_000 + (s * 1e6).round() as i64;
    Some(if neg { -us } else { us })
}

/// Splits `10min` into `10` and `min` (and `1h30m` into four), and leaves clock times
/// and other words as they are.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        if word.contains(':') {
            out.push(word.to_string());
            continue;
        }
        let mut cur = String::new();
        for ch in word.chars() {
            let alpha = ch.is_ascii_alphabetic();
            if cur
                .chars()
                .last()
                .is_some_and(|p| p.is_ascii_alphabetic() != alpha)
            {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(ch);
        }
        out.push(cur);
    }
    out
}

impl Interval {
    /// Reads PostgreSQL's interval input (`postgres` style; `@` and `ago` too).
    pub fn parse(text: &str) -> Result<Interval, String> {
        let t = text.trim().trim_start_matches('@');
        let words = tokens(t);
        let (mut months, mut days, mut micros) = (0.0f64, 0.0f64, 0i64);
        let (mut i, mut any, mut ago) = (0, false, false);
        while i < words.len() {
            let w = &words[i];
            if w.eq_ignore_ascii_case("ago") && i + 1 == words.len() {
                ago = true;
            } else if w.contains(':') {
                micros += clock(w).ok_or_else(|| bad(text))?;
            } else {
                let n: f64 = w.parse().map_err(|_| bad(text))?;
                // A bare number is seconds, as in PostgreSQL.
                let (mo, d, us) = match words.get(i + 1).and_then(|u| unit(u)) {
                    Some(u) => {
                        i += 1;
                        u
                    }
                    None if i + 1 == words.len() => (0.0, 0.0, 1e6),
                    None => return Err(bad(text)),
                };
                months += n * mo;
                days += n * d;
                micros += (n * us).round() as i64;
            }
            any = true;
            i += 1;
        }
        if !any {
            return Err(bad(text));
        }
        // Fractions cascade down as PostgreSQL's do: a month is 30 days, a day 24 hours.
        let whole_months = months.trunc();
        days += (months - whole_months) * 30.0;
        let whole_days = days.trunc();
        micros += ((days - whole_days) * DAY_US as f64).round() as i64;
        let iv = Interval {
            months: whole_months as i64,
            days: whole_days as i64,
            micros,
        };
        Ok(if ago { iv.negated() } else { iv })
    }

    pub fn negated(self) -> Interval {
        Interval {
            months: -self.months,
            days: -self.days,
            micros: -self.micros,
        }
    }

    /// The interval as PostgreSQL prints it (`IntervalStyle = postgres`).
    pub fn show(&self) -> String {
        let mut out = String::new();
        let mut before_negative = false;
        let (years, months) = (self.months / 12, self.months % 12);
        for (v, name) in [(years, "year"), (months, "mon"), (self.days, "day")] {
            if v == 0 {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            let plus = if before_negative && v > 0 { "+" } else { "" };
            let s = if v != 1 { "s" } else { "" };
            out.push_str(&format!("{plus}{v} {name}{s}"));
            before_negative = v < 0;
        }
        if out.is_empty() || self.micros != 0 {
            let sign = if self.micros < 0 {
                "-"
            } else if before_negative {
                "+"
            } else {
                ""
            };
            let us = self.micros.unsigned_abs();
            let secs = us / 1_000_000;
            let mut t = format!(
                "{sign}{:02}:{:02}:{:02}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
            let frac = us % 1_000_000;
            if frac != 0 {
                t.push_str(format!(".{frac:06}").trim_end_matches('0'));
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&t);
        }
        out
    }

    fn span(&self) -> Result<Span, String> {
        Span::new()
            .try_months(self.months)
            .and_then(|s| s.try_days(self.days))
            .map_err(|e| format!("22008: timestamp out of range: {e}"))
    }
}

fn out_of_range<E: std::fmt::Display>(e: E) -> String {
    format!("22008: timestamp out of range: {e}")
}

/// A UTC instant plus `iv`: months and days on the calendar in `zone`, then the time part.
fn add_to_instant(utc: i64, iv: &Interval, zone: &TimeZone) -> Result<i64, String> {
    let at = Timestamp::from_microsecond(utc).map_err(out_of_range)?;
    let moved = at
        .to_zoned(zone.clone())
        .checked_add(iv.span()?)
        .map_err(out_of_range)?
        .timestamp()
        .checked_add(SignedDuration::from_micros(iv.micros))
        .map_err(out_of_range)?;
    Ok(moved.as_microsecond())
}

/// A wall-clock time (microseconds since 1970, no zone) plus `iv`.
fn add_to_local(local: i64, iv: &Interval) -> Result<i64, String> {
    add_to_instant(local, iv, &TimeZone::UTC)
}

/// What a stored date or time text is.
pub(super) enum Moment {
    Date(i64),
    Local(i64),
    Instant(i64),
}

/// Reads a stored date (`YYYY-MM-DD`), timestamp or timestamptz (with an offset).
pub(super) fn moment(text: &str) -> Option<Moment> {
    let t = text.trim();
    if t.len() == 10 && t.is_ascii() {
        let (y, m, d) = (
            t[0..4].parse().ok()?,
            t[5..7].parse().ok()?,
            t[8..10].parse().ok()?,
        );
        return Some(Moment::Date(days_from_civil(y, m, d)));
    }
    let us = parse_timestamp_micros(t)?;
    let instant = t.ends_with(['Z', 'z']) || super::types::has_offset(&t.replacen('T', " ", 1));
    Some(if instant {
        Moment::Instant(us)
    } else {
        Moment::Local(us)
    })
}

/// Days since 1970 as a date's text (`YYYY-MM-DD`).
pub(super) fn date_text(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `moment ± interval` as PostgreSQL types it: a timestamptz stays one (stored UTC), a
/// timestamp stays one, a date becomes a timestamp.
fn shifted(text: &str, iv: &Interval, zone: &TimeZone) -> Result<String, String> {
    match moment(text) {
        Some(Moment::Instant(us)) => Ok(format!(
            "{}+00",
            format_timestamp_micros(add_to_instant(us, iv, zone)?)
        )),
        Some(Moment::Local(us)) => Ok(format_timestamp_micros(add_to_local(us, iv)?)),
        Some(Moment::Date(d)) => Ok(format_timestamp_micros(add_to_local(d * DAY_US, iv)?)),
        None => Err(format!(
            "22007: invalid input syntax for type timestamp: \"{text}\""
        )),
    }
}

/// `a - b` of two timestamps: PostgreSQL's interval, whole days split off the time.
fn difference(a: &str, b: &str) -> Option<String> {
    let us = |t: &str| match moment(t)? {
        Moment::Date(d) => Some(d * DAY_US),
        Moment::Local(us) | Moment::Instant(us) => Some(us),
    };
    let diff = us(a)? - us(b)?;
    Some(
        Interval {
            months: 0,
            days: diff / DAY_US,
            micros: diff % DAY_US,
        }
        .show(),
    )
}

fn text_arg(ctx: &rusqlite::functions::Context<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match ctx.get::<SqlValue>(i)? {
        SqlValue::Text(s) => Some(s),
        SqlValue::Integer(n) => Some(n.to_string()),
        SqlValue::Real(f) => Some(f.to_string()),
        _ => None,
    })
}

fn fail(m: String) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(m.into())
}

/// Registers `sy_interval(text)`, `sy_ts_add(moment, interval, sign)`,
/// `sy_ts_sub(a, b)`, `sy_date_add(date, days)` and `sy_date_sub(a, b)`.
pub fn register(
    conn: &Connection,
    settings: std::sync::Arc<std::sync::Mutex<super::setvar::Settings>>,
) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("sy_interval", 1, det, |ctx| {
        let Some(t) = text_arg(ctx, 0)? else {
            return Ok(None);
        };
        Interval::parse(&t).map(|iv| Some(iv.show())).map_err(fail)
    })?;
    conn.create_scalar_function("sy_ts_add", 3, det, move |ctx| {
        let (Some(at), Some(iv)) = (text_arg(ctx, 0)?, text_arg(ctx, 1)?) else {
            return Ok(None);
        };
        let mut iv = Interval::parse(&iv).map_err(fail)?;
        if ctx.get::<i64>(2)? < 0 {
            iv = iv.negated();
        }
        shifted(&at, &iv, &super::zone::of(&settings))
            .map(Some)
            .map_err(fail)
    })?;
    conn.create_scalar_function("sy_ts_sub", 2, det, |ctx| {
        let (Some(a), Some(b)) = (text_arg(ctx, 0)?, text_arg(ctx, 1)?) else {
            return Ok(None);
        };
        Ok(difference(&a, &b))
    })?;
    conn.create_scalar_function("sy_date_add", 2, det, |ctx| {
        let (Some(d), Some(n)) = (text_arg(ctx, 0)?, ctx.get::<Option<i64>>(1)?) else {
            return Ok(None);
        };
        Ok(match moment(&d) {
            Some(Moment::Date(days)) => Some(date_text(days + n)),
            _ => None,
        })
    })?;
    conn.create_scalar_function("sy_date_sub", 2, det, |ctx| {
        let (Some(a), Some(b)) = (text_arg(ctx, 0)?, text_arg(ctx, 1)?) else {
            return Ok(None);
        };
        Ok(match (moment(&a), moment(&b)) {
            (Some(Moment::Date(x)), Some(Moment::Date(y))) => Some(x - y),
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each input as PostgreSQL 15 printed it.
    #[test]
    fn intervals_read_and_print_as_postgresql_does() {
        let cases = [
            ("-1 year", "-1 years"),
            (
                "1 year 2 months -3 days 04:05:06.5",
                "1 year 2 mons -3 days +04:05:06.5",
            ),
            ("1.5 days", "1 day 12:00:00"),
            ("-01:30", "-01:30:00"),
            ("2 weeks ago", "-14 days"),
            ("0", "00:00:00"),
            ("1 mon", "1 mon"),
            ("100 minutes", "01:40:00"),
            ("36 hours", "36:00:00"),
            ("1.5 months", "1 mon 15 days"),
            ("1h30m", "01:30:00"),
            ("3 day", "3 days"),
        ];
        for (input, want) in cases {
            assert_eq!(Interval::parse(input).unwrap().show(), want, "{input}");
        }
        assert!(Interval::parse("soon").unwrap_err().starts_with("22007"));
        assert!(Interval::parse("").is_err());
    }

    #[test]
    fn arithmetic_follows_the_calendar_and_the_zone() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let day = Interval::parse("1 day").unwrap();
        let hours = Interval::parse("24 hours").unwrap();
        // Across the spring DST change: a day keeps the wall clock, 24 hours do not.
        assert_eq!(
            shifted("2024-03-30 11:00:00+00", &day, &berlin).unwrap(),
            "2024-03-31 10:00:00+00"
        );
        assert_eq!(
            shifted("2024-03-30 11:00:00+00", &hours, &berlin).unwrap(),
            "2024-03-31 11:00:00+00"
        );
        let month = Interval::parse("1 month").unwrap();
        assert_eq!(
            shifted("2024-01-31", &month, &TimeZone::UTC).unwrap(),
            "2024-02-29 00:00:00"
        );
        assert_eq!(
            difference("2024-05-06 07:00", "2024-05-03 05:00:00.25").unwrap(),
            "3 days 01:59:59.75"
        );
        assert_eq!(
            difference("2024-05-01", "2024-05-06 07:00").unwrap(),
            "-5 days -07:00:00"
        );
    }
}
