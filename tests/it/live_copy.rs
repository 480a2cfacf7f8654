//! Live sync's initial copy from PostgreSQL while the app writes: parents and children of
//! 200 000 rows each, writers adding parents with children and deleting some the whole
//! time. Each table copied in a snapshot of its own used to hold children whose parents
//! the parent table's copy had not seen, and the foreign key failed at the end of the copy
//! (3 of 3 runs with 100 000 rows). With one exported snapshot for the copy, and the keys
//! validated once the changes captured meanwhile are applied, the copy succeeds every time:
//! run three times, each from an empty target.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard::testing::{Target, call};

use crate::support::cluster::wait_until;
use crate::support::{PgCluster, Proxy, connect, rt};

const ROWS: i64 = 200_000;

const SCHEMA: &str = "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL);
CREATE TABLE events (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id), kind text NOT NULL);";

/// Adds an account with three events per transaction; every fourth step deletes the
/// oldest account it added, with its events.
async fn writer(url: String, stop: Arc<AtomicBool>) -> Result<u64, String> {
    let c = connect(&url).await.map_err(|e| e.to_string())?;
    let mut mine = std::collections::VecDeque::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let rows = c
            .simple_query(
                "BEGIN; WITH a AS (INSERT INTO accounts (name) VALUES ('live') RETURNING id) \
                 INSERT INTO events (account_id, kind) SELECT id, k FROM a, (VALUES ('x'), ('y'), ('z')) v(k) RETURNING account_id; COMMIT",
            )
            .await
            .map_err(|e| format!("insert: {e:?}"))?;
        if let Some(id) = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        }) {
            mine.push_back(id);
        }
        n += 1;
        if n.is_multiple_of(4)
            && let Some(id) = mine.pop_front()
        {
            c.batch_execute(&format!(
                "BEGIN; DELETE FROM events WHERE account_id = {id}; DELETE FROM accounts WHERE id = {id}; COMMIT"
            ))
            .await
            .map_err(|e| format!("delete: {e:?}"))?;
        }
    }
    Ok(n)
}

fn admin(proxy: &Proxy) -> Target {
    Target {
        base: format!("http://127.0.0.1:{}", proxy.admin_port),
        token: None,
    }
}

fn live(proxy: &Proxy) -> Value {
    serde_json::to_value(proxy.shared.live.current().map(|l| l.status())).unwrap()
}

