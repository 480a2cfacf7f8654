//! Live cutover with zero lost writes: a write workload (inserts, updates and deletes over
//! tables with foreign keys, from concurrent clients that record what they committed) runs
//! through the proxy while live sync keeps a second PostgreSQL in step; then cutover, more
//! writes, rollback, more writes, cutover again. After each step the active side must equal
//! the recorded state exactly (read directly from the database, not through switchyard),
//! the workload must have seen no error, and the inactive side must catch up too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard::testing::{Target, call};

use crate::support::cluster::{scratch_dir, wait_until};
use crate::support::workload::{
    Model, SCHEMA, SEED_SQL, Side, Worker, assert_same, changelog_len, expected, seed_model,
    snapshot,
};
use crate::support::{PgCluster, Proxy, connect, rt};

async fn post(proxy: &Proxy, path: &str, body: Option<Value>) -> (u16, Value) {
    let t = Target {
        base: format!("http://127.0.0.1:{}", proxy.admin_port),
        token: None,
    };
    call(&t, hyper::Method::POST, path, body).await.unwrap()
}

fn live_status(proxy: &Proxy) -> Value {
    serde_json::to_value(proxy.shared.live.current().map(|l| l.status())).unwrap()
}

/// Runs the workload for `secs`, calling `switch` (a cutover or rollback) half way.
/// Returns the switch answer; panics on any workload error.
async fn phase(
    proxy: &Proxy,
    workers: &mut Vec<Worker>,
    secs: f64,
    switch: (&str, Option<Value>),
) -> Value {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for mut w in workers.drain(..) {
        let (url, stop) = (proxy.url("app", "secret"), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = connect(&url).await.expect("workload connects");
            while !stop.load(Ordering::SeqCst) {
                if let Err(e) = w.step(&mut c).await {
                    panic!("workload client {} failed after {} ops: {e:?}", w.id, w.ops);
                }
            }
            w
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs / 2.0)).await;
    // As an operator would: a switch refused because live sync lags or is busy with a
    // large round (a loaded machine) is tried again while the clients keep writing; any
    // other refusal fails the test.
    let mut refusals = 0;
    let (code, answer) = loop {
        let (code, answer) = post(proxy, switch.0, switch.1.clone()).await;
        let lagging = answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_lag_rows") || e.contains("try again"));
        if !lagging || refusals == 100 {
            break (code, answer);
        }
        refusals += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    if refusals > 0 {
        eprintln!("{}: refused {refusals} times for lag first", switch.0);
    }
    tokio::time::sleep(Duration::from_secs_f64(secs / 2.0)).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        workers.push(t.await.expect("workload client panicked"));
    }
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["ok"], true, "{}: {answer}", switch.0);
    answer
}

/// Waits until live sync has applied everything captured on `source` (the active side;
/// the workload has stopped) and reports itself streaming without error.
fn wait_caught_up(proxy: &Proxy, source: &Side<'_>) {
    let rt = rt();
    assert!(
        wait_until(Duration::from_secs(60), || {
            let s = live_status(proxy);
            s["phase"] == "streaming"
                && s["last_error"].is_null()
                && rt.block_on(changelog_len(source)) == 0
        }),
        "live sync did not catch up: {} ({} entries left on the source)",
        live_status(proxy),
        rt.block_on(changelog_len(source))
    );
}

