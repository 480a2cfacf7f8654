//! Zero lost writes under faults, with switchyard as a real process: eight writers record
//! exactly what they committed while live sync keeps a PostgreSQL behind PgBouncer (the
//! hosted pooler's stand-in) in step with a local one. The proxy is killed (SIGKILL) or
//! stopped (SIGTERM) during live sync and started again with the same config; it must
//! resume the sync by itself, come back on the route the last switch left, and a cutover
//! and rollback must carry every write (no insert hitting a duplicate key on the new side).

use std::time::Duration;

use serde_json::json;

use crate::support::rt;
use crate::support::sidecar::{Fixture, stop};
use crate::support::workload::{Model, Side, assert_same, seed_model, snapshot};
use crate::support::writers::Writers;

/// Writes made straight to the local database while the proxy is down (a cron job, a
/// second service): captured by the triggers, and recorded here.
fn direct_writes(fx: &Fixture, n: i64, tag: &str) -> Model {
    let select = format!(
        "SELECT id || ':' || name || ':' || balance FROM accounts WHERE name LIKE '{tag}%'"
    );
    let rows = match &fx.sqlite {
        None => {
            fx.local.psql_db(
                "app",
                &format!(
                    "INSERT INTO accounts (name, balance) SELECT '{tag}' || i, i FROM generate_series(1, {n}) i"
                ),
            );
            fx.local.psql_db("app", &select)
        }
        Some(p) => {
            let c = rusqlite::Connection::open(p).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            c.execute_batch(&format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
                 INSERT INTO accounts (name, balance) SELECT '{tag}' || i, i FROM s"
            ))
            .unwrap();
            let mut st = c.prepare(&select).unwrap();
            st.query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let mut m = Model::default();
    for line in rows.lines() {
        let f: Vec<&str> = line.split(':').collect();
        m.accounts.insert(
            f[0].parse().unwrap(),
            (f[1].to_string(), f[2].parse().unwrap()),
        );
    }
    m
}

fn restart_resilience(fx: Fixture, signal: &str) {
    let mut proxy = fx.serve();
    let (code, answer) = fx.post(
        "/sync/start",
        Some(json!({"from": "local", "to": "remote"})),
    );
    assert_eq!(code, 200, "{answer}");
    fx.wait_streaming(false);
    let rt = rt();
    let writers = rt.block_on(async { Writers::start(&fx.url(), 8) });
    let mut extra = Model::default();
    let pause = |secs: f64| std::thread::sleep(Duration::from_secs_f64(secs));

    // 1. Down during live sync; writes go on straight to the database meanwhile.
    pause(2.0);
    stop(&mut proxy, signal);
    extra.merge(&direct_writes(&fx, 50, &format!("direct-{signal}-")));
    pause(1.0);
    proxy = fx.serve();
    fx.wait_streaming(true);
    assert_eq!(fx.status()["active"], "local");

    // 2. A cutover after the restart carries everything, sequences included.
    pause(2.0);
    let rec = fx.switch("/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], true, "{rec}\n{}", fx.log_text());
    pause(2.0);

    // 3. Down after the cutover: it comes back on the remote side, the sync reversed.
    stop(&mut proxy, signal);
    pause(0.5);
    proxy = fx.serve();
    let st = fx.status();
    assert_eq!(st["active"], "remote", "{st}");
    fx.wait_streaming(true);
    assert_eq!(fx.status()["live_sync"]["source"], "remote");

    // 4. Rollback, then down again: it comes back on the local side.
    pause(1.5);
    let rec = fx.switch("/rollback", None);
    assert_eq!(rec["ok"], true, "{rec}\n{}", fx.log_text());
    pause(1.5);
    stop(&mut proxy, signal);
    proxy = fx.serve();
    assert_eq!(fx.status()["active"], "local");
    fx.wait_streaming(true);
    pause(1.0);

    let out = rt.block_on(writers.finish());
    assert!(
        out.errors.is_empty(),
        "writers saw errors: {:#?}\n{}",
        out.errors,
        fx.log_text()
    );
    assert!(out.ops > 200, "the writers barely ran: {} ops", out.ops);
    eprintln!("{signal}: {} ops, {} cut by a restart", out.ops, out.cut);
    let mut want = seed_model(300);
    want.merge(&out.model);
    want.merge(&extra);
    let (local, remote) = (fx.local_side(), Side::Pg(&fx.remote));
    assert_same("local (active)", &rt.block_on(snapshot(&local)), &want, 0);
    fx.wait_caught_up(&local);
    assert_same("remote", &rt.block_on(snapshot(&remote)), &want, 0);
    drop(proxy);
}

const SWITCH: &str = "max_lag_rows = 20000\ndrain_timeout = \"2s\"\nmax_pause = \"10s\"";

#[test]
fn sigkill_during_live_sync_then_restart_loses_nothing() {
    restart_resilience(Fixture::new(SWITCH), "KILL");
}

#[test]
fn sigterm_during_live_sync_then_restart_loses_nothing() {
    restart_resilience(Fixture::new(SWITCH), "TERM");
}

#[test]
fn sigkill_during_live_sync_from_sqlite_then_restart_loses_nothing() {
    restart_resilience(Fixture::sqlite(SWITCH), "KILL");
}

/// A target that acknowledges commits before they are durable (`synchronous_commit =
/// off`, here with the WAL writer waking only every 5 s) crashes while live sync applies
/// to it. Changelog entries are removed only once the target's commit is durable, so after
/// its restart nothing is missing.
#[test]
fn a_target_crash_under_synchronous_commit_off_loses_nothing() {
    let fx = Fixture::new("max_lag_rows = 20000");
    fx.remote.psql("ALTER SYSTEM SET wal_writer_delay = '5s'");
    fx.remote.psql("ALTER SYSTEM SET synchronous_commit = off");
    fx.remote.psql("SELECT pg_reload_conf()");
    let _proxy = fx.serve();
    let (code, answer) = fx.post(
        "/sync/start",
        Some(json!({"from": "local", "to": "remote"})),
    );
    assert_eq!(code, 200, "{answer}");
    fx.wait_streaming(false);
    let rt = rt();
    let writers = rt.block_on(async { Writers::start(&fx.url(), 8) });
    std::thread::sleep(Duration::from_secs(3));
    fx.remote.stop();
    std::thread::sleep(Duration::from_millis(500));
    fx.remote.restart();
    std::thread::sleep(Duration::from_secs(2));
    let out = rt.block_on(writers.finish());
    assert!(out.errors.is_empty(), "{:#?}", out.errors);
    assert_eq!(out.cut, 0, "the app's side did not go away");
    let mut want = seed_model(300);
    want.merge(&out.model);
    fx.wait_caught_up(&Side::Pg(&fx.local));
    assert_same(
        "remote after its crash",
        &rt.block_on(snapshot(&Side::Pg(&fx.remote))),
        &want,
        0,
    );
    // verify can check just the tables live sync changed since a point (the crash).
    let verify = |since: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "verify",
                "--from",
                &fx.local.url("app"),
                "--to",
                &fx.remote.url("app"),
            ])
            .args(["--since", since])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = verify("5m");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("2 table(s) changed by live sync since 5m: accounts, orders"),
        "{out}"
    );
    let (code, out) = verify("2099-01-01T00:00:00Z");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("changed no table"), "{out}");
}

