//! `switchyard sync` and `switchyard verify` against real PostgreSQL: an ORM-shaped SQLite
//! app database, a killed and resumed sync, a corrupted row, bad values, and PostgreSQL →
//! PostgreSQL with the pgbench tables.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rusqlite::Connection;
use tokio_postgres::SimpleQueryMessage;

use crate::support::cli::{sqlite_db, switchyard, switchyard_logging, text, verify_differs};
use crate::support::{PgCluster, connect, pgbench, rt};

/// An app database as an ORM leaves it: booleans as 0/1, datetimes as text and as epoch
/// integers, AUTOINCREMENT, blobs, NULLs, unicode, camelCase and reserved-word columns,
/// foreign keys, and a table without a primary key.
fn make_fixture(path: &Path, users: i64, posts: i64) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE users (id INTEGER NOT NULL, email VARCHAR(120) NOT NULL, is_active BOOLEAN NOT NULL DEFAULT 1, \
           created_at DATETIME DEFAULT CURRENT_TIMESTAMP, \"riskScore\" REAL, \"order\" INTEGER, avatar BLOB, bio TEXT, \
           PRIMARY KEY (id), UNIQUE (email));
         CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, \
           title TEXT NOT NULL, published_at DATETIME, price DECIMAL(10,2), meta JSON, draft BOOLEAN DEFAULT 0);
         CREATE INDEX ix_posts_user ON posts (user_id);
         CREATE TABLE audit_log (at TIMESTAMP, message TEXT);
         BEGIN;",
    )
    .unwrap();
    for i in 1..=users {
        c.execute(
            "INSERT INTO users (id, email, is_active, created_at, \"riskScore\", \"order\", avatar, bio) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                i,
                format!("user{i}@example.com"),
                (i % 3 != 0) as i64,
                format!("2024-01-{:02} 03:07:36.{:06}", 1 + i % 28, i * 7 % 1_000_000),
                if i % 5 == 0 { None } else { Some(i as f64 / 7.0) },
                i % 10,
                if i % 4 == 0 { Some(vec![0u8, 159, 146, 150, i as u8]) } else { None },
                if i % 2 == 0 { "Zoë Ω 🚀 naïve".to_string() } else { format!("plain bio {i}") },
            ],
        )
        .unwrap();
    }
    for i in 1..=posts {
        c.execute(
            "INSERT INTO posts (user_id, title, published_at, price, meta, draft) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                1 + i % users,
                format!("post {i} — “quoted”"),
                if i % 6 == 0 { None } else { Some(1_704_510_456 + i * 60) },
                format!("{}.{:02}", i % 1000, i % 100),
                format!("{{\"tags\": [\"t{}\"], \"views\": {}}}", i % 7, i),
                i % 2,
            ],
        )
        .unwrap();
    }
    for i in 0..100 {
        c.execute(
            "INSERT INTO audit_log VALUES (?1, ?2)",
            rusqlite::params![
                format!("2024-02-01 00:00:{:02}", i % 60),
                format!("event {i}")
            ],
        )
        .unwrap();
    }
    c.execute_batch("COMMIT").unwrap();
}

async fn one(c: &tokio_postgres::Client, sql: &str) -> Option<String> {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })?
}

