//! `switchyard sync` into a schema the app's own migrations made on PostgreSQL (the path
//! people take with Alembic or Django): each column is written as the target's type,
//! folded names match, the target's defaults and sequences work, verify compares by the
//! target's types, and what cannot be copied is found by the dry run, named, before
//! anything is written.

use std::process::Command;

use crate::support::PgCluster;
use crate::support::cli::{switchyard, text};

/// The SQLite app database: what an ORM on SQLite leaves (DATETIME as text, DECIMAL as
/// a float, a camelCase column).
const SQLITE: &str = "
    CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at DATETIME NOT NULL,
      amount DECIMAL(10,2), label VARCHAR(20), \"userId\" INTEGER);
    INSERT INTO events VALUES (1, '2011-12-22 00:00:00', 20, 'a', 5),
      (2, '2024-05-06 07:08:09.123', 2328.6, 'b', 6);
    CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, label VARCHAR(30));
    INSERT INTO notes VALUES (1, 'kept', 'short'), (2, 'gone', 'twenty-five characters!!!');";

/// The same tables as the app's ORM makes them on PostgreSQL (names folded, its own types,
/// a column the SQLite side never had, a foreign key of its own).
const POSTGRES: &str = "
    CREATE TABLE events (id serial PRIMARY KEY, at timestamptz NOT NULL, amount numeric(10,2),
      label varchar(20), userid integer, extra text DEFAULT 'x');
    CREATE INDEX ix_events_at ON events (at);
    CREATE TABLE notes (id serial PRIMARY KEY, label varchar(20),
      event_id integer REFERENCES events (id));";

