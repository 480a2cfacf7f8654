//! PostgreSQL DDL that SQLite's own lacks, on the SQLite backend through the proxy, as
//! migration tools send it (Django's schema editor, Alembic): constraints added and
//! dropped, column types, nullability and defaults changed, NOT NULL columns added,
//! columns dropped with what uses them, operator classes, SET CONSTRAINTS, deferrable
//! foreign keys, and UNNEST bulk inserts with array parameters. Each answer (or SQLSTATE)
//! is PostgreSQL's.

use tokio_postgres::Client;

use crate::support::{connect, first_column, rt, sqlite_proxy};

pub(crate) async fn code(c: &Client, sql: &str) -> String {
    match c.batch_execute(sql).await {
        Ok(()) => "ok".into(),
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| e.to_string()),
    }
}

pub(crate) async fn one(c: &Client, sql: &str) -> String {
    let rows = first_column(c, sql).await;
    rows.into_iter()
        .next()
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

#[test]
fn constraints_are_added_and_dropped_as_in_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(
            "CREATE TABLE kinds (id serial PRIMARY KEY, app varchar(100) NOT NULL, model varchar(100) NOT NULL);
             CREATE TABLE perms (id serial PRIMARY KEY, kind_id integer NOT NULL, name varchar(50) NOT NULL);
             INSERT INTO kinds (app, model) VALUES ('a', 'x'), ('a', 'y')",
        )
        .await
        .unwrap();
        // UNIQUE as Django adds it; a duplicate is then refused, and allowed once dropped.
        let uniq = "ALTER TABLE kinds ADD CONSTRAINT kinds_app_model_uniq UNIQUE (app, model)";
        assert_eq!(code(&c, uniq).await, "ok");
        assert_eq!(code(&c, "INSERT INTO kinds (app, model) VALUES ('a', 'x')").await, "23505");
        assert_eq!(code(&c, "ALTER TABLE kinds DROP CONSTRAINT kinds_app_model_uniq").await, "ok");
        assert_eq!(code(&c, "INSERT INTO kinds (app, model) VALUES ('a', 'x')").await, "ok");
        assert_eq!(code(&c, uniq).await, "23505", "existing duplicates refuse it");
        assert_eq!(code(&c, "ALTER TABLE kinds DROP CONSTRAINT nope").await, "42704");
        assert_eq!(code(&c, "ALTER TABLE kinds DROP CONSTRAINT IF EXISTS nope").await, "ok");

        // A deferrable foreign key: a child may come before its parent inside a
        // transaction; an orphan left at COMMIT is refused.
        let fk = "ALTER TABLE perms ADD CONSTRAINT perms_kind_fk FOREIGN KEY (kind_id) REFERENCES kinds (id) DEFERRABLE INITIALLY DEFERRED";
        assert_eq!(code(&c, fk).await, "ok");
        let ok = "BEGIN; INSERT INTO perms (kind_id, name) VALUES (10, 'early'); \
                  INSERT INTO kinds (id, app, model) VALUES (10, 'b', 'z'); COMMIT";
        assert_eq!(code(&c, ok).await, "ok");
        let orphan = "BEGIN; INSERT INTO perms (kind_id, name) VALUES (99, 'orphan'); COMMIT";
        assert_eq!(code(&c, orphan).await, "23503");
        c.batch_execute("ROLLBACK").await.ok();
        assert_eq!(one(&c, "SELECT count(*) FROM perms").await, "1");
        // SET CONSTRAINTS … IMMEDIATE checks what is pending, in one string with DDL as
        // Django sends it.
        let immediate = "BEGIN; INSERT INTO perms (kind_id, name) VALUES (98, 'x'); \
                         SET CONSTRAINTS ALL IMMEDIATE";
        assert_eq!(code(&c, immediate).await, "23503");
        c.batch_execute("ROLLBACK").await.unwrap();
        let both = "ALTER TABLE perms ADD COLUMN note text NULL; SET CONSTRAINTS \"perms_kind_fk\" IMMEDIATE";
        assert_eq!(code(&c, both).await, "ok");
        assert_eq!(code(&c, "SELECT note FROM perms").await, "ok");
        // An immediate foreign key over rows that break it is refused when added.
        c.batch_execute("CREATE TABLE notes (id serial PRIMARY KEY, kind_id integer); INSERT INTO notes (kind_id) VALUES (77)")
            .await
            .unwrap();
        let bad = "ALTER TABLE notes ADD CONSTRAINT notes_kind_fk FOREIGN KEY (kind_id) REFERENCES kinds (id)";
        assert_eq!(code(&c, bad).await, "23503");
        // CHECK, validated against the rows there.
        assert_eq!(code(&c, "ALTER TABLE notes ADD CONSTRAINT small CHECK (kind_id < 10)").await, "23514");
        assert_eq!(code(&c, "ALTER TABLE notes ADD CONSTRAINT big CHECK (kind_id > 10)").await, "ok");
        assert_eq!(code(&c, "INSERT INTO notes (kind_id) VALUES (1)").await, "23514");
    });
}

