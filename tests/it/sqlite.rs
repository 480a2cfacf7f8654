//! The SQLite backend through the proxy with real clients: tokio-postgres (simple,
//! extended, prepared, binary), psql (including \dt and \d), concurrency, and the
//! embedded default of `switchyard serve`.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use crate::support::cluster::{free_port, wait_until};
use crate::support::{Proxy, connect, psql, rt, sqlite_proxy};

const SCHEMA: &str = "CREATE TABLE users (id SERIAL PRIMARY KEY, email VARCHAR(120) NOT NULL UNIQUE, \
    active BOOLEAN NOT NULL DEFAULT true, created_at TIMESTAMP WITH TIME ZONE DEFAULT now(), settings JSONB); \
    CREATE TABLE tasks (id BIGSERIAL PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), \
    title TEXT NOT NULL, done BOOLEAN DEFAULT false, due DATE, score NUMERIC(8,2))";

#[test]
fn tokio_postgres_crud_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(SCHEMA).await.unwrap();
        // Extended protocol with parameter types inferred from the columns.
        let ins = c.prepare("INSERT INTO users (email, active, settings) VALUES ($1, $2, $3::text) RETURNING id").await.unwrap();
        let mut ids = Vec::new();
        for (i, email) in ["ann@x.io", "bob@x.io", "cy@x.io"].iter().enumerate() {
            let settings = format!("{{\"theme\": \"t{i}\"}}");
            let row = c.query_one(&ins, &[email, &(i != 1), &settings]).await.unwrap();
            ids.push(row.get::<_, i32>(0));
        }
        assert_eq!(ids, vec![1, 2, 3]);
        let row = c.query_one("SELECT id, email, active, created_at IS NOT NULL FROM users WHERE email = $1", &[&"bob@x.io"]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 2);
        assert_eq!(row.get::<_, String>(1), "bob@x.io");
        assert!(!row.get::<_, bool>(2));
        assert!(row.get::<_, bool>(3));
        let n: i64 = c.query_one("SELECT count(*) FROM users WHERE active", &[]).await.unwrap().get(0);
        assert_eq!(n, 2);
        // Bigserial and a foreign key; a transaction that rolls back leaves nothing.
        c.batch_execute("BEGIN").await.unwrap();
        c.execute("INSERT INTO tasks (user_id, title) VALUES ($1, $2)", &[&1i32, &"write tests"]).await.unwrap();
        c.batch_execute("ROLLBACK").await.unwrap();
        let n: i64 = c.query_one("SELECT count(*) FROM tasks", &[]).await.unwrap().get(0);
        assert_eq!(n, 0);
        let t = c.query_one("INSERT INTO tasks (user_id, title) VALUES ($1, $2) RETURNING id", &[&1i32, &"ship"]).await.unwrap();
        assert_eq!(t.get::<_, i64>(0), 1);
        // Errors carry PostgreSQL SQLSTATEs.
        let e = c.execute(&ins, &[&"ann@x.io", &true, &"{}"]).await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("23505"), "{e:?}");
        let e = c.execute("INSERT INTO tasks (user_id, title) VALUES ($1, $2)", &[&99i32, &"orphan"]).await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("23503"), "{e:?}");
        let e = c.simple_query("SELECT * FROM nope").await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("42P01"));
        // An aborted transaction behaves like PostgreSQL's until ROLLBACK.
        c.batch_execute("BEGIN").await.unwrap();
        assert!(c.simple_query("SELECT * FROM nope").await.is_err());
        let e = c.simple_query("SELECT 1").await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("25P02"));
        c.batch_execute("ROLLBACK").await.unwrap();
        // Translation: ILIKE, casts, ANY(ARRAY[…]), OFFSET without LIMIT, string_agg.
        let rows = c.simple_query("SELECT string_agg(email, ',') FROM (SELECT email FROM users WHERE email ILIKE 'A%' OR id = ANY(ARRAY[3]) ORDER BY id OFFSET 0) s").await.unwrap();
        let SimpleQueryMessage::Row(r) = &rows[1] else { panic!("{rows:?}") };
        assert_eq!(r.get(0), Some("ann@x.io,cy@x.io"));
        let v: String = c.query_one("SELECT version()", &[]).await.unwrap().get(0);
        assert!(v.contains("switchyard SQLite"));
        // Unsupported constructs are refused by name.
        let e = c.simple_query("SELECT DISTINCT ON (active) * FROM users").await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("0A000"));
        assert!(e.as_db_error().unwrap().message().contains("DISTINCT ON"));
    });
}

