//! `to_char(timestamp, format)` and `age(a [, b])` for the SQLite backend, as PostgreSQL
//! answers them: the date and time patterns reports use (`YYYY-MM-DD HH24:MI:SS`,
//! `Mon DD, YYYY`, `FMMonth`, `Day`, `AM`, `Q`, `IW`, `OF`, `TZH`, quoted text), a timestamptz
//! shown in the session's `TimeZone`; `age` as years, months and days counted on the
//! calendar (PostgreSQL's borrowing, so `age('2024-05-06', '2024-01-01')` is
//! `4 mons 5 days`). `to_char` of a number is `to_char_number.rs`.

use jiff::tz::TimeZone;
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;

use super::datetime::civil_from_days;
use super::interval::{DAY_US, Interval, Moment, moment};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn fail(m: String) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(m.into())
}

/// Wall-clock microseconds of a stored value, and its zone offset in seconds.
fn local(text: &str, zone: &TimeZone) -> Option<(i64, i64)> {
    Some(match moment(text)? {
        Moment::Date(d) => (d * DAY_US, 0),
        Moment::Local(us) => (us, 0),
        Moment::Instant(us) => {
            let off = super::zone::offset_seconds(zone, us);
            (us + off * 1_000_000, off)
        }
    })
}

/// A name as the pattern's case asks (`MONTH`, `Month`, `month`), padded to 9 if `fill`.
fn cased(name: &str, pattern: &str, fill: bool) -> String {
    let s = if pattern.chars().all(|c| c.is_ascii_uppercase()) {
        name.to_uppercase()
    } else if pattern.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.to_lowercase()
    } else {
        name.to_string()
    };
    if fill { format!("{s:<9}") } else { s }
}

/// Formats wall-clock microseconds `us` (offset `off` seconds) by `fmt`.
fn format(us: i64, off: i64, fmt: &str) -> String {
    let days = us.div_euclid(DAY_US);
    let tod = us.rem_euclid(DAY_US);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, frac) = (
        tod / 3_600_000_000,
        tod / 60_000_000 % 60,
        tod / 1_000_000 % 60,
        tod % 1_000_000,
    );
    let dow = (days + 4).rem_euclid(7) as usize;
    let date = jiff::civil::Date::new(y as i16, m as i8, d as i8).ok();
    let mut out = String::new();
    let mut rest = fmt;
    let mut fm = false;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("FM") {
            fm = true;
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            out.push_str(&r[..end]);
            rest = r.get(end + 1..).unwrap_or("");
            continue;
        }
        let num = |v: i64, w: usize| {
            if fm {
                v.to_string()
            } else {
                format!("{v:0w$}")
            }
        };
        let upper = rest.to_ascii_uppercase();
        let (text, len) = if upper.starts_with("YYYY") {
            (num(y, 4), 4)
        } else if upper.starts_with("HH24") {
            (num(h, 2), 4)
        } else if upper.starts_with("HH12") {
            (num((h + 11) % 12 + 1, 2), 4)
        } else if upper.starts_with("MONTH") {
            (cased(MONTHS[m as usize - 1], &rest[..5], !fm), 5)
        } else if upper.starts_with("MON") {
            (cased(&MONTHS[m as usize - 1][..3], &rest[..3], false), 3)
        } else if upper.starts_with("DAY") {
            (cased(DAYS[dow], &rest[..3], !fm), 3)
        } else if upper.starts_with("DY") {
            (cased(&DAYS[dow][..3], &rest[..2], false), 2)
        } else if upper.starts_with("DDD") {
            let doy = date.map_or(0, |x| x.day_of_year() as i64);
            (num(doy, 3), 3)
        } else if upper.starts_with("YY") {
            (num(y % 100, 2), 2)
        } else if upper.starts_with("MM") {
            (num(m as i64, 2), 2)
        } else if upper.starts_with("MI") {
            (num(mi, 2), 2)
        } else if upper.starts_with("MS") {
            (num(frac / 1000, 3), 2)
        } else if upper.starts_with("US") {
            (num(frac, 6), 2)
        } else if upper.starts_with("SS") {
            (num(s, 2), 2)
        } else if upper.starts_with("DD") {
            (num(d as i64, 2), 2)
        } else if upper.starts_with("HH") {
            (num((h + 11) % 12 + 1, 2), 2)
        } else if upper.starts_with("IW") {
            (
                num(date.map_or(0, |x| x.iso_week_date().week() as i64), 2),
                2,
            )
        } else if upper.starts_with("AM") || upper.starts_with("PM") {
            let t = if h < 12 { "AM" } else { "PM" };
            (
                if rest.starts_with(|c: char| c.is_ascii_lowercase()) {
                    t.to_lowercase()
                } else {
                    t.to_string()
                },
                2,
            )
        } else if upper.starts_with("TZH") {
            (
                format!("{}{:02}", if off < 0 { '-' } else { '+' }, off.abs() / 3600),
                3,
            )
        } else if upper.starts_with("TZM") {
            (format!("{:02}", off.abs() % 3600 / 60), 3)
        } else if upper.starts_with("OF") {
            let (sign, a) = if off < 0 { ('-', -off) } else { ('+', off) };
            let mut t = format!("{sign}{:02}", a / 3600);
            if a % 3600 != 0 {
                t.push_str(&format!(":{:02}", a % 3600 / 60));
            }
            (t, 2)
        } else if upper.starts_with('Q') {
            (((m as i64 - 1) / 3 + 1).to_string(), 1)
        } else if upper.starts_with('D') {
            ((dow + 1).to_string(), 1)
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            (c.to_string(), c.len_utf8())
        };
        out.push_str(&text);
        rest = &rest[len..];
        // FM fills only the pattern after it.
        fm = false;
    }
    out
}

