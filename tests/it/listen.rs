//! LISTEN/NOTIFY served from the proxy's own listening connections: a listening client
//! holds no server connection, gets what PostgreSQL would send it (notifications while it
//! idles, its own before its ReadyForQuery with its own process id, none after UNLISTEN or
//! a rolled-back LISTEN), in both protocols, keeps listening across a switch and across
//! the loss of the listening connection.

use std::time::Duration;

use serde_json::json;
use switchyard::testing::{Target, call};

use crate::support::cluster::wait_until;
use crate::support::faulty::Faulty;
use crate::support::raw::{Raw, bind, execute, msg, note, parse, query, sync};
use crate::support::{PgCluster, Proxy, rt};

async fn ok(c: &mut Raw, bytes: &[u8]) {
    c.send(bytes).await;
    let (_, errors) = c.until_ready().await;
    assert!(errors.is_empty(), "{errors:?}");
}

/// Runs `bytes` and reads through ReadyForQuery: the tags seen (notifications as 'A') and
/// the notifications' (payload, sender pid).
async fn with_notes(c: &mut Raw, bytes: &[u8]) -> (String, Vec<(String, u32)>) {
    c.send(bytes).await;
    let mut tags = String::new();
    let mut notes = Vec::new();
    while let Some((tag, body)) = c.read().await {
        tags.push(tag as char);
        match tag {
            b'A' => notes.push(note(&body)),
            b'E' => panic!("{}", String::from_utf8_lossy(&body)),
            b'Z' => break,
            _ => {}
        }
    }
    (tags, notes)
}

fn unnamed(sql: &str) -> Vec<u8> {
    let mut m = parse("", sql);
    m.extend(bind(""));
    m.extend(execute());
    m.extend(sync());
    m
}

const QUIET: Duration = Duration::from_millis(400);
const SOON: Duration = Duration::from_secs(3);

#[test]
fn listeners_get_what_postgres_sends_them_without_holding_a_server_connection() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pooler = \"none\"\npool_size = 2");
    rt().block_on(async {
        for (port, via) in [(pg.port, "direct"), (proxy.port, "switchyard")] {
            let mut a = Raw::login(port, "app", "secret").await;
            let mut b = Raw::login(port, "app", "secret").await;
            ok(&mut a, &query("listen jobs")).await;
            ok(&mut b, &query("notify jobs, 'one'")).await;
            let got = a.notification(SOON).await;
            assert_eq!(got, Some(("one".to_string(), b.pid)), "{via}");

            // The extended protocol, and pg_notify.
            ok(&mut a, &unnamed("LISTEN \"Other\"")).await;
            ok(&mut b, &query("select pg_notify('Other', 'two')")).await;
            assert_eq!(
                a.notification(SOON).await.map(|n| n.0),
                Some("two".into()),
                "{via}"
            );

            // Under a name, as asyncpg sends every statement; then closed.
            let mut named = parse("l1", "LISTEN named");
            named.extend(bind("l1"));
            named.extend(execute());
            named.extend(sync());
            ok(&mut a, &named).await;
            ok(&mut b, &query("notify named, 'three'")).await;
            assert_eq!(
                a.notification(SOON).await.map(|n| n.0),
                Some("three".into()),
                "{via}"
            );
            let mut close = msg(b'C', b"Sl1\0");
            close.extend(sync());
            ok(&mut a, &close).await;

            // Its own notification comes before its ReadyForQuery, with its own pid.
            let (tags, notes) = with_notes(&mut a, &query("notify jobs, 'me'")).await;
            assert_eq!(tags, "CAZ", "{via}");
            assert_eq!(notes, vec![("me".to_string(), a.pid)], "{via}");

            // UNLISTEN, and a LISTEN rolled back, leave nothing; a committed one counts.
            ok(&mut a, &query("unlisten jobs")).await;
            for sql in ["begin", "listen rolled", "rollback"] {
                ok(&mut a, &query(sql)).await;
            }
            ok(&mut a, &query("begin")).await;
            ok(&mut a, &unnamed("listen kept")).await;
            ok(&mut a, &query("commit")).await;
            ok(
                &mut b,
                &query("notify jobs, 'x'; notify rolled, 'y'; notify kept, 'z'"),
            )
            .await;
            assert_eq!(
                a.notification(SOON).await.map(|n| n.0),
                Some("z".into()),
                "{via}"
            );
            assert_eq!(a.notification(QUIET).await, None, "{via}");

            if port == proxy.port {
                assert!(
                    wait_until(Duration::from_secs(2), || proxy.pool_counts().1 == 0),
                    "no server connection held"
                );
                let m = proxy.metrics();
                assert!(
                    m.contains("switchyard_pinned_clients{backend=\"main\"} 0"),
                    "{m}"
                );
                assert!(m.contains("switchyard_listening_clients 1"), "{m}");
            }
            ok(&mut a, &query("unlisten *")).await;
            ok(&mut b, &query("notify kept, 'gone'")).await;
            assert_eq!(a.notification(QUIET).await, None, "{via}");
        }
    });
}

