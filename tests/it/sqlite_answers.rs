//! The SQLite backend's answers compared with a real PostgreSQL in the same run, where
//! SQLite's own would differ without an error: LIKE, now(), numeric scale and exact
//! arithmetic, TimeZone, jsonb, varchar(n), aggregate types, timestamps, booleans as text.

use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use crate::support::{connect, first_column, rt, sqlite_proxy};

/// LIKE and ILIKE answer as on PostgreSQL: case-sensitive LIKE, `\` as the default escape
/// (Django's `startswith` sends `'change\_%'`), an explicit or empty ESCAPE, parameters.
#[test]
fn like_answers_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let queries = [
        r"SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE v LIKE 'change\_%'",
        r"SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE v LIKE 'change%'",
        r"SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE v ILIKE 'CHANGE\_%'",
        r"SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE v NOT ILIKE 'change%'",
        r"SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE v LIKE '50\%'",
        r"SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE v LIKE 'a\\b'",
        r"SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE v LIKE 'change!_%' ESCAPE '!'",
        r"SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE v LIKE 'a\b' ESCAPE ''",
    ];
    let run = |url: String| {
        rt().block_on(async move {
            let c = connect(&url).await.unwrap();
            c.batch_execute(
                r"CREATE TABLE t (id int PRIMARY KEY, v text);
                  INSERT INTO t VALUES (1, 'change_me'), (2, 'changeXme'), (3, 'Change_me'),
                    (4, '50%'), (5, '50x'), (6, 'a\b'), (7, 'ab');",
            )
            .await
            .unwrap();
            let mut out = Vec::new();
            for q in queries {
                let rows = c.simple_query(q).await.unwrap();
                out.push(
                    rows.iter()
                        .find_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(r) => {
                                Some(r.get(0).unwrap_or("NULL").to_string())
                            }
                            _ => None,
                        })
                        .unwrap_or_default(),
                );
            }
            let p = c
                .query_one(
                    "SELECT count(*) FROM t WHERE v LIKE $1::text",
                    &[&r"change\_%"],
                )
                .await
                .unwrap();
            out.push(p.get::<_, i64>(0).to_string());
            out
        })
    };
    let direct = run(pg.url("app"));
    let through = run(proxy.url("app", "secret"));
    assert_eq!(direct[0], "change_me", "{direct:?}");
    for ((q, want), got) in queries.iter().zip(&direct).zip(&through) {
        assert_eq!(got, want, "{q}");
    }
    assert_eq!(through.last(), direct.last());
}

/// now() is the transaction's start, as on PostgreSQL: the same all through a transaction
/// (a row's default and a later SELECT agree), a new value in the next one.
#[test]
fn now_is_the_transaction_s_start() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let mut c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute("CREATE TABLE ev (id serial PRIMARY KEY, at timestamptz)")
            .await
            .unwrap();
        let tx = c.transaction().await.unwrap();
        let first = tx
            .query_one("SELECT now()::text", &[])
            .await
            .unwrap()
            .get::<_, String>(0);
        tokio::time::sleep(Duration::from_millis(30)).await;
        tx.batch_execute("INSERT INTO ev (at) VALUES (now())")
            .await
            .unwrap();
        let second = tx
            .query_one("SELECT now()::text", &[])
            .await
            .unwrap()
            .get::<_, String>(0);
        let stored: String = tx
            .query_one("SELECT at::text FROM ev", &[])
            .await
            .unwrap()
            .get(0);
        tx.commit().await.unwrap();
        assert_eq!(first, second);
        assert_eq!(stored, first);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let tx = c.transaction().await.unwrap();
        let next = tx
            .query_one("SELECT now()::text", &[])
            .await
            .unwrap()
            .get::<_, String>(0);
        tx.commit().await.unwrap();
        assert!(next > first, "{next} after {first}");
    });
}