/// The whole scenario; `local` is where the app starts, `remote` a second PostgreSQL.
fn scenario(proxy: &Proxy, local: Side<'_>, remote: &PgCluster, seed: Model, bulk: impl Fn()) {
    let rt = rt();
    let remote_side = Side::Pg(remote);
    let (code, answer) = rt.block_on(post(
        proxy,
        "/sync/start",
        Some(json!({"from": "local", "to": "remote"})),
    ));
    assert_eq!(code, 200, "{answer}");
    assert!(
        wait_until(Duration::from_secs(60), || live_status(proxy)["phase"]
            == "streaming"),
        "live sync never reached streaming: {}",
        live_status(proxy)
    );
    // A cutover is refused while the lag is above switch.max_lag_rows.
    bulk();
    let (_, refused) = rt.block_on(post(proxy, "/cutover", Some(json!({"to": "remote"}))));
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("max_lag_rows"),
        "{refused}"
    );
    assert_eq!(proxy.shared.router.active().name.as_ref(), "local");
    wait_caught_up(proxy, &local);
    let events = 60_000;
    assert_same(
        "remote after backfill and catch-up",
        &rt.block_on(snapshot(&remote_side)),
        &seed,
        events,
    );

    let mut workers: Vec<Worker> = (0..4)
        .map(|i| Worker {
            id: i,
            rng: 0x9E37_79B9 + i * 7919,
            model: Model::default(),
            ops: 0,
        })
        .collect();
    let mut extra = Model::default();
    // Cutover under load.
    let rec = rt.block_on(phase(
        proxy,
        &mut workers,
        3.0,
        ("/cutover", Some(json!({"to": "remote"}))),
    ));
    eprintln!("cutover: {rec}");
    let want = expected(&seed, &workers, &extra);
    assert_same(
        "remote (active) after cutover",
        &rt.block_on(snapshot(&remote_side)),
        &want,
        events,
    );
    wait_caught_up(proxy, &remote_side);
    assert_same(
        "local (carried back) after cutover",
        &rt.block_on(snapshot(&local)),
        &want,
        events,
    );

    // A write straight to the old side is reported, kept, and carried at the next switch.
    let seed_id = *seed.accounts.keys().next().unwrap();
    match &local {
        Side::Pg(pg) => {
            pg.psql_db(
                "app",
                &format!("UPDATE accounts SET name = 'stray' WHERE id = {seed_id}"),
            );
        }
        Side::Sqlite(p) => {
            let c = rusqlite::Connection::open(p).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            c.execute(
                &format!("UPDATE accounts SET name = 'stray' WHERE id = {seed_id}"),
                [],
            )
            .unwrap();
        }
    }
    extra
        .accounts
        .insert(seed_id, ("stray".into(), seed.accounts[&seed_id].1));
    assert!(
        wait_until(
            Duration::from_secs(10),
            || live_status(proxy)["inactive_side_writes"].as_u64() >= Some(1)
        ),
        "stray write not reported: {}",
        live_status(proxy)
    );

    // Rollback under load.
    let rec = rt.block_on(phase(proxy, &mut workers, 3.0, ("/rollback", None)));
    eprintln!("rollback: {rec}");
    let want = expected(&seed, &workers, &extra);
    assert_same(
        "local (active) after rollback",
        &rt.block_on(snapshot(&local)),
        &want,
        events,
    );
    wait_caught_up(proxy, &local);
    assert_same(
        "remote after rollback",
        &rt.block_on(snapshot(&remote_side)),
        &want,
        events,
    );

    // Cutover again.
    let rec = rt.block_on(phase(
        proxy,
        &mut workers,
        3.0,
        ("/cutover", Some(json!({"to": "remote"}))),
    ));
    eprintln!("second cutover: {rec}");
    let want = expected(&seed, &workers, &extra);
    assert_same(
        "remote (active) after the second cutover",
        &rt.block_on(snapshot(&remote_side)),
        &want,
        events,
    );
    wait_caught_up(proxy, &remote_side);
    assert_same(
        "local after the second cutover",
        &rt.block_on(snapshot(&local)),
        &want,
        events,
    );
    let ops: u64 = workers.iter().map(|w| w.ops).sum();
    assert!(ops > 100, "the workload barely ran: {ops} operations");
    // The gauge follows within a round of the changelog emptying.
    assert!(
        wait_until(Duration::from_secs(10), || proxy
            .metrics()
            .contains("switchyard_sync_pending_changes 0")),
        "{}",
        proxy.metrics()
    );
    assert!(proxy.metrics().contains("switchyard_sync_phase 3"));
}

const BULK_SQL: &str =
    "INSERT INTO events (id, payload) SELECT i, 'event ' || i FROM generate_series(1, 60000) i";

fn proxy_for(local_url: &str, remote: &PgCluster) -> Proxy {
    Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.local]\nurl = \"{local_url}\"\npool_size = 6\npooler = \"none\"\n\
         [backends.remote]\nurl = \"{}\"\npool_size = 6\n\
         [routing]\nactive = \"local\"\n\
         [switch]\nmax_lag_rows = 5000\ndrain_timeout = \"10s\"\nmax_pause = \"15s\"\n",
        remote.url("app")
    ))
}

#[test]
fn live_cutover_and_rollback_from_postgres() {
    let (local, remote) = (PgCluster::start(), PgCluster::start());
    local.psql_db("app", &format!("SET ROLE app; {SCHEMA} {SEED_SQL}"));
    let proxy = proxy_for(&local.url("app"), &remote);
    scenario(&proxy, Side::Pg(&local), &remote, seed_model(300), || {
        local.psql_db("app", BULK_SQL);
    });
}

