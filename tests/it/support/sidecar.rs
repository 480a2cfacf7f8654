//! switchyard as a real process (`switchyard serve`) in front of a local PostgreSQL and a
//! remote one behind PgBouncer in transaction mode (the hosted pooler's stand-in), with
//! the live-sync workload's schema and seed on the local side; and the admin calls the
//! fault tests make.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use switchyard::testing::{Target, call};

use super::bouncer::Bouncer;
use super::cluster::{free_port, scratch_dir, wait_until};
use super::workload::{SCHEMA, SEED_SQL, Side, changelog_len};
use super::{KillOnDrop, PgCluster, rt};

/// A local PostgreSQL (or SQLite file), a remote PostgreSQL behind PgBouncer, and
/// switchyard's config for both.
pub struct Fixture {
    pub local: PgCluster,
    /// With [`Fixture::sqlite`]: the app's SQLite file, serving as `local` instead.
    pub sqlite: Option<PathBuf>,
    pub remote: PgCluster,
    pub bouncer: Bouncer,
    pub dir: tempfile::TempDir,
    pub cfg: PathBuf,
    pub port: u16,
    pub admin: u16,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    pub fn new(switch: &str) -> Fixture {
        Fixture::build(switch, false)
    }

    /// `local` is a SQLite file, given the schema and seed through switchyard itself.
    pub fn sqlite(switch: &str) -> Fixture {
        let fx = Fixture::build(switch, true);
        let proxy = fx.serve();
        fx.rt.block_on(async {
            let c = super::connect(&fx.url()).await.unwrap();
            c.batch_execute(SCHEMA).await.unwrap();
            c.batch_execute(SQLITE_SEED).await.unwrap();
        });
        drop(proxy);
        fx
    }

    fn build(switch: &str, sqlite: bool) -> Fixture {
        let local = PgCluster::start();
        let remote = PgCluster::start();
        let bouncer = Bouncer::start(&remote, "transaction", 10);
        let dir = scratch_dir("sy-faults-");
        let sqlite = sqlite.then(|| dir.path().join("app.db"));
        let local_url = match &sqlite {
            Some(p) => super::sqlite_url(p),
            None => {
                local.psql_db("app", &format!("SET ROLE app; {SCHEMA} {SEED_SQL}"));
                local.url("app")
            }
        };
        let (port, admin) = (free_port(), free_port());
        let cfg = dir.path().join("switchyard.toml");
        std::fs::write(
            &cfg,
            format!(
                "[proxy]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"3s\"\n\
                 [admin]\nlisten = \"127.0.0.1:{admin}\"\n\
                 [[users]]\nname = \"app\"\npassword = \"secret\"\n\
                 [backends.local]\nurl = \"{}\"\npool_size = 10\npooler = \"none\"\n\
                 [backends.remote]\nurl = \"{}\"\npool_size = 10\npooler = \"transaction\"\n\
                 [routing]\nactive = \"local\"\n[switch]\n{switch}\n",
                local_url,
                bouncer.url()
            ),
        )
        .unwrap();
        Fixture {
            local,
            sqlite,
            remote,
            bouncer,
            dir,
            cfg,
            port,
            admin,
            rt: rt(),
        }
    }

    /// The app's side, read directly.
    pub fn local_side(&self) -> Side<'_> {
        match &self.sqlite {
            Some(p) => Side::Sqlite(p.clone()),
            None => Side::Pg(&self.local),
        }
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://app:secret@127.0.0.1:{}/app?sslmode=disable",
            self.port
        )
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// `switchyard serve`, logging to serve.log, once its admin API answers.
    pub fn serve(&self) -> KillOnDrop {
        serve_process(&self.cfg, &self.log(), self.admin, &[])
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    pub fn target(&self) -> Target {
        Target {
            base: format!("http://127.0.0.1:{}", self.admin),
            token: None,
        }
    }

    pub fn status(&self) -> Value {
        self.rt
            .block_on(call(&self.target(), hyper::Method::GET, "/status", None))
            .map(|(_, v)| v)
            .unwrap_or(Value::Null)
    }

    pub fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.rt
            .block_on(call(&self.target(), hyper::Method::POST, path, body))
            .unwrap()
    }

    /// A switch, tried again while refused only for lag (the writers keep writing).
    pub fn switch(&self, path: &str, body: Option<Value>) -> Value {
        super::switch_retrying(path, || self.post(path, body.clone()).1)
    }

    pub fn wait_streaming(&self, resumed: bool) {
        assert!(
            wait_until(Duration::from_secs(90), || {
                let l = &self.status()["live_sync"];
                l["phase"] == "streaming" && l["resumed"] == resumed
            }),
            "live sync not streaming (resumed: {resumed}): {}\n{}",
            self.status(),
            self.log_text()
        );
    }

    /// Waits until `source` has no captured change left (the writers have stopped).
    pub fn wait_caught_up(&self, source: &Side<'_>) {
        assert!(
            wait_until(Duration::from_secs(60), || self
                .rt
                .block_on(changelog_len(source))
                == 0),
            "live sync did not catch up: {}\n{}\nremote: {}\nlocal: {}",
            self.status(),
            self.log_text(),
            self.remote.psql_db("app", ACTIVITY),
            self.local.psql_db("app", ACTIVITY)
        );
    }
}

/// The seed of [`SEED_SQL`], as the app would write it through switchyard on SQLite.
const SQLITE_SEED: &str = "INSERT INTO accounts (name, balance) SELECT 'seed' || i, i * 10 FROM generate_series(1, 300) i;
INSERT INTO orders (account_id, amount) SELECT id, id FROM accounts;
INSERT INTO tags (account_id, tag) SELECT id, 'seed' FROM accounts;";

/// What each server process is doing (for a failure message).
const ACTIVITY: &str = "SELECT pid, state, wait_event_type, wait_event, backend_xid, left(query, 80) FROM pg_stat_activity WHERE datname = 'app'";

/// Stops the proxy with `signal` (TERM: a clean shutdown; KILL: a crash) and waits for it.
pub fn stop(child: &mut KillOnDrop, signal: &str) {
    let pid = child.id().to_string();
    Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "switchyard did not exit on {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `switchyard serve --config CFG` with `env` added, its log appended to `log`, once its
/// admin API on port `admin` answers.
pub fn serve_process(
    cfg: &std::path::Path,
    log: &std::path::Path,
    admin: u16,
    env: &[(&str, &str)],
) -> KillOnDrop {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--config", cfg.to_str().unwrap()])
            .env(
                "RUST_LOG",
                std::env::var("SY_SERVE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok()
        }),
        "switchyard ({}) did not start:\n{}",
        cfg.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
    child
}