/// numeric(p, s) columns answer with their scale, as PostgreSQL stores them: 25.00 and
/// 2328.60, not 25 and 2328.6; more decimals than the scale are rounded as PostgreSQL
/// rounds them on the way in.
#[test]
fn numeric_columns_keep_their_scale() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let run = |url: String| {
        rt().block_on(async move {
            let c = connect(&url).await.unwrap();
            c.batch_execute(
                "CREATE TABLE m (id int PRIMARY KEY, price numeric(10,2), ratio numeric(6,3));
                 INSERT INTO m VALUES (1, 25, 1.5), (2, 2328.6, 0.1235), (3, -0.5, 2), (4, NULL, 1.0005);",
            )
            .await
            .unwrap();
            let mut out = Vec::new();
            for m in c
                .simple_query("SELECT id, price, ratio FROM m ORDER BY id")
                .await
                .unwrap()
            {
                if let SimpleQueryMessage::Row(r) = m {
                    out.push(format!("{:?} {:?}", r.get(1), r.get(2)));
                }
            }
            let p: Vec<String> = c
                .query("SELECT price FROM m WHERE id = $1", &[&2i32])
                .await
                .unwrap()
                .iter()
                .map(|r| format!("{:?}", r.columns()[0].type_()))
                .collect();
            out.extend(p);
            out
        })
    };
    let direct = run(pg.url("app"));
    assert_eq!(direct[1], "Some(\"2328.60\") Some(\"0.124\")", "{direct:?}");
    assert_eq!(run(proxy.url("app", "secret")), direct);
}

/// Runs `statements`, then each of `questions`, on a new connection to `url`: the client
/// and each answer's first column joined by `sep`.
async fn ask(
    url: &str,
    statements: &[&str],
    questions: &[&str],
    sep: &str,
) -> (tokio_postgres::Client, Vec<String>) {
    let c = connect(url).await.unwrap();
    for s in statements {
        c.batch_execute(s).await.unwrap();
    }
    let mut got = Vec::new();
    for q in questions {
        got.push(first_column(&c, q).await.join(sep));
    }
    (c, got)
}

/// numeric arithmetic is exact, with PostgreSQL's result scales (sum: the larger scale,
/// product: the sum, quotient: 16 significant digits at least), where SQLite computes in
/// floating point: `price * q` read 6985.799999999999, `price / 3` 776.1999999999999,
/// `avg` 784.5666666666666, `7::numeric / 2` 3, and `0.1 + 0.2 = 0.3` was false.
#[test]
fn numeric_arithmetic_is_exact_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let statements = [
        "CREATE TABLE p (id int PRIMARY KEY, price numeric(10,2), q int, w float8)",
        "INSERT INTO p VALUES (1, 2328.6, 3, 1.5), (2, 25, 1, 2), (3, 0.1, 2, 0.25), (4, 1.005, 7, 0)",
        "UPDATE p SET price = price * 1.001 WHERE id = 1",
    ];
    let questions = [
        "SELECT string_agg(concat_ws('|', price, price + 0.01, price * q, price / 3, -price, \
         price % 7, price * w), ' ; ' ORDER BY id) FROM p",
        "SELECT price * q AS t FROM p ORDER BY t DESC",
        "SELECT price / 3 FROM p ORDER BY 1",
        "SELECT concat_ws('|', sum(price), avg(price), avg(q), sum(q), sum(price * q)) FROM p",
        "SELECT concat_ws('|', 2.10 + 0.20, 0.1 + 0.2 = 0.3, 10.0 / 4, 1 / 3.0, 7::numeric / 2, \
         '1.50'::numeric(10,1), 1.50::numeric, 5.5 % 2, 10 / 4)",
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM p WHERE price * q > 100 OR price = 1.01",
        "SELECT avg(price) FROM p WHERE id > 10",
    ];
    rt().block_on(async {
        let mut answers = Vec::new();
        for url in [pg.url("app"), proxy.url("app", "secret")] {
            let (c, mut got) = ask(&url, &statements, &questions, " / ").await;
            // The result columns are numeric to the client too.
            let st = c.prepare("SELECT price * q, avg(q), 1.5 * 2 FROM p GROUP BY price, q").await.unwrap();
            got.push(format!("{:?}", st.columns().iter().map(|c| c.type_().name()).collect::<Vec<_>>()));
            let err = c.simple_query("SELECT price / 0 FROM p").await.unwrap_err();
            got.push(format!("{:?}", err.code().map(|c| c.code())));
            answers.push(got);
        }
        assert_eq!(answers[0][2], "0.03333333333333333333 / 0.33666666666666666667 / 8.3333333333333333 / 776.9766666666666667", "{:?}", answers[0]);
        for (i, (want, got)) in answers[0].iter().zip(&answers[1]).enumerate() {
            assert_eq!(got, want, "{}", questions.get(i).copied().unwrap_or("types / error"));
        }
    });
}