/// More listeners than server connections, each notified.
#[test]
fn many_listeners_share_one_listening_connection() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pooler = \"none\"\npool_size = 2");
    rt().block_on(async {
        let mut listeners = Vec::new();
        for _ in 0..12 {
            let mut c = Raw::login(proxy.port, "app", "secret").await;
            ok(&mut c, &query("listen fanout")).await;
            listeners.push(c);
        }
        let mut sender = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut sender, &query("notify fanout, 'all'")).await;
        for c in &mut listeners {
            assert_eq!(c.notification(SOON).await.map(|n| n.0), Some("all".into()));
        }
        let listening = pg.psql_db(
            "app",
            "select count(*) from pg_stat_activity where query like 'LISTEN%'",
        );
        assert_eq!(listening.trim(), "1", "one listening connection");
    });
    assert!(wait_until(Duration::from_secs(5), || proxy
        .metrics()
        .contains("switchyard_listening_clients 0")));
}

/// A switch to another backend: the listener keeps listening there, and the notification
/// sent after the switch (on the new backend) reaches it.
#[test]
fn listeners_follow_a_switch() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let proxy = Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.a]\nurl = \"{}\"\npooler = \"none\"\n\
         [backends.b]\nurl = \"{}\"\npooler = \"none\"\n[routing]\nactive = \"a\"\n",
        a.url("app"),
        b.url("app")
    ));
    let admin = Target {
        base: format!("http://127.0.0.1:{}", proxy.admin_port),
        token: None,
    };
    rt().block_on(async {
        let mut listener = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut listener, &query("listen news")).await;
        let mut sender = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut sender, &query("notify news, 'on a'")).await;
        assert_eq!(
            listener.notification(SOON).await.map(|n| n.0),
            Some("on a".into())
        );
        let (status, body) = call(
            &admin,
            hyper::Method::POST,
            "/cutover",
            Some(json!({ "to": "b" })),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        ok(&mut sender, &query("notify news, 'on b'")).await;
        assert_eq!(
            listener.notification(SOON).await.map(|n| n.0),
            Some("on b".into())
        );
        let port = listener.scalar("select current_setting('port')").await;
        assert_eq!(port, Some(b.port.to_string()));
    });
}

/// The listening connection breaks: it is made again (with its LISTENs) and the client,
/// which never noticed, gets the notifications sent after that.
#[test]
fn a_lost_listening_connection_is_made_again() {
    let pg = PgCluster::start();
    let faulty = Faulty::start(pg.port);
    let proxy = Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.main]\nurl = \"postgres://app:secret@127.0.0.1:{}/app?sslmode=disable\"\n\
         pooler = \"none\"\npool_size = 2\n",
        faulty.port
    ));
    rt().block_on(async {
        let mut listener = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut listener, &query("listen again")).await;
        faulty.reset_all();
        assert!(wait_until(Duration::from_secs(10), || proxy
            .metrics()
            .contains(
                "switchyard_listen_connection_lost_total{backend=\"main\"} 1"
            )));
        let relistened = || {
            pg.psql_db(
                "app",
                "select count(*) from pg_stat_activity where query like 'LISTEN%'",
            )
            .trim()
                == "1"
        };
        assert!(wait_until(Duration::from_secs(10), relistened));
        let mut sender = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut sender, &query("notify again, 'back'")).await;
        assert_eq!(
            listener.notification(SOON).await.map(|n| n.0),
            Some("back".into())
        );
    });
}

/// A switch to a backend the proxy cannot listen on (here one served as a transaction
/// pooler): the listener is told, with 57P01 naming the backend, and closed, rather than
/// left waiting for notifications that will never come.
#[test]
fn listeners_are_ended_by_a_switch_to_a_transaction_pooler() {
    let (a, b) = (PgCluster::start(), PgCluster::start());
    let proxy = Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.a]\nurl = \"{}\"\npooler = \"none\"\n\
         [backends.b]\nurl = \"{}\"\npooler = \"transaction\"\n[routing]\nactive = \"a\"\n",
        a.url("app"),
        b.url("app")
    ));
    let admin = Target {
        base: format!("http://127.0.0.1:{}", proxy.admin_port),
        token: None,
    };
    rt().block_on(async {
        let mut listener = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut listener, &query("listen news")).await;
        let (status, body) = call(
            &admin,
            hyper::Method::POST,
            "/cutover",
            Some(json!({ "to": "b" })),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let errors = listener.errors_until_closed().await;
        assert!(
            errors.len() == 1 && errors[0].contains("C57P01\0") && errors[0].contains("\"b\""),
            "{errors:?}"
        );
        let mut c = Raw::login(proxy.port, "app", "secret").await;
        c.send(&query("listen news")).await;
        let (_, errors) = c.until_ready().await;
        assert!(
            errors.len() == 1 && errors[0].contains("C0A000\0"),
            "{errors:?}"
        );
    });
}
