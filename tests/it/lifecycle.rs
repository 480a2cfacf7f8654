//! The serving process's life: SIGTERM lets transactions in flight finish (up to
//! `proxy.shutdown_grace`) and holds new ones, then exits.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cluster::free_port;
use crate::support::{PgCluster, connect, rt, serve};

#[test]
fn sigterm_lets_the_open_transaction_finish() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"10s\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [[users]]\nname = \"app\"\npassword = \"secret\"\n[backends.pg]\nurl = \"{}\"\n",
            pg.url("app")
        ),
    )
    .unwrap();
    let mut child = serve(&cfg, port);
    let url = format!("postgres://app:secret@127.0.0.1:{port}/app?sslmode=disable");
    rt().block_on(async {
        let c = connect(&url).await.unwrap();
        c.batch_execute("CREATE TABLE IF NOT EXISTS t (v int); BEGIN; INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        tokio::time::sleep(Duration::from_millis(500)).await;
        // No new clients, but the open transaction still commits.
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "still accepting after SIGTERM"
        );
        c.batch_execute("INSERT INTO t VALUES (2); COMMIT")
            .await
            .expect("the transaction in flight finishes after SIGTERM");
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "did not exit after its transaction ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "waited the whole grace period"
    );
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t").trim(), "2");
}

/// SIGHUP and `POST /reload` re-read the file: a new backend appears and can be switched
/// to, a changed one is rebuilt, connected clients keep working, and an invalid file is
/// refused with the key named while the old config stays.
#[test]
fn reload_applies_backends_without_dropping_clients() {
    use switchyard::testing::{Target, call};
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let cfg = dir.path().join("c.toml");
    let head = format!(
        "[proxy]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [[users]]\nname = \"app\"\npassword = \"secret\"\n[routing]\nactive = \"a\"\n\
         [backends.a]\nurl = \"{}\"\n",
        a.url("app")
    );
    std::fs::write(&cfg, &head).unwrap();
    let mut child = serve(&cfg, admin);
    let t = Target {
        base: format!("http://127.0.0.1:{admin}"),
        token: None,
    };
    let url = format!("postgres://app:secret@127.0.0.1:{port}/app?sslmode=disable");
    rt().block_on(async {
        let c = connect(&url).await.unwrap();
        c.simple_query("SELECT 1").await.unwrap();
        // Add b and change a's pool size, then SIGHUP.
        let more = format!(
            "{head}pool_size = 5\n[backends.b]\nurl = \"{}\"\n",
            b.url("app")
        );
        std::fs::write(&cfg, &more).unwrap();
        Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        let mut seen = false;
        for _ in 0..50 {
            let (_, s) = call(&t, hyper::Method::GET, "/status", None).await.unwrap();
            if s["backends"]["b"].is_object() && s["backends"]["a"]["pool"]["size"] == 5 {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(seen, "SIGHUP did not apply the new backends");
        c.simple_query("SELECT 2")
            .await
            .expect("the client survived the reload");
        let (_, v) = call(
            &t,
            hyper::Method::POST,
            "/cutover",
            Some(serde_json::json!({"to": "b"})),
        )
        .await
        .unwrap();
        assert_eq!(v["ok"], true, "{v}");
        let port_of_b: String = c
            .query_one("SELECT current_setting('port')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(port_of_b, b.port.to_string());
        // An invalid file is refused, naming the key; the running config stays.
        std::fs::write(
            &cfg,
            format!("{more}[backends.c]\nurl = \"nonsense://x\"\n"),
        )
        .unwrap();
        let (code, v) = call(&t, hyper::Method::POST, "/reload", None)
            .await
            .unwrap();
        assert_eq!(code, 400, "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("backends.c.url"),
            "{v}"
        );
        let (_, s) = call(&t, hyper::Method::GET, "/status", None).await.unwrap();
        assert_eq!(s["active"], "b", "{s}");
        assert!(s["backends"]["c"].is_null(), "{s}");
        // Removing the active backend is refused too.
        std::fs::write(&cfg, &head).unwrap();
        let (code, v) = call(&t, hyper::Method::POST, "/reload", None)
            .await
            .unwrap();
        assert_eq!(code, 400, "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("active backend"),
            "{v}"
        );
        c.simple_query("SELECT 3").await.expect("still served");
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// At shutdown each client learns what happens to it: one with no transaction open gets
/// `FATAL 57P01` (admin_shutdown) at once, as PostgreSQL and PgBouncer do; one held at the
/// gate (a pause) gets the same without ever reaching a server; one inside a transaction
/// finishes it — its COMMIT is answered and lands — and then gets 57P01.
#[test]
fn shutdown_tells_each_client_what_happens_to_it() {
    use crate::support::raw::{Raw, query};
    let pg = PgCluster::start();
    pg.psql_db("app", "CREATE TABLE t (v int); ALTER TABLE t OWNER TO app");
    let proxy = crate::support::Proxy::start(&format!(
        "[proxy]\nshutdown_grace = \"10s\"\n[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.pg]\nurl = \"{}\"\npooler = \"none\"\n",
        pg.url("app")
    ));
    let admin = switchyard::testing::Target {
        base: format!("http://127.0.0.1:{}", proxy.admin_port),
        token: None,
    };
    let fatal_57p01 = |m: Option<(u8, bytes::Bytes)>| {
        let (tag, body) = m.expect("a message before the close");
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(tag, b'E', "{text}");
        assert!(text.contains("SFATAL") && text.contains("C57P01"), "{text}");
    };
    rt().block_on(async {
        let mut idle = Raw::login(proxy.port, "app", "secret").await;
        idle.send(&query("SELECT 1")).await;
        idle.until_ready().await;
        let mut in_tx = Raw::login(proxy.port, "app", "secret").await;
        in_tx.send(&query("BEGIN; INSERT INTO t VALUES (1)")).await;
        let (tags, _) = in_tx.until_ready().await;
        assert!(tags.ends_with("ZT"), "{tags}");
        let mut waiter = Raw::login(proxy.port, "app", "secret").await;
        let (code, _) = switchyard::testing::call(&admin, hyper::Method::POST, "/pause", None)
            .await
            .unwrap();
        assert_eq!(code, 200);
        waiter.send(&query("SELECT 2")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        proxy.shared.lifecycle.shutdown();
        fatal_57p01(idle.read().await);
        assert!(idle.read().await.is_none(), "closed after 57P01");
        fatal_57p01(waiter.read().await);
        assert!(waiter.read().await.is_none());
        // The one in a transaction is left to finish it.
        in_tx.send(&query("COMMIT")).await;
        let (tags, errors) = in_tx.until_ready().await;
        assert!(
            errors.is_empty() && tags.ends_with("ZI"),
            "{tags} {errors:?}"
        );
        fatal_57p01(in_tx.read().await);
        assert!(in_tx.read().await.is_none());
    });
    assert_eq!(pg.psql_db("app", "SELECT count(*) FROM t"), "1");
    let started = Instant::now();
    drop(proxy);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
