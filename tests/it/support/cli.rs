//! The `switchyard` binary run as a user runs it (sync, verify, …), its output as text,
//! and the SQLite-into-PostgreSQL set-ups the sync and verify tests share.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::PgCluster;

/// `switchyard ARGS`, logging at warn.
pub fn switchyard(args: &[&str]) -> Output {
    switchyard_logging("warn", args)
}

/// `switchyard ARGS` with `RUST_LOG=level`.
pub fn switchyard_logging(level: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .env("RUST_LOG", level)
        .output()
        .unwrap()
}

/// stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs verify, which must find differences (exit 1) and say each of `says`.
pub fn verify_differs(from: &str, to: &str, says: &[&str]) {
    let o = switchyard(&["verify", "--from", from, "--to", to]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for s in says {
        assert!(out.contains(s), "{s}\n{out}");
    }
}

/// A SQLite database `name` in `dir` made by `sql`.
pub fn sqlite_db(dir: &Path, name: &str, sql: &str) -> PathBuf {
    let db = dir.join(name);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
    db
}

/// A fresh PostgreSQL with the SQLite database `db` synced into it and verified
/// identical; with the source and target URLs.
pub fn synced_and_verified(db: &Path) -> (PgCluster, String, String) {
    let pg = PgCluster::start();
    let (from, to) = (format!("sqlite://{}", db.display()), pg.url("app"));
    let o = switchyard(&["sync", "--from", &from, "--to", &to]);
    assert!(o.status.success(), "{}", text(&o));
    let o = switchyard(&["verify", "--from", &from, "--to", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    (pg, from, to)
}
