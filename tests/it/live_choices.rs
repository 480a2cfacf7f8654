//! Column choices for a live sync, given the way an operator gives them: `ctl sync A B
//! --exclude-column T.C` for a source column the app's target schema lacks, and the
//! config's `[sync.types]` for a table switchyard makes. They must survive a restart of
//! the proxy (the resumed sync checks the target's tables again, and without them would
//! refuse) and hold through a cutover and a rollback.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::cluster::wait_until;
use crate::support::sidecar::Fixture;
use crate::support::{connect, rt};

const SWITCH: &str = "max_lag_rows = 20000\ndrain_timeout = \"2s\"\nmax_pause = \"10s\"";

/// `switchyard ctl ARGS` against the fixture's proxy: exit code and output.
fn ctl(fx: &Fixture, args: &[&str]) -> (i32, String) {
    let admin = format!("http://127.0.0.1:{}", fx.admin);
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["ctl", "--admin", &admin])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn remote_rows(fx: &Fixture, sql: &str) -> String {
    fx.remote.psql_db("app", sql)
}

#[test]
fn ctl_sync_choices_and_config_types_survive_a_restart_and_a_cutover() {
    let fx = Fixture::sqlite(SWITCH);
    let db = fx.sqlite.clone().unwrap();
    let lite = rusqlite::Connection::open(&db).unwrap();
    lite.execute_batch(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, legacy TEXT, tags TEXT);
         INSERT INTO notes (body, legacy, tags) VALUES ('first', 'old', '[\"a\", \"b c\"]'), ('second', NULL, NULL);
         CREATE TABLE stamps (id INTEGER PRIMARY KEY, at DATETIME NOT NULL);
         INSERT INTO stamps VALUES (1, '2026-01-02 03:04:05');",
    )
    .unwrap();
    // The app's migrations made `notes` on the remote without the legacy column, and its
    // tags (JSON in SQLite) as an array.
    fx.remote.psql_db(
        "app",
        "SET ROLE app; CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL, tags text[])",
    );
    let mut cfg = std::fs::read_to_string(&fx.cfg).unwrap();
    cfg.push_str("[sync.types]\n\"stamps.at\" = \"timestamptz\"\n");
    std::fs::write(&fx.cfg, cfg).unwrap();
    let proxy = fx.serve();

    // Without the choice the sync is refused, naming the column and the way out.
    let (code, out) = ctl(&fx, &["sync", "local", "remote"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("legacy"), "{out}");
    assert!(out.contains("--exclude-column"), "{out}");
    // A malformed choice is named before anything starts.
    let (code, out) = ctl(&fx, &["sync", "local", "remote", "--type", "stamps"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("TABLE.COLUMN=TYPE"), "{out}");

    let (code, out) = ctl(
        &fx,
        &[
            "sync",
            "local",
            "remote",
            "--exclude-column",
            "notes.legacy",
            "--wait",
        ],
    );
    assert_eq!(code, 0, "{out}\n{}", fx.log_text());
    let (_, status) = ctl(&fx, &["status"]);
    assert!(
        status.contains("source columns left out: notes.legacy"),
        "{status}"
    );
    assert!(
        status.contains("column types chosen: stamps.at=timestamptz"),
        "{status}"
    );
    assert_eq!(
        remote_rows(
            &fx,
            "SELECT string_agg(concat_ws(':', id, body, tags), ',' ORDER BY id) FROM notes"
        ),
        "1:first:{a,\"b c\"},2:second"
    );
    assert_eq!(
        remote_rows(
            &fx,
            "SELECT pg_typeof(at)::text || ' ' || (at AT TIME ZONE 'UTC')::text FROM stamps"
        ),
        "timestamp with time zone 2026-01-02 03:04:05"
    );

    // Killed mid-stream; the app writes straight to its file meanwhile; restarted, the
    // sync resumes with the same choices (kept in its record, not only in the config).
    drop(proxy);
    lite.execute("INSERT INTO notes (body, legacy) VALUES ('third', 'x')", [])
        .unwrap();
    let mut cfg = std::fs::read_to_string(&fx.cfg).unwrap();
    cfg = cfg.replace("[sync.types]\n\"stamps.at\" = \"timestamptz\"\n", "");
    std::fs::write(&fx.cfg, cfg).unwrap();
    let proxy = fx.serve();
    fx.wait_streaming(true);
    let l = &fx.status()["live_sync"];
    assert_eq!(
        l["choices"]["exclude_columns"],
        json!(["notes.legacy"]),
        "{l}"
    );
    assert_eq!(
        l["choices"]["types"],
        json!(["stamps.at=timestamptz"]),
        "{l}"
    );
    assert!(
        wait_until(Duration::from_secs(30), || remote_rows(
            &fx,
            "SELECT count(*) FROM notes WHERE body = 'third'"
        ) == "1"),
        "the write made while the proxy was down did not arrive: {}\n{}",
        fx.status(),
        fx.log_text()
    );

    // Cutover: the app writes on the remote through the proxy (fresh ids from its
    // serial); rollback carries the row back, the left-out column NULL on the source.
    let answer = fx.switch("/cutover", Some(json!({"to": "remote"})));
    assert_eq!(answer["ok"], true, "{answer}\n{}", fx.log_text());
    rt().block_on(async {
        let c = connect(&fx.url()).await.unwrap();
        let id: i64 = c
            .query_one(
                "INSERT INTO notes (body, tags) VALUES ('fourth', '{x,NULL}') RETURNING id",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(id, 4);
    });
    let answer = fx.switch("/rollback", None);
    assert_eq!(answer["ok"], true, "{answer}\n{}", fx.log_text());
    let back: (String, Option<String>, String) = lite
        .query_row(
            "SELECT body, legacy, tags FROM notes WHERE id = 4",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(back, ("fourth".into(), None, "[\"x\",null]".into()));
    let kept: Option<String> = lite
        .query_row("SELECT legacy FROM notes WHERE id = 3", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept.as_deref(), Some("x"), "the source's own value stays");
    drop(proxy);
}
