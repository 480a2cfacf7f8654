//! Switches that cannot finish quickly must not hold the app: a transaction open longer
//! than the drain bound refuses the cutover before anyone is paused (naming it), unless
//! the operator asks to wait for it; a target that freezes inside the pause (its pooler
//! stopped with SIGSTOP) makes the switch give up at `switch.max_pause` and resume
//! everyone on the old side, and live sync carries on so a later cutover succeeds.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::testing::{Target, call};

use crate::support::sidecar::Fixture;
use crate::support::workload::{Side, assert_same, seed_model, snapshot};
use crate::support::writers::Writers;
use crate::support::{PgCluster, Proxy, connect, rt};

fn two_backends(a: &PgCluster, b: &PgCluster, switch: &str) -> Proxy {
    Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.a]\nurl = \"{}\"\npool_size = 8\npooler = \"none\"\n\
         [backends.b]\nurl = \"{}\"\npool_size = 8\n\
         [routing]\nactive = \"a\"\n[switch]\n{switch}\n",
        a.url("app"),
        b.url("app")
    ))
}

async fn post(proxy: &Proxy, path: &str, body: Value) -> (u16, Value) {
    let t = Target {
        base: format!("http://127.0.0.1:{}", proxy.admin_port),
        token: None,
    };
    call(&t, hyper::Method::POST, path, Some(body))
        .await
        .unwrap()
}

#[test]
fn a_transaction_older_than_the_drain_bound_refuses_the_cutover_without_pausing() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let proxy = two_backends(&a, &b, "drain_timeout = \"400ms\"\nmax_pause = \"2s\"");
    rt().block_on(async {
        let holder = connect(&proxy.url("app", "secret")).await.unwrap();
        holder
            .batch_execute("CREATE TABLE held (x int)")
            .await
            .unwrap();
        holder
            .batch_execute("BEGIN; INSERT INTO held VALUES (1)")
            .await
            .unwrap();
        let pid: i32 = holder
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let other = connect(&proxy.url("app", "secret")).await.unwrap();
        let (code, rec) = post(&proxy, "/cutover", json!({"to": "b"})).await;
        assert_eq!(code, 503, "{rec}");
        let err = rec["error"].as_str().unwrap();
        assert!(err.contains("nobody was paused"), "{err}");
        assert!(err.contains(&format!("pid {pid}")), "{err}");
        assert!(
            err.contains("first statement: BEGIN; INSERT INTO held"),
            "{err}"
        );
        assert_eq!(rec["pause_ms"].as_f64(), Some(0.0), "{rec}");
        // Nobody waited: another client's query runs at once, on a.
        let t = Instant::now();
        let port: String = other
            .query_one("SELECT current_setting('port')", &[])
            .await
            .unwrap()
            .get(0);
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(port, a.port.to_string());

        // Told to wait, the cutover waits for it (still without pausing anyone) and then
        // runs.
        let commit = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            holder.batch_execute("COMMIT").await.unwrap();
        };
        let ((code, rec), ()) = tokio::join!(
            post(&proxy, "/cutover", json!({"to": "b", "wait": "5s"})),
            commit
        );
        assert_eq!(code, 200, "{rec}");
        assert!(rec["pause_ms"].as_f64().unwrap() < 400.0, "{rec}");
        let port: String = other
            .query_one("SELECT current_setting('port')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(port, b.port.to_string());
    });
}

#[test]
fn a_target_frozen_inside_the_pause_aborts_at_max_pause_and_a_later_cutover_succeeds() {
    let fx = Fixture::new("drain_timeout = \"2s\"\nmax_pause = \"3s\"\nmax_lag_rows = 20000");
    let _proxy = fx.serve();
    let (code, answer) = fx.post(
        "/sync/start",
        Some(json!({"from": "local", "to": "remote"})),
    );
    assert_eq!(code, 200, "{answer}");
    fx.wait_streaming(false);
    let rt = rt();
    let writers = rt.block_on(async { Writers::start(&fx.url(), 4) });
    std::thread::sleep(Duration::from_secs(1));
    // A transaction in flight keeps the switch draining; the pooler is frozen meanwhile,
    // so the catch-up that follows the drain cannot reach the target.
    let holder = rt.block_on(async {
        let c = connect(&fx.url()).await.unwrap();
        c.batch_execute("BEGIN; SELECT count(*) FROM accounts")
            .await
            .unwrap();
        c
    });
    let target = fx.target();
    let cutover = rt.spawn(async move {
        call(
            &target,
            hyper::Method::POST,
            "/cutover",
            Some(json!({"to": "remote"})),
        )
        .await
        .unwrap()
    });
    assert!(
        crate::support::cluster::wait_until(Duration::from_secs(10), || fx.status()["state"]
            == "draining"),
        "{}",
        fx.status()
    );
    fx.bouncer.signal("STOP");
    rt.block_on(holder.batch_execute("COMMIT")).unwrap();
    let started = Instant::now();
    let (code, rec) = rt.block_on(cutover).unwrap();
    let waited = started.elapsed();
    assert_eq!(code, 503, "{rec}");
    assert!(
        rec["error"].as_str().unwrap().contains("switch.max_pause"),
        "{rec}"
    );
    let pause = rec["pause_ms"].as_f64().unwrap();
    assert!((2900.0..4000.0).contains(&pause), "paused {pause} ms");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    // Clients resumed on the old side at once.
    let st = fx.status();
    assert_eq!(st["active"], "local", "{st}");
    assert_eq!(st["state"], "serving", "{st}");
    let t = Instant::now();
    rt.block_on(async {
        let c = connect(&fx.url()).await.unwrap();
        c.simple_query("SELECT 1").await.unwrap();
    });
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    // Thawed, live sync carries on and the next cutover succeeds.
    fx.bouncer.signal("CONT");
    std::thread::sleep(Duration::from_secs(1));
    let rec = fx.switch("/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], true, "{rec}\n{}", fx.log_text());
    std::thread::sleep(Duration::from_secs(1));
    let out = rt.block_on(writers.finish());
    assert!(out.errors.is_empty(), "{:#?}", out.errors);
    let mut want = seed_model(300);
    want.merge(&out.model);
    assert_same(
        "remote (active)",
        &rt.block_on(snapshot(&Side::Pg(&fx.remote))),
        &want,
        0,
    );
    fx.wait_caught_up(&Side::Pg(&fx.remote));
    assert_same(
        "local",
        &rt.block_on(snapshot(&Side::Pg(&fx.local))),
        &want,
        0,
    );
}
