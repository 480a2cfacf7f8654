//! Hot switching between backends under load, drain timeouts, manual pause, backends that
//! go away and come back, and the admin API's authentication.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard::testing::{Target, call};

use crate::support::cluster::wait_until;
use crate::support::{PgCluster, Proxy, connect, pgbench, rt};

fn two_backends(a: &PgCluster, b: &PgCluster, extra: &str) -> Proxy {
    Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.a]\nurl = \"{}\"\npool_size = 8\npooler = \"none\"\nbackoff_base = \"50ms\"\nbackoff_cap = \"800ms\"\nhealth_interval = \"200ms\"\n\
         [backends.b]\nurl = \"{}\"\npool_size = 8\n\
         [routing]\nactive = \"a\"\n{extra}",
        a.url("app"),
        b.url("app")
    ))
}

fn admin(proxy: &Proxy, token: Option<&str>) -> Target {
    Target {
        base: format!("http://127.0.0.1:{}", proxy.admin_port),
        token: token.map(str::to_string),
    }
}

async fn post(t: &Target, path: &str, body: Option<Value>) -> (u16, Value) {
    call(t, hyper::Method::POST, path, body).await.unwrap()
}

async fn get(t: &Target, path: &str) -> (u16, Value) {
    call(t, hyper::Method::GET, path, None).await.unwrap()
}

/// Every line of a Prometheus text exposition is a comment or `name{labels} value`.
fn assert_valid_exposition(text: &str) {
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf" || value == "NaN",
            "bad value in {line:?}"
        );
        let name = series.split('{').next().unwrap();
        assert!(name.starts_with("switchyard_"), "{line:?}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line:?}"
            );
        }
    }
}

#[test]
fn cutover_and_rollback_under_pgbench_load() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    for pg in [&a, &b] {
        assert!(pgbench(pg.port, &["-i", "-s", "1", "-q"]).ok);
    }
    let proxy = two_backends(&a, &b, "");
    let port = proxy.port;
    let loads: Vec<_> = ["extended", "prepared"]
        .into_iter()
        .map(|mode| {
            std::thread::spawn(move || {
                pgbench(port, &["-c", "4", "-j", "4", "-T", "20", "-M", mode])
            })
        })
        .collect();
    let t = admin(&proxy, None);
    let switches = rt().block_on(async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut n = 0;
        let deadline = Instant::now() + Duration::from_secs(16);
        while Instant::now() < deadline {
            let (status, rec) = if n % 2 == 0 {
                post(&t, "/cutover", Some(json!({ "to": "b" }))).await
            } else {
                post(&t, "/rollback", None).await
            };
            assert_eq!(status, 200, "{rec}");
            assert_eq!(rec["ok"], true, "{rec}");
            assert!(rec["pause_ms"].as_f64().unwrap() < 5000.0);
            n += 1;
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        n
    });
    for (load, mode) in loads.into_iter().zip(["extended", "prepared"]) {
        let r = load.join().unwrap();
        assert!(
            r.ok,
            "-M {mode}: pgbench failed or lost a connection:\n{}",
            r.output
        );
        assert_eq!(r.failed, 0, "-M {mode}:\n{}", r.output);
        assert!(r.processed > 100, "-M {mode}:\n{}", r.output);
    }
    assert!(switches >= 10, "only {switches} switches");
    let (status, st) = rt().block_on(get(&t, "/status"));
    assert_eq!(status, 200);
    assert_eq!(st["switches"].as_u64(), Some(switches));
    assert_eq!(st["last_switch"]["ok"], true);
    // Both clusters served transactions.
    for pg in [&a, &b] {
        let n: i64 = pg
            .psql_db("app", "SELECT count(*) FROM pgbench_history")
            .parse()
            .unwrap();
        assert!(n > 0);
    }
    let m = proxy.metrics();
    assert!(
        m.contains(&format!(
            "switchyard_switches_total{{result=\"ok\"}} {switches}"
        )),
        "{m}"
    );
    assert!(m.contains("switchyard_pause_seconds_count"), "{m}");
    // Nothing waits once the load is gone, however many switches there were: the
    // `waiting` figures count checkouts waiting now, not abandoned ones.
    assert_eq!(st["clients"]["waiting"], 0, "{st}");
    for name in ["a", "b"] {
        assert_eq!(st["backends"][name]["pool"]["waiting"], 0, "{st}");
        let series = format!("switchyard_pool_waiting{{backend=\"{name}\"}} 0");
        assert!(m.contains(&series), "{m}");
    }
}

