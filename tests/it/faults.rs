//! Backends that misbehave, through the fault-injecting relay: a reset in the middle of a
//! query, a stalled server and the query timeout, a client idle in a transaction, a host
//! that does not resolve, an exhausted pool, a server that ends the session in use, a
//! COMMIT whose answer is lost. Each time the client gets a clear error (the server's own
//! when it sent one), nothing leaks, and the next transaction works.

use std::time::{Duration, Instant};

use crate::support::cluster::wait_until;
use crate::support::faulty::{Fault, Faulty};
use crate::support::raw::{Raw, query};
use crate::support::{PgCluster, Proxy, connect, rt};

fn through(faulty: &Faulty, extra_proxy: &str, extra_backend: &str) -> Proxy {
    Proxy::start(&format!(
        "[proxy]\n{extra_proxy}\n[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.main]\nurl = \"postgres://app:secret@127.0.0.1:{}/app?sslmode=disable\"\n\
         pooler = \"none\"\npool_size = 4\n{extra_backend}\n",
        faulty.port
    ))
}

fn db_error(e: &tokio_postgres::Error) -> (String, String) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("an ErrorResponse, got {e:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

#[test]
fn backend_reset_mid_query_is_an_error_then_the_next_transaction_works() {
    let pg = PgCluster::start();
    let faulty = Faulty::start(pg.port);
    let proxy = through(&faulty, "", "");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.simple_query("SELECT 1").await.unwrap();
        let slow = c.simple_query("SELECT pg_sleep(3)");
        let reset = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            faulty.reset_all();
        };
        let (res, ()) = tokio::join!(slow, reset);
        let (code, msg) = db_error(&res.unwrap_err());
        assert_eq!(code, "08006", "{msg}");
        assert!(msg.contains("\"main\""), "{msg}");
        c.simple_query("SELECT 2")
            .await
            .expect("the next query works");
    });
    assert!(wait_until(Duration::from_secs(5), || proxy.pool_counts().1 == 0));
}

#[test]
fn stalled_backend_hits_the_query_timeout_and_is_cancelled() {
    let pg = PgCluster::start();
    let faulty = Faulty::start(pg.port);
    let proxy = through(&faulty, "query_timeout = \"700ms\"", "");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.simple_query("SELECT 1").await.unwrap();
        faulty.set(Fault::Stall);
        let started = Instant::now();
        let err = c.simple_query("SELECT 42").await.unwrap_err();
        let (code, msg) = db_error(&err);
        assert_eq!(code, "57014", "{msg}");
        assert!(msg.contains("query_timeout"), "{msg}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        faulty.set(Fault::Pass);
        c.simple_query("SELECT 3")
            .await
            .expect("the next query works");
        // A real long query is cancelled on the server, not just abandoned.
        let err = c.simple_query("SELECT pg_sleep(30)").await.unwrap_err();
        assert_eq!(db_error(&err).0, "57014");
    });
    assert!(
        wait_until(Duration::from_secs(5), || {
            pg
            .psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'")
            .trim()
            == "0"
        }),
        "the timed-out query still runs on the server"
    );
    let m = proxy.metrics();
    assert!(
        m.contains("switchyard_errors_total{kind=\"query_timeout\"} 2"),
        "{m}"
    );
}

#[test]
fn idle_in_transaction_timeout_closes_the_client_and_rolls_back() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&format!(
        "[proxy]\nidle_transaction_timeout = \"400ms\"\n[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.main]\nurl = \"{}\"\npool_size = 2\n",
        pg.url("app")
    ));
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute("CREATE TABLE idle_t (v int)")
            .await
            .unwrap();
        c.batch_execute("BEGIN; INSERT INTO idle_t VALUES (1)")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let err = c.batch_execute("COMMIT").await.unwrap_err();
        assert!(
            err.to_string().contains("idle_transaction_timeout") || c.is_closed(),
            "{err:?}"
        );
        let c2 = connect(&proxy.url("app", "secret")).await.unwrap();
        let n: i64 = c2
            .query_one("SELECT count(*) FROM idle_t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "the idle transaction was rolled back");
    });
    assert!(wait_until(Duration::from_secs(5), || proxy.pool_counts().1 == 0));
}

#[test]
fn unresolvable_backend_host_is_named_in_the_error() {
    let proxy = Proxy::start(
        "[proxy]\npool_wait_timeout = \"2s\"\n[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.main]\nurl = \"postgres://app:secret@no-such-host.invalid:5432/app\"\n\
         sslmode = \"disable\"\nconnect_timeout = \"1s\"\n",
    );
    rt().block_on(async {
        let started = Instant::now();
        let err = connect(&proxy.url("app", "secret")).await.unwrap_err();
        let (code, msg) = db_error(&err);
        assert_eq!(code, "08006", "{msg}");
        assert!(msg.contains("main"), "{msg}");
        assert!(started.elapsed() < Duration::from_secs(10));
    });
    let m = proxy.metrics();
    assert!(
        m.contains("switchyard_backend_connect_failures_total{backend=\"main\""),
        "{m}"
    );
}

