//! COPY, cancel, large rows, session settings across pooled connections, which pooled
//! connection is handed out, statements that transaction pooling cannot support, and
//! cleanup after a client vanishes.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio_postgres::SimpleQueryMessage;

use crate::support::raw::{Raw, msg, query};
use crate::support::{Bouncer, PgCluster, Proxy, connect, rt};

async fn scalar(c: &tokio_postgres::Client, sql: &str) -> String {
    let msgs = c.simple_query(sql).await.unwrap();
    msgs.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
            _ => None,
        })
        .expect("one row")
}

#[test]
fn copy_in_and_out_text_and_binary() {
    let pg = PgCluster::start();
    for pooler in ["none", "transaction"] {
        let proxy = Proxy::simple(&pg.url("app"), &format!("pooler = \"{pooler}\""));
        rt().block_on(async {
            let c = connect(&proxy.url("app", "secret")).await.unwrap();
            c.batch_execute("DROP TABLE IF EXISTS cp; CREATE TABLE cp (id int, v text)")
                .await
                .unwrap();
            let sink = c.copy_in("COPY cp FROM STDIN").await.unwrap();
            futures::pin_mut!(sink);
            for chunk in 0..10 {
                let mut data = String::new();
                for i in 0..1000 {
                    data.push_str(&format!("{}\trow {}\n", chunk * 1000 + i, i));
                }
                sink.send(Bytes::from(data)).await.unwrap();
            }
            assert_eq!(sink.finish().await.unwrap(), 10_000);
            assert_eq!(scalar(&c, "SELECT count(*) FROM cp").await, "10000");
            // Binary COPY out and back in.
            let out = c
                .copy_out("COPY cp TO STDOUT (FORMAT binary)")
                .await
                .unwrap();
            let chunks: Vec<Bytes> = out.map(|r| r.unwrap()).collect().await;
            let total: usize = chunks.iter().map(|b| b.len()).sum();
            assert!(total > 100_000);
            c.batch_execute("TRUNCATE cp").await.unwrap();
            let sink = c
                .copy_in("COPY cp FROM STDIN (FORMAT binary)")
                .await
                .unwrap();
            futures::pin_mut!(sink);
            for ch in chunks {
                sink.send(ch).await.unwrap();
            }
            assert_eq!(sink.finish().await.unwrap(), 10_000);
            // A failing COPY leaves the session usable.
            let sink = c.copy_in::<_, Bytes>("COPY cp FROM STDIN").await.unwrap();
            futures::pin_mut!(sink);
            sink.send(Bytes::from_static(b"not-a-number\tx\n"))
                .await
                .unwrap();
            assert!(sink.finish().await.is_err());
            assert_eq!(scalar(&c, "SELECT count(*) FROM cp").await, "10000");
        });
    }
}

#[test]
fn cancel_reaches_the_running_query() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        let token = c.cancel_token();
        let canceller = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            token.cancel_query(tokio_postgres::NoTls).await
        });
        let started = std::time::Instant::now();
        let err = c.simple_query("SELECT pg_sleep(20)").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
        canceller.await.unwrap().unwrap();
        assert_eq!(scalar(&c, "SELECT 1").await, "1");
    });
    let counted = crate::support::cluster::wait_until(Duration::from_secs(5), || {
        proxy
            .metrics()
            .contains("switchyard_cancel_requests_total{outcome=\"sent\"} 1")
    });
    assert!(counted, "{}", proxy.metrics());
}

#[test]
fn large_rows_pass_through() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        let big = "x".repeat(20 << 20);
        c.batch_execute("CREATE TABLE big (v text)").await.unwrap();
        c.execute("INSERT INTO big VALUES ($1)", &[&big])
            .await
            .unwrap();
        let row = c.query_one("SELECT v FROM big", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0).len(), big.len());
        let n: i64 = c
            .query_one("SELECT count(*) FROM generate_series(1, 200000)", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 200_000);
        let rows = c
            .query(
                "SELECT g, md5(g::text) FROM generate_series(1, 50000) g",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 50_000);
    });
}

/// Startup parameters and SETs follow each client to whichever server connection it gets.
fn settings_follow_clients(proxy: &Proxy) {
    rt().block_on(async {
        let a = connect(&format!(
            "{}&application_name=alpha",
            proxy.url("app", "secret")
        ))
        .await
        .unwrap();
        let b = connect(&format!(
            "{}&application_name=beta",
            proxy.url("app", "secret")
        ))
        .await
        .unwrap();
        a.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS sa; CREATE TABLE IF NOT EXISTS sa.only_in_a (x int)",
        )
        .await
        .unwrap();
        a.batch_execute("SET search_path TO sa, public")
            .await
            .unwrap();
        b.batch_execute("SET statement_timeout = '12345ms'")
            .await
            .unwrap();
        for _ in 0..10 {
            assert_eq!(scalar(&a, "SHOW application_name").await, "alpha");
            assert_eq!(scalar(&b, "SHOW application_name").await, "beta");
            assert_eq!(scalar(&a, "SELECT count(*) FROM only_in_a").await, "0");
            assert_eq!(scalar(&a, "SHOW statement_timeout").await, "0");
            assert_eq!(scalar(&b, "SHOW statement_timeout").await, "12345ms");
            assert!(
                b.simple_query("SELECT count(*) FROM only_in_a")
                    .await
                    .is_err()
            );
        }
        // A SET inside a rolled-back transaction does not stick.
        b.batch_execute("BEGIN; SET statement_timeout = '1s'; ROLLBACK")
            .await
            .unwrap();
        assert_eq!(scalar(&b, "SHOW statement_timeout").await, "12345ms");
        b.batch_execute("BEGIN; SET statement_timeout = '2s'; COMMIT")
            .await
            .unwrap();
        assert_eq!(scalar(&b, "SHOW statement_timeout").await, "2s");
        b.batch_execute("RESET statement_timeout").await.unwrap();
        assert_eq!(scalar(&b, "SHOW statement_timeout").await, "0");
    });
}

