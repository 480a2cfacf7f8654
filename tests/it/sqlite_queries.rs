//! Query shapes on the SQLite backend compared with a real PostgreSQL in the same run:
//! where NULLs sort, DISTINCT ON, JSON set-returning functions in FROM (with the tables
//! before them), `->>` of an object or array, set-returning functions in the SELECT list,
//! errors, typed and numeric columns refusing what they cannot hold.

use crate::sqlite_ddl::psql_on_both;

/// Before: NULLs sorted first ascending (SQLite's order) in every ORDER BY, window and
/// ordered aggregate; DISTINCT ON was refused; jsonb_each and its kin were unknown
/// relations; `meta->>'z'` read `[1,2]`.
#[test]
fn query_shapes_answer_as_on_postgres() {
    let script = "CREATE TABLE t2 (id serial PRIMARY KEY, name text, grp int, score numeric(6,2), ok boolean, meta jsonb);\n\
        INSERT INTO t2 (name, grp, score, ok, meta) VALUES ('a', 1, 1.5, true, '{\"k\": 1}'), \
        ('b', 1, 2.25, false, '{\"k\": 2, \"z\": [1,2]}'), ('c', 2, NULL, NULL, NULL), ('d', 2, 10, true, '{\"k\": 3, \"s\": \"x\"}');\n\
        SELECT name, ok, score FROM t2 ORDER BY ok, score DESC;\n\
        SELECT name, row_number() OVER (ORDER BY score), rank() OVER (PARTITION BY grp ORDER BY score DESC) FROM t2 ORDER BY 1;\n\
        SELECT string_agg(name, ',' ORDER BY score DESC), string_agg(name, ',' ORDER BY ok) FROM t2;\n\
        SELECT DISTINCT ON (grp) grp, name, score FROM t2 ORDER BY grp, score DESC;\n\
        SELECT DISTINCT ON (\"t2\".\"grp\") \"t2\".\"id\", \"t2\".\"name\" FROM \"t2\" ORDER BY \"t2\".\"grp\" ASC, \"t2\".\"id\" DESC LIMIT 1 OFFSET 1;\n\
        SELECT DISTINCT ON (2) name AS n, grp FROM t2 ORDER BY 2, 1;\n\
        SELECT * FROM jsonb_each('{\"a\":1,\"b\":\"x\",\"c\":[1,2],\"d\":null,\"e\":true}') ORDER BY key;\n\
        SELECT * FROM jsonb_each_text('{\"a\":1,\"b\":\"x\",\"c\":{\"q\":1}}') ORDER BY key;\n\
        SELECT * FROM jsonb_array_elements_text('[\"a\",\"b\",null]');\n\
        SELECT k, count(*) FROM t2, jsonb_object_keys(meta) k GROUP BY k ORDER BY 1;\n\
        SELECT id, e FROM t2, jsonb_array_elements(meta->'z') e ORDER BY 1, 2;\n\
        SELECT t2.id, j.key, j.value FROM t2 CROSS JOIN jsonb_each(t2.meta) j WHERE j.key <> 'k' ORDER BY 1, 2;\n\
        SELECT id, meta->>'z', meta->>'s', meta->'z'->>0 FROM t2 ORDER BY id;\n";
    let (want, got) = psql_on_both(script);
    assert!(
        want.contains("jsonb_object_keys") || want.contains(" k "),
        "{want}"
    );
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// Set-returning functions in the SELECT list (`SELECT id, unnest(tags)`,
/// `generate_series`, `jsonb_object_keys`, `jsonb_array_elements`) give a row per value,
/// and FROM functions take column names from their alias (`jsonb_each(j) e(k, v)`,
/// `generate_series(1, t.n) AS s(v)` over the rows before it), are typed in Describe
/// (`\gdesc`) and named as PostgreSQL names them (`generate_series`, not `value`). Before:
/// SQLite's "no such function: unnest", "column s.v does not exist", the generate_series
/// over a column failed, and FROM functions' columns were text in Describe.
#[test]
fn set_returning_functions_answer_as_on_postgres() {
    let script = "CREATE TABLE js (id int, j jsonb, tags text[], n int);\n\
        INSERT INTO js VALUES (1, '{\"a\": 1, \"b\": [1, 2]}', '{x,y}', 2), (2, '{}', '{}', 0), (3, NULL, NULL, 1);\n\
        SELECT id, unnest(tags) FROM js ORDER BY 1, 2;\n\
        SELECT unnest(ARRAY[1, 2]) AS n;\n\
        SELECT generate_series(1, 3);\n\
        SELECT id, generate_series(1, n) g FROM js ORDER BY id, g;\n\
        SELECT DISTINCT jsonb_object_keys(j) AS k FROM js ORDER BY k;\n\
        SELECT jsonb_array_elements('[1, {\"a\": 2}]'::jsonb);\n\
        SELECT count(*) FROM (SELECT unnest(tags) FROM js) x;\n\
        SELECT id, s.v FROM js, generate_series(1, js.n) AS s(v) ORDER BY 1, 2;\n\
        SELECT e.k, e.v FROM js, jsonb_each(js.j) e(k, v) ORDER BY 1;\n\
        SELECT s.v FROM jsonb_array_elements_text('[\"a\", \"b\"]') AS s(v);\n\
        SELECT * FROM generate_series(1, 2);\n\
        SELECT generate_series.generate_series FROM generate_series(3, 3);\n\
        SELECT * FROM jsonb_array_elements('[1]') x;\n\
        SELECT g, x FROM generate_series(1, 2) g, jsonb_array_elements('[true]') x \\gdesc\n\
        SELECT * FROM jsonb_each('{}') \\gdesc\n";
    let (want, got) = psql_on_both(script);
    assert!(want.contains(" b | [1, 2]"), "{want}");
    assert!(want.contains(" x      | jsonb"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// Errors read as PostgreSQL's, position included (psql's `LINE n:` and caret): a
/// missing column, relation or qualified column, a syntax error (it was the SQL parser's
/// `Expected: …, found: selec at Line: 1, Column: 1`), an unknown column in an INSERT and
/// an ambiguous one (SQLite's own words before), and division by zero, which SQLite
/// answers with NULL.
#[test]
fn errors_read_as_on_postgres() {
    let script = "CREATE TABLE e1 (id int, v text);\n\
        CREATE TABLE e2 (id int);\n\
        SELECT nosuch FROM e1;\n\
        SELECT 'nosuch', v\n  FROM nosuch;\n\
        SELECT e1.nosuch FROM e1;\n\
        selec 1;\n\
        SELECT id,\n  FROM e1;\n\
        INSERT INTO e1 (id, bogus) VALUES (1, 2);\n\
        SELECT id FROM e1 JOIN e2 ON e2.id = e1.id;\n\
        SELECT 1 / 0;\n\
        SELECT 5 % 0;\n\
        SELECT 1.0 / 0;\n\
        SELECT 7 / 2, 7.0 / 2, -7 % 3;\n";
    let (want, got) = psql_on_both(script);
    assert!(want.contains("LINE 2:   FROM nosuch"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// A value an integer, boolean, date, float, uuid or smallint column cannot hold is
/// refused as PostgreSQL refuses it (22P02, 22003, with the literal's position), in
/// INSERT, UPDATE and WHERE; a fraction into an integer is rounded, input forms
/// PostgreSQL accepts (`'yes'`, `'1e3'`, an upper-case uuid) are stored as it stores them.
/// Before, SQLite kept `'abc'` in the integer column and `'maybe'` in the boolean one.
#[test]
fn typed_columns_refuse_what_postgresql_refuses() {
    let script = "CREATE TABLE ty (i int, b boolean, d date, f float8, u uuid, s smallint);\n\
        INSERT INTO ty (i) VALUES ('abc');\n\
        INSERT INTO ty (b) VALUES ('maybe');\n\
        INSERT INTO ty (d) VALUES ('notadate');\n\
        INSERT INTO ty (f) VALUES ('x1');\n\
        INSERT INTO ty (u) VALUES ('nope');\n\
        INSERT INTO ty (s) VALUES (40000);\n\
        INSERT INTO ty (i, b, d, f, u, s) VALUES (1.5, 'yes', '2024-02-03', '1e3', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '-3');\n\
        INSERT INTO ty (i, b) VALUES ('7', 'off');\n\
        UPDATE ty SET i = 'x' WHERE i = 2;\n\
        SELECT * FROM ty WHERE i = 'abc';\n\
        SELECT * FROM ty WHERE b = 'tru';\n\
        SELECT * FROM ty ORDER BY i;\n";
    let (want, got) = psql_on_both(script);
    assert!(
        want.contains("LINE 1: INSERT INTO ty (u) VALUES ('nope');"),
        "{want}"
    );
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// A numeric value SQLite cannot hold exactly (it keeps a number as a 64-bit integer or a
/// double: 15 significant digits) is refused with 22003, as a literal, as text and as a
/// driver's parameter, and nothing is written; before, `12345678901234567.89` was stored
/// as 12345678901234568.00. Values within a double's digits are kept exactly.
#[test]
fn numeric_values_too_wide_for_sqlite_are_refused_not_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = crate::support::sqlite_proxy(&dir);
    crate::support::rt().block_on(async move {
        let c = crate::support::connect(&proxy.url("app", "secret"))
            .await
            .unwrap();
        c.batch_execute("CREATE TABLE w (a numeric(30,2), b numeric)")
            .await
            .unwrap();
        for sql in [
            "INSERT INTO w (a) VALUES (12345678901234567.89)",
            "INSERT INTO w (b) VALUES ('0.1234567890123456789')",
            "INSERT INTO w (b) VALUES (123456789012345678901234567890)",
            "INSERT INTO w (a, b) VALUES (1, 1); UPDATE w SET b = b * 1.234567890123456789",
        ] {
            let e = c.batch_execute(sql).await.unwrap_err();
            assert_eq!(e.code().map(|c| c.code()), Some("22003"), "{sql}: {e}");
        }
        let e = c
            .batch_execute("INSERT INTO w (b) VALUES ('98765432109876543210.5'::numeric)")
            .await
            .unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("22003"), "{e}");
        c.batch_execute("INSERT INTO w VALUES (1234567890123.45, 0.1), (-0.5, 1e20)")
            .await
            .unwrap();
        let a = crate::support::first_column(&c, "SELECT a FROM w ORDER BY a").await;
        let b = crate::support::first_column(&c, "SELECT b FROM w ORDER BY a").await;
        assert_eq!(
            (a, b),
            (
                vec!["-0.50".to_string(), "1234567890123.45".into()],
                vec!["100000000000000000000".to_string(), "0.1".into()]
            )
        );
    });
}

/// Report queries as apps write them, each a silent difference before: `coalesce(bal, 0)`
/// printed `0.00` (PostgreSQL `0`), a CASE over a numeric column `10` (`10.00`), `array_agg(bal)` and `lag(bal)` lost the column's
/// scale (`{10.5}`, `10.5`), `round(avg(x) OVER (), 3)` lost its zeros, `bal::int` of
/// 10.5 was 10 (PostgreSQL rounds to 11) and `'abc'::int` was 0 (an error), `NOT ('x' =
/// ANY(tags))` over a NULL array was true (NULL), `trunc(x, n)` did not exist, and
/// `TRIM`, `substr`, `NOT EXISTS`, `(array_agg(x))[1]` were named otherwise; `stddev`,
/// `variance` and their `_samp`/`_pop` forms did not exist (exact over integers and
/// numerics, doubles over floats, to the last digit PostgreSQL prints).
#[test]
fn report_queries_answer_as_on_postgres() {
    let script = "\\set VERBOSITY terse\n\
        CREATE TABLE acct (id serial PRIMARY KEY, name text NOT NULL, bal numeric(10,2) DEFAULT 0, tags text[]);\n\
        INSERT INTO acct (name, bal, tags) VALUES ('a', 10.5, '{x}'), ('b', 20, '{y,z}'), ('c', NULL, NULL);\n\
        SELECT coalesce(bal, 0), coalesce(bal, 0.5), array_agg(bal) OVER (ORDER BY id), sum(bal) OVER (ORDER BY id) FROM acct ORDER BY id;\n\
        SELECT id, CASE WHEN bal > 15 THEN bal ELSE 0 END, CASE name WHEN 'a' THEN bal END FROM acct ORDER BY id;\n\
        SELECT name, rank() OVER (ORDER BY bal DESC NULLS LAST), lag(bal) OVER (ORDER BY id), \
        round(avg(bal) OVER (), 3), coalesce(bal, 0) > 5 FROM acct ORDER BY id;\n\
        SELECT bal::int, bal::bigint, (bal * 3)::smallint, bal::float8 / 4, -bal FROM acct ORDER BY id;\n\
        SELECT 'abc'::int;\n\
        SELECT ' 12 '::int + 1, '1.5'::float8 * 2;\n\
        SELECT id FROM acct WHERE NOT ('x' = ANY(tags)) ORDER BY id;\n\
        SELECT round(2.567, 1), trunc(2.567, 2), trunc(-2.5);\n\
        SELECT trim('  a  '), substr('hello', 2, 3), NOT EXISTS (SELECT 1 FROM acct), (array_agg(name ORDER BY id))[1] FROM acct;\n\
        CREATE TABLE sp (g text, n int, amt numeric(8,2), f float8);\n\
        INSERT INTO sp VALUES ('a', 1, 1.50, 1.5), ('a', 2, 2.25, 2.5), ('a', 5, 10.00, 4), ('b', 7, 3, 1), ('c', NULL, NULL, NULL);\n\
        SELECT g, stddev(n), variance(n), stddev_pop(amt), var_pop(amt), stddev_samp(amt), var_samp(f), stddev(f) FROM sp GROUP BY g ORDER BY g;\n\
        SELECT stddev(n), variance(amt), round(stddev(amt), 2) FROM sp;\n";
    let (want, got) = psql_on_both(script);
    assert!(want.contains("{10.50,20.00,NULL}"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}
