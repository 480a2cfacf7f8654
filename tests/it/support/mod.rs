//! Test support: real PostgreSQL clusters, real PgBouncer, the proxy in-process, and
//! helpers for real clients (tokio-postgres, psql, pgbench).
#![allow(dead_code)]

pub mod bouncer;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod faulty;
pub mod fleet;
pub mod proxy;
pub mod raw;
pub mod sidecar;
pub mod workload;
pub mod writers;

use std::process::Command;

pub use bouncer::Bouncer;
pub use cluster::PgCluster;
pub use proxy::Proxy;

/// A switch asked with `post`, tried again while refused only for lag (writers keep
/// writing, so live sync may be behind for a moment).
pub fn switch_retrying(
    path: &str,
    mut post: impl FnMut() -> serde_json::Value,
) -> serde_json::Value {
    for _ in 0..100 {
        let answer = post();
        let lagging = answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_lag_rows") || e.contains("try again"));
        if !lagging {
            return answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    panic!("{path} refused for lag 100 times");
}

/// A runtime for the test's own clients.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Connects with tokio-postgres; the connection task runs on the current runtime.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Runs psql against the proxy with a password; returns (success, stdout, stderr).
pub fn psql(port: u16, user: &str, password: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("psql")
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            "app",
        ])
        .args(args)
        .output()
        .expect("psql runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

/// Result of a pgbench run.
#[derive(Debug)]
pub struct Bench {
    pub ok: bool,
    pub tps: f64,
    pub failed: u64,
    pub processed: u64,
    pub output: String,
}

/// Runs pgbench; `args` add to the connection arguments.
pub fn pgbench(port: u16, args: &[&str]) -> Bench {
    let out = Command::new(cluster::pg_bin("pgbench"))
        .env("PGPASSWORD", "secret")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "app"])
        .args(args)
        .arg("app")
        .output()
        .expect("pgbench runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let num_after = |label: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| {
                n.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()
            })
    };
    Bench {
        ok: out.status.success(),
        tps: num_after("tps = ").unwrap_or(0.0),
        failed: num_after("number of failed transactions:").unwrap_or(0.0) as u64,
        processed: num_after("number of transactions actually processed:").unwrap_or(0.0) as u64,
        output: text,
    }
}

/// A child process that is killed (and reaped) when the guard goes out of scope, also
/// when a test panics, so no server outlives its test or holds the test's output open.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// `switchyard serve --config cfg` as a child process, once something listens on `port`.
pub fn serve(cfg: &std::path::Path, port: u16) -> KillOnDrop {
    let child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--config", cfg.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(cluster::wait_until(
        std::time::Duration::from_secs(10),
        || { std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() }
    ));
    child
}

/// A SQLite backend URL for a database file at `path`, made (empty) if it is not there:
/// switchyard serves only files that exist.
/// The first column of every row a simple query returns (NULL as "NULL").
pub async fn first_column(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(r.get(0).unwrap_or("NULL").to_string())
            }
            _ => None,
        })
        .collect()
}

/// A proxy serving the SQLite file `app.db` in `dir` to user app/secret.
pub fn sqlite_proxy(dir: &tempfile::TempDir) -> Proxy {
    Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n[backends.local]\nurl = \"{}\"\npool_size = 4\n",
        sqlite_url(&dir.path().join("app.db"))
    ))
}

pub fn sqlite_url(path: &std::path::Path) -> String {
    if !path.exists() {
        std::fs::write(path, b"").unwrap();
    }
    format!("sqlite://{}", path.display())
}