#[test]
fn session_settings_follow_the_client() {
    let pg = PgCluster::start();
    // One server connection shared by two clients: each transaction must see its own client's settings.
    let proxy = Proxy::simple(&pg.url("app"), "pool_size = 1\npooler = \"none\"");
    settings_follow_clients(&proxy);
    let proxy = Proxy::simple(&pg.url("app"), "pool_size = 2");
    settings_follow_clients(&proxy);
}

/// Behind a transaction pooler (where no server session outlives a transaction) session
/// features are refused with 0A000 saying what to do instead.
#[test]
fn session_features_get_clear_errors() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pooler = \"transaction\"");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        for sql in [
            "LISTEN events",
            "SELECT pg_advisory_lock(42)",
            "BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "PREPARE p AS SELECT 1",
            "EXECUTE p",
        ] {
            let err = c.simple_query(sql).await.unwrap_err();
            assert_eq!(err.code().map(|c| c.code()), Some("0A000"), "{sql}: {err}");
            let msg = err
                .as_db_error()
                .map(|e| e.message().to_string())
                .unwrap_or_default();
            assert!(msg.contains("switchyard"), "{sql}: {msg}");
        }
        // Through the extended protocol too, and the session stays usable.
        let err = c
            .query("SELECT pg_try_advisory_lock($1)", &[&1i64])
            .await
            .unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("0A000"));
        assert_eq!(scalar(&c, "SELECT 7").await, "7");
        // Transaction-scoped equivalents work.
        c.batch_execute("BEGIN; SELECT pg_advisory_xact_lock(42); COMMIT")
            .await
            .unwrap();
        c.batch_execute("UNLISTEN *").await.unwrap();
        c.batch_execute("DISCARD ALL").await.unwrap();
        c.batch_execute("DEALLOCATE ALL").await.unwrap();
    });
}

#[test]
fn vanished_client_transaction_is_rolled_back() {
    let pg = PgCluster::start();
    let bouncer = Bouncer::start(&pg, "transaction", 2);
    for url in [pg.url("app"), bouncer.url()] {
        let proxy = Proxy::simple(&url, "pool_size = 1");
        rt().block_on(async {
            let a = connect(&proxy.url("app", "secret")).await.unwrap();
            a.batch_execute("CREATE TABLE IF NOT EXISTS vanish (x int)")
                .await
                .unwrap();
            a.batch_execute("BEGIN; INSERT INTO vanish VALUES (1)")
                .await
                .unwrap();
            drop(a);
            // With one server connection, the next client gets the same one, cleaned.
            let b = connect(&proxy.url("app", "secret")).await.unwrap();
            assert_eq!(scalar(&b, "SELECT count(*) FROM vanish").await, "0");
            let st: Vec<SimpleQueryMessage> = b.simple_query("SELECT 1").await.unwrap();
            assert!(!st.is_empty());
            // Mid-COPY as well: a raw client starts COPY, sends a row, and drops the socket.
            let mut raw = Raw::login(proxy.port, "app", "secret").await;
            raw.send(&query("COPY vanish FROM STDIN")).await;
            assert_eq!(raw.read().await.map(|m| m.0), Some(b'G'));
            raw.send(&msg(b'd', b"5\n")).await;
            drop(raw);
            // Mid-query too, in an explicit transaction.
            let mut raw = Raw::login(proxy.port, "app", "secret").await;
            raw.send(&query(
                "BEGIN; INSERT INTO vanish VALUES (7); SELECT pg_sleep(0.3)",
            ))
            .await;
            drop(raw);
            assert_eq!(scalar(&b, "SELECT count(*) FROM vanish").await, "0");
            b.batch_execute("DROP TABLE vanish").await.unwrap();
        });
        let (idle, busy) = proxy.pool_counts();
        assert_eq!((idle, busy), (1, 0));
    }
}

