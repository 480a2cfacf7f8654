//! PostgreSQL's date and time functions for the SQLite backend: `EXTRACT(field FROM x)`
//! and `date_part('field', x)` (of a date, timestamp, timestamptz — in the session's
//! `TimeZone` — or interval), `date_trunc('unit', x)` (a timestamptz truncated in the
//! session's zone, as reports grouping by day expect), `to_timestamp(epoch)` and
//! `make_date(y, m, d)`. Values are the text the backend stores (see `interval.rs`).
//!
//! `date_part` answers integer fields as integers and `second`, `milliseconds` and
//! `epoch` as floating point (PostgreSQL's is `double precision`); `EXTRACT` is
//! `sy_extract`, PostgreSQL's `numeric` as decimal text with its scale (`9.500000`,
//! `9500.000`, an epoch of a date `1714953600`), which `decimal_rewrite.rs` makes a number
//! where SQLite compares or sorts it.

use jiff::tz::TimeZone;
use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;

use super::datetime::{civil_from_days, days_from_civil, format_timestamp_micros};
use super::interval::{DAY_US, Interval, Moment, moment};

fn fail(m: String) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(m.into())
}

fn unknown_unit(unit: &str) -> String {
    format!("22023: unit \"{unit}\" not recognized for type timestamp with time zone")
}

/// Microseconds of wall-clock time in `zone` for an instant.
fn local_of(utc: i64, zone: &TimeZone) -> i64 {
    utc + super::zone::offset_seconds(zone, utc) * 1_000_000
}

/// A field of a point in time (`local`: wall-clock microseconds; `epoch`: seconds since
/// 1970 of the instant).
fn field_of(unit: &str, local: i64, epoch: f64) -> Result<Value, String> {
    let days = local.div_euclid(DAY_US);
    let tod = local.rem_euclid(DAY_US);
    let (y, m, d) = civil_from_days(days);
    let secs = tod / 1_000_000;
    let micros = tod % 1_000_000;
    let dow = (days + 4).rem_euclid(7);
    let iso = || {
        jiff::civil::Date::new(y as i16, m as i8, d as i8)
            .map(|date| date.iso_week_date())
            .map_err(|e| e.to_string())
    };
    let int = Value::Integer;
    Ok(match unit.to_ascii_lowercase().as_str() {
        "year" | "years" => int(y),
        "month" | "months" | "mon" => int(m as i64),
        "day" | "days" => int(d as i64),
        "hour" | "hours" => int(secs / 3600),
        "minute" | "minutes" | "min" => int(secs / 60 % 60),
        "second" | "seconds" | "sec" => Value::Real((secs % 60) as f64 + micros as f64 / 1e6),
        "milliseconds" | "millisecond" | "ms" => {
            Value::Real((secs % 60) as f64 * 1e3 + micros as f64 / 1e3)
        }
        "microseconds" | "microsecond" | "us" => int((secs % 60) * 1_000_000 + micros),
        "dow" => int(dow),
        "isodow" => int(if dow == 0 { 7 } else { dow }),
        "doy" => int(days - days_from_civil(y, 1, 1) + 1),
        "quarter" => int((m as i64 - 1) / 3 + 1),
        "week" => int(iso()?.week() as i64),
        "isoyear" => int(iso()?.year() as i64),
        "decade" => int(y.div_euclid(10)),
        "century" => int((y + 99).div_euclid(100)),
        "millennium" => int((y + 999).div_euclid(1000)),
        "epoch" => {
            if epoch.fract() == 0.0 {
                int(epoch as i64)
            } else {
                Value::Real(epoch)
            }
        }
        other => return Err(unknown_unit(other)),
    })
}

/// A field of an interval (PostgreSQL's `interval_part`).
fn interval_field(unit: &str, iv: &Interval) -> Result<Value, String> {
    let secs = iv.micros / 1_000_000;
    Ok(match unit.to_ascii_lowercase().as_str() {
        "year" | "years" => Value::Integer(iv.months / 12),
        "month" | "months" | "mon" => Value::Integer(iv.months % 12),
        "day" | "days" => Value::Integer(iv.days),
        "hour" | "hours" => Value::Integer(secs / 3600),
        "minute" | "minutes" | "min" => Value::Integer(secs / 60 % 60),
        "second" | "seconds" | "sec" => Value::Real((iv.micros % 60_000_000) as f64 / 1e6),
        "epoch" => {
            let e = iv.micros as f64 / 1e6
                + (iv.months / 12) as f64 * 365.25 * 86_400.0
                + (iv.months % 12) as f64 * 30.0 * 86_400.0
                + iv.days as f64 * 86_400.0;
            if e.fract() == 0.0 {
                Value::Integer(e as i64)
            } else {
                Value::Real(e)
            }
        }
        other => {
            return Err(format!(
                "22023: unit \"{other}\" not supported for type interval"
            ));
        }
    })
}