#[test]
fn sync_into_the_schema_the_app_made() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(SQLITE)
        .unwrap();
    let pg = PgCluster::start();
    pg.psql_db("app", &format!("SET ROLE app; {POSTGRES}"));
    let (from, to) = (format!("sqlite://{}", db.display()), pg.url("app"));
    let count = |sql: &str| pg.psql_db("app", sql);

    // The dry run names everything the real run would refuse, and writes nothing.
    let o = switchyard(&["sync", "--dry-run", "--from", &from, "--to", &to]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("-- events: 2 rows, copy into the existing empty table"),
        "{out}"
    );
    assert!(
        out.contains(
            "-- column: events.at DATETIME -> timestamp with time zone (the target's type)"
        ),
        "{out}"
    );
    assert!(
        out.contains("-- REFUSED: notes.body (TEXT): the target table has no such column"),
        "{out}"
    );
    assert!(
        out.contains("-- REFUSED: notes.label (VARCHAR(30) -> character varying(20)): 1 row(s) do not fit, first at key [2]: value \"twenty-five characters!!!\" does not fit character varying(20): longer than 20 characters"),
        "{out}"
    );
    // No CREATE for the app's tables, nor the source's indexes next to the app's.
    assert!(!out.contains("CREATE TABLE"), "{out}");
    // The real run refuses before writing a row, naming the same problems.
    let o = switchyard(&["sync", "--from", &from, "--to", &to]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("notes.body (TEXT): the target table has no such column"),
        "{out}"
    );
    assert_eq!(count("SELECT count(*) FROM events"), "0");

    // The user's explicit choices: leave the column out, set the bad row aside.
    let rejects = dir.path().join("rejects.jsonl");
    let o = switchyard(&[
        "sync",
        "--from",
        &from,
        "--to",
        &to,
        "--exclude-column",
        "notes.body",
        "--skip-bad-rows",
        rejects.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        std::fs::read_to_string(&rejects)
            .unwrap()
            .contains("twenty-five")
    );
    // Values as the target's types hold them: the naive text as the UTC instant, the
    // numeric with its scale, the folded column filled, the target's own default.
    assert_eq!(
        count(
            "SELECT at || '|' || amount || '|' || userid || '|' || extra FROM events ORDER BY id"
        ),
        "2011-12-22 00:00:00+00|20.00|5|x\n2024-05-06 07:08:09.123+00|2328.60|6|x"
    );
    assert_eq!(count("SELECT count(*) FROM notes"), "1");
    // The app's schema is as the app made it: no index or key of the source's added.
    assert_eq!(
        count("SELECT count(*) FROM pg_indexes WHERE tablename = 'events'"),
        "2"
    );
    // The target's sequence is past the copied ids: the app's next INSERT works.
    assert_eq!(
        count("INSERT INTO events (at) VALUES (now()) RETURNING id"),
        "3"
    );
    count("DELETE FROM events WHERE id = 3");
    // verify compares by the target's types (and the folded name).
    let o = switchyard(&["verify", "--from", &from, "--to", &to, "--tables", "events"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    count("UPDATE events SET amount = 20.01 WHERE id = 1");
    let o = switchyard(&["verify", "--from", &from, "--to", &to, "--tables", "events"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("key [\"1\"] column \"amount\": source \"20.00\" target \"20.01\""),
        "{out}"
    );
}

/// SQLAlchemy 2 models on SQLite, the same models' schema on PostgreSQL (by `create_all()`,
/// and by an Alembic revision), a sync into it, verify, and the app reading and writing
/// through its ORM.
#[test]
fn sqlalchemy_create_all_then_sync_then_the_orm_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let pg = PgCluster::start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/schema_first.py");
    let py = |mode: &str, url: &str| {
        let out = Command::new("timeout")
            .args(["120", "python3"])
            .arg(&script)
            .args([mode, url])
            .output()
            .unwrap();
        let t = text(&out);
        assert!(out.status.success() && t.starts_with("OK"), "{mode}: {t}");
    };
    py("seed", &format!("sqlite:///{}", db.display()));
    // The schema made by create_all(), then by an Alembic revision of the same models.
    for (maker, pg) in [("create", &pg), ("alembic", &PgCluster::start())] {
        py(maker, &pg.url("app"));
        let (from, to) = (format!("sqlite://{}", db.display()), pg.url("app"));
        let o = switchyard(&["sync", "--from", &from, "--to", &to]);
        assert!(o.status.success(), "{maker}: {}", text(&o));
        let o = switchyard(&["verify", "--from", &from, "--to", &to]);
        assert_eq!(o.status.code(), Some(0), "{maker}: {}", text(&o));
        py("check", &pg.url("app"));
    }
}

/// When switchyard makes the schema: a Django database's date-times, and any column whose
/// values carry a UTC offset, become timestamp with time zone (naive values as UTC); the
/// user states a column's type with --type; the dry run says why for each.
#[test]
fn the_types_the_app_would_have_made() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE stamps (id INTEGER PRIMARY KEY, naive DATETIME, aware DATETIME, n INTEGER);
             INSERT INTO stamps VALUES (1, '2024-05-06 07:08:09', '2024-05-06 09:08:09+02:00', 1),
                                       (2, '2024-05-06 10:00:00', '2024-05-06 10:00:00', 2);",
        )
        .unwrap();
    let pg = PgCluster::start();
    let (from, to) = (format!("sqlite://{}", db.display()), pg.url("app"));
    let args = [
        "sync",
        "--from",
        &from,
        "--to",
        &to,
        "--type",
        "stamps.n=int",
    ];
    let o = switchyard(&[&args[..], &["--dry-run"]].concat());
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("-- type: stamps.aware DATETIME -> timestamp with time zone: its values carry a UTC offset (e.g. \"2024-05-06 09:08:09+02:00\")"),
        "{out}"
    );
    assert!(
        out.contains("-- type: stamps.naive DATETIME -> timestamp: "),
        "{out}"
    );
    assert!(
        out.contains("-- type: stamps.n INTEGER -> integer: set by --type or [sync.types]"),
        "{out}"
    );
    // The same choice from a config's [sync.types], as `ctl sync` would take it; a
    // malformed one is named.
    let cfg = dir.path().join("switchyard.toml");
    std::fs::write(&cfg, "[sync.types]\n\"stamps.naive\" = \"timestamptz\"\n").unwrap();
    let with_config = [&args[..], &["--dry-run", "--config", cfg.to_str().unwrap()]].concat();
    let o = switchyard(&with_config);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("-- type: stamps.naive DATETIME -> timestamp with time zone: set by --type or [sync.types]"),
        "{out}"
    );
    std::fs::write(&cfg, "[sync.types]\n\"naive\" = \"timestamptz\"\n").unwrap();
    let o = switchyard(&with_config);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("sync: type \"naive=timestamptz\": expected TABLE.COLUMN=TYPE"),
        "{}",
        text(&o)
    );
    let o = switchyard(&args);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT string_agg(aware::text || '/' || pg_typeof(n), ',' ORDER BY id) FROM stamps"
        ),
        "2024-05-06 07:08:09+00/integer,2024-05-06 10:00:00+00/integer"
    );
    // A Django database: every date-time column, as Django's PostgreSQL backend makes it.
    let django = dir.path().join("django.db");
    rusqlite::Connection::open(&django)
        .unwrap()
        .execute_batch(
            "CREATE TABLE django_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, app VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, applied DATETIME NOT NULL);
             INSERT INTO django_migrations (app, name, applied) VALUES ('contenttypes', '0001_initial', '2011-12-22 00:00:00');",
        )
        .unwrap();
    let from = format!("sqlite://{}", django.display());
    let o = switchyard(&["sync", "--from", &from, "--to", &to]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT applied || ' ' || pg_typeof(applied) FROM django_migrations"
        ),
        "2011-12-22 00:00:00+00 timestamp with time zone"
    );
    let o = switchyard(&["verify", "--from", &from, "--to", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Every kind of column an app's schema has, filled from SQLite's loosely typed values
/// (text UUIDs, 0/1 booleans, text dates and JSON), verified by the target's types; and a
/// NULL bound for a NOT NULL column is found by the dry run, with its key.
#[test]
fn every_type_into_the_app_s_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE wide (id INTEGER PRIMARY KEY, u TEXT, b BLOB, d TEXT, j TEXT, flag INTEGER,
               small INTEGER, f REAL, t TEXT, n TEXT, s TEXT);
             INSERT INTO wide VALUES
               (1, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', x'00ff10', '2024-02-29', '{\"b\": [1, 2], \"a\": null}',
                1, -7, 0.1, '23:59:59.5', '12.5', 'zoë'),
               (2, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL);",
        )
        .unwrap();
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "SET ROLE app; CREATE TABLE wide (id bigint PRIMARY KEY, u uuid, b bytea, d date, j jsonb,
           flag boolean NOT NULL, small smallint, f double precision, t time, n numeric(8,3) NOT NULL DEFAULT 0,
           s varchar(10));",
    );
    let (from, to) = (format!("sqlite://{}", db.display()), pg.url("app"));
    let o = switchyard(&["sync", "--dry-run", "--from", &from, "--to", &to]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(
            "-- REFUSED: wide.n (TEXT -> numeric(8,3)): 1 row(s) do not fit, first at key [2]: NULL in a NOT NULL column"
        ),
        "{out}"
    );
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE wide SET n = '0' WHERE id = 2")
        .unwrap();
    let o = switchyard(&["sync", "--from", &from, "--to", &to]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        pg.psql_db("app", "SELECT u || '|' || b || '|' || d || '|' || j || '|' || flag || '|' || small || '|' || f || '|' || t || '|' || n || '|' || s FROM wide WHERE id = 1"),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|\\x00ff10|2024-02-29|{\"a\": null, \"b\": [1, 2]}|true|-7|0.1|23:59:59.5|12.500|zoë"
    );
    let o = switchyard(&["verify", "--from", &from, "--to", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Arrays an app kept in SQLite as JSON (as switchyard's SQLite backend does) or as
/// PostgreSQL literals, into the app's array columns: nested, with NULLs, element
/// lengths checked by the dry run; verify compares them element by element.
#[test]
fn arrays_into_the_app_s_array_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let lite = rusqlite::Connection::open(&db).unwrap();
    lite.execute_batch(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, tags TEXT, scores TEXT, grid TEXT, codes TEXT, flags TEXT);
         INSERT INTO posts VALUES
           (1, '[\"a\", \"b c\", null, \"q\\\"x\"]', '{1,2,NULL}', '[[1,2],[3,4]]', '[\"ab\"]', '[true, false]'),
           (2, '[]', NULL, '[[5]]', '[\"toolong\"]', '{t}');",
    )
    .unwrap();
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "SET ROLE app; CREATE TABLE posts (id bigint PRIMARY KEY, tags text[], scores integer[],
           grid integer[][], codes varchar(3)[], flags boolean[]);",
    );
    let (from, to) = (format!("sqlite://{}", db.display()), pg.url("app"));
    let o = switchyard(&["sync", "--dry-run", "--from", &from, "--to", &to]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("-- REFUSED: posts.codes (TEXT -> character varying(3)[]): 1 row(s) do not fit, first at key [2]:"),
        "{out}"
    );
    assert!(out.contains("longer than 3 characters"), "{out}");
    lite.execute(
        "UPDATE posts SET codes = '[\"xyz\", null]' WHERE id = 2",
        [],
    )
    .unwrap();
    let o = switchyard(&["sync", "--from", &from, "--to", &to]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT string_agg(concat_ws('|', tags, scores, grid, codes, flags, array_ndims(grid)), ' / ' ORDER BY id) FROM posts"
        ),
        "{a,\"b c\",NULL,\"q\\\"x\"}|{1,2,NULL}|{{1,2},{3,4}}|{ab}|{t,f}|2 / {}|{{5}}|{xyz,NULL}|{t}|2"
    );
    let o = switchyard(&["verify", "--from", &from, "--to", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A changed element is a difference, named with both values.
    pg.psql_db("app", "UPDATE posts SET scores = '{1,2,3}' WHERE id = 1");
    let o = switchyard(&["verify", "--from", &from, "--to", &to]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(r#"key ["1"] column "scores": source "{1,2,NULL}" target "{1,2,3}""#),
        "{out}"
    );
}

/// A SQLite text column into the app's enum column (SQLAlchemy's `Enum`, Django choices
/// made into a type by hand): the dry run says so, the labels are copied, a value that is
/// no label is refused by the server naming the enum, and verify compares the labels.
#[test]
fn text_into_the_app_s_enum_column() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let lite = rusqlite::Connection::open(&db).unwrap();
    lite.execute_batch(
        "CREATE TABLE tickets (id INTEGER PRIMARY KEY, status TEXT NOT NULL);
         INSERT INTO tickets VALUES (1, 'new'), (2, 'paid');",
    )
    .unwrap();
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "SET ROLE app; CREATE TYPE ticket_status AS ENUM ('new', 'paid');
         CREATE TABLE tickets (id bigint PRIMARY KEY, status ticket_status NOT NULL);",
    );
    let (from, to) = (format!("sqlite://{}", db.display()), pg.url("app"));
    let o = switchyard(&["sync", "--dry-run", "--from", &from, "--to", &to]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(
            "-- column: tickets.status TEXT -> text (the target's enum type ticket_status)"
        ),
        "{out}"
    );
    let o = switchyard(&["sync", "--from", &from, "--to", &to]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        pg.psql_db("app", "SELECT string_agg(status::text || ':' || pg_typeof(status), ',' ORDER BY id) FROM tickets"),
        "new:ticket_status,paid:ticket_status"
    );
    let o = switchyard(&["verify", "--from", &from, "--to", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    lite.execute("INSERT INTO tickets VALUES (3, 'lost')", [])
        .unwrap();
    let o = switchyard(&["sync", "--from", &from, "--to", &to, "--force"]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("ticket_status") && out.contains("lost"),
        "{out}"
    );
}