#[test]
fn sqlite_app_database_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    make_fixture(&db, 500, 2000);
    let pg = PgCluster::start();
    let from = format!("sqlite://{}", db.display());
    let to = pg.url("app");
    // Dry run writes nothing and shows the plan.
    let o = switchyard(&["sync", "--from", &from, "--to", &to, "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let plan = text(&o);
    assert!(
        plan.contains("-- users: 500 rows, create and copy")
            && plan.contains("\"riskScore\" double precision"),
        "{plan}"
    );
    assert!(plan.contains("audit_log: no primary key"), "{plan}");
    // Every type that changes on the way is listed with the reason.
    assert!(
        plan.contains(
            "-- type: users.id INTEGER -> bigint: SQLite stores every integer in 64 bits"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("-- type: users.created_at DATETIME -> timestamp: "),
        "{plan}"
    );
    assert!(
        plan.contains("CONSTRAINT \"posts_user_id_fkey\" FOREIGN KEY"),
        "{plan}"
    );
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
    let o = switchyard(&["sync", "--from", &from, "--to", &to, "--batch-rows", "300"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("total"), "{}", text(&o));
    rt().block_on(async {
        let c = connect(&to).await.unwrap();
        assert_eq!(one(&c, "SELECT count(*) FROM users").await.as_deref(), Some("500"));
        assert_eq!(one(&c, "SELECT count(*) FROM posts").await.as_deref(), Some("2000"));
        assert_eq!(one(&c, "SELECT count(*) FROM audit_log").await.as_deref(), Some("100"));
        // Values, checked independently of switchyard's verify.
        assert_eq!(one(&c, "SELECT is_active::text FROM users WHERE id = 3").await.as_deref(), Some("false"));
        assert_eq!(one(&c, "SELECT created_at::text FROM users WHERE id = 2").await.as_deref(), Some("2024-01-03 03:07:36.000014"));
        assert_eq!(one(&c, "SELECT \"riskScore\" FROM users WHERE id = 7").await.as_deref(), Some("1"));
        assert_eq!(one(&c, "SELECT \"riskScore\" IS NULL FROM users WHERE id = 5").await.as_deref(), Some("t"));
        assert_eq!(one(&c, "SELECT encode(avatar, 'hex') FROM users WHERE id = 4").await.as_deref(), Some("009f929604"));
        assert_eq!(one(&c, "SELECT bio FROM users WHERE id = 2").await.as_deref(), Some("Zoë Ω 🚀 naïve"));
        assert_eq!(one(&c, "SELECT \"order\" FROM users WHERE id = 13").await.as_deref(), Some("3"));
        assert_eq!(one(&c, "SELECT published_at::text FROM posts WHERE id = 1").await.as_deref(), Some("2024-01-06 03:08:36"));
        assert_eq!(one(&c, "SELECT price::text FROM posts WHERE id = 1234").await.as_deref(), Some("234.34"));
        assert_eq!(one(&c, "SELECT meta->>'views' FROM posts WHERE id = 42").await.as_deref(), Some("42"));
        assert_eq!(one(&c, "SELECT title FROM posts WHERE id = 9").await.as_deref(), Some("post 9 — “quoted”"));
        // The app's next INSERT without an id does not collide.
        assert_eq!(one(&c, "INSERT INTO users (email) VALUES ('new@example.com') RETURNING id").await.as_deref(), Some("501"));
        assert_eq!(one(&c, "INSERT INTO posts (user_id, title) VALUES (1, 'new') RETURNING id").await.as_deref(), Some("2001"));
        // Constraints and indexes came along.
        assert_eq!(one(&c, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'posts'::regclass").await.as_deref(), Some("1"));
        // Named as PostgreSQL (and the ORMs after it) would name them.
        assert_eq!(one(&c, "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid IN ('posts'::regclass, 'users'::regclass)").await.as_deref(), Some("posts_pkey,posts_user_id_fkey,users_pkey"));
        assert_eq!(one(&c, "SELECT indexname FROM pg_indexes WHERE tablename = 'users' AND indexdef LIKE 'CREATE UNIQUE%email%'").await.as_deref(), Some("users_email_key"));
        assert_eq!(one(&c, "SELECT count(*) FROM pg_indexes WHERE tablename = 'users' AND indexdef LIKE 'CREATE UNIQUE%email%'").await.as_deref(), Some("1"));
        assert_eq!(one(&c, "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_posts_user'").await.as_deref(), Some("1"));
        c.batch_execute("DELETE FROM posts WHERE id = 2001; DELETE FROM users WHERE id = 501").await.unwrap();
    });
    // Freshly copied tables are stored in key order, so verify reads them as stored.
    // (The note on storage order is for debugging, as is each database notice.)
    let o = switchyard_logging("debug", &["verify", "--from", &from, "--to", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(!out.contains("not stored in key order"), "{out}");
    let o = switchyard_logging("info", &["verify", "--from", &from, "--to", &to]);
    let out = text(&o);
    // Progress: a log line per table when stderr is not a terminal, with its true count.
    assert!(out.contains("verify done table=posts rows=2000"), "{out}");
    // Running the same sync again copies nothing twice; the server's notices about what
    // already exists are not shown at the default level.
    let o = switchyard_logging("info", &["sync", "--from", &from, "--to", &to]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("already exists"), "{}", text(&o));
    let o = switchyard_logging("debug", &["sync", "--from", &from, "--to", &to]);
    assert!(text(&o).contains("database notice"), "{}", text(&o));
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT (SELECT count(*) FROM users) || '/' || (SELECT count(*) FROM posts)"
        ),
        "500/2000"
    );
    // Corrupt one row: verify names it. The update moves the row out of key order in
    // storage, so verify notices and reads the table again in key order.
    pg.psql_db("app", "UPDATE posts SET title = 'tampered' WHERE id = 77");
    pg.psql_db("app", "DELETE FROM users WHERE id = 300");
    let o = switchyard_logging("debug", &["verify", "--from", &from, "--to", &to]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("not stored in key order"), "{out}");
    assert!(
        out.contains(
            "key [\"77\"] column \"title\": source \"post 77 — “quoted”\" target \"tampered\""
        ),
        "{out}"
    );
    assert!(out.contains("key [\"300\"]: missing in target"), "{out}");
    let o = switchyard(&["verify", "--from", &from, "--to", &to, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["identical"], false);
    let o = switchyard(&["verify", "--from", "sqlite:///nonexistent.db", "--to", &to]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A target that cannot be read is named with the server's error, not compared.
    let cannot_run = |to: &str, says: &str| {
        let o = switchyard(&["verify", "--from", &from, "--to", to]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(says), "{}", text(&o));
    };
    pg.psql_db("app", "ALTER TABLE posts RENAME COLUMN title TO headline");
    cannot_run(
        &to,
        "target: column \"title\" of relation \"posts\" does not exist (SQLSTATE 42703)",
    );
    cannot_run(
        &to.replace(":secret@", ":wrong@"),
        "password authentication failed",
    );
}

#[test]
fn killed_sync_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    make_fixture(&db, 2000, 60_000);
    let pg = PgCluster::start();
    let from = format!("sqlite://{}", db.display());
    let to = pg.url("app");
    let mut child = crate::support::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "sync",
                "--from",
                &from,
                "--to",
                &to,
                "--batch-rows",
                "500",
                "--parallel",
                "1",
            ])
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    // Once 2000 rows are in, hold the checkpoint table so the sync's next batch cannot
    // commit (each batch writes its checkpoint in its own transaction), then kill it: it
    // dies midway however fast this machine copies.
    let started = rt().block_on(async {
        let c = connect(&to).await.unwrap();
        let progress = "SELECT coalesce(sum(rows_copied), 0)::int8 FROM switchyard.sync_progress WHERE table_name = 'posts'";
        for _ in 0..3000 {
            let copied: i64 = match c.query_one(progress, &[]).await {
                Ok(r) => r.get(0),
                Err(_) => 0, // the checkpoint table is not there yet
            };
            if copied > 2000 {
                c.batch_execute("BEGIN; LOCK TABLE switchyard.sync_progress IN SHARE MODE")
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
                child.kill().unwrap();
                let _ = child.wait();
                c.batch_execute("ROLLBACK").await.unwrap();
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    });
    assert!(started, "the sync never got going");
    let copied: i64 = pg
        .psql_db("app", "SELECT count(*) FROM posts")
        .parse()
        .unwrap();
    assert!(
        copied > 0 && copied < 60_000,
        "killed midway, {copied} rows copied"
    );
    let o = switchyard(&["sync", "--from", &from, "--to", &to]);
    assert!(
        !o.status.success() && text(&o).contains("--resume"),
        "{}",
        text(&o)
    );
    let o = switchyard(&[
        "sync",
        "--from",
        &from,
        "--to",
        &to,
        "--resume",
        "--batch-rows",
        "5000",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        pg.psql_db("app", "SELECT count(*), count(DISTINCT id) FROM posts"),
        "60000|60000"
    );
    let o = switchyard(&["verify", "--from", &from, "--to", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn bad_values_stop_the_sync_or_go_to_the_reject_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bad.db");
    let c = Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE flags (id INTEGER PRIMARY KEY, ok BOOLEAN, at DATETIME, code VARCHAR(3));
         INSERT INTO flags VALUES (1, 1, '2024-01-01 00:00:00', 'abc'), (2, 2, '2024-01-01', 'x'), (3, 0, 'not a date', 'y'), (4, 0, NULL, 'toolong');",
    )
    .unwrap();
    drop(c);
    let pg = PgCluster::start();
    let from = format!("sqlite://{}", db.display());
    let o = switchyard(&["sync", "--from", &from, "--to", &pg.url("app")]);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("table flags, row with key [2], column ok: value 2 does not fit boolean"),
        "{out}"
    );
    let rejects = dir.path().join("rejects.jsonl");
    let o = switchyard(&[
        "sync",
        "--from",
        &from,
        "--to",
        &pg.url("app"),
        "--force",
        "--skip-bad-rows",
        rejects.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let lines = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(
        lines.contains("not a timestamp") && lines.contains("longer than 3"),
        "{lines}"
    );
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM flags"), "1");
}

/// SQLite does not enforce foreign keys unless asked, so a source may hold rows pointing at
/// missing parents: the copy completes, the key is kept NOT VALID (checking new rows),
/// the sequences are set, and the run fails naming the key and an offending row.
#[test]
fn orphan_rows_leave_the_foreign_key_not_valid() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "orphans.db",
            "PRAGMA foreign_keys = OFF;
             CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);
             CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL REFERENCES users(id), body TEXT);
             INSERT INTO users (name) VALUES ('a'), ('b');
             INSERT INTO posts (user_id, body) VALUES (1, 'x'), (42, 'orphan'), (2, 'y');",
    );
    let pg = PgCluster::start();
    let from = format!("sqlite://{}", db.display());
    for _ in 0..2 {
        // A second run finds the key still unvalidated and says so again.
        let o = switchyard(&["sync", "--from", &from, "--to", &pg.url("app")]);
        let out = text(&o);
        assert!(!o.status.success(), "{out}");
        assert!(
            out.contains(r#"foreign key "posts_user_id_fkey" on "posts" does not hold"#)
                && out.contains("Key (user_id)=(42) is not present"),
            "{out}"
        );
    }
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT convalidated FROM pg_constraint WHERE conname = 'posts_user_id_fkey'"
        ),
        "f"
    );
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM posts"), "3");
    assert_eq!(
        pg.psql_db(
            "app",
            "INSERT INTO posts (user_id, body) VALUES (1, 'new') RETURNING id"
        ),
        "4"
    );
    let (ok, _, err) = crate::support::psql(
        pg.port,
        "app",
        "secret",
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "INSERT INTO posts (user_id, body) VALUES (99, 'bad')",
        ],
    );
    assert!(!ok && err.contains("posts_user_id_fkey"), "{err}");
    // A parent rejected for a bad value orphans its children: the reject file is written
    // all the same, and the key is reported.
    let db2 = sqlite_db(
        dir.path(),
        "rejected_parent.db",
        "PRAGMA foreign_keys = OFF;
             CREATE TABLE owners (id INTEGER PRIMARY KEY, active BOOLEAN NOT NULL);
             CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id));
             INSERT INTO owners VALUES (1, 1), (2, 7);
             INSERT INTO pets VALUES (1, 1), (2, 2);",
    );
    let rejects = dir.path().join("rejects.jsonl");
    let from2 = format!("sqlite://{}", db2.display());
    let o = switchyard(&[
        "sync",
        "--from",
        &from2,
        "--to",
        &pg.url("app"),
        "--skip-bad-rows",
        rejects.to_str().unwrap(),
    ]);
    let out = text(&o);
    assert!(
        !o.status.success() && out.contains("Key (owner_id)=(2)"),
        "{out}"
    );
    let lines = std::fs::read_to_string(&rejects).unwrap();
    assert!(lines.contains("does not fit boolean"), "{lines}");
    // Once the orphan is gone, a sync validates the key.
    pg.psql_db("app", "DELETE FROM posts WHERE user_id = 42");
    let o = switchyard(&["sync", "--from", &from, "--to", &pg.url("app")]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        pg.psql_db(
            "app",
            "SELECT convalidated FROM pg_constraint WHERE conname = 'posts_user_id_fkey'"
        ),
        "t"
    );
}

#[test]
fn postgres_to_postgres_pgbench_tables() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    assert!(pgbench(a.port, &["-i", "-s", "2", "-q", "--foreign-keys"]).ok);
    // Types verify reads in binary and types it has the server cast to text.
    a.psql_db(
        "app",
        "CREATE TABLE kinds (id int PRIMARY KEY, u uuid, ip inet, span interval, nums int[], \
           d date, ts timestamptz, n numeric, r real, j jsonb, c char(4), b bytea, \
           tags varchar(10)[], amounts numeric(6,2)[]);
         INSERT INTO kinds SELECT i, md5(i::text)::uuid, '10.0.0.1'::inet + i, i * interval '1 min', \
           ARRAY[i, -i], date '2024-02-29' + i, timestamptz '2024-02-29 12:00:00.5+02' + i * interval '1 s', \
           CASE WHEN i % 7 = 0 THEN 'NaN' ELSE i / 8.0 END, i / 10.0, jsonb_build_object('i', i, 'k', 'v'), \
           'ab', decode(lpad(to_hex(i), 4, '0'), 'hex'), ARRAY['a' || i, 'b'], ARRAY[i / 4.0, 1.5] \
           FROM generate_series(1, 500) i;
         INSERT INTO kinds (id) VALUES (0);
         CREATE TABLE parents (id int PRIMARY KEY);
         CREATE TABLE kids (id int PRIMARY KEY, parent_id int);
         INSERT INTO parents VALUES (1);
         INSERT INTO kids VALUES (1, 1), (2, 7);
         ALTER TABLE kids ADD CONSTRAINT kids_parent FOREIGN KEY (parent_id) REFERENCES parents (id) NOT VALID;",
    );
    let o = switchyard(&[
        "sync",
        "--from",
        &a.url("app"),
        "--to",
        &b.url("app"),
        "--batch-rows",
        "50000",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        b.psql_db("app", "SELECT count(*) FROM pgbench_accounts"),
        "200000"
    );
    // A key the source holds NOT VALID (its orphan row included) is reproduced as such.
    assert_eq!(
        b.psql_db(
            "app",
            "SELECT convalidated FROM pg_constraint WHERE conname = 'kids_parent'"
        ),
        "f"
    );
    let o = switchyard(&["verify", "--from", &a.url("app"), "--to", &b.url("app")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    b.psql_db(
        "app",
        "UPDATE kinds SET span = span + interval '1 s', n = 0.5 WHERE id = 42",
    );
    verify_differs(
        &a.url("app"),
        &b.url("app"),
        &[
            "table kinds: 501 rows in source, 501 in target: 1 difference(s)",
            r#"key ["42"] column "span": source "00:42:00" target "00:42:01""#,
            r#"key ["42"] column "n": source "NaN" target "0.5""#,
        ],
    );
    // pgbench runs against the copy.
    let r = pgbench(b.port, &["-c", "2", "-t", "50"]);
    assert!(r.ok && r.failed == 0, "{}", r.output);
}