#[test]
fn live_cutover_and_rollback_from_sqlite() {
    let remote = PgCluster::start();
    let dir = scratch_dir("sy-live-");
    let db = dir.path().join("app.db");
    let proxy = proxy_for(&crate::support::sqlite_url(&db), &remote);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(SCHEMA).await.unwrap();
        for i in 1..=300i64 {
            c.execute("INSERT INTO accounts (name, balance) VALUES ($1::text, $2::int8)", &[&format!("seed{i}"), &(i * 10)]).await.unwrap();
        }
        c.batch_execute("INSERT INTO orders (account_id, amount) SELECT id, id FROM accounts; INSERT INTO tags (account_id, tag) SELECT id, 'seed' FROM accounts").await.unwrap();
    });
    let path = db.clone();
    scenario(
        &proxy,
        Side::Sqlite(db),
        &remote,
        seed_model(300),
        move || {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            c.execute_batch("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 60000) INSERT INTO events (id, payload) SELECT i, 'event ' || i FROM s").unwrap();
        },
    );
}

/// The schema the app's ORM made on the remote before the move (its own types: serial
/// and integer ids, varchar, a column SQLite never had; its own index and key names).
const ORM_SCHEMA: &str = "CREATE TABLE accounts (id serial PRIMARY KEY, name varchar(100) NOT NULL,
  balance bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id serial PRIMARY KEY, account_id integer NOT NULL
  CONSTRAINT fk_orders_account REFERENCES accounts (id), amount bigint NOT NULL);
CREATE INDEX ix_orders_account_id ON orders (account_id);
CREATE TABLE tags (account_id integer NOT NULL REFERENCES accounts (id), tag varchar(50) NOT NULL,
  PRIMARY KEY (account_id, tag));
CREATE TABLE events (id integer PRIMARY KEY, payload text);";

#[test]
fn live_cutover_and_rollback_from_sqlite_into_an_orm_made_schema() {
    let remote = PgCluster::start();
    remote.psql_db("app", &format!("SET ROLE app; {ORM_SCHEMA}"));
    let dir = scratch_dir("sy-live-orm-");
    let db = dir.path().join("app.db");
    let proxy = proxy_for(&crate::support::sqlite_url(&db), &remote);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(SCHEMA).await.unwrap();
        c.batch_execute("INSERT INTO accounts (name, balance) SELECT 'seed' || i, i * 10 FROM generate_series(1, 300) i").await.unwrap();
        c.batch_execute("INSERT INTO orders (account_id, amount) SELECT id, id FROM accounts; INSERT INTO tags (account_id, tag) SELECT id, 'seed' FROM accounts").await.unwrap();
    });
    let path = db.clone();
    scenario(
        &proxy,
        Side::Sqlite(db),
        &remote,
        seed_model(300),
        move || {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            c.execute_batch("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 60000) INSERT INTO events (id, payload) SELECT i, 'event ' || i FROM s").unwrap();
        },
    );
    // The app's schema is as it made it: its types, names and defaults.
    assert_eq!(
        remote.psql_db(
            "app",
            "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE contype = 'f'"
        ),
        "fk_orders_account,tags_account_id_fkey"
    );
    assert_eq!(
        remote.psql_db(
            "app",
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attname = 'name'"
        ),
        "character varying(100)"
    );
    assert_eq!(
        remote.psql_db(
            "app",
            "SELECT count(*) FROM accounts WHERE created_at IS NULL"
        ),
        "0"
    );
}

/// The same from PostgreSQL: the app's schema on the remote has other types (integer ids,
/// varchar), so rows cross between the two as text in both directions.
#[test]
fn live_cutover_and_rollback_from_postgres_into_an_orm_made_schema() {
    let (local, remote) = (PgCluster::start(), PgCluster::start());
    local.psql_db("app", &format!("SET ROLE app; {SCHEMA} {SEED_SQL}"));
    remote.psql_db("app", &format!("SET ROLE app; {ORM_SCHEMA}"));
    let proxy = proxy_for(&local.url("app"), &remote);
    scenario(&proxy, Side::Pg(&local), &remote, seed_model(300), || {
        local.psql_db("app", BULK_SQL);
    });
    assert_eq!(
        remote.psql_db(
            "app",
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'account_id'"
        ),
        "integer"
    );
}