/// Starts the sync as the runbook does, `ctl sync local remote --wait` (not on a
/// terminal), and checks what the operator sees meanwhile: `/status` and the metrics show
/// the copy under way with its totals and an estimate, and `--wait` prints progress lines
/// and returns once the sync streams with its foreign keys validated.
fn follow_the_copy(proxy: &Proxy) {
    let ctl = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["ctl", "--admin", &admin(proxy).base])
        .args(["sync", "local", "remote", "--wait"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut mid_copy = None;
    let mut planned_metric = false;
    let done = wait_until(Duration::from_secs(180), || {
        let l = live(proxy);
        let c = &l["copy"];
        let (n, total) = (c["rows_done"].as_u64(), c["rows_total"].as_u64());
        if l["phase"] == "backfilling" && n > Some(0) && n < total && mid_copy.is_none() {
            mid_copy = Some(c.clone());
            let m = proxy.metrics();
            planned_metric = m.lines().any(|line| {
                line.starts_with("switchyard_sync_copy_rows{state=\"planned\"}")
                    && !line.ends_with(" 0")
            });
        }
        l["phase"] == "streaming" || l["phase"] == "failed"
    });
    assert!(done, "{}", live(proxy));
    let out = ctl.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let c = mid_copy.unwrap_or_else(|| panic!("the copy was never seen under way: {stderr}"));
    assert_eq!(c["tables_total"], 2, "{c}");
    assert!(c["rows_total"].as_u64() >= Some(2 * ROWS as u64), "{c}");
    assert!(c["eta_seconds"].as_f64().is_some(), "{c}");
    assert!(
        planned_metric,
        "switchyard_sync_copy_rows{{state=\"planned\"}} was 0"
    );
    // Plain lines off a terminal: the copy with its totals, then streaming.
    assert!(stderr.contains("\nbackfilling: "), "{stderr}");
    assert!(stderr.contains("\nstreaming: "), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes off a terminal: {stderr:?}"
    );
    assert!(
        stdout.contains("live sync local -> remote: streaming"),
        "{stdout}"
    );
    assert!(stdout.contains("copy: done, 2 tables, "), "{stdout}");
    // --wait returned once the foreign keys left NOT VALID were validated.
    assert!(!stdout.contains("foreign keys waiting"), "{stdout}");
}

#[test]
fn live_copy_from_postgres_under_writers_never_fails_on_a_foreign_key() {
    let (local, remote) = (PgCluster::start(), PgCluster::start());
    local.psql_db(
        "app",
        &format!(
            "SET ROLE app; {SCHEMA} INSERT INTO accounts (name) SELECT 'seed' || i FROM generate_series(1, {ROWS}) i; \
             INSERT INTO events (account_id, kind) SELECT i, 'seed' FROM generate_series(1, {ROWS}) i;"
        ),
    );
    let proxy = Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.local]\nurl = \"{}\"\npool_size = 8\npooler = \"none\"\n\
         [backends.remote]\nurl = \"{}\"\npool_size = 4\n\
         [routing]\nactive = \"local\"\n",
        local.url("app"),
        remote.url("app")
    ));
    let rt = rt();
    let t = admin(&proxy);
    for run in 1..=3 {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|_| rt.spawn(writer(proxy.url("app", "secret"), stop.clone())))
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        if run == 1 {
            follow_the_copy(&proxy);
        } else {
            let (code, answer) = rt
                .block_on(call(
                    &t,
                    hyper::Method::POST,
                    "/sync/start",
                    Some(json!({"from": "local", "to": "remote"})),
                ))
                .unwrap();
            assert_eq!(code, 200, "run {run}: {answer}");
        }
        assert!(
            wait_until(Duration::from_secs(180), || {
                let l = live(&proxy);
                l["phase"] == "failed" || (l["phase"] == "streaming")
            }),
            "run {run}: {}",
            live(&proxy)
        );
        assert_eq!(
            live(&proxy)["phase"],
            "streaming",
            "run {run}: {}",
            live(&proxy)
        );
        // The keys the copy left NOT VALID are validated while the writers go on.
        assert!(
            wait_until(Duration::from_secs(60), || {
                live(&proxy)["unvalidated_foreign_keys"]
                    .as_array()
                    .is_some_and(|a| a.is_empty())
            }),
            "run {run}: {}",
            live(&proxy)
        );
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        let mut steps = 0;
        for w in writers {
            steps += rt
                .block_on(w)
                .unwrap()
                .unwrap_or_else(|e| panic!("run {run}: {e}"));
        }
        assert!(steps > 20, "run {run}: the writers barely ran ({steps})");
        let (code, answer) = rt
            .block_on(call(&t, hyper::Method::POST, "/sync/stop", None))
            .unwrap();
        assert_eq!(code, 200, "run {run}: {answer}");
        let count = |pg: &PgCluster, sql: &str| pg.psql_db("app", sql);
        for sql in [
            "SELECT count(*) FROM accounts",
            "SELECT count(*) FROM events",
            "SELECT coalesce(sum(account_id), 0) FROM events",
        ] {
            assert_eq!(count(&local, sql), count(&remote, sql), "run {run}: {sql}");
        }
        assert_eq!(
            count(
                &remote,
                "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"
            ),
            "0",
            "run {run}"
        );
        // Start over from an empty target.
        let finished = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "sync",
                "--finish",
                "--from",
                &local.url("app"),
                "--to",
                &remote.url("app"),
            ])
            .output()
            .unwrap();
        assert!(finished.status.success(), "{finished:?}");
        remote.psql_db(
            "app",
            "DROP TABLE events, accounts; DROP SCHEMA switchyard CASCADE",
        );
    }
}