/// `date_part(unit, value)` of any stored date, time or interval text.
fn part(unit: &str, value: &str, zone: &TimeZone) -> Result<Value, String> {
    match moment(value) {
        Some(Moment::Instant(us)) => field_of(unit, local_of(us, zone), us as f64 / 1e6),
        Some(Moment::Local(us)) => field_of(unit, us, us as f64 / 1e6),
        Some(Moment::Date(d)) => field_of(unit, d * DAY_US, (d * 86_400) as f64),
        None => match Interval::parse(value) {
            Ok(iv) => interval_field(unit, &iv),
            Err(_) => Err(format!(
                "22007: invalid input syntax for type timestamp: \"{value}\""
            )),
        },
    }
}

/// Wall-clock microseconds truncated to `unit`.
fn truncated(unit: &str, local: i64) -> Result<i64, String> {
    let days = local.div_euclid(DAY_US);
    let (y, m, _) = civil_from_days(days);
    let start_of = |y: i64, m: u32| days_from_civil(y, m, 1) * DAY_US;
    let to = |step: i64| local - local.rem_euclid(step);
    Ok(match unit.to_ascii_lowercase().as_str() {
        "microseconds" | "microsecond" => local,
        "milliseconds" | "millisecond" => to(1_000),
        "second" | "seconds" => to(1_000_000),
        "minute" | "minutes" => to(60_000_000),
        "hour" | "hours" => to(3_600_000_000),
        "day" | "days" => to(DAY_US),
        // ISO weeks start on Monday (1970-01-01 was a Thursday).
        "week" | "weeks" => (days - (days + 3).rem_euclid(7)) * DAY_US,
        "month" | "months" => start_of(y, m),
        "quarter" => start_of(y, (m - 1) / 3 * 3 + 1),
        "year" | "years" => start_of(y, 1),
        "decade" => start_of(y.div_euclid(10) * 10, 1),
        "century" => start_of((y - 1).div_euclid(100) * 100 + 1, 1),
        "millennium" => start_of((y - 1).div_euclid(1000) * 1000 + 1, 1),
        other => return Err(unknown_unit(other)),
    })
}

/// `date_trunc(unit, value)`: a timestamptz (and a date, which PostgreSQL makes one)
/// truncated in `zone`, a timestamp as it is.
fn trunc(unit: &str, value: &str, zone: &TimeZone) -> Result<String, String> {
    let instant = |local: i64| -> Result<String, String> {
        let utc = super::zone::to_utc(truncated(unit, local)?, zone);
        Ok(format!("{}+00", format_timestamp_micros(utc)))
    };
    match moment(value) {
        Some(Moment::Instant(us)) => instant(local_of(us, zone)),
        Some(Moment::Date(d)) => instant(d * DAY_US),
        Some(Moment::Local(us)) => Ok(format_timestamp_micros(truncated(unit, us)?)),
        None => Err(format!(
            "22007: invalid input syntax for type timestamp: \"{value}\""
        )),
    }
}

/// `value::date`: a timestamptz's date in `zone`, a timestamp's date, a date.
fn date_of(value: &str, zone: &TimeZone) -> Result<String, String> {
    let days = match moment(value) {
        Some(Moment::Date(d)) => d,
        Some(Moment::Local(us)) => us.div_euclid(DAY_US),
        Some(Moment::Instant(us)) => local_of(us, zone).div_euclid(DAY_US),
        None => {
            return Err(format!(
                "22007: invalid input syntax for type date: \"{value}\""
            ));
        }
    };
    Ok(super::interval::date_text(days))
}

/// `EXTRACT(unit FROM value)`: [`part`] as PostgreSQL's numeric prints it — `second`
/// and `epoch` with six decimals (an epoch of a date with none), `milliseconds` with three.
fn extract(unit: &str, value: &str, zone: &TimeZone) -> Result<String, String> {
    let v = part(unit, value, zone)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "second" | "seconds" | "sec" => 6,
        "milliseconds" | "millisecond" | "ms" => 3,
        "epoch" if !matches!(moment(value), Some(Moment::Date(_))) => 6,
        _ => 0,
    };
    Ok(match v {
        Value::Integer(n) if scale > 0 => format!("{n}.{:0scale$}", 0),
        Value::Integer(n) => n.to_string(),
        Value::Real(f) => format!("{f:.scale$}"),
        other => return Err(format!("XX000: unexpected field value {other:?}")),
    })
}