/// timestamptz values are shown in the session's TimeZone, and a value written without an
/// offset is read as wall-clock time there, as PostgreSQL does; an unknown zone is refused
/// with PostgreSQL's SQLSTATE. Before, every value read `+00` whatever the session's zone.
#[test]
fn timestamptz_follows_the_session_time_zone_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let steps = [
        "CREATE TABLE tz (id int PRIMARY KEY, t timestamptz)",
        "SET TimeZone = 'Europe/Berlin'",
        "INSERT INTO tz VALUES (1, '2024-05-06 07:08:09'), (2, '2024-01-06 07:08:09.25+05'), \
         (3, '2024-03-31 02:30:00')",
        "SELECT t FROM tz ORDER BY id",
        "SELECT id FROM tz WHERE t = '2024-05-06 07:08:09'",
        "SHOW TimeZone",
        "SELECT t::text || ' / ' || concat('at ', t) FROM tz WHERE id = 1",
        "SET TIME ZONE 'America/New_York'",
        "SELECT t FROM tz ORDER BY id",
        "SET TimeZone = 'Asia/Kolkata'",
        "SELECT t FROM tz WHERE id = 1",
        "SET TimeZone = 'Mars/Olympus'",
        "SET TimeZone = 'UTC'",
        "SELECT t FROM tz ORDER BY id",
    ];
    rt().block_on(async {
        let mut answers = Vec::new();
        for url in [pg.url("app"), proxy.url("app", "secret")] {
            let c = connect(&url).await.unwrap();
            let mut got = Vec::new();
            for s in steps {
                got.push(match c.simple_query(s).await {
                    Ok(rows) => rows
                        .iter()
                        .filter_map(|m| match m {
                            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join(" / "),
                    Err(e) => format!("error {:?}", e.code().map(|c| c.code())),
                });
            }
            answers.push(got);
        }
        assert_eq!(
            answers[0][3],
            "2024-05-06 07:08:09+02 / 2024-01-06 03:08:09.25+01 / 2024-03-31 03:30:00+02"
        );
        for (s, (want, got)) in steps.iter().zip(answers[0].iter().zip(&answers[1])) {
            assert_eq!(got, want, "{s}");
        }
    });
}

/// jsonb values come back as PostgreSQL prints them (keys ordered, duplicates collapsed,
/// its spacing), not as the text was written.
#[test]
fn jsonb_values_read_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let run = |url: String| {
        rt().block_on(async move {
            let c = connect(&url).await.unwrap();
            c.batch_execute(
                r#"CREATE TABLE j (id int PRIMARY KEY, doc jsonb);
                   INSERT INTO j VALUES (1, '{"zeta":1,"a":[1,2.50],"b":{"y":true,"x":null}}'),
                     (2, '[1e2, "caf\u00e9", {"bb": 1, "a": 2}]'), (3, '{"a":1,"a":2}'), (4, '"s"');"#,
            )
            .await
            .unwrap();
            first_column(&c, "SELECT doc FROM j ORDER BY id").await
        })
    };
    let direct = run(pg.url("app"));
    assert_eq!(
        direct[0],
        r#"{"a": [1, 2.50], "b": {"x": null, "y": true}, "zeta": 1}"#
    );
    assert_eq!(run(proxy.url("app", "secret")), direct);
}