/// After a cutover the operator stops live sync, and the app writes on the new side:
/// those writes are captured there and wait. A rollback is refused (it would leave them
/// behind); a restart that lost its route file still comes up on the new side (the
/// stopped sync's record says where the last switch left the app); starting live sync
/// again carries them back, and the rollback then keeps them.
#[test]
fn writes_waiting_on_the_serving_side_are_never_overwritten() {
    let fx = Fixture::new("max_lag_rows = 20000");
    let mut proxy = fx.serve();
    let (code, answer) = fx.post(
        "/sync/start",
        Some(json!({"from": "local", "to": "remote"})),
    );
    assert_eq!(code, 200, "{answer}");
    fx.wait_streaming(false);
    let rec = fx.switch("/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], true, "{rec}");
    let (code, answer) = fx.post("/sync/stop", None);
    assert_eq!(code, 200, "{answer}");
    let rt = rt();
    rt.block_on(async {
        let c = crate::support::connect(&fx.url()).await.unwrap();
        c.batch_execute("UPDATE accounts SET name = 'newer' WHERE id = 1")
            .await
            .unwrap();
    });
    let (_, rec) = fx.post("/rollback", None);
    assert_eq!(rec["ok"], false, "{rec}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap()
            .contains("holds 1 captured change"),
        "{rec}"
    );

    stop(&mut proxy, "KILL");
    std::fs::remove_file(fx.dir.path().join("switchyard.state.json")).unwrap();
    let _proxy = fx.serve();
    let st = fx.status();
    assert_eq!(st["active"], "remote", "{st}\n{}", fx.log_text());
    assert!(
        st["live_sync"].is_null(),
        "a stopped sync is not resumed: {st}"
    );

    let (code, answer) = fx.post(
        "/sync/start",
        Some(json!({"from": "remote", "to": "local"})),
    );
    assert_eq!(code, 200, "{answer}");
    assert!(
        crate::support::cluster::wait_until(
            Duration::from_secs(60),
            || fx.status()["live_sync"]["phase"] == "streaming"
        ),
        "{}",
        fx.status()
    );
    let rec = fx.switch("/rollback", None);
    assert_eq!(rec["ok"], true, "{rec}\n{}", fx.log_text());
    assert_eq!(
        fx.local
            .psql_db("app", "SELECT name FROM accounts WHERE id = 1"),
        "newer"
    );
}

/// The remote database is down when the proxy restarts: the live sync recorded in the
/// databases cannot be resumed yet. /status, /readyz and the metrics say so, a switch to
/// the remote side is refused with the reason, and once the remote is back the sync
/// resumes by itself.
#[test]
fn a_sync_that_cannot_resume_blocks_switches_and_resumes_when_it_can() {
    let fx = Fixture::new("max_lag_rows = 20000");
    let mut proxy = fx.serve();
    let (code, answer) = fx.post(
        "/sync/start",
        Some(json!({"from": "local", "to": "remote"})),
    );
    assert_eq!(code, 200, "{answer}");
    fx.wait_streaming(false);
    stop(&mut proxy, "TERM");
    fx.remote.stop();
    let _proxy = fx.serve();
    let st = fx.status();
    assert!(st["live_sync"].is_null(), "{st}");
    let reason = st["live_sync_blocked"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("did not answer"), "{st}");
    let rt = rt();
    let get = |path: &str| {
        rt.block_on(switchyard::testing::call(
            &fx.target(),
            hyper::Method::GET,
            path,
            None,
        ))
        .unwrap()
    };
    let (code, ready) = get("/readyz");
    assert_eq!(code, 503, "{ready}");
    assert!(
        ready["reason"].as_str().unwrap().contains("not running"),
        "{ready}"
    );
    assert!(
        get("/metrics")
            .1
            .as_str()
            .unwrap()
            .contains("switchyard_sync_blocked 1")
    );
    let (_, rec) = fx.post("/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], false, "{rec}");
    // The app is served meanwhile, and its writes are captured.
    rt.block_on(async {
        let c = crate::support::connect(&fx.url()).await.unwrap();
        c.batch_execute("UPDATE accounts SET name = 'while blocked' WHERE id = 2")
            .await
            .unwrap();
    });
    fx.remote.restart();
    fx.wait_streaming(true);
    assert_eq!(get("/readyz").0, 200);
    assert!(
        get("/metrics")
            .1
            .as_str()
            .unwrap()
            .contains("switchyard_sync_blocked 0")
    );
    fx.wait_caught_up(&Side::Pg(&fx.local));
    assert_eq!(
        fx.remote
            .psql_db("app", "SELECT name FROM accounts WHERE id = 2"),
        "while blocked"
    );
}

/// A live sync run by another process (`switchyard sync --live`) is not taken from it:
/// the proxy reports it as run elsewhere and refuses switches between its backends, with
/// that reason; once the other process stops, the proxy can start it again without a
/// copy and cut over.
#[test]
fn a_sync_run_by_another_process_is_left_to_it_and_blocks_switches() {
    let fx = Fixture::new("max_lag_rows = 20000");
    let cli = crate::support::KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "sync",
                "--live",
                "--from",
                &fx.local.url("app"),
                "--to",
                &fx.bouncer.url(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        crate::support::cluster::wait_until(Duration::from_secs(60), || {
            let q = |sql: &str| fx.remote.psql_db("app", sql);
            q("SELECT to_regclass('switchyard.live_sync') IS NOT NULL") == "t"
                && q("SELECT phase FROM switchyard.live_sync") == "streaming"
        }),
        "the other process never streamed"
    );
    let _proxy = fx.serve();
    let st = fx.status();
    let reason = st["live_sync_blocked"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("another process"), "{st}");
    let (_, rec) = fx.post("/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], false, "{rec}");
    let err = rec["error"].as_str().unwrap();
    assert!(
        err.contains("not running in this proxy") && err.contains("another process"),
        "{rec}"
    );
    assert_eq!(rec["pause_ms"].as_f64(), Some(0.0));

    // Ctrl-C: the other process applies what it has and records the sync as stopped.
    std::process::Command::new("kill")
        .args(["-INT", &cli.id().to_string()])
        .status()
        .unwrap();
    let mut cli = cli;
    assert!(crate::support::cluster::wait_until(
        Duration::from_secs(30),
        || cli.try_wait().unwrap().is_some()
    ));
    assert!(
        crate::support::cluster::wait_until(Duration::from_secs(30), || {
            fx.status()["live_sync_blocked"].is_null()
        }),
        "{}",
        fx.status()
    );
    let (code, answer) = fx.post(
        "/sync/start",
        Some(json!({"from": "local", "to": "remote"})),
    );
    assert_eq!(code, 200, "{answer}");
    fx.wait_streaming(false);
    assert_eq!(
        fx.status()["live_sync"]["backfilled_rows"],
        0,
        "no copy again"
    );
    let rec = fx.switch("/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], true, "{rec}\n{}", fx.log_text());
}