/// `value AT TIME ZONE zone`: a timestamptz as the wall-clock time in `zone` (a
/// timestamp); a timestamp (or date) read as wall-clock time in `zone` (a timestamptz).
fn at_zone(value: &str, zone: &str) -> Result<String, String> {
    let z = super::zone::parse(zone)
        .map_err(|_| format!("22023: time zone \"{zone}\" not recognized"))?
        .unwrap_or(TimeZone::UTC);
    match moment(value) {
        Some(Moment::Instant(us)) => Ok(format_timestamp_micros(local_of(us, &z))),
        Some(Moment::Local(us)) => Ok(format!(
            "{}+00",
            format_timestamp_micros(super::zone::to_utc(us, &z))
        )),
        Some(Moment::Date(d)) => Ok(format!(
            "{}+00",
            format_timestamp_micros(super::zone::to_utc(d * DAY_US, &z))
        )),
        None => Err(format!(
            "22007: invalid input syntax for type timestamp: \"{value}\""
        )),
    }
}

/// `value::time`: the time of day of a timestamp, or of a timestamptz in `zone`; a time
/// as it is.
fn time_of(value: &str, zone: &TimeZone) -> Result<String, String> {
    let local = match moment(value) {
        Some(Moment::Instant(us)) => local_of(us, zone),
        Some(Moment::Local(us)) => us,
        Some(Moment::Date(_)) => {
            return Err("42846: cannot cast type date to time without time zone".into());
        }
        // A time of day, as PostgreSQL prints it (`10:30` is `10:30:00`).
        None => super::datetime::parse_timestamp_micros(&format!("1970-01-01 {}", value.trim()))
            .filter(|us| (0..=DAY_US).contains(us))
            .ok_or_else(|| format!("22007: invalid input syntax for type time: \"{value}\""))?,
    };
    let text = format_timestamp_micros(local.rem_euclid(DAY_US));
    Ok(text
        .split_once(' ')
        .map_or(text.clone(), |(_, t)| t.to_string()))
}

fn text_of(v: Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s),
        Value::Integer(n) => Some(n.to_string()),
        Value::Real(f) => Some(f.to_string()),
        _ => None,
    }
}

