//! Throwaway PostgreSQL clusters: `initdb` once per test process into a template, copied
//! per cluster, started with `pg_ctl` on a free port, stopped and removed on drop. Runs the
//! server binaries as the `postgres` user when the tests run as root.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// Where the PostgreSQL server binaries live.
pub fn pg_bin(name: &str) -> PathBuf {
    for dir in [
        "/usr/lib/postgresql/15/bin",
        "/usr/lib/postgresql/16/bin",
        "/usr/lib/postgresql/17/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// uid/gid to run server processes as (the `postgres` user when we are root).
pub fn server_user() -> Option<(u32, u32)> {
    if unsafe_geteuid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.first() != Some(&"postgres") || f.len() < 4 {
            return None;
        }
        Some((f[2].parse().ok()?, f[3].parse().ok()?))
    })
}

fn unsafe_geteuid() -> u32 {
    // The tests only need to know whether they are root; /proc tells without libc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).and_then(|u| u.parse().ok()))
        })
        .unwrap_or(1)
}

/// A command that runs as the server user.
pub fn server_cmd(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    if let Some((uid, gid)) = server_user() {
        c.uid(uid).gid(gid);
    }
    c.env_remove("PGPASSWORD");
    c
}

fn chown(path: &Path) {
    if let Some((uid, gid)) = server_user() {
        let _ = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .status();
    }
}

fn run(mut c: Command, what: &str) -> Output {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory under /tmp the server user can use.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    chown(d.path());
    d
}

const TEMPLATE_HBA: &str = "local all all trust\n\
    hostnossl all tlsonly 127.0.0.1/32 reject\n\
    host all md5user 127.0.0.1/32 md5\n\
    host all plainuser 127.0.0.1/32 password\n\
    host all postgres 127.0.0.1/32 trust\n\
    host all all 127.0.0.1/32 scram-sha-256\n\
    host all all ::1/128 scram-sha-256\n";

const TEMPLATE_CONF: &str = "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
    max_connections = 300\nshared_buffers = 32MB\nlisten_addresses = '127.0.0.1'\n\
    log_min_messages = warning\n";

/// The initdb result every cluster is copied from. Built once per machine under a name
/// derived from the initdb binary and the settings, and reused by later test processes: a
/// per-process template in a `static` is never dropped, so each run used to leave ~40 MB
/// behind in /tmp. Built in a scratch directory and renamed into place with a `ready`
/// marker, so concurrent test processes never see half a template.
fn template() -> &'static PathBuf {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let initdb = pg_bin("initdb");
        let key = fnv1a(format!("{}\n{TEMPLATE_HBA}{TEMPLATE_CONF}", initdb.display()).as_bytes());
        let dir = PathBuf::from(format!("/tmp/sy-template-{key:016x}"));
        if !dir.join("ready").exists() {
            let build = scratch_dir("sy-template-build-");
            init_template(&initdb, &build.path().join("data"));
            std::fs::write(build.path().join("ready"), "").unwrap();
            chown(build.path());
            let built = build.keep();
            if std::fs::rename(&built, &dir).is_err() {
                // Another test process got there first (or a stale, unmarked directory is
                // in the way: replace it).
                if dir.join("ready").exists() {
                    let _ = std::fs::remove_dir_all(&built);
                } else {
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::rename(&built, &dir).unwrap();
                }
            }
        }
        dir.join("data")
    })
}

fn init_template(initdb: &Path, data: &Path) {
    let mut c = server_cmd(initdb);
    c.args(["-D"]).arg(data).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    run(c, "initdb");
    std::fs::write(data.join("pg_hba.conf"), TEMPLATE_HBA).unwrap();
    let mut pg = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
    pg.push_str(TEMPLATE_CONF);
    std::fs::write(data.join("postgresql.conf"), pg).unwrap();
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A running PostgreSQL cluster.
pub struct PgCluster {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
}

impl PgCluster {
    /// Starts a fresh cluster with the roles `app`/`secret` (SCRAM), `md5user`/`secret`
    /// (md5), `plainuser`/`secret` (cleartext), and a database `app` owned by `app`.
    pub fn start() -> PgCluster {
        let dir = scratch_dir("sy-pg-");
        let data = dir.path().join("data");
        run(
            {
                let mut c = server_cmd("cp");
                c.arg("-a").arg(template()).arg(&data);
                c
            },
            "copy template",
        );
        let cluster = PgCluster { port: 0, dir, data };
        let mut cluster = cluster;
        cluster.port = cluster.launch();
        cluster.psql(
            "CREATE ROLE app LOGIN PASSWORD 'secret' SUPERUSER; \
             SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'secret'; \
             RESET password_encryption; CREATE ROLE plainuser LOGIN PASSWORD 'secret'; \
             CREATE ROLE tlsonly LOGIN PASSWORD 'secret';",
        );
        cluster.psql("CREATE DATABASE app OWNER app");
        cluster
    }

    fn launch(&self) -> u16 {
        for _ in 0..5 {
            let port = free_port();
            let mut c = server_cmd(pg_bin("pg_ctl"));
            c.arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.dir.path().join("log"))
                .arg("-w")
                .arg("-o")
                .arg(format!("-p {port} -k {}", self.dir.path().display()));
            c.arg("start");
            if c.output().map(|o| o.status.success()).unwrap_or(false) {
                return port;
            }
        }
        panic!(
            "cannot start PostgreSQL: {}",
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Turns TLS on with the given certificate and key (copied into the data directory).
    pub fn enable_tls(&self, cert: &Path, key: &Path) {
        for (src, name) in [(cert, "server.crt"), (key, "server.key")] {
            let dst = self.data.join(name);
            std::fs::copy(src, &dst).unwrap();
            let _ = Command::new("chown").arg("postgres").arg(&dst).status();
            let _ = Command::new("chmod").arg("600").arg(&dst).status();
        }
        self.psql("ALTER SYSTEM SET ssl = on");
        self.psql("SELECT pg_reload_conf()");
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Stops the server (it can be started again on the same port with `restart`).
    pub fn stop(&self) {
        let mut c = server_cmd(pg_bin("pg_ctl"));
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = c.output();
    }

    /// Starts the server again on the same port.
    pub fn restart(&self) {
        let mut c = server_cmd(pg_bin("pg_ctl"));
        c.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .arg("-w")
            .arg("-o")
            .arg(format!("-p {} -k {}", self.port, self.dir.path().display()));
        c.arg("start");
        run(c, "pg_ctl restart");
    }

    /// Runs SQL as the superuser over the Unix socket; returns stdout (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db("postgres", sql)
    }

    pub fn psql_db(&self, db: &str, sql: &str) -> String {
        let mut c = server_cmd("psql");
        c.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "postgres",
            "-h",
        ])
        .arg(self.dir.path())
        .args(["-p", &self.port.to_string(), "-d", db, "-c", sql]);
        String::from_utf8(run(c, &format!("psql {sql}")).stdout)
            .unwrap()
            .trim()
            .to_string()
    }

    /// `postgres://user:secret@127.0.0.1:port/app`
    pub fn url(&self, user: &str) -> String {
        format!(
            "postgres://{user}:secret@127.0.0.1:{}/app?sslmode=disable",
            self.port
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `f` is true or the time runs out.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
