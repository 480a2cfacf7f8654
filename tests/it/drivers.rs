//! Real drivers in other languages through the proxy: psycopg 3, asyncpg and psycopg2
//! (tests/clients/drivers.py), pgjdbc (tests/clients/Jdbc.java) and node-postgres
//! (tests/clients/node_pg.js), to PostgreSQL directly and through PgBouncer in transaction
//! mode.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{Bouncer, PgCluster, Proxy};

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

const PGJDBC: &str = "/usr/share/java/postgresql.jar";

/// Compiles the JDBC client once per test process.
fn jdbc_classes() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("javac")
            .args(["-cp", PGJDBC, "-d"])
            .arg(dir.path())
            .arg(clients_dir().join("Jdbc.java"))
            .arg(clients_dir().join("JdbcMeta.java"))
            .output()
            .expect("javac is installed (scripts/test.sh installs default-jdk-headless)");
        assert!(
            out.status.success(),
            "javac failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

/// Runs a Python client script from tests/clients against the proxy (bounded by a timeout,
/// so a hang is a failure) and expects it to print "OK …".
fn run_script(script: &str, port: u16, what: &str) {
    let out = Command::new("timeout")
        .args(["120", "python3"])
        .arg(clients_dir().join(script))
        .arg(format!(
            "postgresql://app:secret@127.0.0.1:{port}/app?sslmode=disable"
        ))
        .output()
        .unwrap();
    expect_ok(&out, what);
}

/// A client program's verdict: it must exit 0 and print "OK …".
fn expect_ok(out: &std::process::Output, what: &str) {
    let text = crate::support::cli::text(out);
    assert!(
        out.status.success() && text.starts_with("OK"),
        "{what} failed ({}):\n{text}",
        out.status
    );
}

/// psycopg 3, asyncpg and psycopg2 (tests/clients/drivers.py).
pub fn run_python(port: u16) {
    run_script("drivers.py", port, "python drivers");
}

/// What asyncpg reads back for arrays, enums and a failed prepare
/// (tests/clients/asyncpg_types.py): its output, to compare between servers.
pub fn asyncpg_types(url: &str) -> String {
    let out = Command::new("timeout")
        .args(["60", "python3"])
        .arg(clients_dir().join("asyncpg_types.py"))
        .arg(url)
        .output()
        .unwrap();
    let text = crate::support::cli::text(&out);
    assert!(
        out.status.success(),
        "asyncpg_types.py ({}):\n{text}",
        out.status
    );
    text
}

/// SQLAlchemy 2 ORM with psycopg 3 and psycopg2 (tests/clients/orm.py).
pub fn run_orm(port: u16) {
    run_script("orm.py", port, "SQLAlchemy ORM");
}

/// Where scripts/test.sh installs node-postgres.
fn node_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-node/node_modules")
}

/// node-postgres (tests/clients/node_pg.js).
pub fn run_node(port: u16) {
    assert!(
        node_modules().join("pg").exists(),
        "node-postgres is missing: run scripts/test.sh (it runs `npm install --prefix target/test-node pg`)"
    );
    let out = Command::new("timeout")
        .args(["120", "node"])
        .arg(clients_dir().join("node_pg.js"))
        .arg(format!(
            "postgresql://app:secret@127.0.0.1:{port}/app?sslmode=disable"
        ))
        .env("NODE_PATH", node_modules())
        .output()
        .expect("node is installed (scripts/test.sh installs nodejs)");
    expect_ok(&out, "node-postgres");
}

/// What tests/clients/JdbcMeta.java prints of the schema it makes on database `db` as
/// `user`/`password`.
pub fn jdbc_metadata(port: u16, db: &str, user: &str, password: &str) -> String {
    let cp = format!("{PGJDBC}:{}", jdbc_classes().display());
    let out = Command::new("timeout")
        .args(["120", "java", "-cp", &cp, "JdbcMeta"])
        .arg(format!(
            "jdbc:postgresql://127.0.0.1:{port}/{db}?sslmode=disable"
        ))
        .args([user, password])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn run_jdbc(port: u16) {
    let cp = format!("{PGJDBC}:{}", jdbc_classes().display());
    let out = Command::new("timeout")
        .args([
            "120",
            "java",
            "-cp",
            &cp,
            "Jdbc",
            &format!("jdbc:postgresql://127.0.0.1:{port}/app?sslmode=disable"),
            "app",
            "secret",
        ])
        .output()
        .unwrap();
    expect_ok(&out, "pgjdbc");
}

#[test]
fn python_and_java_drivers_to_postgres() {
    let pg = PgCluster::start();
    for pooler in ["none", "transaction"] {
        let proxy = Proxy::simple(
            &pg.url("app"),
            &format!("pool_size = 3\npooler = \"{pooler}\""),
        );
        run_python(proxy.port);
        run_jdbc(proxy.port);
        run_node(proxy.port);
    }
}

#[test]
fn python_and_java_drivers_through_pgbouncer() {
    let pg = PgCluster::start();
    let bouncer = Bouncer::start(&pg, "transaction", 2);
    let proxy = Proxy::simple(&bouncer.url(), "pool_size = 3");
    run_python(proxy.port);
    run_jdbc(proxy.port);
    run_node(proxy.port);
}