#[test]
fn drain_timeout_cancels_the_switch() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let proxy = two_backends(&a, &b, "[switch]\ndrain_timeout = \"500ms\"\n");
    let t = admin(&proxy, None);
    rt().block_on(async {
        let holder = connect(&proxy.url("app", "secret")).await.unwrap();
        let other = connect(&proxy.url("app", "secret")).await.unwrap();
        // Opened just before the cutover: younger than drain_timeout, so the switch
        // pauses and then waits for it.
        holder
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS held (x int); BEGIN; INSERT INTO held VALUES (1)",
            )
            .await
            .unwrap();
        let (status, rec) = post(&t, "/cutover", Some(json!({ "to": "b" }))).await;
        assert_eq!(status, 503, "{rec}");
        assert_eq!(rec["ok"], false);
        assert!(
            rec["error"].as_str().unwrap().contains("drain_timeout"),
            "{rec}"
        );
        assert!(rec["pause_ms"].as_f64().unwrap() >= 500.0);
        // Nobody saw an error; everyone is still on backend a.
        let port: String = other
            .query_one("SELECT current_setting('port')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(port, a.port.to_string());
        holder.batch_execute("COMMIT").await.unwrap();
        let (_, st) = get(&t, "/status").await;
        assert_eq!(st["active"], "a");
        assert_eq!(st["last_switch"]["ok"], false);
        assert_eq!(st["state"], "serving");
        // With nothing in flight the same switch succeeds.
        let (status, rec) = post(&t, "/cutover", Some(json!({ "to": "b" }))).await;
        assert_eq!(status, 200, "{rec}");
        let port: String = other
            .query_one("SELECT current_setting('port')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(port, b.port.to_string());
    });
}

/// An operator who gives up on a slow switch (Ctrl-C on `ctl cutover`, a script's HTTP
/// timeout) closes the admin connection while the pause is on; the switch must still run
/// to its end and resume the clients, not stay paused.
#[test]
fn a_switch_outlives_the_admin_client_that_asked_for_it() {
    use std::io::Write;
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let proxy = two_backends(&a, &b, "[switch]\ndrain_timeout = \"1500ms\"\n");
    let t = admin(&proxy, None);
    rt().block_on(async {
        let holder = connect(&proxy.url("app", "secret")).await.unwrap();
        holder
            .batch_execute("CREATE TABLE IF NOT EXISTS held (x int); BEGIN; INSERT INTO held VALUES (1)")
            .await
            .unwrap();
        let other = connect(&proxy.url("app", "secret")).await.unwrap();
        let body = r#"{"to": "b"}"#;
        let mut http = std::net::TcpStream::connect(("127.0.0.1", proxy.admin_port)).unwrap();
        write!(
            http,
            "POST /cutover HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut state = Value::Null;
        for _ in 0..1000 {
            state = get(&t, "/status").await.1["state"].clone();
            if state == "draining" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(state, "draining");
        drop(http);
        // The switch gives up at drain_timeout and resumes; the other client's query,
        // held by the pause, then runs on backend a.
        let port: String = tokio::time::timeout(
            Duration::from_secs(10),
            other.query_one("SELECT current_setting('port')", &[]),
        )
        .await
        .expect("clients stayed paused after the admin client hung up")
        .unwrap()
        .get(0);
        assert_eq!(port, a.port.to_string());
        let (_, st) = get(&t, "/status").await;
        assert_eq!(st["state"], "serving", "{st}");
        assert_eq!(st["last_switch"]["ok"], false, "{st}");
        assert!(
            st["last_switch"]["error"].as_str().unwrap().contains("drain_timeout"),
            "{st}"
        );
        holder.batch_execute("COMMIT").await.unwrap();
    });
}

#[test]
fn manual_pause_holds_clients_without_errors() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let proxy = two_backends(&a, &b, "");
    let t = admin(&proxy, None);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        let (status, _) = post(&t, "/pause", None).await;
        assert_eq!(status, 200);
        let (status, _) = post(&t, "/pause", None).await;
        assert_eq!(status, 409, "a second pause is refused");
        let (status, _) = post(&t, "/cutover", Some(json!({ "to": "b" }))).await;
        assert_eq!(status, 409, "no switch while paused by hand");
        let started = Instant::now();
        let q = tokio::spawn(async move {
            c.query_one("SELECT 1", &[])
                .await
                .map(|r| r.get::<_, i32>(0))
        });
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(!q.is_finished(), "the query must wait while paused");
        let (status, body) = post(&t, "/resume", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(q.await.unwrap().unwrap(), 1);
        assert!(started.elapsed() >= Duration::from_millis(600));
        // A pause with a timeout ends by itself.
        let (status, _) = post(&t, "/pause", Some(json!({ "timeout_ms": 300 }))).await;
        assert_eq!(status, 200);
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        let n: i32 = c.query_one("SELECT 2", &[]).await.unwrap().get(0);
        assert_eq!(n, 2);
        let (_, st) = get(&t, "/status").await;
        assert_eq!(st["paused"], false);
    });
}

