//! A fleet of real switchyard processes (`switchyard serve`, one config each) in front of
//! a local PostgreSQL and a remote one (directly, or behind PgBouncer in transaction mode),
//! with the live-sync workload's schema and seed on the local side. The fleet's store is
//! the local database, or the remote one through PgBouncer when pooled.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use switchyard::testing::{Target, call};

use super::bouncer::Bouncer;
use super::cluster::{free_port, scratch_dir, wait_until};
use super::workload::{SCHEMA, SEED_SQL};
use super::{KillOnDrop, PgCluster, rt};

/// One member's ports and files.
pub struct Member {
    pub name: String,
    pub port: u16,
    pub admin: u16,
    pub cfg: PathBuf,
    pub log: PathBuf,
}

pub struct FleetFx {
    pub local: PgCluster,
    pub remote: PgCluster,
    pub bouncer: Option<Bouncer>,
    pub members: Vec<Member>,
    pub dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl FleetFx {
    /// `n` members; the remote side behind PgBouncer when `pooled`; leases of 2 s.
    pub fn new(n: usize, pooled: bool) -> FleetFx {
        FleetFx::with_lease(n, pooled, "2s")
    }

    /// [`FleetFx::new`] with members' leases of `lease`.
    pub fn with_lease(n: usize, pooled: bool, lease: &str) -> FleetFx {
        let local = PgCluster::start();
        let remote = PgCluster::start();
        let bouncer = pooled.then(|| Bouncer::start(&remote, "transaction", 20));
        local.psql_db("app", &format!("SET ROLE app; {SCHEMA} {SEED_SQL}"));
        let remote_url = match &bouncer {
            Some(b) => format!("url = \"{}\"\npooler = \"transaction\"", b.url()),
            None => format!("url = \"{}\"\npooler = \"none\"", remote.url("app")),
        };
        // Pooled: the fleet's store is reached through PgBouncer too (it must work
        // behind a transaction pooler).
        let store = if pooled { "remote" } else { "local" };
        let dir = scratch_dir("sy-fleet-");
        let members = (1..=n)
            .map(|i| {
                let (port, admin) = (free_port(), free_port());
                let name = format!("m{i}");
                let cfg = dir.path().join(format!("{name}.toml"));
                std::fs::write(
                    &cfg,
                    format!(
                        "[proxy]\nlisten = \"127.0.0.1:{port}\"\nshutdown_grace = \"3s\"\n\
                         [admin]\nlisten = \"127.0.0.1:{admin}\"\n\
                         [[users]]\nname = \"app\"\npassword = \"secret\"\n\
                         [backends.local]\nurl = \"{}\"\npool_size = 10\npooler = \"none\"\n\
                         [backends.remote]\n{remote_url}\npool_size = 10\n\
                         [routing]\nactive = \"local\"\nstate_file = \"{}\"\n\
                         [switch]\nmax_pause = \"2s\"\n\
                         [fleet]\nname = \"shop\"\nstore = \"{store}\"\nmember = \"{name}\"\nlease = \"{lease}\"\n",
                        local.url("app"),
                        dir.path().join(format!("{name}.route")).display(),
                    ),
                )
                .unwrap();
                let log = dir.path().join(format!("{name}.log"));
                Member {
                    name,
                    port,
                    admin,
                    cfg,
                    log,
                }
            })
            .collect();
        FleetFx {
            local,
            remote,
            bouncer,
            members,
            dir,
            rt: rt(),
        }
    }

    /// Member `i` (0-based) serving, once its admin API answers.
    pub fn serve(&self, i: usize) -> KillOnDrop {
        self.serve_with(i, &[])
    }

    /// Member `i` serving with extra environment (a failpoint).
    pub fn serve_with(&self, i: usize, env: &[(&str, &str)]) -> KillOnDrop {
        let m = &self.members[i];
        super::sidecar::serve_process(&m.cfg, &m.log, m.admin, env)
    }

    /// Every member serving.
    pub fn serve_all(&self) -> Vec<KillOnDrop> {
        (0..self.members.len()).map(|i| self.serve(i)).collect()
    }

    pub fn url(&self, i: usize) -> String {
        format!(
            "postgres://app:secret@127.0.0.1:{}/app?sslmode=disable",
            self.members[i].port
        )
    }

    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(&self.members[i].log).unwrap_or_default()
    }