/// varchar(n) holds its length as on PostgreSQL: n characters (not bytes) fit, one more is
/// refused with 22001 and PostgreSQL's message, on INSERT and UPDATE.
#[test]
fn varchar_lengths_are_enforced_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let run = |url: String| {
        rt().block_on(async move {
            let c = connect(&url).await.unwrap();
            c.batch_execute("CREATE TABLE v (id int PRIMARY KEY, name varchar(5))")
                .await
                .unwrap();
            let mut out = Vec::new();
            for sql in [
                "INSERT INTO v VALUES (1, 'zoëzo')",
                "INSERT INTO v VALUES (2, 'abcdef')",
                "UPDATE v SET name = name || 'x' WHERE id = 1",
                "INSERT INTO v VALUES (3, NULL)",
            ] {
                out.push(match c.batch_execute(sql).await {
                    Ok(()) => "ok".to_string(),
                    Err(e) => {
                        let db = e.as_db_error().unwrap();
                        format!("{} {}", db.code().code(), db.message())
                    }
                });
            }
            out
        })
    };
    let direct = run(pg.url("app"));
    assert_eq!(
        direct[1],
        "22001 value too long for type character varying(5)"
    );
    assert_eq!(run(proxy.url("app", "secret")), direct);
}

/// Aggregates of a column take its type, as in PostgreSQL: max() of a timestamptz is a
/// timestamptz (not text), sum() of numeric(10,2) keeps two decimals, sum() of an
/// integer is a bigint.
#[test]
fn aggregates_of_a_column_have_postgresql_s_types() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(
            "CREATE TABLE orders (id serial PRIMARY KEY, at timestamptz NOT NULL, total numeric(10,2), n integer);
             INSERT INTO orders (at, total, n) VALUES ('2024-01-03 08:30:30.25+00', 23.40, 1), ('2024-01-01 00:00:00+00', 46.10, 2)",
        )
        .await
        .unwrap();
        let sql = "SELECT max(o.at) AS m, sum(total) AS s, sum(n), min(total) FROM orders o";
        let st = c.prepare(sql).await.unwrap();
        let types: Vec<String> = st.columns().iter().map(|c| c.type_().name().to_string()).collect();
        assert_eq!(types, vec!["timestamptz", "numeric", "int8", "numeric"]);
        let rows = c.simple_query(sql).await.unwrap();
        let Some(SimpleQueryMessage::Row(r)) = rows.get(1) else {
            panic!("{rows:?}")
        };
        let got: Vec<&str> = (0..4).map(|i| r.get(i).unwrap()).collect();
        assert_eq!(got, vec!["2024-01-03 08:30:30.25+00", "69.50", "3", "23.40"]);
        // Arithmetic on numeric literals answers with PostgreSQL's scale, not SQLite's
        // floating point (2.3000000000000003).
        let rows = c.simple_query("SELECT 2.10 + 0.20, 1.5 * 2, 1 + 2, -(0.1 + 0.2)").await.unwrap();
        let Some(SimpleQueryMessage::Row(r)) = rows.get(1) else {
            panic!("{rows:?}")
        };
        let got: Vec<&str> = (0..4).map(|i| r.get(i).unwrap()).collect();
        assert_eq!(got, vec!["2.30", "3.0", "3", "-0.3"]);
    });
}