#[test]
fn psql_describes_sqlite_tables() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let (ok, _, err) = psql(proxy.port, "app", "secret", &["-c", SCHEMA]);
    assert!(ok, "{err}");
    let (ok, out, err) = psql(proxy.port, "app", "secret", &["-c", "\\dt"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("public|tasks|table|postgres") && out.contains("public|users|table"),
        "{out}"
    );
    let (ok, out, err) = psql(proxy.port, "app", "secret", &["-c", "\\d users"]);
    assert!(ok, "{err}");
    // As PostgreSQL shows it: the type with its length.
    assert!(
        out.contains("email|character varying(120)||not null|"),
        "{out}"
    );
    assert!(out.contains("created_at|timestamp with time zone"), "{out}");
}

#[test]
fn concurrent_writers_do_not_see_locked_errors() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let url = proxy.url("app", "secret");
    rt().block_on(async {
        let c = connect(&url).await.unwrap();
        c.batch_execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0)").await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    let c = connect(&url).await.unwrap();
                    for _ in 0..25 {
                        c.batch_execute("BEGIN; UPDATE counter SET n = n + 1 WHERE id = 1; COMMIT").await.unwrap();
                        c.execute("UPDATE counter SET n = n + 1 WHERE id = $1", &[&1i32]).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let n: i32 = c.query_one("SELECT n FROM counter", &[]).await.unwrap().get(0);
        assert_eq!(n, 8 * 25 * 2);
    });
}

#[test]
fn serve_without_config_serves_a_local_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let admin = free_port();
    // The embedded default listens on 6432/9640; the test points it elsewhere through a
    // config that keeps every other default (any database name, as the embedded default).
    let cfg = dir.path().join("c.toml");
    std::fs::write(dir.path().join("switchyard.db"), b"").unwrap();
    std::fs::write(&cfg, format!("[proxy]\nlisten = \"127.0.0.1:{port}\"\ndatabases = [\"*\"]\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n[backends.local]\nurl = \"sqlite://./switchyard.db\"\n")).unwrap();
    let mut child = crate::support::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--config", cfg.to_str().unwrap()])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let (ok, out, err) = psql(
        port,
        "anyone",
        "",
        &[
            "-c",
            "CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT)",
            "-c",
            "INSERT INTO notes (body) VALUES ('hi') RETURNING id",
        ],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "{err}");
    assert!(out.contains('1'), "{out}");
    assert!(dir.path().join("switchyard.db").exists());
}

/// The same Python (psycopg 3, asyncpg, psycopg2), Java (pgjdbc) and Node (node-postgres)
/// driver checks that run against PostgreSQL, unchanged, against a SQLite file.
#[test]
fn python_java_and_node_drivers_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    crate::drivers::run_python(proxy.port);
    crate::drivers::run_jdbc(proxy.port);
    crate::drivers::run_node(proxy.port);
}

/// pgjdbc's metadata (DatabaseMetaData's tables, columns, primary keys, foreign keys with
/// their rules and key names, indexes; a prepared query's ResultSetMetaData with
/// nullability, table names and serial columns) reads the same on a SQLite file as on
/// PostgreSQL for the same schema. Before, keys, foreign keys and indexes failed with
/// syntax errors and result columns had no table.
#[test]
fn pgjdbc_metadata_reads_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let want = crate::drivers::jdbc_metadata(pg.port, "app", "app", "secret");
    assert!(want.contains("fk book | PKTABLE_NAME=author"), "{want}");
    let got = crate::drivers::jdbc_metadata(proxy.port, "app", "app", "secret");
    assert_eq!(
        got, want,
        "pgjdbc metadata: the SQLite default, then PostgreSQL"
    );
}

