//! Bad input from clients: each gets the error PostgreSQL would give (or a clean close),
//! quickly, and no other client notices.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::raw::{Raw, msg, query, startup};
use crate::support::{PgCluster, Proxy, connect, rt};

/// Reads everything until the proxy closes the connection (or 5 s pass).
async fn read_to_close(s: &mut tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn bystander_ok(port: u16) {
    let c = connect(&format!(
        "postgres://app:secret@127.0.0.1:{port}/app?sslmode=disable"
    ))
    .await
    .unwrap();
    let n: i32 = c.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);
}

#[test]
fn garbage_and_lies_before_login() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "");
    rt().block_on(async {
        // What is not the protocol at all (an HTTP request, a 1 GB length, a Terminate
        // before any startup packet) is closed without an answer, at once, as PostgreSQL
        // does: some drivers raise an unexpected ErrorResponse as an unhandled error.
        let garbage: [&[u8]; 3] = [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            &0x4000_0000i32.to_be_bytes(),
            b"X\0\0\0\x04",
        ];
        for bytes in garbage {
            for port in [pg.port, proxy.port] {
                let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let started = Instant::now();
                s.write_all(bytes).await.unwrap();
                let reply = read_to_close(&mut s).await;
                assert_eq!(reply, "", "port {port} answered {bytes:?}");
                assert!(started.elapsed() < Duration::from_secs(2));
            }
        }
        // A protocol version nobody speaks.
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
            .await
            .unwrap();
        s.write_all(&[0, 0, 0, 8, 0, 2, 0, 0]).await.unwrap();
        let reply = read_to_close(&mut s).await;
        assert!(
            reply.contains("0A000") && reply.contains("unsupported frontend protocol"),
            "{reply:?}"
        );
        // No user name.
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
            .await
            .unwrap();
        s.write_all(&startup(&[("database", "app")])).await.unwrap();
        let reply = read_to_close(&mut s).await;
        assert!(reply.contains("28000"), "{reply:?}");
        // Replication connections are refused.
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
            .await
            .unwrap();
        s.write_all(&startup(&[("user", "app"), ("replication", "database")]))
            .await
            .unwrap();
        let reply = read_to_close(&mut s).await;
        assert!(reply.contains("replication"), "{reply:?}");
        bystander_ok(proxy.port).await;
    });
}

/// A client that starts logging in and goes silent is closed at `proxy.login_timeout`
/// (PostgreSQL's authentication_timeout), without an answer, and counted.
#[test]
fn silent_clients_are_closed_at_the_login_deadline() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&format!(
        "[proxy]\nlogin_timeout = \"1s\"\n[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.main]\nurl = \"{}\"\n",
        pg.url("app")
    ));
    rt().block_on(async {
        // Connected, nothing sent.
        let mut quiet = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
            .await
            .unwrap();
        // Startup sent, the SASL request received, then silence.
        let mut stuck = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
            .await
            .unwrap();
        stuck
            .write_all(&startup(&[("user", "app"), ("database", "app")]))
            .await
            .unwrap();
        let mut first = [0u8; 1];
        stuck.read_exact(&mut first).await.unwrap();
        assert_eq!(first[0], b'R', "an authentication request");
        let started = Instant::now();
        let (a, b) = tokio::join!(read_to_close(&mut quiet), read_to_close(&mut stuck));
        let waited = started.elapsed();
        assert_eq!(a, "");
        assert!(!b.contains('E'), "closed without an error: {b:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        let metrics = proxy.metrics();
        assert!(
            metrics.contains("switchyard_errors_total{kind=\"login_timeout\"} 2"),
            "{metrics}"
        );
        bystander_ok(proxy.port).await;
    });
}

