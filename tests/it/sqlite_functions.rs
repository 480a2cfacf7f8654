//! PostgreSQL's string and math functions on the SQLite backend, compared with a real
//! PostgreSQL in the same run (SQLite has none of them, or answers differently:
//! `random()` was a 64-bit integer, so `random() < 1` was false half the time), and
//! DROP as PostgreSQL answers it.

use crate::sqlite_ddl::psql_on_both;

#[test]
fn string_and_math_functions_answer_as_on_postgres() {
    let script = "\\set VERBOSITY terse\n\
        CREATE TABLE names (id int, v text);\n\
        INSERT INTO names VALUES (1, 'ada lovelace'), (2, 'grace HOPPER'), (3, NULL);\n\
        SELECT id, left(v, 3), right(v, -4), repeat(left(v, 1), 3), lpad(v, 14, '*'), rpad(v, 3), \
        split_part(v, ' ', 2), strpos(v, 'e'), initcap(v), reverse(v), md5(v), \
        starts_with(v, 'ada'), ascii(v), translate(v, 'ae', 'AE') FROM names ORDER BY id;\n\
        SELECT chr(65), lpad('7', 3, '0'), split_part('a,b,c', ',', -1), left('abc', -1);\n\
        SELECT ceil(1.2), floor(-1.5), trunc(1.8), power(2, 10), sqrt(16), mod(7, 3), mod(-7, 3), \
        div(7, 2), sign(-3), ln(1), log(100), exp(0), ceil(1.2::float8), pi();\n\
        SELECT count(*) FROM generate_series(1, 200) WHERE random() >= 0 AND random() < 1;\n\
        SELECT encode('ab'::bytea, 'hex'), encode('ab'::bytea, 'base64'), decode('6162', 'hex'), \
        encode(decode('YWI=', 'base64'), 'escape'), encode(sha256('abc'::bytea), 'hex');\n\
        SELECT sqrt(-1);\n\
        SELECT mod(1, 0);\n\
        SELECT split_part('a', ',', 0);\n";
    let (want, got) = psql_on_both(script);
    assert!(want.contains("Ada Lovelace"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// DROP as PostgreSQL answers it: a notice for each object `IF EXISTS` did not find,
/// several tables in one DROP, all or none of them (a missing one drops nothing), and
/// PostgreSQL's words for a missing table, index or view. Before, SQLite said nothing,
/// and refused a DROP of two tables as a syntax error.
#[test]
fn drop_answers_as_on_postgres() {
    let script = "DROP TABLE IF EXISTS nope, \"Nope2\";\n\
        DROP INDEX IF EXISTS nix;\n\
        DROP VIEW IF EXISTS nv;\n\
        CREATE TABLE yes (a int);\n\
        CREATE TABLE yes2 (a int);\n\
        INSERT INTO yes VALUES (1);\n\
        DROP TABLE yes, missing;\n\
        SELECT count(*) FROM yes;\n\
        DROP TABLE IF EXISTS yes, missing, yes2;\n\
        SELECT count(*) FROM pg_tables WHERE tablename LIKE 'yes%';\n\
        DROP INDEX nix;\n\
        DROP VIEW nv;\n\
        DROP TABLE nt;\n";
    let (want, got) = psql_on_both(script);
    assert!(
        want.contains("NOTICE:  table \"Nope2\" does not exist, skipping"),
        "{want}"
    );
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// Answers that were wrong without an error: regular expressions (SQLite's stand-in
/// knew only psql's name patterns, so `~ '^[0-9a-f-]{36}$'` was false, and the result
/// read 1/0, not t/f), `greatest`/`least` with a NULL (NULL), `round(1.005, 2)` (1),
/// `format` with `%L`/`%I` (nothing), `timestamp::date` (the timestamp), `current_user`
/// (no such column), typed literals (`DATE '…'`: a syntax error), `round(2.5, 2)` (2.5).
#[test]
fn silent_differences_answer_as_on_postgres() {
    let script = "\\set VERBOSITY terse\n\
        SET TIME ZONE 'Europe/Berlin';\n\
        CREATE TABLE p (id int, name text, score numeric, at timestamptz);\n\
        INSERT INTO p VALUES (1, 'ada', 1.005, '2024-05-06 22:30:00+00'), (2, 'bob', NULL, NULL), (3, 'cy', 2.5, '2024-05-06 10:00:00+00');\n\
        SELECT id, name ~ '^[ab]', name ~* '^A', name !~ 'b$', greatest(score, 2), least(score, 2, NULL), \
        round(score, 2), round(score), at::date, format('%s=%L %I', name, score, upper(name)) FROM p ORDER BY id;\n\
        SELECT 'c0a1e2d3-0000-4000-8000-000000000000' ~ '^[0-9a-f-]{36}$', regexp_replace('John Smith', '(\\w+) (\\w+)', '\\2, \\1'), \
        regexp_replace('aaa', 'A', 'b', 'gi'), regexp_match('foobarbequebaz', '(bar)(beque)');\n\
        SELECT '2024-05-06 10:00'::timestamp::date, DATE '2024-01-01' + 1, TIMESTAMP '2024-01-01 10:00' + interval '1 hour', \
        current_user = session_user, quote_literal('it''s'), quote_nullable(NULL);\n\
        SELECT count(*) FROM p WHERE name ~ 'b' OR at::date = '2024-05-07';\n\
        \\set VERBOSITY sqlstate\n\
        SELECT regexp_replace('a', '(', 'b');\n";
    let (want, got) = psql_on_both(script);
    assert!(want.contains("Smith, John"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// Arrays written as PostgreSQL's literal (`'{x,y}'`) are kept as the JSON arrays that
/// array parameters become, with numbers as numbers, so `3 = ANY(nums)` finds its row
/// (it was "malformed JSON", then false); array functions and `^` answer as on
/// PostgreSQL; a subscript is named by its column; an array column, `ARRAY[…]` and an
/// array cast are typed as arrays and print as PostgreSQL's literals (they printed their
/// JSON, `["x","y"]`), `||` joins arrays (it joined their JSON texts), and `psql \d`
/// shows `text[]` and `character varying(20)[]`.
#[test]
fn arrays_answer_as_on_postgres() {
    let script = "CREATE TABLE t3 (id serial PRIMARY KEY, tags text[], nums int[], names varchar(20)[] NOT NULL DEFAULT '{}');\n\
        INSERT INTO t3 (tags, nums) VALUES ('{x,y}', '{1,2}'), ('{y}', '{3}'), ('{}', '{}'), (NULL, NULL);\n\
        SELECT id, array_length(tags, 1), cardinality(nums), tags[1], nums[2], \
        array_position(tags, 'y') FROM t3 ORDER BY id;\n\
        SELECT count(*) FROM t3 WHERE 'y' = ANY(tags);\n\
        SELECT id FROM t3 WHERE 3 = ANY(nums);\n\
        UPDATE t3 SET tags = array_append(tags, 'z') WHERE id = 1 RETURNING array_length(tags, 1);\n\
        UPDATE t3 SET tags = '{q}' WHERE id = 2;\n\
        SELECT tags[1], array_length(array_remove(tags, 'x'), 1), string_to_array('a,b', ','), 2 ^ 10 FROM t3 \
        WHERE id IN (1, 2) ORDER BY id;\n\
        SELECT * FROM t3 ORDER BY id;\n\
        SELECT tags || ARRAY['z'], tags || 'y'::text, 'w'::text || tags, tags || '{q}', nums || 7, ARRAY[1] || ARRAY[2] FROM t3 ORDER BY id;\n\
        SELECT ARRAY[1, 2], ARRAY['a b'], '{a,b}'::text[], 1 = ANY(ARRAY[1]), 2 = ANY('{1}'::int[]), ARRAY[1.5];\n\
        \\d t3\n";
    let (want, got) = psql_on_both(script);
    assert!(
        want.contains("{a,b}") && want.contains("integer[]"),
        "{want}"
    );
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// Report queries: `to_char` of dates and times (a timestamptz in the session's zone),
/// `age`, SIMILAR TO, `string_agg(DISTINCT …, ',')`, `avg(…) FILTER (…)` exact, and the
/// ordered-set aggregates (`percentile_cont`, `percentile_disc`, `mode`: syntax errors
/// before). Before:
/// to_char and age did not exist, SIMILAR TO and the DISTINCT string_agg were refused,
/// and the filtered avg read 1.5 for 1.5000000000000000.
#[test]
fn report_functions_answer_as_on_postgres() {
    let script = "\\set VERBOSITY terse\n\
        SET TIME ZONE 'America/New_York';\n\
        CREATE TABLE s (id int, name text, grp int, ok boolean, at timestamptz, day date);\n\
        INSERT INTO s VALUES (1, 'ann', 1, true, '2024-05-06 02:30:00+00', '2024-01-31'), \
        (2, 'bob', 1, false, '2024-06-01 12:00:00+00', '2023-02-28'), (3, 'ann', 2, true, '2024-06-02 23:59:59+00', '2024-02-29');\n\
        SELECT to_char(at, 'YYYY-MM') AS month, count(*) FROM s GROUP BY 1 ORDER BY 1;\n\
        SELECT id, to_char(at, 'YYYY-MM-DD HH24:MI:SS TZH'), to_char(at, 'FMMonth FMDD, YYYY HH12:MI AM'), \
        to_char(day, 'Dy DD Mon YYYY \"Q\"Q IW') FROM s ORDER BY id;\n\
        SELECT a.id, age(a.day, b.day), age(b.at, a.at) FROM s a, s b WHERE a.id + 1 = b.id ORDER BY 1;\n\
        SELECT name SIMILAR TO 'a%', name NOT SIMILAR TO '(b|c)_b', name SIMILAR TO 'a_' FROM s ORDER BY id;\n\
        SELECT string_agg(DISTINCT name, ','), avg(grp) FILTER (WHERE ok), count(*) FILTER (WHERE grp = 1) FROM s;\n\
        SELECT grp, percentile_cont(0.5) WITHIN GROUP (ORDER BY id), percentile_disc(0.9) WITHIN GROUP (ORDER BY id DESC), \
        mode() WITHIN GROUP (ORDER BY name) FROM s GROUP BY grp ORDER BY grp;\n\
        SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY id) FROM s;\n";
    let (want, got) = psql_on_both(script);
    assert!(want.contains("2024-05 |     1"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// JSON built as PostgreSQL builds it: a jsonb or json column inside `json_build_object`,
/// `json_agg`, `to_json` is JSON (it was an escaped string, `{"x":"{\"a\":1}"}`), a
/// boolean is `true` (it was `1`), a `numeric(8,2)` keeps its scale, `json_build_object`
/// separates as PostgreSQL does (`{"a" : 1, "b" : 2}`), `json_object_agg` and
/// `jsonb_object_agg` exist, arrays of arrays in `json_agg` are a line apart,
/// `jsonb_pretty` indents as PostgreSQL, timestamps are ISO 8601 (`2024-05-06T09:08:09+02:00`
/// in the session's zone; they were `2024-05-06 07:08:09+00`).
#[test]
fn json_is_built_as_on_postgres() {
    let script = "\\set VERBOSITY terse\n\
        CREATE TABLE q (id int, name text, grp text, price numeric(8,2), ok bool, tags text[], meta jsonb, p json);\n\
        INSERT INTO q VALUES (1, 'a\"b', 'x', 1.5, true, '{a,b}', '{\"k\": 1, \"b\": [1,2]}', '{\"z\":1,  \"y\":2}'), \
        (2, 'c', 'x', NULL, false, '{}', 'null', '[]'), (3, 'd', 'y', 3, NULL, NULL, NULL, NULL);\n\
        SELECT json_build_object('m', meta, 'p', p, 'ok', ok, 'price', price, 'tags', tags) FROM q ORDER BY id;\n\
        SELECT jsonb_build_object('m', meta, 'p', p, 'ok', ok, 'price', price) FROM q ORDER BY id;\n\
        SELECT grp, json_agg(name ORDER BY id), jsonb_agg(price), json_agg(DISTINCT grp) FROM q GROUP BY grp ORDER BY grp;\n\
        SELECT json_agg(id) FILTER (WHERE ok), json_agg(tags ORDER BY id), json_agg(meta ORDER BY id) FROM q;\n\
        SELECT json_object_agg(name, price ORDER BY id), jsonb_object_agg(name, ok) FROM q;\n\
        SELECT json_build_object('o', json_build_object('a', 1), 'arr', json_build_array(1, 'x', NULL));\n\
        SELECT json_agg(json_build_object('id', id, 'ok', ok) ORDER BY id) FROM q;\n\
        SELECT json_build_object('id', id)->>'id', jsonb_build_object('n', name)->'n' FROM q ORDER BY id;\n\
        SELECT to_json(name), to_jsonb(price), to_json(ok), to_json(tags), to_json(meta) FROM q ORDER BY id;\n\
        SELECT json_build_object('x', 1.5, 'y', 2.0 + 0.25, 'w', NULL, 'v', 1e3), json_build_array(), json_build_object();\n\
        SELECT json_agg(id) FROM q WHERE false;\n\
        SELECT jsonb_pretty(meta) FROM q WHERE id = 1;\n\
        SET TIME ZONE 'Europe/Berlin';\n\
        CREATE TABLE tj (d date, ts timestamp, tz timestamptz, iv interval);\n\
        INSERT INTO tj VALUES ('2024-05-06', '2024-05-06 07:08:09.5', '2024-05-06 07:08:09+00', '1 day 2 hours'), \
        ('2024-01-06', '2024-01-06 07:08:09', '2024-01-06 07:08:09.123+05:30', '90 minutes');\n\
        SELECT json_build_object('d', d, 'ts', ts, 'tz', tz, 'iv', iv), jsonb_build_object('tz', tz) FROM tj ORDER BY d;\n\
        SELECT json_agg(tz ORDER BY d), to_json(max(ts)) FROM tj;\n\
        SELECT json_build_object(NULL, 1);\n\
        SELECT jsonb_build_object('a', 1, NULL, 2);\n\
        SELECT json_object_agg(k, 1) FROM (VALUES (NULL::text)) t(k);\n";
    let (want, got) = psql_on_both(script);
    assert!(
        want.contains(
            "{\"m\" : {\"b\": [1, 2], \"k\": 1}, \"p\" : {\"z\":1,  \"y\":2}, \"ok\" : true"
        ),
        "{want}"
    );
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// `pg_typeof` names the type PostgreSQL gives a column, an aggregate or an expression
/// (it did not exist); an interval column is `interval` in `\d` and keeps what it stores
/// as PostgreSQL prints it (`'90 minutes'` reads `01:30:00`; the column was text, and
/// `'soon'` was stored); `CURRENT_ROLE` and `TIME '…'` literals work (they were a missing
/// column and a syntax error).
#[test]
fn types_are_named_as_on_postgres() {
    let script = "\\set VERBOSITY terse\n\
        CREATE TABLE ty (a int, b bigint, c varchar(10), d numeric(5,2), e text[], f jsonb, g boolean, h float8, iv interval);\n\
        INSERT INTO ty VALUES (1, 2, 'x', 1.5, '{a}', '{}', true, 1.5, '90 minutes');\n\
        SELECT pg_typeof(a), pg_typeof(b), pg_typeof(c), pg_typeof(d), pg_typeof(e), pg_typeof(f), \
        pg_typeof(g), pg_typeof(h), pg_typeof(a + b), pg_typeof(iv) FROM ty;\n\
        SELECT pg_typeof(count(*)), pg_typeof(sum(a)), pg_typeof(max(b)), pg_typeof(now()), \
        pg_typeof(1.5), pg_typeof('x'), pg_typeof(ARRAY[1]), pg_typeof(true) FROM ty;\n\
        UPDATE ty SET iv = '2 weeks 3 seconds' WHERE a = 1 RETURNING iv;\n\
        SELECT iv FROM ty WHERE iv = '14 days 00:00:03';\n\
        INSERT INTO ty (iv) VALUES ('soon');\n\
        SELECT current_role IS NOT NULL AS known, current_user = current_role;\n\
        SELECT TIME '07:08:09', extract(second FROM TIME '07:08:09.5');\n\
        \\d ty\n";
    let (want, got) = psql_on_both(script);
    assert!(want.contains("character varying"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// `to_char` of a number formats as PostgreSQL does (it was refused): digits, forced
/// zeros, decimal point and group separators, fill mode, every sign pattern, `#`s for
/// a number wider than the pattern, quoted text — each pattern over positive, negative,
/// zero, fractional and too-wide values.
#[test]
fn to_char_of_numbers_answers_as_on_postgres() {
    let values = [
        "1234.5",
        "-1234.5",
        "0",
        "0.5",
        "-0.005",
        "12",
        "1234567.891",
        "-7",
        "999.999",
    ];
    let patterns = [
        "9999.99",
        "FM9999.99",
        "FM9999.00",
        "0000",
        "9,999,999.99",
        "FM9,999,999.99",
        "999",
        "S9999",
        "9999MI",
        "9999PR",
        "FM9999PR",
        "9.99",
        "0.99",
        "FMSG999",
        "SG9999",
        "MI9999",
        "9999S",
        "\"$\"9999.00",
        "999PL",
        "9G999D99",
        "FM99990.00",
    ];
    let mut script = String::from("\\set VERBOSITY terse\n");
    for p in patterns {
        let cols: Vec<String> = values
            .iter()
            .map(|v| format!("'[' || to_char({v}::numeric, '{p}') || ']'"))
            .collect();
        script.push_str(&format!("SELECT '{p}', {};\n", cols.join(", ")));
    }
    script.push_str("SELECT to_char(1234.5::float8, '9999.9'), to_char(42, '999'), to_char(NULL::numeric, '9');\n");
    let (want, got) = psql_on_both(&script);
    assert!(want.contains("[<1235>]"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}
