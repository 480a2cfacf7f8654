//! Session features on a backend that keeps sessions (`pooler = "none"`): a client that
//! makes session state keeps its server connection between transactions (pinning), so
//! its named statements keep their names on the server, notifications reach it while it
//! idles, and its temporary tables last; bounded by `max_pinned`, counted, and ended
//! cleanly by a switch when the state cannot move.

use std::time::Duration;

use serde_json::json;
use switchyard::testing::{Target, call};

use crate::support::raw::{Raw, msg, prepare, query, run};
use crate::support::{PgCluster, Proxy, rt};

async fn ok(c: &mut Raw, bytes: &[u8]) -> String {
    c.send(bytes).await;
    let (tags, errors) = c.until_ready().await;
    assert!(errors.is_empty(), "{errors:?}");
    tags
}

/// What a client sees of its own session is what it sees directly: its statements under
/// its names in pg_prepared_statements and nothing else, DEALLOCATE reaching the server,
/// a temporary table across transactions, and notifications while it idles.
#[test]
fn a_client_with_session_state_keeps_its_session() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pooler = \"none\"\npool_size = 4");
    rt().block_on(async {
        // Another client leaves statements of its own on the pooled connections.
        let mut other = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut other, &prepare("theirs", "select 2")).await;
        ok(&mut other, &run("theirs")).await;
        drop(other);

        for (port, via) in [(pg.port, "direct"), (proxy.port, "switchyard")] {
            let mut c = Raw::login(port, "app", "secret").await;
            ok(&mut c, &prepare("mine", "select 1")).await;
            ok(&mut c, &run("mine")).await;
            let names = c
                .scalar("select string_agg(name, ',' order by name) from pg_prepared_statements")
                .await;
            assert_eq!(names.as_deref(), Some("mine"), "{via}");
            ok(&mut c, &query("deallocate mine")).await;
            let left = c
                .scalar("select count(*) from pg_prepared_statements")
                .await;
            assert_eq!(left.as_deref(), Some("0"), "{via}");

            ok(&mut c, &query("create temp table scratch (v int)")).await;
            ok(&mut c, &query("insert into scratch values (1)")).await;
            let n = c.scalar("select count(*) from scratch").await;
            assert_eq!(n.as_deref(), Some("1"), "{via}: the temp table lasts");

            ok(&mut c, &query("listen pings")).await;
            let mut sender = Raw::login(port, "app", "secret").await;
            ok(&mut sender, &query("notify pings, 'hello'")).await;
            let (payload, _) = c
                .notification(Duration::from_secs(2))
                .await
                .expect("notified while idle");
            assert_eq!(payload, "hello", "{via}");
            // Its own notification names the process id it was given at login.
            // (It arrives before the NOTIFY's own ReadyForQuery.)
            c.send(&query("notify pings, 'me'")).await;
            let (payload, pid) = c
                .notification(Duration::from_secs(2))
                .await
                .expect("its own notification");
            assert_eq!((payload.as_str(), pid), ("me", c.pid), "{via}");
            c.until_ready().await;
            if port == proxy.port {
                let m = proxy.metrics();
                assert!(
                    m.contains("switchyard_pinned_clients{backend=\"main\"} 1"),
                    "{m}"
                );
            }
            // A pinned client between transactions leaves with Terminate at once.
            c.send(&msg(b'X', b"")).await;
            let closed = tokio::time::timeout(Duration::from_secs(2), c.read()).await;
            assert!(matches!(closed, Ok(None)), "{via}: closed after Terminate");
        }
    });
    // The session is over: its pin is given back.
    std::thread::sleep(Duration::from_millis(300));
    let m = proxy.metrics();
    assert!(
        m.contains("switchyard_pinned_clients{backend=\"main\"} 0"),
        "{m}"
    );
}

/// Beyond `max_pinned`, session features get 0A000 naming the bound, and prepared
/// statements still work (under proxy names); the next client after a pinned one gets a
/// clean session.
#[test]
fn pins_are_bounded_and_sessions_are_cleaned_after_them() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(
        &pg.url("app"),
        "pooler = \"none\"\npool_size = 2\nmax_pinned = 1",
    );
    rt().block_on(async {
        let mut a = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut a, &query("select pg_advisory_lock(1)")).await;
        let mut b = Raw::login(proxy.port, "app", "secret").await;
        b.send(&query("select pg_advisory_lock(2)")).await;
        let (_, errors) = b.until_ready().await;
        assert!(
            errors.len() == 1 && errors[0].contains("C0A000\0"),
            "{errors:?}"
        );
        ok(&mut b, &prepare("s", "select 7")).await;
        ok(&mut b, &run("s")).await;
        drop(a);
        drop(b);
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..3 {
            let mut c = Raw::login(proxy.port, "app", "secret").await;
            let locks = c
                .scalar("select count(*) from pg_locks where locktype = 'advisory'")
                .await;
            assert_eq!(locks.as_deref(), Some("0"));
        }
    });
}

