//! A Django 5.2 project (tests/clients/django_app) moved from SQLite to PostgreSQL with
//! switchyard, both ways a user would: into the schema `manage.py migrate` made there, and
//! with switchyard making the schema. Each time the app's own report, run through
//! switchyard, must equal byte for byte the report of the same app built natively on
//! PostgreSQL, and `showmigrations` must show nothing unapplied.

use std::path::Path;
use std::process::Command;

use crate::support::cli::{switchyard, text};
use crate::support::{PgCluster, Proxy};

/// Where the app's database is: Django's own SQLite backend on a file, or PostgreSQL
/// (directly or through switchyard) on a port.
enum Db<'a> {
    Sqlite(&'a Path),
    Pg(u16),
}

/// `python manage.py ARGS` against `db`; returns stdout (the command must succeed).
fn manage(db: &Db, args: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/django_app");
    let mut c = Command::new("timeout");
    c.args(["120", "python3", "manage.py"])
        .args(args)
        .env("DJANGO_SUPERUSER_PASSWORD", "secret-admin")
        .current_dir(dir);
    match db {
        Db::Sqlite(p) => c.env("SY_SQLITE", p),
        Db::Pg(port) => c.env_remove("SY_SQLITE").env("SY_PORT", port.to_string()),
    };
    let out = c.output().unwrap();
    assert!(out.status.success(), "manage.py {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `got` (from the SQLite default) reads line for line as `want` (from PostgreSQL).
fn same_lines(want: &str, got: &str, what: &str) {
    let differ: Vec<(&str, &str)> = want
        .lines()
        .zip(got.lines())
        .filter(|(w, g)| w != g)
        .collect();
    assert!(
        differ.is_empty() && want.lines().count() == got.lines().count(),
        "{what} on the SQLite default differs from PostgreSQL's:\n{differ:#?}\n{got}"
    );
}

/// Syncs, verifies, then checks the app through switchyard against `want`.
fn moved(from: &str, pg: &PgCluster, extra: &[&str], want: &str) {
    let to = pg.url("app");
    let o = switchyard(&[&["sync", "--from", from, "--to", &to][..], extra].concat());
    assert!(o.status.success(), "{}", text(&o));
    let o = switchyard(&["verify", "--from", from, "--to", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let proxy = Proxy::simple(&to, "");
    let db = Db::Pg(proxy.port);
    let migrations = manage(&db, &["showmigrations"]);
    assert!(migrations.contains("[X] 0001_initial"), "{migrations}");
    assert!(!migrations.contains("[ ]"), "{migrations}");
    let got = manage(&db, &["report"]);
    assert_eq!(
        got, want,
        "the app's output differs from the native PostgreSQL one"
    );
}

#[test]
fn a_django_app_moves_to_postgres_and_shows_what_it_shows_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let sqlite = Db::Sqlite(&db);
    manage(&sqlite, &["migrate"]);
    manage(&sqlite, &["seed"]);
    let from = format!("sqlite://{}", db.display());

    // The same app built natively on PostgreSQL: what it must show.
    let native = PgCluster::start();
    manage(&Db::Pg(native.port), &["migrate"]);
    manage(&Db::Pg(native.port), &["seed"]);
    let want = manage(&Db::Pg(native.port), &["report"]);
    assert!(want.contains("+00:00"), "{want}");

    // Schema first: `migrate` on PostgreSQL, then the copy into it (--force: migrate
    // filled django_migrations, content types and permissions, which the SQLite file's
    // own rows replace).
    let first = PgCluster::start();
    manage(&Db::Pg(first.port), &["migrate"]);
    moved(&from, &first, &["--force"], &want);

    // switchyard makes the schema. Django's SQLite schema does not keep a DecimalField's
    // scale (it declares `decimal`), so the user states it.
    let made = PgCluster::start();
    moved(
        &from,
        &made,
        &["--type", "shop_order.total=numeric(10,2)"],
        &want,
    );
}

/// The same app written for PostgreSQL (`ENGINE = postgresql`) on switchyard's SQLite
/// backend, from an empty file: `migrate` applies every migration (ALTER TABLE forms
/// SQLite lacks, deferrable foreign keys, `varchar_pattern_ops` indexes, `SET
/// CONSTRAINTS`, the UNNEST bulk inserts of content types and permissions), nothing is
/// left unapplied, dumpdata/flush/loaddata round-trips (sequences reset), and the app's
/// report equals the one it gives on PostgreSQL.
#[test]
fn a_django_app_migrates_and_runs_on_the_sqlite_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.db");
    let proxy = Proxy::simple(&crate::support::sqlite_url(&file), "");
    let db = Db::Pg(proxy.port);
    manage(&db, &["migrate"]);
    let migrations = manage(&db, &["showmigrations"]);
    assert!(!migrations.contains("[ ]"), "{migrations}");
    assert!(
        migrations.contains("[X] 0012_alter_user_first_name_max_length"),
        "{migrations}"
    );
    let again = manage(&db, &["migrate"]);
    assert!(again.contains("No migrations to apply."), "{again}");
    manage(
        &db,
        &[
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
        ],
    );
    let login = manage(
        &db,
        &[
            "shell",
            "-c",
            "from django.contrib.auth import authenticate; \
             u = authenticate(username='admin', password='secret-admin'); \
             print(u is not None and u.is_superuser)",
        ],
    );
    assert_eq!(login.lines().last(), Some("True"), "{login}");
    // Seeded, dumped, flushed and loaded again (loaddata resets the sequences with
    // setval(pg_get_serial_sequence(…))), so the report's new rows get the ids they get
    // on PostgreSQL.
    let reload = |db: &Db, file: &Path| {
        manage(db, &["seed"]);
        let dump = file.to_str().unwrap();
        manage(db, &["dumpdata", "shop", "auth.user", "--output", dump]);
        manage(db, &["flush", "--noinput"]);
        manage(db, &["loaddata", dump]);
        manage(db, &["report"])
    };
    let got = reload(&db, &dir.path().join("sqlite-dump.json"));

    let native = PgCluster::start();
    manage(&Db::Pg(native.port), &["migrate"]);
    let want = reload(&Db::Pg(native.port), &dir.path().join("pg-dump.json"));
    // Django's introspection (inspectdb: every table's columns, types, lengths, keys,
    // relations and unique sets) sees the schema PostgreSQL has after the same migrations.
    let (pg_schema, sq_schema) = (
        manage(&Db::Pg(native.port), &["inspectdb"]),
        manage(&db, &["inspectdb"]),
    );
    same_lines(&pg_schema, &sq_schema, "inspectdb");
    same_lines(&want, &got, "the app's report");
    // The file stays a plain SQLite database.
    let c = rusqlite::Connection::open(&file).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