/// jsonb's operators answer as PostgreSQL's (Django's JSONField lookups use them:
/// has_key `?`, has_any_keys `?|`, has_keys `?&`, contains `@>`, contained_by `<@`, key
/// paths `#>`/`#>>`).
#[test]
fn jsonb_operators_answer_as_in_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(
            "CREATE TABLE docs (id serial PRIMARY KEY, data jsonb);
             INSERT INTO docs (data) VALUES ('{\"a\": 1, \"tags\": [\"x\", \"y\"], \"n\": {\"b\": [10, 20]}}'),
               ('{\"b\": 2}'), ('[\"a\", \"c\"]'), (NULL)",
        )
        .await
        .unwrap();
        let ids = |sql: &'static str| {
            let c = &c;
            async move { first_column(c, sql).await.join(",") }
        };
        assert_eq!(ids("SELECT id FROM docs WHERE data ? 'a' ORDER BY id").await, "1,3");
        assert_eq!(ids("SELECT id FROM docs WHERE data ?| '{b,c}' ORDER BY id").await, "2,3");
        assert_eq!(ids("SELECT id FROM docs WHERE data ?& array['a','tags'] ORDER BY id").await, "1");
        assert_eq!(ids("SELECT id FROM docs WHERE data @> '{\"tags\": [\"y\"]}' ORDER BY id").await, "1");
        assert_eq!(ids("SELECT id FROM docs WHERE data @> '\"c\"' ORDER BY id").await, "3");
        assert_eq!(ids("SELECT id FROM docs WHERE data <@ '{\"b\": 2, \"z\": 0}' ORDER BY id").await, "2");
        assert_eq!(ids("SELECT data #> '{n,b}' FROM docs WHERE id = 1").await, "[10, 20]");
        assert_eq!(ids("SELECT data #>> '{n,b,-1}' FROM docs WHERE id = 1").await, "20");
        assert_eq!(ids("SELECT data - 'tags' #- '{n,b,0}' FROM docs WHERE id = 1").await, "{\"a\": 1, \"n\": {\"b\": [20]}}");
        // Parameters, as Django sends them; arithmetic stays arithmetic.
        let n: i64 = c
            .query_one("SELECT count(*) FROM docs WHERE data ? $1", &[&"b"])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
        assert_eq!(ids("SELECT 5 - 2").await, "3");
        assert_eq!(
            ids("SELECT '{\"a\": 1}'::jsonb || '{\"b\": [2]}'::jsonb").await,
            "{\"a\": 1, \"b\": [2]}"
        );
        assert_eq!(ids("SELECT 'a' || 'b'").await, "ab");
    });
}

/// Timestamps written with an offset, as a date alone, or with `T` and `Z` are stored as
/// PostgreSQL stores them (a timestamptz as its instant in UTC, a timestamp without the
/// offset): shown, cast to text, compared and updated as PostgreSQL shows and compares
/// them.
#[test]
fn timestamps_are_stored_and_shown_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let statements = [
        "CREATE TABLE tz (id int PRIMARY KEY, t timestamptz, u timestamp)",
        "INSERT INTO tz VALUES (1, '2024-05-06 07:08:09+02', '2024-05-06 07:08:09+02'), \
         (2, '2024-05-06 07:08:09.5-05:30', '2024-05-06T07:08:09'), (3, '2024-05-06', '2024-05-06'), \
         (4, '2024-05-06 23:30:00Z', '2024-05-06 23:30:00.120')",
        "UPDATE tz SET t = '2024-01-01 01:00:00+01' WHERE id = 4",
        "INSERT INTO tz VALUES (5, '2024-02-02 02:02:02+02', NULL) ON CONFLICT (id) DO NOTHING",
    ];
    let questions = [
        "SELECT string_agg(id || '|' || t || '|' || u, ' ; ' ORDER BY id) FROM tz",
        "SELECT string_agg(t::text, ' ; ' ORDER BY t) FROM tz",
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM tz WHERE t < '2024-05-06 06:00:00+00'",
        "SELECT max(t)::text FROM tz",
        // Constants with other offsets compare as instants, not as text.
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM tz WHERE t > '2024-05-06 10:00:00+05'",
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM tz \
         WHERE t BETWEEN '2024-05-06 10:00:00+05' AND '2024-05-06 12:00:00+05'",
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM tz WHERE t IN ('2024-05-06 07:08:09+02')",
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM tz \
         WHERE t < '2024-05-06 10:00:00+05'::timestamptz",
        "SELECT '2024-05-06 07:08:09+02'::timestamptz::text || ' ' || '2024-05-06 07:08:09+02'::timestamp",
    ];
    rt().block_on(async {
        let mut answers = Vec::new();
        for url in [pg.url("app"), proxy.url("app", "secret")] {
            answers.push(ask(&url, &statements, &questions, "").await.1);
        }
        for (q, (want, got)) in questions.iter().zip(answers[0].iter().zip(&answers[1])) {
            assert_eq!(got, want, "{q}");
        }
    });
}