#[test]
fn bad_messages_after_login() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "");
    rt().block_on(async {
        let bystander = connect(&proxy.url("app", "secret")).await.unwrap();
        bystander.batch_execute("BEGIN").await.unwrap();

        // Unknown message type: FATAL protocol violation, connection closed.
        let mut r = Raw::login(proxy.port, "app", "secret").await;
        r.send(&msg(b'Y', b"")).await;
        let (tags, errors) = r.until_ready().await;
        assert!(
            tags.starts_with('E') && errors[0].contains("08P01"),
            "{tags} {errors:?}"
        );
        assert!(r.read().await.is_none());

        // A message whose length field lies (too large): refused before it is read.
        let mut r = Raw::login(proxy.port, "app", "secret").await;
        let started = Instant::now();
        r.send(&[b'Q', 0x40, 0, 0, 0]).await;
        let (_, errors) = r.until_ready().await;
        assert!(
            errors[0].contains("54000") && errors[0].contains("exceeds"),
            "{errors:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));

        // Negative length.
        let mut r = Raw::login(proxy.port, "app", "secret").await;
        r.send(&[b'Q', 0xff, 0xff, 0xff, 0xf0]).await;
        let (_, errors) = r.until_ready().await;
        assert!(errors[0].contains("08P01"), "{errors:?}");

        // A malformed Parse (parameter count does not match the body).
        let mut r = Raw::login(proxy.port, "app", "secret").await;
        r.send(&msg(b'P', b"s\0select 1\0\0\x05")).await;
        let (_, errors) = r.until_ready().await;
        assert!(
            errors[0].contains("08P01") && errors[0].contains("Parse"),
            "{errors:?}"
        );

        // Messages in the wrong state: COPY data outside COPY is ignored, a Bind to an
        // unknown statement gets the server's error, and the session goes on.
        let mut r = Raw::login(proxy.port, "app", "secret").await;
        r.send(&msg(b'd', b"stray")).await;
        r.send(&msg(b'c', b"")).await;
        let mut batch = msg(b'B', b"\0nope\0\0\0\0\0\0\0");
        batch.extend(msg(b'E', b"\0\0\0\0\0"));
        batch.extend(msg(b'S', b""));
        r.send(&batch).await;
        let (tags, errors) = r.until_ready().await;
        assert_eq!(tags, "EZI", "{errors:?}");
        assert!(errors[0].contains("26000"), "{errors:?}");
        r.send(&query("SELECT 1")).await;
        let (tags, _) = r.until_ready().await;
        assert_eq!(tags, "TDCZI");

        // A duplicate statement name gets 42P05, like PostgreSQL.
        let mut batch = msg(b'P', b"dup\0select 1\0\0\0");
        batch.extend(msg(b'P', b"dup\0select 2\0\0\0"));
        batch.extend(msg(b'S', b""));
        r.send(&batch).await;
        let (tags, errors) = r.until_ready().await;
        assert_eq!(tags, "1EZI", "{errors:?}");
        assert!(errors[0].contains("42P05"), "{errors:?}");

        // The other client's transaction never noticed.
        let n: i64 = bystander
            .query_one("SELECT 5::bigint", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 5);
        bystander.batch_execute("COMMIT").await.unwrap();
    });
}

#[test]
fn unreachable_backend_gives_a_clear_error() {
    let port = crate::support::cluster::free_port();
    let proxy = Proxy::start(&format!(
        "[proxy]\npool_wait_timeout = \"1s\"\n[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.main]\nurl = \"postgres://app:secret@127.0.0.1:{port}/app?sslmode=disable\"\nconnect_timeout = \"500ms\"\n"
    ));
    rt().block_on(async {
        let started = Instant::now();
        let err = connect(&proxy.url("app", "secret")).await.unwrap_err();
        let db = err
            .as_db_error()
            .expect("an ErrorResponse, not a hang or a reset");
        assert_eq!(db.code().code(), "08006");
        assert!(db.message().contains("main"), "{}", db.message());
        assert!(started.elapsed() < Duration::from_secs(10));
    });
    let m = proxy.metrics();
    assert!(
        m.contains("switchyard_backend_connect_failures_total{backend=\"main\",kind=\"connect\"}"),
        "{m}"
    );
}