#[test]
fn columns_change_type_nullability_and_default_as_in_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(
            "CREATE TABLE users (id serial PRIMARY KEY, username varchar(30) NOT NULL, last_login timestamptz NOT NULL, age text);
             INSERT INTO users (username, last_login, age) VALUES ('ann', now(), '41'), ('bob', now(), NULL)",
        )
        .await
        .unwrap();
        // varchar(30) → varchar(150): longer names fit; → varchar(2): 'ann' does not.
        let long = "x".repeat(140);
        assert_eq!(code(&c, &format!("INSERT INTO users (username, last_login) VALUES ('{long}', now())")).await, "22001");
        assert_eq!(code(&c, "ALTER TABLE users ALTER COLUMN username TYPE varchar(150)").await, "ok");
        assert_eq!(code(&c, &format!("INSERT INTO users (username, last_login) VALUES ('{long}', now())")).await, "ok");
        assert_eq!(code(&c, "ALTER TABLE users ALTER COLUMN username TYPE varchar(2)").await, "22001");
        assert_eq!(code(&c, &format!("INSERT INTO users (username, last_login) VALUES ('{long}x', now())")).await, "ok");
        // USING converts the stored values; the column reads back as the new type.
        assert_eq!(code(&c, "ALTER TABLE users ALTER COLUMN age TYPE integer USING age::integer").await, "ok");
        assert_eq!(one(&c, "SELECT age + 1 FROM users WHERE username = 'ann'").await, "42");
        // Nullability.
        assert_eq!(code(&c, "ALTER TABLE users ALTER COLUMN last_login DROP NOT NULL").await, "ok");
        assert_eq!(code(&c, "INSERT INTO users (username) VALUES ('cy')").await, "ok");
        assert_eq!(code(&c, "ALTER TABLE users ALTER COLUMN last_login SET NOT NULL").await, "23502");
        assert_eq!(code(&c, "ALTER TABLE users ALTER COLUMN nope SET NOT NULL").await, "42703");
        // Defaults.
        assert_eq!(code(&c, "ALTER TABLE users ALTER COLUMN age SET DEFAULT 7").await, "ok");
        c.batch_execute("INSERT INTO users (username) VALUES ('dee')").await.unwrap();
        assert_eq!(one(&c, "SELECT age FROM users WHERE username = 'dee'").await, "7");
        assert_eq!(code(&c, "ALTER TABLE users ALTER COLUMN age DROP DEFAULT").await, "ok");
        c.batch_execute("INSERT INTO users (username) VALUES ('eve')").await.unwrap();
        assert_eq!(one(&c, "SELECT age FROM users WHERE username = 'eve'").await, "NULL");
        // ADD COLUMN NOT NULL with a default fills the rows there (Django then drops the
        // default); without one, a table with rows refuses it and an empty one takes it.
        let add = "ALTER TABLE users ADD COLUMN score integer DEFAULT 0 NOT NULL; ALTER TABLE users ALTER COLUMN score DROP DEFAULT";
        assert_eq!(code(&c, add).await, "ok");
        assert_eq!(one(&c, "SELECT count(*) FROM users WHERE score = 0").await, "7");
        assert_eq!(code(&c, "INSERT INTO users (username) VALUES ('fay')").await, "23502");
        assert_eq!(code(&c, "ALTER TABLE users ADD COLUMN rank integer NOT NULL").await, "23502");
        c.batch_execute("CREATE TABLE empty (id serial PRIMARY KEY)").await.unwrap();
        assert_eq!(code(&c, "ALTER TABLE empty ADD COLUMN rank integer NOT NULL").await, "ok");
        assert_eq!(code(&c, "INSERT INTO empty (rank) VALUES (NULL)").await, "23502");
        // A failed ALTER inside a transaction leaves nothing after ROLLBACK.
        let failed = "BEGIN; ALTER TABLE users ALTER COLUMN username TYPE varchar(1)";
        assert_eq!(code(&c, failed).await, "22001");
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(code(&c, &format!("INSERT INTO users (username, score) VALUES ('{long}', 1)")).await, "ok");
    });
}

