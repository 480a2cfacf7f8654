//! PostgreSQL's string and math functions on the SQLite backend, compared with a real
//! PostgreSQL in the same run (SQLite has none of them, or answers differently:
//! `random()` was a 64-bit integer, so `random() < 1` was false half the time), and
//! DROP as PostgreSQL answers it.

use crate::sqlite_ddl::psql_script;
use crate::support::sqlite_proxy;

#[test]
fn string_and_math_functions_answer_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
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
        SELECT sqrt(-1);\n\
        SELECT mod(1, 0);\n\
        SELECT split_part('a', ',', 0);\n";
    let (want, got) = (
        psql_script(pg.port, script),
        psql_script(proxy.port, script),
    );
    assert!(want.contains("Ada Lovelace"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}

/// DROP as PostgreSQL answers it: a notice for each object `IF EXISTS` did not find,
/// several tables in one DROP, all or none of them (a missing one drops nothing), and
/// PostgreSQL's words for a missing table, index or view. Before, SQLite said nothing,
/// and refused a DROP of two tables as a syntax error.
#[test]
fn drop_answers_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
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
    let (want, got) = (
        psql_script(pg.port, script),
        psql_script(proxy.port, script),
    );
    assert!(
        want.contains("NOTICE:  table \"Nope2\" does not exist, skipping"),
        "{want}"
    );
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
}
