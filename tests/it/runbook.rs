//! docs/runbook.md, run as written: the blocks marked `<!-- runbook-test: sqlite NAME -->`
//! are executed in order with bash, against a SQLite app database and a PostgreSQL behind
//! PgBouncer in transaction mode (the stand-in for Supabase's pooler), while an app writes
//! through switchyard the whole time. The test only supplies what the runbook tells the
//! reader to supply (SUPABASE_URL, SUPABASE_PASSWORD) plus free ports, and plays the app.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::support::cluster::{free_port, wait_until};
use crate::support::{Bouncer, KillOnDrop, PgCluster, connect, rt};

/// One marked block of the runbook.
struct Block {
    name: String,
    background: bool,
    script: String,
}

fn blocks(procedure: &str) -> Vec<Block> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbook.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines();
    let marker = format!("<!-- runbook-test: {procedure} ");
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(&marker) else {
            continue;
        };
        let words: Vec<&str> = rest.trim_end_matches("-->").split_whitespace().collect();
        assert_eq!(lines.next(), Some("```sh"), "a ```sh block follows {line}");
        let script: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        out.push(Block {
            name: words[0].to_string(),
            background: words.contains(&"background"),
            script: script.join("\n"),
        });
    }
    out
}

/// Where the commands run and with what environment.
struct Shell {
    dir: PathBuf,
    env: BTreeMap<String, String>,
}

impl Shell {
    fn command(&self, script: &str) -> Command {
        let mut c = Command::new("bash");
        c.args(["-euo", "pipefail", "-c", script])
            .current_dir(&self.dir)
            .envs(&self.env);
        c
    }

    /// Runs a block to completion (bounded) and returns its stdout.
    fn run(&self, b: &Block) -> String {
        let out = Command::new("timeout")
            .args(["120", "bash", "-euo", "pipefail", "-c", &b.script])
            .current_dir(&self.dir)
            .envs(&self.env)
            .output()
            .unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "runbook step {} failed ({}):\n$ {}\n{o}{e}",
            b.name,
            out.status,
            b.script
        );
        println!("--- {}\n$ {}\n{o}{e}", b.name, b.script);
        o.into_owned()
    }
}

/// The app: inserts orders and updates accounts through switchyard until told to stop,
/// counting what it wrote and every error it saw.
struct App {
    stop: Arc<AtomicBool>,
    orders: Arc<AtomicU64>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    task: Option<std::thread::JoinHandle<()>>,
}

impl App {
    fn start(url: String) -> App {
        let stop = Arc::new(AtomicBool::new(false));
        let orders = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, o, e) = (stop.clone(), orders.clone(), errors.clone());
        let task = std::thread::spawn(move || rt().block_on(app_loop(url, s, o, e)));
        App {
            stop,
            orders,
            errors,
            task: Some(task),
        }
    }

    fn finish(&mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.take().unwrap().join().expect("app thread");
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "the app saw errors: {errors:?}");
        self.orders.load(Ordering::SeqCst)
    }
}