#[test]
fn columns_are_dropped_with_their_indexes_and_keys_and_indexes_take_opclasses() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(
            "CREATE TABLE groups (id serial PRIMARY KEY, name varchar(80) NOT NULL);
             CREATE TABLE members (id serial PRIMARY KEY, group_id integer REFERENCES groups (id), name varchar(80));
             CREATE INDEX members_name_like ON members (name varchar_pattern_ops);
             CREATE INDEX members_group ON members USING btree (group_id);
             INSERT INTO groups (name) VALUES ('g'); INSERT INTO members (group_id, name) VALUES (1, 'm')",
        )
        .await
        .unwrap();
        assert_eq!(code(&c, "ALTER TABLE members DROP COLUMN group_id CASCADE").await, "ok");
        assert_eq!(code(&c, "ALTER TABLE members DROP COLUMN name").await, "ok");
        assert_eq!(code(&c, "ALTER TABLE members DROP COLUMN name").await, "42703");
        assert_eq!(code(&c, "ALTER TABLE members DROP COLUMN IF EXISTS name").await, "ok");
        assert_eq!(one(&c, "SELECT count(*) FROM members").await, "1");
        // The group can go now that nothing refers to it.
        assert_eq!(code(&c, "DELETE FROM groups").await, "ok");
    });
    let file = dir.path().join("app.db");
    let lite = rusqlite::Connection::open(file).unwrap();
    let ok: String = lite
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn unnest_bulk_inserts_and_array_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute("CREATE TABLE kinds (id serial PRIMARY KEY, app varchar(100) NOT NULL, n integer)")
            .await
            .unwrap();
        // Django 5.2's bulk_create: one array parameter per column, ids back in order.
        let apps = vec!["auth", "a \"quoted\", one", "shop"];
        let ns = vec![Some(1i32), None, Some(3)];
        let rows = c
            .query(
                "INSERT INTO kinds (app, n) SELECT * FROM UNNEST(($1)::varchar[], ($2)::integer[]) RETURNING kinds.id, kinds.app",
                &[&apps, &ns],
            )
            .await
            .unwrap();
        let got: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(
            got,
            vec![(1, "auth".into()), (2, "a \"quoted\", one".into()), (3, "shop".into())]
        );
        assert_eq!(one(&c, "SELECT count(*) FROM kinds WHERE n IS NULL").await, "1");
        // = ANY(array parameter).
        let ids = vec![1i32, 3];
        let n: i64 = c
            .query_one("SELECT count(*) FROM kinds WHERE id = ANY($1::integer[])", &[&ids])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 2);
        // As Django's M2M add sends it: INSERT … SELECT … ON CONFLICT DO NOTHING (SQLite
        // needs the SELECT to have a WHERE for that ON to parse).
        c.batch_execute("CREATE TABLE pairs (a integer, b integer, PRIMARY KEY (a, b))")
            .await
            .unwrap();
        let add = "INSERT INTO pairs (a, b) SELECT * FROM UNNEST(('{1,1}')::integer[], ('{2,5}')::integer[]) ON CONFLICT DO NOTHING";
        assert_eq!(code(&c, add).await, "ok");
        assert_eq!(code(&c, add).await, "ok");
        assert_eq!(one(&c, "SELECT count(*) FROM pairs").await, "2");
        // UNNEST in FROM with an alias names its column after it.
        assert_eq!(one(&c, "SELECT string_agg(x, ',') FROM unnest('{a,b}'::text[]) AS x").await, "a,b");
    });
}

