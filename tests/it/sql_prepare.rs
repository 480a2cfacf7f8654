//! SQL `PREPARE`/`EXECUTE`/`DEALLOCATE` handled like protocol statements on a backend that
//! keeps sessions: the same answers as PostgreSQL directly, without pinning the client,
//! on whichever server connection serves it, and across a switch.

use std::time::Duration;

use serde_json::json;
use switchyard::testing::{Target, call};

use crate::support::cluster::wait_until;
use crate::support::raw::{Raw, prepare, query};
use crate::support::{PgCluster, Proxy, connect, rt};

/// The SQLSTATEs of the errors a query gets (empty when it succeeds).
async fn codes(c: &mut Raw, sql: &str) -> Vec<String> {
    c.send(&query(sql)).await;
    let (_, errors) = c.until_ready().await;
    errors
        .iter()
        .filter_map(|e| {
            e.split('\0')
                .find_map(|f| f.strip_prefix('C'))
                .map(String::from)
        })
        .collect()
}

#[test]
fn sql_prepared_statements_answer_as_postgres_without_pinning() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pooler = \"none\"\npool_size = 2");
    rt().block_on(async {
        for (port, via) in [(pg.port, "direct"), (proxy.port, "switchyard")] {
            let mut c = Raw::login(port, "app", "secret").await;
            assert!(
                codes(&mut c, "PREPARE q (int) AS select $1 + 1")
                    .await
                    .is_empty()
            );
            assert_eq!(
                c.scalar("EXECUTE q(41)").await.as_deref(),
                Some("42"),
                "{via}"
            );
            assert_eq!(
                codes(&mut c, "prepare Q as select 1").await,
                ["42P05"],
                "{via}"
            );
            // Another client holds the connection `c` used: `c` runs on the other one.
            let other = connect(&format!(
                "postgres://app:secret@127.0.0.1:{port}/app?sslmode=disable"
            ))
            .await
            .unwrap();
            other.batch_execute("begin").await.unwrap();
            assert_eq!(
                c.scalar("execute q (1)").await.as_deref(),
                Some("2"),
                "{via}"
            );
            other.batch_execute("commit").await.unwrap();
            // In a transaction, and after an error in one.
            assert!(codes(&mut c, "begin").await.is_empty());
            assert_eq!(
                c.scalar("EXECUTE q(2)").await.as_deref(),
                Some("3"),
                "{via}"
            );
            assert_eq!(codes(&mut c, "select 1/0").await, ["22012"]);
            assert_eq!(
                codes(&mut c, "PREPARE late AS select 1").await,
                ["25P02"],
                "{via}"
            );
            assert!(codes(&mut c, "rollback").await.is_empty());
            assert_eq!(codes(&mut c, "EXECUTE late").await, ["26000"], "{via}");
            // A PREPARE the server refuses leaves nothing; DEALLOCATE removes.
            let bad = codes(&mut c, "PREPARE bad AS select * from no_such_table").await;
            assert_eq!(bad, ["42P01"], "{via}");
            assert_eq!(codes(&mut c, "EXECUTE bad").await, ["26000"], "{via}");
            assert!(codes(&mut c, "DEALLOCATE q").await.is_empty());
            assert_eq!(codes(&mut c, "EXECUTE q(1)").await, ["26000"], "{via}");
            assert!(
                codes(&mut c, "PREPARE q AS select 'again'")
                    .await
                    .is_empty()
            );
            assert_eq!(
                c.scalar("EXECUTE q").await.as_deref(),
                Some("again"),
                "{via}"
            );
            // A statement made by Parse runs through EXECUTE too; the proxy's own names
            // on the server are nobody's to run.
            c.send(&prepare("pp", "select 5")).await;
            assert!(c.until_ready().await.1.is_empty());
            assert_eq!(c.scalar("EXECUTE pp").await.as_deref(), Some("5"), "{via}");
            assert_eq!(codes(&mut c, "EXECUTE sy1").await, ["26000"], "{via}");
            if port == proxy.port {
                let m = proxy.metrics();
                assert!(
                    m.contains("switchyard_pinned_clients{backend=\"main\"} 0"),
                    "{m}"
                );
                assert!(wait_until(Duration::from_secs(2), || proxy.pool_counts().1 == 0));
            }
        }
    });
}

/// A client's SQL-prepared statement follows a switch: it is made again on the new backend.
#[test]
fn sql_prepared_statements_follow_a_switch() {
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
        let mut c = Raw::login(proxy.port, "app", "secret").await;
        assert!(
            codes(&mut c, "PREPARE port AS select current_setting('port')")
                .await
                .is_empty()
        );
        assert_eq!(c.scalar("EXECUTE port").await, Some(a.port.to_string()));
        let (status, body) = call(
            &admin,
            hyper::Method::POST,
            "/cutover",
            Some(json!({ "to": "b" })),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(c.scalar("EXECUTE port").await, Some(b.port.to_string()));
    });
}