/// A switch with pinned clients: one with only prepared statements follows it (they are
/// made again on the new backend); one with a temporary table is ended with 57P01, since
/// that cannot move. Neither holds the switch up. (A listening client is not pinned: it
/// follows too, see `listen::listeners_follow_a_switch`.)
#[test]
fn a_switch_moves_statement_clients_and_ends_other_session_state() {
    let a = PgCluster::start();
    let b = PgCluster::start();
    let proxy = Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.a]\nurl = \"{}\"\npool_size = 8\npooler = \"none\"\n\
         [backends.b]\nurl = \"{}\"\npool_size = 8\npooler = \"none\"\n\
         [routing]\nactive = \"a\"\n",
        a.url("app"),
        b.url("app")
    ));
    let admin = Target {
        base: format!("http://127.0.0.1:{}", proxy.admin_port),
        token: None,
    };
    rt().block_on(async {
        let mut stmts = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut stmts, &prepare("q", "select current_setting('port')")).await;
        let mut holder = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut holder, &query("create temp table mine (v int)")).await;
        let (status, body) = call(
            &admin,
            hyper::Method::POST,
            "/cutover",
            Some(json!({ "to": "b" })),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        stmts.send(&run("q")).await;
        let (tags, errors) = stmts.until_ready().await;
        assert!(errors.is_empty() && tags.contains('D'), "{tags} {errors:?}");
        let port = stmts.scalar("select current_setting('port')").await;
        assert_eq!(port, Some(b.port.to_string()), "now served by b");

        holder.send(&query("select 1")).await;
        let fatal = holder.errors_until_closed().await;
        assert!(
            fatal.len() == 1 && fatal[0].contains("SFATAL\0") && fatal[0].contains("C57P01\0"),
            "{fatal:?}"
        );
    });
}

/// `pooler = "auto"` (the default) finds a PostgreSQL server to keep sessions and PgBouncer
/// in transaction mode not to, before clients are served, and says why in /status.
#[test]
fn auto_detects_a_server_and_a_transaction_pooler() {
    let pg = PgCluster::start();
    let bouncer = crate::support::Bouncer::start(&pg, "transaction", 4);
    let proxy = Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.direct]\nurl = \"{}\"\n[backends.pooled]\nurl = \"{}\"\n\
         [routing]\nactive = \"direct\"\n",
        pg.url("app"),
        bouncer.url()
    ));
    let router = &proxy.shared.router;
    let (direct, pooled) = (router.get("direct").unwrap(), router.get("pooled").unwrap());
    assert!(crate::support::cluster::wait_until(
        Duration::from_secs(10),
        || !direct.pooler_unknown() && !pooled.pooler_unknown()
    ));
    use switchyard::testing::PoolerMode;
    assert_eq!(direct.pooler(), PoolerMode::None);
    assert_eq!(pooled.pooler(), PoolerMode::Transaction);
    let why = pooled.pooler_detection().1.unwrap_or_default();
    assert!(why.contains("port"), "{why}");
    // Served as a direct server: a named statement keeps its name there.
    rt().block_on(async {
        let mut c = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut c, &prepare("mine", "select 1")).await;
        let names = c
            .scalar("select string_agg(name, ',') from pg_prepared_statements")
            .await;
        assert_eq!(names.as_deref(), Some("mine"));
    });
}

/// The server session holding a pinned client's temporary table goes away (here the
/// network breaks while the client idles): the client is told at once and closed, not
/// left believing its table is still there.
#[test]
fn a_pinned_client_whose_server_session_is_lost_is_closed() {
    let pg = PgCluster::start();
    let faulty = crate::support::faulty::Faulty::start(pg.port);
    let proxy = Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.main]\nurl = \"postgres://app:secret@127.0.0.1:{}/app?sslmode=disable\"\n\
         pooler = \"none\"\npool_size = 4\n",
        faulty.port
    ));
    rt().block_on(async {
        let mut c = Raw::login(proxy.port, "app", "secret").await;
        ok(&mut c, &query("create temp table lost (v int)")).await;
        faulty.reset_all();
        let errors = c.errors_until_closed().await;
        assert!(
            errors.len() == 1
                && errors[0].contains("SFATAL\0")
                && errors[0].contains("temporary tables"),
            "{errors:?}"
        );
    });
}
