//! A server connection the server closed while it sat in the pool, whose close had not
//! reached the proxy when a client took it (the fault relay holds the server's FATAL back,
//! as a slow network would): the client's request goes to a fresh connection and runs
//! exactly once. A FATAL that is the answer to the client's own request (it ends its own
//! session) is not retried.

use std::time::Duration;

use crate::support::cluster::wait_until;
use crate::support::faulty::{Fault, Faulty};
use crate::support::raw::{Raw, query};
use crate::support::{PgCluster, Proxy, connect, rt};

fn through(faulty: &Faulty, pooler: &str) -> Proxy {
    Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.main]\nurl = \"postgres://app:secret@127.0.0.1:{}/app?sslmode=disable\"\n\
         pooler = \"{pooler}\"\npool_size = 4\n",
        faulty.port
    ))
}

/// Ends the server session `pid` while the relay holds its FATAL back, and waits until the
/// server has let it go.
fn kill_quietly(pg: &PgCluster, faulty: &Faulty, pid: i32) {
    faulty.set(Fault::Stall);
    let killed = pg.psql(&format!("select pg_terminate_backend({pid})"));
    assert_eq!(killed.trim(), "t");
    assert!(wait_until(Duration::from_secs(5), || {
        pg.psql(&format!(
            "select count(*) from pg_stat_activity where pid = {pid}"
        ))
        .trim()
            == "0"
    }));
}

fn retried(proxy: &Proxy) -> String {
    proxy
        .metrics()
        .lines()
        .find(|l| l.starts_with("switchyard_requests_retried_total{backend=\"main\"}"))
        .unwrap_or("none")
        .to_string()
}

/// Runs `work` while the relay holds the FATAL, then lets it through.
async fn release_after<T>(faulty: &Faulty, work: impl std::future::Future<Output = T>) -> T {
    let release = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        faulty.set(Fault::Pass);
    };
    let (out, ()) = tokio::join!(work, release);
    out
}

/// Through the simple protocol: a named statement would pin the client to its connection.
async fn server_pid(c: &tokio_postgres::Client) -> i32 {
    let rows = c.simple_query("select pg_backend_pid()").await.unwrap();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
            _ => None,
        })
        .expect("a row")
}

#[test]
fn a_connection_closed_in_the_pool_is_replaced_and_the_write_runs_once() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "create table retry_t (v int); grant all on retry_t to app",
    );
    for pooler in ["none", "transaction"] {
        let faulty = Faulty::start(pg.port);
        let proxy = through(&faulty, pooler);
        rt().block_on(async {
            let c = connect(&proxy.url("app", "secret")).await.unwrap();
            let pid = server_pid(&c).await;
            tokio::time::sleep(Duration::from_millis(1200)).await;
            kill_quietly(&pg, &faulty, pid);
            release_after(&faulty, c.batch_execute("insert into retry_t values (1)"))
                .await
                .unwrap_or_else(|e| panic!("{pooler}: {e:?}"));
            assert_ne!(server_pid(&c).await, pid, "{pooler}");
        });
        assert_eq!(
            retried(&proxy),
            "switchyard_requests_retried_total{backend=\"main\"} 1",
            "{pooler}"
        );
    }
    assert_eq!(
        pg.psql_db("app", "select count(*) from retry_t").trim(),
        "2"
    );
}

/// The extended protocol, with a named statement made on the dead connection (which pins
/// the client there on a direct server): the statement is made once, on the fresh
/// connection, and is there for the next use.
#[test]
fn a_named_statement_made_on_a_closed_connection_is_made_on_the_fresh_one() {
    let pg = PgCluster::start();
    pg.psql_db(
        "app",
        "create table retry_named (v int); grant all on retry_named to app",
    );
    let faulty = Faulty::start(pg.port);
    let proxy = through(&faulty, "none");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        let pid = server_pid(&c).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        kill_quietly(&pg, &faulty, pid);
        let stmt = release_after(&faulty, c.prepare("insert into retry_named values ($1)"))
            .await
            .expect("prepared on a fresh connection");
        for v in [1i32, 2] {
            c.execute(&stmt, &[&v]).await.unwrap();
        }
        let own: i64 = c
            .query_one(
                "select count(*) from pg_prepared_statements where statement like 'insert%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(own, 1, "the client's one statement, made once");
    });
    assert_eq!(
        pg.psql_db(
            "app",
            "select string_agg(v::text, ',' order by v) from retry_named"
        )
        .trim(),
        "1,2"
    );
    assert!(retried(&proxy).ends_with(" 1"), "{}", retried(&proxy));
}

/// A FATAL that answers the client's own request (here it ends its own session) comes
/// after the proxy's probe is answered: it reaches the client as the server sent it, and
/// the request is not run again.
#[test]
fn a_fatal_caused_by_the_request_itself_is_not_retried() {
    let pg = PgCluster::start();
    let faulty = Faulty::start(pg.port);
    let proxy = through(&faulty, "none");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.simple_query("select 1").await.unwrap();
        drop(c);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mut raw = Raw::login(proxy.port, "app", "secret").await;
        raw.send(&query("select pg_terminate_backend(pg_backend_pid())"))
            .await;
        let errors = raw.errors_until_closed().await;
        assert!(
            errors.len() == 1 && errors[0].contains("SFATAL\0") && errors[0].contains("C57P01\0"),
            "{errors:?}"
        );
    });
    assert_eq!(retried(&proxy), "none");
}
