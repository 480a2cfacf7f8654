//! The session's `TimeZone` for the SQLite backend. A `timestamptz` is stored as the UTC
//! instant (see `coerce.rs`); PostgreSQL reads a value written without an offset as local
//! time in the session's zone, and shows every `timestamptz` in that zone
//! (`2024-05-06 07:08:09+02` with `TimeZone = 'Europe/Berlin'`). Zones are IANA names,
//! read from the system's tz database or the copy built in.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A session zone; `None` is UTC (nothing to convert).
pub type Zone = Option<TimeZone>;

/// The session's zone as its settings hold it (UTC when none is set).
pub fn of(settings: &std::sync::Mutex<super::setvar::Settings>) -> TimeZone {
    settings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .zone
        .clone()
        .unwrap_or(TimeZone::UTC)
}

/// The zone `name` names (`UTC`, `Europe/Berlin`, …), or the error PostgreSQL gives.
pub fn parse(name: &str) -> Result<Zone, String> {
    let n = name.trim().trim_matches('\'');
    if ["utc", "etc/utc", "gmt", "etc/gmt", "z", "zulu", "universal"]
        .iter()
        .any(|u| n.eq_ignore_ascii_case(u))
    {
        return Ok(None);
    }
    TimeZone::get(n)
        .map(Some)
        .map_err(|_| format!("invalid value for parameter \"TimeZone\": \"{n}\""))
}

/// The zone's offset from UTC at an instant, in seconds.
pub fn offset_seconds(zone: &TimeZone, utc_micros: i64) -> i64 {
    Timestamp::from_microsecond(utc_micros)
        .map(|t| zone.to_offset(t).seconds() as i64)
        .unwrap_or(0)
}

/// The UTC instant of a wall-clock time in `zone` (microseconds since 1970 both); in a
/// gap or an overlap the offset in force before the change is taken, as PostgreSQL does.
pub fn to_utc(local_micros: i64, zone: &TimeZone) -> i64 {
    let first = offset_seconds(zone, local_micros);
    let guess = local_micros - first * 1_000_000;
    let second = offset_seconds(zone, guess);
    local_micros - second * 1_000_000
}

/// A UTC instant as PostgreSQL shows a `timestamptz` in `zone`:
/// `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]`.
pub fn show(utc_micros: i64, zone: &TimeZone) -> String {
    let off = offset_seconds(zone, utc_micros);
    let local = super::datetime::format_timestamp_micros(utc_micros + off * 1_000_000);
    let (sign, a) = if off < 0 { ('-', -off) } else { ('+', off) };
    let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
    match (m, s) {
        (0, 0) => format!("{local}{sign}{h:02}"),
        (_, 0) => format!("{local}{sign}{h:02}:{m:02}"),
        _ => format!("{local}{sign}{h:02}:{m:02}:{s:02}"),
    }
}

/// A stored timestamptz shown in `zone` (None for what is not a readable timestamp).
pub fn shown(v: &rusqlite::types::Value, zone: &TimeZone) -> Option<String> {
    match v {
        rusqlite::types::Value::Text(s) => {
            super::datetime::parse_timestamp_micros(s).map(|us| show(us, zone))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sqlite::datetime::parse_timestamp_micros;

    #[test]
    fn instants_show_in_the_session_zone() {
        let berlin = parse("Europe/Berlin").unwrap().unwrap();
        let at = |s: &str| parse_timestamp_micros(s).unwrap();
        assert_eq!(
            show(at("2024-05-06 05:08:09"), &berlin),
            "2024-05-06 07:08:09+02"
        );
        assert_eq!(
            show(at("2024-01-06 05:08:09.5"), &berlin),
            "2024-01-06 06:08:09.5+01"
        );
        let kolkata = parse("Asia/Kolkata").unwrap().unwrap();
        assert_eq!(
            show(at("2024-05-06 00:00:00"), &kolkata),
            "2024-05-06 05:30:00+05:30"
        );
        let ny = parse("America/New_York").unwrap().unwrap();
        assert_eq!(
            show(at("2024-05-06 00:00:00"), &ny),
            "2024-05-05 20:00:00-04"
        );
        assert_eq!(parse("UTC").unwrap(), None);
        assert!(
            parse("Mars/Olympus")
                .unwrap_err()
                .contains("\"Mars/Olympus\"")
        );
    }

    #[test]
    fn wall_clock_times_are_read_in_the_session_zone() {
        let berlin = parse("Europe/Berlin").unwrap().unwrap();
        let at = |s: &str| parse_timestamp_micros(s).unwrap();
        assert_eq!(
            to_utc(at("2024-05-06 07:08:09"), &berlin),
            at("2024-05-06 05:08:09")
        );
        assert_eq!(
            to_utc(at("2024-01-06 07:08:09"), &berlin),
            at("2024-01-06 06:08:09")
        );
    }
}