#[test]
fn enum_types_are_created_enforced_extended_and_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(
            "CREATE TYPE mood AS ENUM ('sad', 'ok');
             CREATE TABLE people (id serial PRIMARY KEY, mood mood NOT NULL)",
        )
        .await
        .unwrap();
        assert_eq!(code(&c, "CREATE TYPE mood AS ENUM ('x')").await, "42710");
        assert_eq!(code(&c, "INSERT INTO people (mood) VALUES ('ok')").await, "ok");
        let e = c.batch_execute("INSERT INTO people (mood) VALUES ('happy')").await.unwrap_err();
        let db = e.as_db_error().unwrap();
        assert_eq!((db.code().code(), db.message()), ("22P02", "invalid input value for enum mood"));
        assert_eq!(code(&c, "ALTER TYPE mood ADD VALUE 'happy' AFTER 'ok'").await, "ok");
        assert_eq!(code(&c, "ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok'").await, "ok");
        assert_eq!(code(&c, "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok'").await, "ok");
        assert_eq!(code(&c, "ALTER TYPE mood ADD VALUE 'ok'").await, "42710");
        assert_eq!(code(&c, "INSERT INTO people (mood) VALUES ('happy')").await, "ok");
        assert_eq!(
            one(&c, "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = 'mood'").await,
            "sad,meh,ok,happy"
        );
        // An enum column added later is held to its labels too.
        c.batch_execute("CREATE TYPE size AS ENUM ('s', 'm')").await.unwrap();
        assert_eq!(code(&c, "ALTER TABLE people ADD COLUMN size size").await, "ok");
        assert_eq!(code(&c, "UPDATE people SET size = 'xl'").await, "22P02");
        // Renamed, the column keeps its type (and the type its dependent).
        c.batch_execute("ALTER TABLE people RENAME COLUMN mood TO feeling; ALTER TABLE people RENAME TO persons")
            .await
            .unwrap();
        assert_eq!(
            one(&c, "SELECT udt_name FROM information_schema.columns WHERE table_name = 'persons' AND column_name = 'feeling'").await,
            "mood"
        );
        assert_eq!(code(&c, "INSERT INTO persons (feeling) VALUES ('bogus')").await, "22P02");
        assert_eq!(code(&c, "DROP TYPE mood").await, "2BP01");
        assert_eq!(code(&c, "DROP TABLE persons").await, "ok");
        assert_eq!(code(&c, "DROP TYPE mood, size").await, "ok");
        assert_eq!(code(&c, "DROP TYPE mood").await, "42704");
        assert_eq!(code(&c, "DROP TYPE IF EXISTS mood").await, "ok");
        assert_eq!(one(&c, "SELECT count(*) FROM pg_type WHERE typname = 'mood'").await, "0");
    });
}

/// An enum type made on the SQLite default is an enum type on PostgreSQL when switchyard
/// makes the schema: `sync` creates the type with its labels in order, the column has it,
/// the values are copied and verify agrees; a column renamed keeps its type.
#[test]
fn enum_columns_are_synced_as_enum_types() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(
            "CREATE TYPE mood AS ENUM ('sad', 'ok');
             ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok';
             CREATE TABLE people (id serial PRIMARY KEY, feeling mood NOT NULL, later mood);
             ALTER TABLE people RENAME COLUMN feeling TO mood_now;
             INSERT INTO people (mood_now, later) VALUES ('ok', NULL), ('meh', 'sad');",
        )
        .await
        .unwrap();
    });
    let (pg, _, _) = crate::support::cli::synced_and_verified(&dir.path().join("app.db"));
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum e \
             JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = 'mood'"
        ),
        "sad,meh,ok"
    );
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT string_agg(mood_now || ':' || pg_typeof(mood_now) || ':' || coalesce(later::text, '-'), ',' ORDER BY id) FROM people"
        ),
        "ok:mood:-,meh:mood:sad"
    );
}

