//! The serving process's life: SIGTERM lets transactions in flight finish (up to
//! `proxy.shutdown_grace`) and holds new ones, then exits.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cluster::{free_port, wait_until};
use crate::support::{PgCluster, connect, rt};

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
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
