//! Secrets stay secret: passwords and tokens never appear in logs (at debug level), in
//! /status, /metrics, check-config's output or error messages; repeated login failures are
//! slowed down; per-user connection limits hold; a world-readable config with a password
//! is warned about.

use std::process::Command;
use std::time::{Duration, Instant};

use switchyard::testing::{Target, call};

use crate::support::cluster::{free_port, wait_until};
use crate::support::{PgCluster, Proxy, connect, psql, rt};

const BACKEND_PW: &str = "Backend-Pw-7f3a9";
const CLIENT_PW: &str = "Client-Pw-41c2";
const TOKEN: &str = "Admin-Tok-99e1";
const DOWN_PW: &str = "Down-Pw-5b0d";

#[test]
fn secrets_never_reach_logs_status_metrics_or_errors() {
    let pg = PgCluster::start();
    pg.psql(&format!("ALTER ROLE app PASSWORD '{BACKEND_PW}'"));
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let cfg = dir.path().join("c.toml");
    let text = format!(
        "[proxy]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"{TOKEN}\"\n\
         [[users]]\nname = \"app\"\npassword = \"{CLIENT_PW}\"\nmax_connections = 2\n\
         [backends.main]\nurl = \"postgres://app:{BACKEND_PW}@127.0.0.1:{}/app?sslmode=disable\"\n\
         [backends.down]\nurl = \"postgres://app:{DOWN_PW}@127.0.0.1:{}/app?sslmode=disable\"\nconnect_timeout = \"300ms\"\n\
         [routing]\nactive = \"main\"\n",
        pg.port,
        free_port()
    );
    std::fs::write(&cfg, &text).unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut seen = String::new();
    let check = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check-config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let check_out = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check_out.contains("readable by every user"), "{check_out}");
    seen += &check_out;
    let log = dir.path().join("log");
    let mut child = crate::support::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--config", cfg.to_str().unwrap()])
            .env("RUST_LOG", "debug")
            .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "serve did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // A wrong password, then the right one.
    let (ok, _, err) = psql(port, "app", "wrong", &["-c", "SELECT 1"]);
    assert!(!ok);
    seen += &err;
    let (ok, out, err) = psql(port, "app", CLIENT_PW, &["-c", "SELECT 1"]);
    assert!(ok, "{err}");
    seen += &out;
    let base = format!("http://127.0.0.1:{admin}");
    rt().block_on(async {
        // Two connections are allowed, the third is refused with 53300.
        let url = format!("postgres://app:{CLIENT_PW}@127.0.0.1:{port}/app?sslmode=disable");
        let a = connect(&url).await.unwrap();
        let _b = connect(&url).await.unwrap();
        let e = connect(&url).await.unwrap_err();
        let db = e.as_db_error().expect("an ErrorResponse");
        assert_eq!(db.code().code(), "53300", "{}", db.message());
        drop(a);
        tokio::time::sleep(Duration::from_millis(300)).await;
        connect(&url).await.expect("a slot is free again");
        let t = |token: Option<&str>| Target {
            base: base.clone(),
            token: token.map(str::to_string),
        };
        for (path, body) in [("/status", None), ("/metrics", None), ("/readyz", None)] {
            let (_, v) = call(&t(None), hyper::Method::GET, path, body)
                .await
                .unwrap();
            seen += &v.to_string();
        }
        let (code, v) = call(&t(Some("wrong")), hyper::Method::POST, "/pause", None)
            .await
            .unwrap();
        assert_eq!(code, 401);
        seen += &v.to_string();
        // A switch to the backend that is down fails with an error naming it.
        let body = Some(serde_json::json!({"to": "down"}));
        let (_, v) = call(&t(Some(TOKEN)), hyper::Method::POST, "/cutover", body)
            .await
            .unwrap();
        assert_eq!(v["ok"], false, "{v}");
        seen += &v.to_string();
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    seen += &std::fs::read_to_string(&log).unwrap();
    seen += &std::fs::read_to_string(dir.path().join("out")).unwrap();
    assert!(seen.contains("down"), "the failure was reported");
    assert!(
        seen.len() > 2000,
        "the debug log was captured: {} bytes",
        seen.len()
    );
    for secret in [BACKEND_PW, CLIENT_PW, TOKEN, DOWN_PW] {
        if let Some(at) = seen.find(secret) {
            let from = at.saturating_sub(200);
            panic!(
                "{secret} leaked: …{}…",
                &seen[from..(at + 50).min(seen.len())]
            );
        }
    }
}

#[test]
fn repeated_login_failures_are_slowed_down() {
    let pg = PgCluster::start();
    let proxy = crate::support::Proxy::simple(&pg.url("app"), "");
    let mut took = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (ok, _, err) = psql(proxy.port, "app", "wrong", &["-c", "SELECT 1"]);
        assert!(
            !ok && err.contains("password authentication failed"),
            "{err}"
        );
        took.push(started.elapsed());
    }
    // The first three are answered at once, the 4th after 250 ms, the 5th after 500 ms.
    assert!(took[4] >= Duration::from_millis(500), "{took:?}");
    assert!(took[0] < Duration::from_millis(500), "{took:?}");
    // The right password still gets in, and clears the record.
    let (ok, _, err) = psql(proxy.port, "app", "secret", &["-c", "SELECT 1"]);
    assert!(ok, "{err}");
    let started = Instant::now();
    let (ok, _, _) = psql(proxy.port, "app", "wrong", &["-c", "SELECT 1"]);
    assert!(!ok);
    assert!(started.elapsed() < Duration::from_millis(500));
}

/// Every mutating admin request without the right token is answered 401 before anything
/// of it is read: whatever its content type and body (a form used to get 415, the body
/// being parsed before the token was checked).
#[test]
fn unauthenticated_mutating_requests_get_401_whatever_they_carry() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&format!(
        "[admin]\ntoken = \"s3cret-token\"\n[backends.local]\nurl = \"{}\"\n",
        crate::support::sqlite_url(&dir.path().join("a.db"))
    ));
    let raw = |path: &str, auth: Option<&str>, ctype: Option<&str>, body: &str| -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", proxy.admin_port)).unwrap();
        let mut req = format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        if let Some(c) = ctype {
            req.push_str(&format!("Content-Type: {c}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.lines().next().unwrap_or_default().to_string()
    };
    let paths = [
        "/cutover",
        "/rollback",
        "/pause",
        "/resume",
        "/sync/start",
        "/sync/stop",
        "/reload",
    ];
    let types = [
        None,
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain"),
        Some("application/octet-stream"),
    ];
    let bodies = ["", "{\"to\": \"local\"}", "to=local", "\u{0}\u{1}garbage"];
    let auths = [
        None,
        Some("Bearer wrong"),
        Some("Basic czNjcmV0LXRva2Vu"),
        Some("s3cret-token"),
    ];
    for path in paths {
        for ctype in types {
            for body in bodies {
                for auth in auths {
                    let status = raw(path, auth, ctype, body);
                    assert!(
                        status.starts_with("HTTP/1.1 401"),
                        "{path} {ctype:?} {body:?} {auth:?}: {status}"
                    );
                }
            }
        }
    }
    // With the token, the same kind of request goes through.
    let ok = raw("/pause", Some("Bearer s3cret-token"), None, "");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let ok = raw(
        "/resume",
        Some("Bearer s3cret-token"),
        Some("text/plain"),
        "x",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}