/// Runs the Alembic project against `url`; returns the inspector's view of the schema.
fn alembic_run(url: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/alembic_sqlite/run.py");
    let out = std::process::Command::new("timeout")
        .args(["120", "python3"])
        .arg(&script)
        .arg(url.replace("postgres://", "postgresql+psycopg://"))
        .arg("check")
        .output()
        .unwrap();
    let text = crate::support::cli::text(&out);
    assert!(
        out.status.success() && text.contains("\nOK"),
        "{url}: {text}"
    );
    text.lines()
        .find_map(|l| l.strip_prefix("SCHEMA "))
        .unwrap_or_else(|| panic!("no schema printed: {text}"))
        .to_string()
}

/// Alembic revisions as autogenerate writes them (an enum type, FKs with ON DELETE, unique
/// and check constraints, JSONB, an identity key, `server_default=now()`, a widened varchar, a
/// column added with a default and an index, a rename and a retype): upgrade, down one,
/// up, down to nothing, up; `alembic check` finds the database as the models describe it
/// and finds a column they add; the models read and write; and SQLAlchemy's inspector
/// sees the same schema as on PostgreSQL after the same migrations.
#[test]
fn alembic_upgrades_and_downgrades_on_the_sqlite_default() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let on_pg = alembic_run(&pg.url("app"));
    let on_sqlite = alembic_run(&proxy.url("app", "secret"));
    let (pg_v, sq_v): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&on_pg).unwrap(),
        serde_json::from_str(&on_sqlite).unwrap(),
    );
    // Every difference, by table and kind (columns, pk, fks, unique, indexes, checks).
    let mut differences = Vec::new();
    for (table, want) in pg_v.as_object().unwrap() {
        for (kind, want) in want.as_object().into_iter().flatten() {
            let got = &sq_v[table][kind];
            if got != want {
                differences.push(format!(
                    "{table}.{kind}:\n  sqlite:   {got}\n  postgres: {want}"
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert_eq!(pg_v, sq_v);
    // psql's `\d` of each table reads the same.
    for table in ["customers", "invoices", "events"] {
        let describe = |port: u16| psql_script(port, &format!("\\d {table}\n"));
        let (want, got) = (describe(pg.port), describe(proxy.port));
        assert!(want.contains("Table \"public."), "{want}");
        assert_eq!(
            got, want,
            "psql \\d {table}: the SQLite default, then PostgreSQL"
        );
    }
}

/// `script` through psql on a new PostgreSQL and on a new SQLite default: (what
/// PostgreSQL printed, what the SQLite default printed).
pub(crate) fn psql_on_both(script: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    (
        psql_script(pg.port, script),
        psql_script(proxy.port, script),
    )
}

/// psql (as app/secret on database app) fed `script` on its input: what it printed.
pub(crate) fn psql_script(port: u16, script: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "app",
            "-d",
            "app",
        ])
        .env("PGPASSWORD", "secret")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// psql's `\gdesc` (it sends the result's type OIDs back through `format_type` as
/// text) describes a query on the SQLite default as on PostgreSQL.
#[test]
fn psql_gdesc_describes_a_query_as_postgresql_does() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let sql = "SELECT 1 AS a, 'x'::text AS b, now() AS c, true AS d, 2.5::float8 AS e \\gdesc\n";
    let gdesc = |port: u16| psql_script(port, sql);
    let (want, got) = (gdesc(pg.port), gdesc(proxy.port));
    assert!(want.contains("timestamp with time zone"), "{want}");
    assert_eq!(
        got, want,
        "psql \\gdesc: the SQLite default, then PostgreSQL"
    );
}

/// Catalog questions as introspection asks them (Django's inspectdb, Alembic's and psql's
/// reflection), answered on the SQLite default as PostgreSQL answers them after the same
/// DDL: names looked up by parameter, array subscripts (`conkey[1]`, `indkey[0]`),
/// `unnest(…) WITH ORDINALITY` over catalog columns, CHECK constraints, defaults as
/// PostgreSQL prints them, serial sequences and what owns them, identity columns (also
/// renamed).
#[test]
fn catalog_introspection_answers_as_postgresql_does() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let ddl = "CREATE TABLE cat (id serial PRIMARY KEY, a integer NOT NULL CHECK (a > 0), \
               b smallint DEFAULT '0' NOT NULL, name varchar(40) DEFAULT 'anon', \
               made timestamptz DEFAULT now(), CONSTRAINT cat_a_b_key UNIQUE (a, b)); \
               CREATE TABLE idt (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n text); \
               CREATE TABLE ida (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY); \
               ALTER TABLE ida RENAME TO ida2";
    let questions = [
        "SELECT a.attname FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid \
         AND a.attnum = con.conkey[1] WHERE con.contype = 'p' AND con.conrelid = 'cat'::regclass",
        "SELECT array_to_string(array(SELECT attname FROM unnest(c.conkey) WITH ORDINALITY cols(colid, arridx) \
         JOIN pg_attribute ca ON cols.colid = ca.attnum WHERE ca.attrelid = c.conrelid ORDER BY cols.arridx), ',') \
         FROM pg_constraint c WHERE c.conname = 'cat_a_b_key'",
        "SELECT string_agg(attr.attname, ',' ORDER BY idx.arridx) FROM (SELECT * FROM pg_index i, \
         unnest(i.indkey, i.indoption) WITH ORDINALITY koi(key, option, arridx)) idx \
         JOIN pg_class c2 ON c2.oid = idx.indexrelid JOIN pg_attribute attr ON attr.attrelid = idx.indrelid \
         AND attr.attnum = idx.key WHERE c2.relname = 'cat_a_b_key'",
        "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c' \
         AND conrelid = 'cat'::regclass",
        "SELECT string_agg(column_name || '=' || column_default, ' | ' ORDER BY ordinal_position) \
         FROM information_schema.columns WHERE table_name = 'cat' AND column_default IS NOT NULL",
        "SELECT c.relname || ' owned by ' || a.attname FROM pg_class c JOIN pg_depend d ON d.objid = c.oid \
         AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
         JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid WHERE c.relkind = 'S'",
        "SELECT seqstart || ' ' || seqincrement || ' ' || seqmax FROM pg_sequence",
        "SELECT string_agg(c.relname || '.' || a.attname || ':' || a.attidentity::text, ',' ORDER BY c.relname) \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         WHERE c.relname IN ('cat', 'idt', 'ida2') AND a.attname = 'id'",
        "SELECT pg_get_serial_sequence('idt', 'id') || ' ' || pg_get_serial_sequence('cat', 'id')",
        "SELECT count(*) FROM information_schema.columns WHERE table_name IN ('idt', 'ida2') \
         AND column_default IS NOT NULL",
        "SELECT string_agg(attname || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ',' ORDER BY attnum) FROM pg_attribute \
         WHERE attrelid = 'cat'::regclass AND attnum > 0",
    ];
    rt().block_on(async {
        let mut answers = Vec::new();
        for url in [pg.url("app"), proxy.url("app", "secret")] {
            let c = connect(&url).await.unwrap();
            c.batch_execute(ddl).await.unwrap();
            let mut got: Vec<String> = Vec::new();
            for q in questions {
                got.push(one(&c, q).await);
            }
            // A name as a parameter (a driver's bound value, not a literal).
            let rows = c
                .query(
                    "SELECT relname::text FROM pg_class WHERE relname = $1",
                    &[&"cat"],
                )
                .await
                .unwrap();
            got.push(format!("{} row(s) by parameter", rows.len()));
            answers.push(got);
        }
        for (q, (want, got)) in questions.iter().zip(answers[0].iter().zip(&answers[1])) {
            assert_eq!(got, want, "{q}");
        }
        assert_eq!(answers[0].last(), answers[1].last());
    });
}