#[test]
fn exhausted_pool_queues_then_errors_and_recovers() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&format!(
        "[proxy]\npool_wait_timeout = \"500ms\"\n[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.main]\nurl = \"{}\"\npool_size = 1\n",
        pg.url("app")
    ));
    rt().block_on(async {
        let holder = connect(&proxy.url("app", "secret")).await.unwrap();
        let waiter = connect(&proxy.url("app", "secret")).await.unwrap();
        holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
        // Queued behind the holder, it gets its server connection when the holder commits.
        let queued = waiter.simple_query("SELECT 'queued'");
        let release = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            holder.batch_execute("COMMIT").await.unwrap();
        };
        let (res, ()) = tokio::join!(queued, release);
        res.expect("a short wait is queued, not refused");
        // Held longer than pool_wait_timeout: a clear error, no hang.
        holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
        let started = Instant::now();
        let err = waiter.simple_query("SELECT 'late'").await.unwrap_err();
        let (code, msg) = db_error(&err);
        assert_eq!(code, "08006", "{msg}");
        assert!(started.elapsed() < Duration::from_secs(3));
        holder.batch_execute("COMMIT").await.unwrap();
        waiter
            .simple_query("SELECT 'again'")
            .await
            .expect("works once the pool frees up");
    });
    assert!(wait_until(Duration::from_secs(5), || proxy.pool_counts().1 == 0));
    assert_eq!(
        proxy.shared.router.active().pool.state().connections,
        1,
        "no connection leaked beyond the pool size"
    );
}

/// The server ends the session a client is using (`pg_terminate_backend`, from the client
/// itself or from outside while it idles in a transaction): the client gets the server's
/// own FATAL 57P01 and its connection closes, as it does connected directly.
#[test]
fn server_fatal_reaches_the_client_which_is_then_closed() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "");
    rt().block_on(async {
        for (port, via) in [(pg.port, "direct"), (proxy.port, "switchyard")] {
            let mut c = Raw::login(port, "app", "secret").await;
            c.send(&query("select pg_terminate_backend(pg_backend_pid())"))
                .await;
            let errors = c.errors_until_closed().await;
            assert_eq!(errors.len(), 1, "{via}: {errors:?}");
            assert!(
                errors[0].contains("SFATAL\0") && errors[0].contains("C57P01\0"),
                "{via}: {errors:?}"
            );

            let mut c = Raw::login(port, "app", "secret").await;
            c.send(&query("begin; select 1")).await;
            c.until_ready().await;
            let killed = pg.psql(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity \
                 where usename = 'app' and state = 'idle in transaction'",
            );
            assert_eq!(killed.trim(), "1", "{via}");
            let errors = c.errors_until_closed().await;
            assert!(
                errors.len() == 1 && errors[0].contains("C57P01\0"),
                "{via}: {errors:?}"
            );
        }
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.simple_query("select 1").await.expect("others go on");
    });
    let m = proxy.metrics();
    assert!(
        m.contains("switchyard_errors_total{kind=\"server_lost\"} 2"),
        "{m}"
    );
}

/// The server connection dies under two pipelined requests: each gets its own error and
/// ReadyForQuery, as a server that refused both would send. (One error followed by two
/// ReadyForQuery shifted every later answer by one: tokio-postgres saw "unexpected message".)
#[test]
fn each_pipelined_request_fails_alone_when_the_server_is_lost() {
    let pg = PgCluster::start();
    let faulty = Faulty::start(pg.port);
    let proxy = through(&faulty, "", "");
    rt().block_on(async {
        let mut c = Raw::login(proxy.port, "app", "secret").await;
        let mut both = query("select pg_sleep(5)");
        both.extend(query("select 2"));
        c.send(&both).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        faulty.reset_all();
        let mut seen = Vec::new();
        while seen.iter().filter(|t| **t == b'Z').count() < 2 {
            let (tag, _) = c.read().await.expect("answers before the client is closed");
            seen.push(tag);
        }
        assert_eq!(seen, b"EZEZ", "{:?}", String::from_utf8_lossy(&seen));
        assert_eq!(c.scalar("select 3").await.as_deref(), Some("3"));
    });
}

/// The server connection dies while a COMMIT is outstanding (here the COMMIT runs a slow
/// deferred trigger, and the network breaks meanwhile). The server commits anyway; the
/// client is told the outcome is unknown (08006), never that it was rolled back: an app
/// that retries on "rolled back" would write twice.
#[test]
fn a_commit_whose_answer_is_lost_has_an_unknown_outcome() {
    let pg = PgCluster::start();
    let faulty = Faulty::start(pg.port);
    let proxy = through(&faulty, "", "");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(
            "create table lost_commit (v int);
             create function slow_commit() returns trigger language plpgsql as
               $$ begin perform pg_sleep(1.5); return null; end $$;
             create constraint trigger slow after insert on lost_commit
               deferrable initially deferred for each row execute function slow_commit();",
        )
        .await
        .unwrap();
        c.batch_execute("begin; insert into lost_commit values (1)")
            .await
            .unwrap();
        let commit = c.batch_execute("commit");
        let cut = async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            faulty.reset_all();
        };
        let (res, ()) = tokio::join!(commit, cut);
        let err = res.unwrap_err();
        let db = err.as_db_error().expect("an ErrorResponse");
        assert_eq!(db.code().code(), "08006");
        let detail = db.detail().unwrap_or_default();
        assert!(detail.contains("unknown"), "{detail}");
        assert!(!detail.contains("rolled back"), "{detail}");
    });
    // The server did commit.
    assert!(wait_until(Duration::from_secs(5), || {
        pg.psql_db("app", "select count(*) from lost_commit").trim() == "1"
    }));
}
