//! `switchyard sync --live` on its own (no proxy): a table without a primary key is refused
//! before anything is installed; changes made to SQLite while it runs reach PostgreSQL;
//! verify agrees; `sync --finish` removes every trigger, table and function it installed.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::PgCluster;
use crate::support::cluster::{scratch_dir, wait_until};

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// `switchyard sync --live` running in the background.
fn live_sync(from: &str, to: &str) -> crate::support::KillOnDrop {
    crate::support::KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["sync", "--live", "--from", from, "--to", to])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Stops it as Ctrl-C would, and waits for it.
fn interrupt(child: &mut crate::support::KillOnDrop) -> std::process::ExitStatus {
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap()
}

/// Stops the live sync, which must have caught up (`rows` in the target) and exit
/// cleanly; verify must then find both sides identical.
fn stop_caught_up(
    child: &mut crate::support::KillOnDrop,
    caught_up: bool,
    rows: &str,
    from: &str,
    to: &str,
) {
    let status = interrupt(child);
    assert!(
        caught_up,
        "changes were not applied: {rows} rows in the target"
    );
    assert!(status.success(), "sync --live exited with {status}");
    let o = cli(&["verify", "--from", from, "--to", to]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

fn sqlite_count(path: &PathBuf, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn standalone_live_sync_then_finish_leaves_nothing_behind() {
    let pg = PgCluster::start();
    let dir = scratch_dir("sy-live-cli-");
    let db = dir.path().join("app.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, active BOOLEAN NOT NULL DEFAULT 1);
         CREATE TABLE notes (user_id INTEGER NOT NULL REFERENCES users (id), body TEXT);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 500) INSERT INTO users (name) SELECT 'u' || i FROM s;",
    )
    .unwrap();
    let (from, to) = (format!("sqlite://{}", db.display()), pg.url("app"));
    // A table without a primary key is refused, by name, before anything is installed.
    let o = cli(&["sync", "--live", "--from", &from, "--to", &to]);
    let text = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        !o.status.success() && text.contains("primary key") && text.contains("notes"),
        "{text}"
    );
    assert_eq!(
        sqlite_count(
            &db,
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '_switchyard%'"
        ),
        0
    );
    c.execute_batch("DROP TABLE notes").unwrap();

    let mut child = live_sync(&from, &to);
    let count = |sql: &str| pg.psql_db("app", sql);
    assert!(wait_until(Duration::from_secs(30), || count(
        "SELECT to_regclass('public.users') IS NOT NULL"
    ) == "t"
        && count("SELECT count(*) FROM users") == "500"));
    c.execute_batch(
        "INSERT INTO users (name, active) VALUES ('late', 0);
         UPDATE users SET name = 'renamed' WHERE id = 7;
         DELETE FROM users WHERE id = 9;
         UPDATE users SET id = 10000 WHERE id = 11;",
    )
    .unwrap();
    let caught_up = wait_until(Duration::from_secs(20), || {
        count("SELECT count(*) FROM users") == "500"
            && count("SELECT name || ':' || active FROM users WHERE id = 501") == "late:false"
            && count("SELECT name FROM users WHERE id = 7") == "renamed"
            && count("SELECT count(*) FROM users WHERE id IN (9, 11)") == "0"
            && count("SELECT name FROM users WHERE id = 10000") == "u11"
    });
    let rows = count("SELECT count(*) FROM users");
    stop_caught_up(&mut child, caught_up, &rows, &from, &to);

    let o = cli(&["sync", "--finish", "--from", &from, "--to", &to]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        sqlite_count(
            &db,
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_switchyard%' ESCAPE '\\' AND name <> '_switchyard_columns'"
        ),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"),
        "0"
    );
    assert_eq!(
        count("SELECT to_regclass('switchyard.changelog') IS NULL"),
        "t"
    );
    assert_eq!(
        count("SELECT count(*) FROM pg_proc WHERE proname = 'capture'"),
        "0"
    );
    // The app's schema holds nothing of switchyard's.
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname LIKE '%switchyard%'"
        ),
        "0"
    );
}

/// One transaction touching 20 000 rows of a table with a two-column key, from PostgreSQL:
/// a round reads 10 000 keys at once, past the ~8 000 at which PostgreSQL cannot expand
/// `(a, b) IN ((…), …)` ("stack depth limit exceeded"), and must still apply.
#[test]
fn many_composite_keys_in_one_round_from_postgres() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    a.psql_db(
        "app",
        "CREATE TABLE tags (account_id bigint NOT NULL, tag text NOT NULL, n int, PRIMARY KEY (account_id, tag));
         INSERT INTO tags SELECT i, 'seed', 0 FROM generate_series(1, 10) i;",
    );
    let (from, to) = (a.url("app"), b.url("app"));
    let mut child = live_sync(&from, &to);
    let count = |sql: &str| b.psql_db("app", sql);
    assert!(wait_until(Duration::from_secs(30), || count(
        "SELECT to_regclass('public.tags') IS NOT NULL"
    ) == "t"
        && count("SELECT count(*) FROM tags") == "10"));
    a.psql_db(
        "app",
        "INSERT INTO tags SELECT i % 50, 'tag ' || i, i FROM generate_series(1, 20000) i",
    );
    let caught_up = wait_until(Duration::from_secs(60), || {
        count("SELECT count(*) FROM tags") == "20010"
    });
    let rows = count("SELECT count(*) FROM tags");
    stop_caught_up(&mut child, caught_up, &rows, &from, &to);
}

/// verify while the app writes and live sync runs: rows changed while verify reads them
/// are not differences (exit 0, no quiet moment); a row changed on the target behind live
/// sync's back is, and is named with its key, column and both values as PostgreSQL prints
/// them, even with the writes going on.
#[test]
fn verify_under_running_writers_names_only_real_differences() {
    let pg = PgCluster::start();
    let dir = scratch_dir("sy-verify-live-");
    let db = dir.path().join("app.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, seen DATETIME NOT NULL);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 2000)
           INSERT INTO users (id, n, seen) SELECT i, 0, '2026-01-01 00:00:00' FROM s;",
    )
    .unwrap();
    let (from, to) = (format!("sqlite://{}", db.display()), pg.url("app"));
    let _child = live_sync(&from, &to);
    let count = |sql: &str| pg.psql_db("app", sql);
    assert!(wait_until(Duration::from_secs(30), || count(
        "SELECT to_regclass('public.users') IS NOT NULL"
    ) == "t"
        && count("SELECT count(*) FROM users") == "2000"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let sql = format!(
                    "UPDATE users SET n = n + 1, seen = datetime('now') WHERE id = {}; \
                     INSERT INTO users (id, n, seen) VALUES ({}, 1, datetime('now'))",
                    1 + (i * 7919) % 1000,
                    10_000 + i
                );
                c.execute_batch(&sql).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            i
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let verify = || {
        let o = cli(&["verify", "--from", &from, "--to", &to]);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let (code, out) = verify();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("verify: 1 table(s) identical"), "{out}");
    // Behind live sync's back: a write on the target (captured there, as a write on the
    // inactive side, and never applied to the source), on a row the writer leaves alone.
    count("UPDATE users SET seen = '2030-05-06 07:08:09.5' WHERE id = 1999");
    let (code, out) = verify();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let writes = writer.join().unwrap();
    assert!(writes > 50, "the writer barely ran ({writes})");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("key [\"1999\"] column \"seen\": source ")
            && out.contains(" target \"2030-05-06 07:08:09.5\""),
        "{out}"
    );
    assert!(out.contains("1 difference(s)"), "{out}");
}
