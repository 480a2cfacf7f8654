//! Date and time arithmetic on the SQLite backend compared with a real PostgreSQL in the
//! same run: intervals (input, output, `±` on timestamps, timestamptz in the session's
//! zone, dates), `date ± integer`, `date - date`, `timestamp - timestamp`, a timestamptz
//! that is not a column made text, and the result types a driver sees.

use crate::sqlite_ddl::{psql_on_both, psql_script};
use crate::support::{connect, rt, sqlite_proxy};

/// Before, `INTERVAL '1 day'` was a syntax error, `'2024-05-06'::date + 1` read 2025,
/// `date - date` 0, and `now()::text` was UTC whatever the session's zone.
#[test]
fn date_and_time_arithmetic_answers_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let script = "\\set VERBOSITY terse\n\
        SET TIME ZONE 'Europe/Berlin';\n\
        CREATE TABLE ev (id int, at timestamptz, day date, ts timestamp);\n\
        INSERT INTO ev VALUES (1, '2024-03-30 12:00:00+01', '2024-01-31', '2024-05-06 07:00'), \
        (2, '2024-05-06 07:00:00+02', '2024-05-06', '2024-05-03 05:00:00.25');\n\
        SELECT id, at + interval '1 day', at - interval '24 hours', day + 1, day - 1, \
        day + interval '1 month', ts - interval '90 minutes', interval '2 hours' + ts FROM ev ORDER BY id;\n\
        SELECT a.id, a.day - b.day, a.ts - b.ts, a.at - b.at FROM ev a, ev b WHERE a.id <> b.id ORDER BY 1;\n\
        SELECT count(*) FROM ev WHERE at > now() - interval '3 years';\n\
        SELECT id FROM ev WHERE at > '2024-05-06 06:00:00+02'::timestamptz - interval '1 hour';\n\
        SELECT interval '1 year 2 months -3 days 04:05:06.5', interval '3' day, '90 min'::interval, \
        interval '1.5 days', interval '2 weeks ago';\n\
        SELECT '2024-05-06'::date + 1, '2024-05-06'::date - '2024-05-01'::date, 7 + '2024-05-06'::date;\n\
        SELECT '2024-05-06 07:00'::timestamp - '2024-05-06 05:00'::timestamp;\n\
        SELECT '2024-01-06 07:08:09+00'::timestamptz::text, '2024-05-06 07:08:09+00'::timestamptz || '', \
        concat(now()::text = now()::timestamptz::text, now()::text LIKE '%+01');\n\
        UPDATE ev SET at = at + interval '1 hour' WHERE id = 2 RETURNING at;\n";
    let (want, got) = (
        psql_script(pg.port, script),
        psql_script(proxy.port, script),
    );
    assert!(want.contains("2024-03-31 12:00:00+02"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
    // The types a driver reads from RowDescription, through the extended protocol.
    let types = |url: String| {
        rt().block_on(async {
            let c = connect(&url).await.unwrap();
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS ev (id int, at timestamptz, day date, ts timestamp)",
            )
            .await
            .unwrap();
            let st = c
                .prepare(
                    "SELECT at + interval '1 day', day + interval '1 day', day + 1, \
                     interval '1 day', '2024-05-06'::date - '2024-05-01'::date, \
                     '2024-05-06'::timestamp - '2024-05-01'::timestamp FROM ev",
                )
                .await
                .unwrap();
            let mut seen: Vec<String> = st
                .columns()
                .iter()
                .map(|c| c.type_().name().to_string())
                .collect();
            seen.push(crate::sqlite_ddl::code(&c, "SELECT interval 'soon'").await);
            seen
        })
    };
    let want = types(pg.url("app"));
    assert_eq!(
        want,
        [
            "timestamptz",
            "timestamp",
            "date",
            "interval",
            "int4",
            "interval",
            "22007"
        ]
    );
    assert_eq!(types(proxy.url("app", "secret")), want);
}