    /// Every member's log, for a failure message.
    pub fn logs(&self) -> String {
        (0..self.members.len())
            .map(|i| format!("--- {} ---\n{}", self.members[i].name, self.log_text(i)))
            .collect()
    }

    fn target(&self, i: usize) -> Target {
        Target {
            base: format!("http://127.0.0.1:{}", self.members[i].admin),
            token: None,
        }
    }

    pub fn get(&self, i: usize, path: &str) -> Value {
        self.rt
            .block_on(call(&self.target(i), hyper::Method::GET, path, None))
            .map(|(_, v)| v)
            .unwrap_or(Value::Null)
    }

    pub fn post(&self, i: usize, path: &str, body: Option<Value>) -> (u16, Value) {
        self.rt
            .block_on(call(&self.target(i), hyper::Method::POST, path, body))
            .unwrap()
    }

    /// A switch asked of member `i`, tried again while refused only for lag.
    pub fn switch(&self, i: usize, path: &str, body: Option<Value>) -> Value {
        super::switch_retrying(path, || self.post(i, path, body.clone()).1)
    }

    /// Waits until every member in `alive` has joined and sees the others.
    pub fn wait_members(&self, alive: usize) {
        assert!(
            wait_until(Duration::from_secs(20), || {
                let f = self.get(0, "/fleet");
                f["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().filter(|m| m["alive"] == true).count() == alive)
            }),
            "the fleet did not see {alive} members: {}",
            self.get(0, "/fleet")
        );
    }

    /// Starts the fleet's live sync (local -> remote) on member `i`, and waits until it
    /// streams.
    pub fn start_sync(&self, i: usize) {
        let body = serde_json::json!({"from": "local", "to": "remote"});
        let (code, answer) = self.post(i, "/sync/start", Some(body));
        assert_eq!(code, 200, "{answer}\n{}", self.logs());
        self.wait_streaming(i);
    }

    /// `POST /cutover` to remote on member `i`, on a thread of its own (the test acts
    /// while it runs).
    pub fn cutover_on_thread(
        &self,
        i: usize,
    ) -> std::thread::JoinHandle<anyhow::Result<(u16, Value)>> {
        let target = self.target(i);
        std::thread::spawn(move || {
            let body = Some(serde_json::json!({"to": "remote"}));
            rt().block_on(call(&target, hyper::Method::POST, "/cutover", body))
        })
    }

    /// Waits until member `i`'s live sync streams.
    pub fn wait_streaming(&self, i: usize) {
        assert!(
            wait_until(Duration::from_secs(90), || {
                self.get(i, "/status")["live_sync"]["phase"] == "streaming"
            }),
            "live sync not streaming on member {i}: {}\n{}",
            self.get(i, "/status"),
            self.logs()
        );
    }

    /// A statement run directly on a database (not through switchyard); Err carries the
    /// SQLSTATE and message.
    pub fn direct(&self, pg: &PgCluster, sql: &str) -> Result<(), (String, String)> {
        self.rt.block_on(async {
            let c = super::connect(&pg.url("app")).await.unwrap();
            c.batch_execute(sql).await.map_err(|e| {
                let db = e.as_db_error().expect("a database error");
                (db.code().code().to_string(), db.message().to_string())
            })
        })
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

/// Sends `signal` (STOP, CONT, KILL) to a member's process.
pub fn signal(child: &KillOnDrop, signal: &str) {
    Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
}