/// PostgreSQL's `age(a, b)`: field by field, borrowing from the next larger field.
fn age(a: i64, b: i64) -> Interval {
    let fields = |us: i64| {
        let days = us.div_euclid(DAY_US);
        let (y, m, d) = civil_from_days(days);
        (y, m as i64, d as i64, us.rem_euclid(DAY_US))
    };
    let (later, earlier, negative) = if a >= b { (a, b, false) } else { (b, a, true) };
    let (y1, m1, d1, t1) = fields(later);
    let (y2, m2, d2, t2) = fields(earlier);
    let (mut years, mut months, mut days, mut time) = (y1 - y2, m1 - m2, d1 - d2, t1 - t2);
    if time < 0 {
        time += DAY_US;
        days -= 1;
    }
    if days < 0 {
        // Days of the earlier date's month, as PostgreSQL borrows them.
        let in_month =
            jiff::civil::Date::new(y2 as i16, m2 as i8, 1).map_or(30, |x| x.days_in_month() as i64);
        days += in_month;
        months -= 1;
    }
    if months < 0 {
        months += 12;
        years -= 1;
    }
    let iv = Interval {
        months: years * 12 + months,
        days,
        micros: time,
    };
    if negative { iv.negated() } else { iv }
}

/// Registers `to_char` and `age`.
pub fn register(
    conn: &Connection,
    settings: std::sync::Arc<std::sync::Mutex<super::setvar::Settings>>,
) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let zone_of = move || super::zone::of(&settings);
    let zone_in = zone_of.clone();
    conn.create_scalar_function("to_char", 2, det, move |ctx| {
        let (v, fmt) = (ctx.get::<Value>(0)?, ctx.get::<Option<String>>(1)?);
        let Some(fmt) = fmt else { return Ok(None) };
        let number = |n: &str| {
            let d = std::str::FromStr::from_str(n).map_err(|_| {
                fail(format!(
                    "22P02: invalid input syntax for type numeric: \"{n}\""
                ))
            })?;
            super::to_char_number::format(&d, &fmt)
                .map(Some)
                .map_err(fail)
        };
        let v = match v {
            Value::Null => return Ok(None),
            Value::Integer(i) => return number(&i.to_string()),
            Value::Real(f) => return number(&super::types::float_text(f)),
            Value::Text(t) => t,
            Value::Blob(_) => {
                return Err(fail(
                    "42883: function to_char(bytea, text) does not exist".into(),
                ));
            }
        };
        let Some((us, off)) = local(&v, &zone_in()) else {
            // Decimal text (a numeric computed exactly) is a number.
            if v.trim().parse::<f64>().is_ok() {
                return number(v.trim());
            }
            return Err(fail(format!(
                "22007: invalid input syntax for type timestamp: \"{v}\""
            )));
        };
        Ok(Some(format(us, off, &fmt)))
    })?;
    conn.create_scalar_function("age", -1, det, move |ctx| {
        let zone = zone_of();
        let at = |i: usize| -> rusqlite::Result<Option<i64>> {
            Ok(match ctx.get::<Option<String>>(i)? {
                Some(t) => Some(local(&t, &zone).map(|x| x.0).ok_or_else(|| {
                    fail(format!(
                        "22007: invalid input syntax for type timestamp: \"{t}\""
                    ))
                })?),
                None => None,
            })
        };
        let (a, b) = if ctx.len() > 1 {
            (at(0)?, at(1)?)
        } else {
            // age(x): from midnight of today.
            let now = jiff::Timestamp::now().as_microsecond();
            let (today, _) = local(
                &format!("{}+00", super::datetime::format_timestamp_micros(now)),
                &zone,
            )
            .unwrap_or((now, 0));
            (Some(today - today.rem_euclid(DAY_US)), at(0)?)
        };
        Ok(a.zip(b).map(|(a, b)| age(a, b).show()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers PostgreSQL 15 gave.
    #[test]
    fn to_char_and_age_answer_as_postgresql_does() {
        let at = |s: &str| local(s, &TimeZone::UTC).unwrap().0;
        let t = at("2024-05-06 07:08:09.123456");
        assert_eq!(format(t, 0, "YYYY-MM-DD HH24:MI:SS"), "2024-05-06 07:08:09");
        assert_eq!(format(t, 0, "Mon DD, YYYY"), "May 06, 2024");
        assert_eq!(format(t, 0, "FMMonth FMDD"), "May 6");
        assert_eq!(
            format(t, 0, "Month|Day|Dy|D|Q"),
            "May      |Monday   |Mon|2|2"
        );
        assert_eq!(format(t, 0, "HH12:MI AM MS US"), "07:08 AM 123 123456");
        assert_eq!(format(t, 0, "YYYY\"w\"IW"), "2024w19");
        assert_eq!(format(t, 7200, "HH24OF"), "07+02");
        assert_eq!(format(t, -19800, "TZH:TZM"), "-05:30");
        assert_eq!(
            age(at("2024-05-06"), at("2024-01-01")).show(),
            "4 mons 5 days"
        );
        assert_eq!(
            age(at("2024-01-01"), at("2024-05-06")).show(),
            "-4 mons -5 days"
        );
        assert_eq!(
            age(at("2024-03-01 10:00"), at("2023-01-31 12:00")).show(),
            "1 year 1 mon 22:00:00"
        );
    }
}
