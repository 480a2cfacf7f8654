//! The relay with real clients: simple and extended queries, named prepared statements,
//! psql, through the proxy to PostgreSQL directly and through PgBouncer.

use crate::support::raw::{self, Raw};
use crate::support::{Bouncer, PgCluster, Proxy, connect, psql, rt};

fn exercise_client(url: &str) {
    rt().block_on(async {
        let c = connect(url).await.expect("connect through the proxy");
        let rows = c.simple_query("SELECT 1 AS one, 'x' AS two").await.unwrap();
        assert!(
            matches!(&rows[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("1"))
        );
        c.batch_execute("CREATE TABLE IF NOT EXISTS t (id int primary key, v text)")
            .await
            .unwrap();
        c.execute("DELETE FROM t", &[]).await.unwrap();
        // tokio-postgres prepares named statements (s0, s1, …) for every typed query.
        let ins = c.prepare("INSERT INTO t VALUES ($1, $2)").await.unwrap();
        for i in 0..20 {
            c.execute(&ins, &[&i, &format!("v{i}")]).await.unwrap();
        }
        let sel = c.prepare("SELECT v FROM t WHERE id = $1").await.unwrap();
        for i in 0..20 {
            let row = c.query_one(&sel, &[&i]).await.unwrap();
            assert_eq!(row.get::<_, String>(0), format!("v{i}"));
        }
        let n: i64 = c
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 20);
        // An error inside extended protocol leaves the session usable.
        assert!(c.query("SELECT * FROM missing_table", &[]).await.is_err());
        let row = c.query_one(&sel, &[&3i32]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "v3");
        // Pipelined: several queries in flight at once on one connection.
        let ids: Vec<i32> = (0..10).collect();
        let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 1]> =
            ids.iter().map(|i| [i as _]).collect();
        let futs: Vec<_> = params.iter().map(|p| c.query_one(&sel, p)).collect();
        for (i, r) in futures::future::join_all(futs)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(r.unwrap().get::<_, String>(0), format!("v{i}"));
        }
        // Explicit transactions keep one server connection.
        c.batch_execute("BEGIN; INSERT INTO t VALUES (100, 'tx');")
            .await
            .unwrap();
        let n: i64 = c
            .query_one("SELECT count(*) FROM t WHERE id = 100", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
        c.batch_execute("ROLLBACK").await.unwrap();
        let n: i64 = c
            .query_one("SELECT count(*) FROM t WHERE id = 100", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
    });
}

#[test]
fn simple_and_extended_queries_to_postgres() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pool_size = 3\npooler = \"none\"");
    exercise_client(&proxy.url("app", "secret"));
    let proxy2 = Proxy::simple(&pg.url("app"), "pool_size = 3");
    exercise_client(&proxy2.url("app", "secret"));
}

#[test]
fn named_statements_through_a_transaction_pooler() {
    let pg = PgCluster::start();
    let bouncer = Bouncer::start(&pg, "transaction", 4);
    let proxy = Proxy::simple(&bouncer.url(), "pool_size = 4");
    exercise_client(&proxy.url("app", "secret"));
}

/// Clients with different session settings share one server connection behind a
/// transaction pooler, so every transaction starts with the settings being replayed.
/// The pooler unlinks its server at the ReadyForQuery of that replay: a Parse/Describe/
/// Flush pipelined behind it (as asyncpg and psycopg send) used to lose its answers and
/// the client hung.
#[test]
fn settings_replay_behind_a_pooler_loses_no_answers() {
    let pg = PgCluster::start();
    let bouncer = Bouncer::start(&pg, "transaction", 1);
    let proxy = Proxy::simple(&bouncer.url(), "pool_size = 1");
    rt().block_on(async {
        let mut clients = Vec::new();
        for zone in ["UTC", "Europe/Paris"] {
            let mut c = Raw::login(proxy.port, "app", "secret").await;
            c.send(&raw::query(&format!("SET TimeZone = '{zone}'")))
                .await;
            let (_, errors) = c.until_ready().await;
            assert!(errors.is_empty(), "{errors:?}");
            clients.push(c);
        }
        let mut parse = b"\0SELECT $1::int\0".to_vec();
        parse.extend_from_slice(&0i16.to_be_bytes());
        for i in 0..50 {
            for c in clients.iter_mut() {
                let mut batch = raw::msg(b'P', &parse);
                batch.extend(raw::msg(b'D', b"S\0"));
                batch.extend(raw::msg(b'H', b""));
                c.send(&batch).await;
                loop {
                    let (tag, _) = c
                        .read()
                        .await
                        .unwrap_or_else(|| panic!("round {i}: no answer to Parse/Describe/Flush"));
                    if tag == b'T' {
                        break;
                    }
                    assert_ne!(tag, b'E', "round {i}");
                }
                c.send(&raw::msg(b'S', b"")).await;
                let (_, errors) = c.until_ready().await;
                assert!(errors.is_empty(), "{errors:?}");
            }
        }
    });
}

#[test]
fn psql_works_through_the_proxy() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "");
    let (ok, out, err) = psql(
        proxy.port,
        "app",
        "secret",
        &["-c", "SELECT 40 + 2", "-c", "SHOW server_version"],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "42");
    assert!(lines[1].starts_with("15."), "{out}");
    let (ok, _, err) = psql(proxy.port, "app", "wrong", &["-c", "SELECT 1"]);
    assert!(!ok);
    assert!(err.contains("password authentication failed"), "{err}");
}