async fn app_loop(
    url: String,
    stop: Arc<AtomicBool>,
    orders: Arc<AtomicU64>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
) {
    let c = connect(&url).await.expect("the app connects to switchyard");
    let mut i = 0i64;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let account = 1 + i % 200;
        let r = c
            .batch_execute(&format!(
                "BEGIN; INSERT INTO orders (account_id, amount, note) VALUES ({account}, {i}, 'o{i}'); \
                 UPDATE accounts SET balance = balance + {i} WHERE id = {account}; COMMIT"
            ))
            .await;
        match r {
            Ok(()) => {
                orders.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                errors.lock().unwrap().push(format!("{e:?}"));
                let _ = c.batch_execute("ROLLBACK").await;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn make_app_db(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance INTEGER NOT NULL DEFAULT 0, \
           created_at DATETIME DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL REFERENCES accounts(id), \
           amount INTEGER NOT NULL, note TEXT, paid BOOLEAN NOT NULL DEFAULT 0);
         CREATE INDEX orders_account ON orders(account_id);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
           INSERT INTO accounts (id, name, balance) SELECT i, 'acct' || i, 1000 FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
           INSERT INTO orders (account_id, amount, note, paid) SELECT 1 + i % 200, i, 'seed', i % 2 FROM n;",
    )
    .unwrap();
}

fn count_pg(pg: &PgCluster, sql: &str) -> i64 {
    pg.psql_db("app", sql).trim().parse().unwrap()
}

#[test]
fn sqlite_to_hosted_postgres_as_the_runbook_says() {
    let hosted = PgCluster::start();
    let pooler = Bouncer::start(&hosted, "transaction", 10);
    let dir = tempfile::tempdir().unwrap();
    make_app_db(&dir.path().join("app.db"));
    let (port, admin) = (free_port(), free_port());
    let bin = Path::new(env!("CARGO_BIN_EXE_switchyard"))
        .parent()
        .unwrap();
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_string(),
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    // What the reader exports in step 1 (the pooler's URL, with its password). The
    // password is given once: serve reads it from the env file init writes.
    env.insert(
        "SUPABASE_URL".into(),
        format!(
            "postgres://app:secret@127.0.0.1:{}/app?sslmode=disable",
            pooler.port
        ),
    );
    // Free ports instead of 6432/9640, so the test runs beside anything else.
    env.insert("SWITCHYARD_LISTEN".into(), format!("127.0.0.1:{port}"));
    env.insert(
        "SWITCHYARD_ADMIN_LISTEN".into(),
        format!("127.0.0.1:{admin}"),
    );
    env.insert(
        "SWITCHYARD_ADMIN_URL".into(),
        format!("http://127.0.0.1:{admin}"),
    );
    env.insert("RUST_LOG".into(), "warn".into());
    let shell = Shell {
        dir: dir.path().to_path_buf(),
        env,
    };
    let steps = blocks("sqlite");
    let names: Vec<&str> = steps.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "init",
            "check",
            "serve",
            "ready",
            "dry-run",
            "sync",
            "status",
            "verify",
            "cutover",
            "watch",
            "rollback",
            "cutover-again",
            "final-verify",
            "finish"
        ]
    );
    let mut server: Option<KillOnDrop> = None;
    let mut app: Option<App> = None;
    let app_url = format!("postgres://app@127.0.0.1:{port}/app?sslmode=disable");
    for b in &steps {
        // verify runs while the app writes (no quiet moment): it looks again at what
        // differs once live sync has applied what it captured. The app stops before the
        // sync does.
        if b.name == "finish" {
            let n = app.as_mut().unwrap().finish();
            assert!(n > 100, "the app wrote only {n} orders");
            let want = 5000 + n as i64;
            assert_eq!(count_pg(&hosted, "SELECT count(*) FROM orders"), want);
        }
        if b.background {
            // `exec`: the process the test holds is switchyard itself, not a shell that
            // would leave it running when killed.
            let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
            let child = shell
                .command(&format!("exec {}", b.script.trim()))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            server = Some(KillOnDrop(child));
            assert!(
                wait_until(Duration::from_secs(15), || {
                    std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok()
                }),
                "switchyard serve did not come up"
            );
            continue;
        }
        let out = shell.run(b);
        match b.name.as_str() {
            "ready" => app = Some(App::start(app_url.clone())),
            "init" => {
                assert!(out.contains("wrote switchyard.env (mode 0600)"), "{out}");
                assert!(out.contains("nothing to export"), "{out}");
            }
            "verify" | "final-verify" => assert!(out.contains("table(s) identical"), "{out}"),
            "sync" => {
                // --wait followed the copy to the end: the last lines say so.
                assert!(
                    out.contains("live sync local -> supabase: streaming"),
                    "{out}"
                );
                assert!(out.contains("copy: done, 2 tables, 5"), "{out}");
            }
            "status" => assert!(out.contains("copy: done"), "{out}"),
            "finish" => {
                assert!(
                    out.contains("(reversed by the cutover; started local -> supabase)"),
                    "{out}"
                );
                assert!(out.contains("DROP SCHEMA switchyard CASCADE"), "{out}");
            }
            "cutover" | "cutover-again" | "rollback" => {
                assert!(out.contains(": done"), "{out}");
                std::thread::sleep(Duration::from_secs(2));
            }
            _ => {}
        }
    }
    // Nothing of switchyard's is left on either side, and both hold the same data.
    let left = count_pg(
        &hosted,
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'switchyard%'",
    );
    assert_eq!(left, 0, "capture triggers left on the hosted side");
    let sqlite = rusqlite::Connection::open(dir.path().join("app.db")).unwrap();
    let leftovers: i64 = sqlite
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '%switchyard%' \
             AND tbl_name NOT IN ('_switchyard_columns', '_switchyard_enums', '_switchyard_identity_columns')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // (_switchyard_columns, _switchyard_enums and _switchyard_identity_columns are the
    // SQLite backend's own record of column types, enum labels and identity keys, kept
    // while switchyard may serve the file again; the runbook says so.)
    assert_eq!(leftovers, 0, "live sync objects left in app.db");
    let config = std::fs::read_to_string(dir.path().join("switchyard.toml")).unwrap();
    assert!(
        !config.contains("secret"),
        "a password was written to the config"
    );
    // It is in the env file instead, readable by its owner only.
    let env_file = dir.path().join("switchyard.env");
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .contains("SUPABASE_PASSWORD='secret'")
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // The route is kept beside the config, not by editing it.
    let route = std::fs::read_to_string(dir.path().join("switchyard.state.json")).unwrap();
    assert!(route.contains("\"active\": \"supabase\""), "{route}");
    drop(server);
}