/// A server session ended under a client in a transaction: the client gets the server's
/// FATAL and is closed, as directly; the pool replaces the connection for the next one.
#[test]
fn broken_server_connection_is_replaced() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pool_size = 1");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute("BEGIN").await.unwrap();
        let pid = scalar(&c, "SELECT pg_backend_pid()").await;
        pg.psql(&format!("SELECT pg_terminate_backend({pid})"));
        let err = c.simple_query("SELECT 1").await.unwrap_err();
        assert!(
            err.code().is_none_or(|c| c.code() == "57P01"),
            "the server's own error, or the closed connection: {err}"
        );
        assert!(c.is_closed() || c.simple_query("SELECT 1").await.is_err());
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        assert_eq!(scalar(&c, "SELECT 1").await, "1");
        let pid2 = scalar(&c, "SELECT pg_backend_pid()").await;
        assert_ne!(pid, pid2);
    });
}

/// The pool hands out the connection returned last (as PgBouncer does), so a lightly
/// loaded pool keeps using the same warm server processes instead of cycling through all.
#[test]
fn the_connection_returned_last_is_handed_out_first() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pool_size = 3");
    rt().block_on(async {
        let mut clients = Vec::new();
        let mut pids = Vec::new();
        for _ in 0..3 {
            let c = connect(&proxy.url("app", "secret")).await.unwrap();
            c.batch_execute("BEGIN").await.unwrap();
            pids.push(scalar(&c, "SELECT pg_backend_pid()").await);
            clients.push(c);
        }
        for c in &clients {
            c.batch_execute("COMMIT").await.unwrap();
        }
        let distinct: std::collections::BTreeSet<_> = pids.iter().collect();
        assert_eq!(
            distinct.len(),
            3,
            "three transactions held three servers: {pids:?}"
        );
        for _ in 0..4 {
            let pid = scalar(&clients[0], "SELECT pg_backend_pid()").await;
            assert_eq!(
                pid, pids[2],
                "expected the server returned last; pids were {pids:?}"
            );
        }
    });
}

/// An unnamed Parse/Bind/Execute/Sync, as most drivers send a query.
fn unnamed_execute(sql: &str) -> Vec<u8> {
    let mut parse = vec![0u8];
    parse.extend_from_slice(sql.as_bytes());
    parse.extend_from_slice(&[0, 0, 0]);
    let mut out = msg(b'P', &parse);
    out.extend(msg(b'B', &[0; 8]));
    out.extend(msg(b'E', &[0, 0, 0, 0, 0]));
    out.extend(msg(b'S', &[]));
    out
}

/// The tags up to ReadyForQuery, without ParameterStatus (sent when a SET changes a
/// reported setting), after checking there was no error.
async fn completed(r: &mut Raw) -> String {
    let (tags, errors) = r.until_ready().await;
    assert!(errors.is_empty(), "{errors:?}");
    tags.replace('S', "")
}

#[test]
fn repeated_unnamed_statements_keep_their_effects_and_refusals() {
    let pg = PgCluster::start();
    // No pins: a session advisory lock is refused (with pins left, it would pin the
    // client instead).
    let proxy = Proxy::simple(
        &pg.url("app"),
        "pool_size = 2\npooler = \"none\"\nmax_pinned = 0",
    );
    rt().block_on(async {
        let mut a = Raw::login(proxy.port, "app", "secret").await;
        // The same unnamed text twice (the second skips the classifier), then a named SET
        // (which leaves the unnamed statement alone), then the unnamed text once more: a
        // repeat again, whose effect must count.
        let set_a = unnamed_execute("SET application_name TO 'repeat_a'");
        for _ in 0..2 {
            a.send(&set_a).await;
            assert_eq!(completed(&mut a).await, "12CZI");
        }
        let mut named = msg(b'P', b"s1\0SET application_name TO 'named'\0\0\0");
        named.extend(msg(b'B', b"\0s1\0\0\0\0\0\0\0"));
        named.extend(msg(b'E', &[0, 0, 0, 0, 0]));
        named.extend(msg(b'S', &[]));
        a.send(&named).await;
        assert_eq!(completed(&mut a).await, "12CZI");
        a.send(&set_a).await;
        assert_eq!(completed(&mut a).await, "12CZI");
        // Another client holds the server `a` used, so `a` gets the other one, which
        // must be brought to `a`'s settings.
        let b = connect(&proxy.url("app", "secret")).await.unwrap();
        b.batch_execute("BEGIN").await.unwrap();
        a.send(&query("SHOW application_name")).await;
        let mut shown = None;
        while let Some((tag, body)) = a.read().await {
            if tag == b'D' {
                shown = Some(String::from_utf8_lossy(&body[6..]).into_owned());
            }
            if tag == b'Z' {
                break;
            }
        }
        assert_eq!(shown.as_deref(), Some("repeat_a"));
        b.batch_execute("COMMIT").await.unwrap();
        // A refused unnamed text is refused every time, and the session goes on.
        for _ in 0..2 {
            a.send(&unnamed_execute("SELECT pg_advisory_lock(7)")).await;
            let (tags, errors) = a.until_ready().await;
            assert_eq!(tags, "EZI");
            assert!(errors[0].contains("0A000"), "{errors:?}");
        }
        a.send(&set_a).await;
        assert_eq!(completed(&mut a).await, "12CZI");
    });
}