/// An SQLAlchemy 2 ORM app (create_all, relationships, a join, FOR UPDATE, a savepoint)
/// with psycopg 3 and psycopg2, on a SQLite file and, unchanged, on PostgreSQL.
#[test]
fn sqlalchemy_orm_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    crate::drivers::run_orm(proxy.port);
    let pg = crate::support::PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "");
    crate::drivers::run_orm(proxy.port);
}

/// asyncpg asks the server what an array or enum type is (a recursive query over
/// `pg_type`) before it reads one: on the SQLite default it reads `int[]`, `text[]`,
/// `numeric[]`, enum columns, `$1 = ANY(nums)` and a statement that fails to prepare as on
/// PostgreSQL. Before, `SELECT ARRAY[1, 2]::int[]` never returned: the introspection
/// query failed at Parse and the error waited for a Sync that asyncpg sends only after
/// the answer.
#[test]
fn asyncpg_reads_arrays_and_enums_as_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let want = crate::drivers::asyncpg_types(&pg.url("app"));
    assert!(
        want.contains("row [1, ['a', 'b c'], [1, 2], 'ok']"),
        "{want}"
    );
    let got = crate::drivers::asyncpg_types(&proxy.url("app", "secret"));
    assert_eq!(got, want, "asyncpg: the SQLite default, then PostgreSQL");
}

/// An error in the extended protocol is sent at once, as PostgreSQL sends it, not held
/// until Sync: a client that pipelines Parse, Describe and Flush waits for the answer
/// before it sends Sync.
#[test]
fn a_failed_parse_is_answered_before_sync() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        use crate::support::raw::{Raw, msg, parse, sync};
        let mut c = Raw::login(proxy.port, "app", "secret").await;
        let describe = msg(b'D', b"Sfails\0");
        c.send(&[parse("fails", "SELEC 1"), describe, msg(b'H', b"")].concat())
            .await;
        let (tag, body) = c.read().await.expect("an answer before Sync");
        assert_eq!(tag, b'E', "{}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("42601"));
        c.send(&sync()).await;
        let (tags, _) = c.until_ready().await;
        assert_eq!(tags, "ZI");
    });
}

/// A table made through the SQLite default keeps its PostgreSQL types on the way to
/// PostgreSQL: an interval column was declared TEXT in the file and `sync` would have
/// read it as `bigint` ("interval" holds "int"); now it is `interval` on both sides and
/// its values arrive as they were written.
#[test]
fn an_interval_column_is_an_interval_after_sync() {
    use crate::support::cli::{switchyard, text};
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let (ok, out, err) = psql(
        proxy.port,
        "app",
        "secret",
        &[
            "-c",
            "CREATE TABLE plans (id int PRIMARY KEY, every interval NOT NULL, note text)",
            "-c",
            "INSERT INTO plans VALUES (1, '90 minutes', 'a'), (2, '1 day 2 hours', NULL)",
        ],
    );
    assert!(ok && out.contains("INSERT 0 2"), "{out}{err}");
    drop(proxy);
    let pg = crate::support::PgCluster::start();
    let from = sqlite_url_of(&dir);
    let o = switchyard(&["sync", "--from", &from, "--to", &pg.url("app")]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT string_agg(format('%s %s', every, pg_typeof(every)), ', ' ORDER BY id) FROM plans"
        ),
        "01:30:00 interval, 1 day 02:00:00 interval"
    );
}

fn sqlite_url_of(dir: &tempfile::TempDir) -> String {
    crate::support::sqlite_url(&dir.path().join("app.db"))
}