#[test]
fn admin_token_is_enforced() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let proxy = two_backends(&a, &b, "[admin]\ntoken = \"s3cret-token\"\n");
    rt().block_on(async {
        for t in [admin(&proxy, None), admin(&proxy, Some("wrong"))] {
            let (status, body) = post(&t, "/cutover", Some(json!({ "to": "b" }))).await;
            assert_eq!(status, 401, "{body}");
            let (status, _) = post(&t, "/pause", None).await;
            assert_eq!(status, 401);
            let (status, st) = get(&t, "/status").await;
            assert_eq!(status, 200);
            assert_eq!(st["active"], "a", "nothing changed");
            assert!(
                !st.to_string().contains("secret"),
                "no secrets in /status: {st}"
            );
        }
        let (status, rec) = post(
            &admin(&proxy, Some("s3cret-token")),
            "/cutover",
            Some(json!({ "to": "b" })),
        )
        .await;
        assert_eq!(status, 200, "{rec}");
        let (status, _) = post(
            &admin(&proxy, Some("s3cret-token")),
            "/cutover",
            Some(json!({ "to": "nope" })),
        )
        .await;
        assert_eq!(status, 404);
    });
    let m = proxy.metrics();
    assert_valid_exposition(&m);
    assert!(!m.contains("secret"), "{m}");
}

#[test]
fn backend_outage_backoff_and_recovery() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let proxy = two_backends(&a, &b, "[proxy]\npool_wait_timeout = \"2s\"\n");
    let t = admin(&proxy, None);
    let errors = Arc::new(AtomicU64::new(0));
    let oks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let url = proxy.url("app", "secret");
    let worker = {
        let (errors, oks, stop) = (errors.clone(), oks.clone(), stop.clone());
        std::thread::spawn(move || {
            rt().block_on(async {
                while !stop.load(Ordering::Relaxed) {
                    match connect(&url).await {
                        Ok(c) => loop {
                            match c.query_one("SELECT 1", &[]).await {
                                Ok(_) => oks.fetch_add(1, Ordering::Relaxed),
                                Err(e) => {
                                    // 08…: no server; 57P01: the server's own FATAL
                                    // when it stops under a query in flight.
                                    let db = e.as_db_error().map(|d| d.code().code().to_string());
                                    assert!(
                                        db.as_deref()
                                            .is_some_and(|c| c.starts_with("08") || c == "57P01")
                                            || e.is_closed(),
                                        "unclear error: {e}"
                                    );
                                    errors.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            };
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                        },
                        Err(e) => {
                            let code = e
                                .as_db_error()
                                .map(|d| d.code().code().to_string())
                                .unwrap_or_default();
                            assert!(code.starts_with("08"), "unclear error: {e}");
                            errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            })
        })
    };
    assert!(wait_until(Duration::from_secs(5), || oks
        .load(Ordering::Relaxed)
        > 50));
    // Watch /status from before the outage: under load, stopping the server can take longer
    // than the backoff needs to reach its cap.
    let watched = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let (rt, t) = (rt(), admin(&proxy, None));
            let mut ceilings = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                let (_, st) = rt.block_on(get(&t, "/status"));
                let be = &st["backends"]["a"];
                if be["up"] == false {
                    ceilings.push(be["backoff"]["ceiling_ms"].as_u64().unwrap_or(0));
                    if ceilings.last() == Some(&800) {
                        return (true, ceilings);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (false, ceilings)
        });
        a.stop();
        watcher.join().unwrap()
    });
    let (down, ceilings) = watched;
    let rt = rt();
    assert!(
        down,
        "backend a should be marked down with the backoff capped at 800 ms: {ceilings:?}"
    );
    assert!(
        ceilings.windows(2).all(|w| w[0] <= w[1]),
        "backoff ceilings must grow: {ceilings:?}"
    );
    assert!(ceilings.first().copied().unwrap_or(0) < 800, "{ceilings:?}");
    let (code, body) = rt.block_on(get(&t, "/readyz"));
    assert_eq!(code, 503, "{body}");
    // A client waits up to pool_wait_timeout for the backend before its error.
    assert!(wait_until(Duration::from_secs(5), || errors
        .load(Ordering::Relaxed)
        > 0));
    a.restart();
    let before = oks.load(Ordering::Relaxed);
    assert!(
        wait_until(Duration::from_secs(10), || oks.load(Ordering::Relaxed)
            > before + 20),
        "service did not come back"
    );
    let (code, _) = rt.block_on(get(&t, "/readyz"));
    assert_eq!(code, 200);
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
    let m = proxy.metrics();
    assert!(
        m.contains("switchyard_backend_connect_failures_total{backend=\"a\""),
        "{m}"
    );
}

#[test]
fn ctl_prints_status_and_switches() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let proxy = two_backends(&a, &b, "");
    let ctl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "ctl",
                "--admin",
                &format!("http://127.0.0.1:{}", proxy.admin_port),
            ])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = ctl(&["status"]);
    assert!(ok && out.contains("active: a"), "{out}");
    let (ok, out) = ctl(&["cutover", "b"]);
    assert!(ok && out.contains("cutover a -> b: done"), "{out}");
    let (ok, out) = ctl(&["--json", "status"]);
    assert!(ok && out.contains("\"active\": \"b\""), "{out}");
    let (ok, out) = ctl(&["cutover", "b"]);
    assert!(!ok && out.contains("already active"), "{out}");
    let (ok, out) = ctl(&["rollback"]);
    assert!(ok && out.contains("rollback b -> a: done"), "{out}");
}