/// Booleans made text read `true`/`false` as on PostgreSQL (SQLite keeps 0/1), in casts
/// and concatenations, with PostgreSQL's column names; psql's rendering of the whole
/// result is compared, names and NULLs included.
#[test]
fn booleans_made_text_read_true_and_false_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let setup = "CREATE TABLE flags (id int PRIMARY KEY, b boolean, s text); \
                 INSERT INTO flags VALUES (1, true, 'x'), (2, false, 'y'), (3, NULL, 'z')";
    let query = "SELECT id, b::text, b || s, s || b, CAST(b AS varchar), (id > 1)::text, \
                 true::text, b FROM flags ORDER BY id";
    let run = |port: u16| {
        let (ok, out, err) = crate::support::psql(port, "app", "secret", &["-c", setup]);
        assert!(ok, "{err}");
        let (ok, out2, err) = crate::support::psql(
            port,
            "app",
            "secret",
            &[
                "-F",
                "|",
                "-P",
                "tuples_only=off",
                "-P",
                "footer=off",
                "-c",
                query,
            ],
        );
        assert!(ok, "{err}");
        format!("{out}\n{out2}")
    };
    let (want, got) = (run(pg.port), run(proxy.port));
    assert!(
        want.contains("1|true|truex|xtrue|true|false|true|t"),
        "{want}"
    );
    assert_eq!(got, want);
}

/// Constraint violations name what PostgreSQL names: a unique violation its key, UNIQUE
/// constraint or unique index — in the message and in the fields drivers read (psycopg's
/// `diag.constraint_name`, tokio-postgres' `constraint()`), also after the table was
/// renamed — and a NOT NULL violation its column and table. Before, the message named
/// SQLite's `table.column` and no field was sent.
#[test]
fn violations_name_the_constraint_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let setup = "CREATE TABLE uq (id serial PRIMARY KEY, a int UNIQUE, b text NOT NULL, \
                 c int, d int, e int, UNIQUE (c, d)); \
                 CREATE UNIQUE INDEX uq_b_idx ON uq (b); \
                 ALTER TABLE uq ADD CONSTRAINT uq_named UNIQUE (e); \
                 INSERT INTO uq (a, b, c, d, e) VALUES (1, 'x', 1, 1, 1), (2, 'y', 2, 2, 2); \
                 CREATE TABLE renamed (k int PRIMARY KEY, v text UNIQUE); \
                 ALTER TABLE renamed RENAME TO moved; INSERT INTO moved VALUES (1, 'v')";
    let failing = [
        "INSERT INTO uq (id, a, b) VALUES (1, 3, 'z')",
        "INSERT INTO uq (a, b) VALUES (1, 'z')",
        "INSERT INTO uq (a, b, c, d) VALUES (3, 'z', 1, 1)",
        "INSERT INTO uq (a, b) VALUES (3, 'x')",
        "INSERT INTO uq (a, b, e) VALUES (3, 'z', 1)",
        "UPDATE uq SET a = 1 WHERE a = 2",
        "INSERT INTO uq (a, b) VALUES (3, NULL)",
        "UPDATE uq SET b = NULL",
        "INSERT INTO moved VALUES (1, 'w')",
        "INSERT INTO moved VALUES (2, 'v')",
    ];
    let run = |url: String| {
        rt().block_on(async {
            let c = connect(&url).await.unwrap();
            c.batch_execute(setup).await.unwrap();
            let mut out = Vec::new();
            for sql in failing {
                let e = c.batch_execute(sql).await.unwrap_err();
                let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
                out.push(format!(
                    "{sql}: {} {} schema={:?} table={:?} column={:?} constraint={:?}",
                    db.code().code(),
                    db.message(),
                    db.schema(),
                    db.table(),
                    db.column(),
                    db.constraint()
                ));
            }
            out
        })
    };
    let want = run(pg.url("app"));
    assert!(want[0].contains("\"uq_pkey\""), "{want:?}");
    let got = run(proxy.url("app", "secret"));
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "the SQLite default, then PostgreSQL");
    }
}