/// Registers `sy_date_part`, `date_part`, `sy_extract`, `sy_at_zone` (`AT TIME ZONE`),
/// `sy_time` (`::time`), `date_trunc`, `sy_date` (`::date`),
/// `to_timestamp` and `make_date`.
pub fn register(
    conn: &Connection,
    settings: std::sync::Arc<std::sync::Mutex<super::setvar::Settings>>,
) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let zone_of = move || super::zone::of(&settings);
    for name in ["sy_date_part", "date_part"] {
        let zone_of = zone_of.clone();
        conn.create_scalar_function(name, 2, det, move |ctx| {
            let (Some(unit), Some(v)) = (text_of(ctx.get(0)?), text_of(ctx.get(1)?)) else {
                return Ok(Value::Null);
            };
            part(unit.trim_matches('\''), &v, &zone_of()).map_err(fail)
        })?;
    }
    conn.create_scalar_function("sy_at_zone", 2, det, |ctx| {
        let (Some(v), Some(z)) = (text_of(ctx.get(0)?), text_of(ctx.get(1)?)) else {
            return Ok(None);
        };
        at_zone(&v, &z).map(Some).map_err(fail)
    })?;
    let zone_in = zone_of.clone();
    conn.create_scalar_function("sy_time", 1, det, move |ctx| {
        let Some(v) = text_of(ctx.get(0)?) else {
            return Ok(None);
        };
        time_of(&v, &zone_in()).map(Some).map_err(fail)
    })?;
    let zone_in = zone_of.clone();
    conn.create_scalar_function("sy_extract", 2, det, move |ctx| {
        let (Some(unit), Some(v)) = (text_of(ctx.get(0)?), text_of(ctx.get(1)?)) else {
            return Ok(None);
        };
        extract(&unit, &v, &zone_in()).map(Some).map_err(fail)
    })?;
    let zone_in = zone_of.clone();
    conn.create_scalar_function("date_trunc", 2, det, move |ctx| {
        let (Some(unit), Some(v)) = (text_of(ctx.get(0)?), text_of(ctx.get(1)?)) else {
            return Ok(None);
        };
        trunc(&unit, &v, &zone_in()).map(Some).map_err(fail)
    })?;
    conn.create_scalar_function("sy_date", 1, det, move |ctx| {
        let Some(v) = text_of(ctx.get(0)?) else {
            return Ok(None);
        };
        date_of(&v, &zone_of()).map(Some).map_err(fail)
    })?;
    conn.create_scalar_function("to_timestamp", 1, det, |ctx| {
        let Some(secs) = ctx.get::<Option<f64>>(0)? else {
            return Ok(None);
        };
        let us = (secs * 1e6).round() as i64;
        Ok(Some(format!("{}+00", format_timestamp_micros(us))))
    })?;
    conn.create_scalar_function("make_date", 3, det, |ctx| {
        let (y, m, d): (i64, i64, i64) = (ctx.get(0)?, ctx.get(1)?, ctx.get(2)?);
        jiff::civil::Date::new(y as i16, m as i8, d as i8)
            .map(|_| format!("{y:04}-{m:02}-{d:02}"))
            .map_err(|_| {
                fail(format!(
                    "22008: date field value out of range: {y}-{m:02}-{d:02}"
                ))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers PostgreSQL 15 gave (TimeZone Europe/Berlin where it says so).
    #[test]
    fn fields_and_truncation_follow_postgresql() {
        let utc = TimeZone::UTC;
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let at = "2024-05-06 22:30:09.5+00";
        assert_eq!(part("year", "2024-05-06", &utc), Ok(Value::Integer(2024)));
        assert_eq!(part("day", at, &berlin), Ok(Value::Integer(7)));
        assert_eq!(part("hour", at, &berlin), Ok(Value::Integer(0)));
        assert_eq!(part("second", at, &utc), Ok(Value::Real(9.5)));
        assert_eq!(part("dow", "2024-05-05", &utc), Ok(Value::Integer(0)));
        assert_eq!(part("isodow", "2024-05-05", &utc), Ok(Value::Integer(7)));
        assert_eq!(part("doy", "2024-12-31", &utc), Ok(Value::Integer(366)));
        assert_eq!(part("week", "2024-12-30", &utc), Ok(Value::Integer(1)));
        assert_eq!(part("quarter", "2024-05-06", &utc), Ok(Value::Integer(2)));
        assert_eq!(
            part("epoch", "2024-05-06 07:00:00+00", &berlin),
            Ok(Value::Integer(1_714_978_800))
        );
        assert_eq!(
            part("epoch", "1 day 02:00:00", &utc),
            Ok(Value::Integer(93_600))
        );
        assert!(part("fortnight", at, &utc).is_err());
        assert_eq!(
            at_zone(at, "Europe/Berlin").unwrap(),
            "2024-05-07 00:30:09.5"
        );
        assert_eq!(
            at_zone("2024-05-07 00:30:00", "Europe/Berlin").unwrap(),
            "2024-05-06 22:30:00+00"
        );
        assert!(at_zone(at, "Mars/Olympus").is_err());
        assert_eq!(time_of(at, &berlin).unwrap(), "00:30:09.5");
        assert_eq!(time_of("2024-05-06 07:08:09", &utc).unwrap(), "07:08:09");
        assert_eq!(time_of("10:30", &utc).unwrap(), "10:30:00");
        assert!(time_of("soon", &utc).is_err());
        let ts = "2024-05-06 07:08:09.5";
        assert_eq!(extract("second", ts, &utc).unwrap(), "9.500000");
        assert_eq!(extract("milliseconds", ts, &utc).unwrap(), "9500.000");
        assert_eq!(extract("microseconds", ts, &utc).unwrap(), "9500000");
        assert_eq!(extract("epoch", ts, &utc).unwrap(), "1714979289.500000");
        assert_eq!(extract("epoch", "2024-05-06", &utc).unwrap(), "1714953600");
        assert_eq!(extract("year", ts, &utc).unwrap(), "2024");
        assert_eq!(
            extract("epoch", "1 day 02:00:00", &utc).unwrap(),
            "93600.000000"
        );
        assert_eq!(extract("second", "00:00:01.5", &utc).unwrap(), "1.500000");
        assert_eq!(date_of(at, &berlin).unwrap(), "2024-05-07");
        assert_eq!(
            date_of("2024-05-06 10:00:00", &berlin).unwrap(),
            "2024-05-06"
        );
        assert!(date_of("soon", &utc).is_err());
        assert_eq!(
            trunc("day", at, &berlin).unwrap(),
            "2024-05-06 22:00:00+00",
            "midnight of 7 May in Berlin"
        );
        assert_eq!(
            trunc("month", "2024-05-06 07:08:09", &utc).unwrap(),
            "2024-05-01 00:00:00"
        );
        assert_eq!(
            trunc("week", "2024-05-05 07:08:09", &utc).unwrap(),
            "2024-04-29 00:00:00"
        );
        assert_eq!(
            trunc("quarter", "2024-05-06", &utc).unwrap(),
            "2024-04-01 00:00:00+00"
        );
        assert_eq!(
            trunc("century", "2024-05-06 00:00:00", &utc).unwrap(),
            "2001-01-01 00:00:00"
        );
    }
}