/// Reports as apps write them: GROUP BY `date_trunc('day', at)` of a timestamptz (days
/// of the session's zone), EXTRACT and date_part of dates, timestamps and timestamptz,
/// a WHERE on an extracted year, the SQL standard's POSITION/SUBSTRING forms,
/// `to_timestamp`, `make_date`, days from `generate_series` over dates joined to rows. Before, date_trunc, date_part, to_timestamp and
/// make_date did not exist and EXTRACT was a syntax error; EXTRACT's second, milliseconds
/// and epoch printed `9.5` (PostgreSQL's numeric `9.500000`).
#[test]
fn date_trunc_and_extract_answer_as_on_postgres() {
    let script = "\\set VERBOSITY terse\n\
        SET TIME ZONE 'Europe/Berlin';\n\
        CREATE TABLE orders (id int, at timestamptz, day date, ts timestamp, total numeric(10,2));\n\
        INSERT INTO orders VALUES (1, '2024-05-06 22:30:09.5+00', '2024-05-06', '2024-05-06 07:08:09', 10), \
        (2, '2024-05-06 21:00:00+00', '2024-02-29', '2024-12-30 23:59:59', 5.5), \
        (3, '2024-05-07 08:00:00+00', '2024-12-31', '2024-01-01 00:00:00', 1);\n\
        SELECT date_trunc('day', at) AS d, count(*), sum(total) FROM orders GROUP BY 1 ORDER BY 1;\n\
        SELECT id, extract(year from day), extract(month from at), extract(day from at), \
        extract(hour from ts), extract(dow from day), extract(doy from day), extract(week from ts), \
        extract(quarter from day), extract(epoch from day) FROM orders ORDER BY id;\n\
        SELECT id, date_part('hour', at), date_part('minute', ts), date_trunc('month', ts), \
        date_trunc('week', ts), date_trunc('year', day), date_trunc('hour', at) FROM orders ORDER BY id;\n\
        SELECT count(*) FROM orders WHERE extract(year from day) = 2024 AND date_part('month', day) = 5;\n\
        SELECT position('b' in 'abc'), substring('abcdef' from 2 for 3), substring('abcdef' from 3), \
        ceil(1.2), floor(-1.5);\n\
        SELECT to_timestamp(0), make_date(2024, 2, 29);\n\
        SELECT extract(epoch from '2024-05-06 07:00:00+00'::timestamptz) = 1714978800;\n\
        SELECT id, extract(second from at), extract(milliseconds from ts), extract(epoch from at), \
        extract(epoch from interval '1 day 2 hours'), extract(second from at) * 2 FROM orders \
        WHERE extract(epoch from at) > 1000 ORDER BY extract(epoch from at) DESC;\n\
        SELECT d::date, count(o.id) FROM generate_series('2024-05-05'::date, '2024-05-08'::date, interval '1 day') d \
        LEFT JOIN orders o ON o.at::date = d::date GROUP BY 1 ORDER BY 1;\n\
        SELECT g::text FROM generate_series(TIMESTAMP '2024-01-31 00:00', TIMESTAMP '2024-04-01 02:00', '1 month'::interval) g;\n\
        SELECT date_trunc('fortnight', now());\n";
    let (want, got) = psql_on_both(script);
    assert!(
        want.contains("2024-05-07 00:00:00+02 |     2 | 11.00"),
        "{want}"
    );
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// `AT TIME ZONE` both ways (it was a syntax error), `::time` of a timestamptz in the
/// session's zone and of a timestamp (the cast was dropped: the whole timestamp came
/// back), and a timestamptz written with an offset but no seconds (`00:00+05:30` was read
/// as wall-clock time in the session's zone, an hour or more off, without a word).
#[test]
fn time_zones_and_times_answer_as_on_postgres() {
    let script = "\\set VERBOSITY terse\n\
        SET TIME ZONE 'Europe/Berlin';\n\
        CREATE TABLE tz1 (id int, at timestamptz, ts timestamp);\n\
        INSERT INTO tz1 VALUES (1, '2024-05-06 22:30:09.5+00', '2024-05-06 07:08:09'), \
        (2, '2024-01-01 00:00+00', '2024-12-31 23:59:59.25'), (3, '2024-01-01 00:00+05:30', NULL);\n\
        SELECT id, at, at AT TIME ZONE 'UTC', at AT TIME ZONE 'America/New_York', ts AT TIME ZONE 'UTC', \
        ts AT TIME ZONE 'Asia/Tokyo' FROM tz1 ORDER BY id;\n\
        SELECT id, at::time, ts::time, (at AT TIME ZONE 'UTC')::date FROM tz1 ORDER BY id;\n\
        SELECT date_trunc('day', at AT TIME ZONE 'America/New_York') d, count(*) FROM tz1 GROUP BY 1 ORDER BY 1;\n\
        SELECT '10:30'::time, '10:30:01.5'::time, '2024-01-01T00:00Z'::timestamptz, '2024-01-01 10:00-03'::timestamptz;\n\
        SELECT id FROM tz1 WHERE at AT TIME ZONE 'UTC' > '2024-03-01' ORDER BY id;\n\
        SELECT at AT TIME ZONE 'Mars/Olympus' FROM tz1;\n\
        SELECT at AT TIME ZONE 'UTC', ts AT TIME ZONE 'UTC' FROM tz1 LIMIT 1 \\gdesc\n";
    let (want, got) = psql_on_both(script);
    assert!(want.contains("timestamp without time zone"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}
