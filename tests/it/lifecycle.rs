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
    use switchyard::ctl::{Target, call};
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
