//! What a client must not notice about the proxy: another client's session state, the
//! parameters it is told at login. Each test is the smallest reproduction of a difference
//! found by running a real client's own test suite through switchyard
//! (`bench/psycopg_suite.sh`).

use crate::support::raw::{Raw, bind, execute, msg, parse, prepare, query, run, sync};
use crate::support::{PgCluster, Proxy, rt};

/// One server connection shared by two clients: what the first leaves behind with
/// `set_config` and a temporary table never reaches the second, and the first keeps the
/// reported settings it made.
#[test]
fn session_state_does_not_cross_clients() {
    let pg = PgCluster::start();
    for pooler in ["none", "transaction"] {
        let proxy = Proxy::simple(
            &pg.url("app"),
            &format!("pool_size = 1\npooler = \"{pooler}\""),
        );
        rt().block_on(async {
            let mut a = Raw::login(proxy.port, "app", "secret").await;
            for sql in [
                "create temp table leak (a int)",
                "select set_config('client_encoding', 'sql_ascii', false)",
                "select set_config('work_mem', '7MB', false)",
                "select set_config('default_transaction_read_only', 'on', false)",
            ] {
                a.send(&query(sql)).await;
                let (_, errors) = a.until_ready().await;
                assert!(errors.is_empty(), "{pooler}: {sql}: {errors:?}");
            }
            let mut b = Raw::login(proxy.port, "app", "secret").await;
            assert_eq!(b.params["client_encoding"], "UTF8", "{pooler}: at login");
            assert_eq!(b.params["default_transaction_read_only"], "off", "{pooler}");
            for (sql, want) in [
                ("show client_encoding", Some("UTF8")),
                ("show default_transaction_read_only", Some("off")),
                ("show work_mem", Some("4MB")),
                ("select to_regclass('pg_temp.leak')::text", None),
            ] {
                assert_eq!(b.scalar(sql).await.as_deref(), want, "{pooler}: {sql}");
            }
            // The first client still has what the server reported to it.
            assert_eq!(
                a.scalar("show client_encoding").await.as_deref(),
                Some("SQL_ASCII"),
                "{pooler}"
            );
            assert_eq!(
                a.scalar("show default_transaction_read_only")
                    .await
                    .as_deref(),
                Some("on"),
                "{pooler}"
            );
        });
    }
}

/// A client's login is answered with the parameters a fresh session with its startup
/// settings reports, whatever the server connection it was given went through before.
#[test]
fn login_reports_a_fresh_sessions_parameters() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pool_size = 1\npooler = \"none\"");
    rt().block_on(async {
        let mut a = Raw::login_with(
            proxy.port,
            "app",
            "secret",
            &[("application_name", "first"), ("DateStyle", "German")],
        )
        .await;
        assert_eq!(a.params["application_name"], "first");
        assert_eq!(a.params["DateStyle"], "German, DMY");
        a.scalar("set timezone = 'Asia/Tokyo'").await;
        let b = Raw::login_with(
            proxy.port,
            "app",
            "secret",
            &[("IntervalStyle", "iso_8601")],
        )
        .await;
        assert_eq!(b.params["application_name"], "");
        assert_eq!(b.params["DateStyle"], "ISO, MDY");
        assert_eq!(b.params["IntervalStyle"], "iso_8601");
        assert_ne!(b.params["TimeZone"], "Asia/Tokyo");
        assert_eq!(
            a.scalar("show timezone").await.as_deref(),
            Some("Asia/Tokyo")
        );
    });
}

/// Parse, Bind, Execute of the unnamed statement.
fn extended(sql: &str) -> Vec<u8> {
    [parse("", sql), bind(""), execute()].concat()
}

/// A pipeline whose first statement fails before the client has sent its Sync: the
/// server ignores everything up to the Sync, and the client gets the error, then one
/// ReadyForQuery, and a usable session.
#[test]
fn pipeline_error_before_sync() {
    let pg = PgCluster::start();
    for pooler in ["none", "transaction"] {
        let proxy = Proxy::simple(&pg.url("app"), &format!("pooler = \"{pooler}\""));
        rt().block_on(async {
            let mut c = Raw::login(proxy.port, "app", "secret").await;
            let mut first = extended("select 1/0");
            first.extend(msg(b'H', &[]));
            c.send(&first).await;
            // PostgreSQL folds 1/0 at Bind: ParseComplete, then the error.
            let mut tags = String::new();
            while let Some((tag, _)) = c.read().await {
                tags.push(tag as char);
                if tag == b'E' {
                    break;
                }
            }
            assert_eq!(tags, "1E", "{pooler}");
            let mut rest = extended("select 2");
            rest.extend(msg(b'C', b"Sx\0"));
            rest.extend(msg(b'S', &[]));
            c.send(&rest).await;
            let (tags, errors) = c.until_ready().await;
            assert_eq!(tags, "ZI", "{pooler}: {errors:?}");
            assert_eq!(c.scalar("select 3").await.as_deref(), Some("3"), "{pooler}");
        });
    }
}

/// A database the proxy does not serve is refused as PostgreSQL refuses it (3D000, the
/// same message); a login without a database name asks for the user's name, as libpq's.
#[test]
fn unknown_database_is_refused_like_postgres() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let shop = dir.path().join("shop.db");
    let proxy = Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n[routing]\nactive = \"main\"\n\
         [backends.main]\nurl = \"{}\"\n[backends.local]\nurl = \"{}\"\n",
        pg.url("app"),
        crate::support::sqlite_url(&shop)
    ));
    rt().block_on(async {
        let refusal = |port: u16| async move {
            let url = format!("postgres://app:secret@127.0.0.1:{port}/nosuchdb?sslmode=disable");
            let Err(e) = crate::support::connect(&url).await else {
                panic!("{url}: a database that does not exist is refused");
            };
            let db = e.as_db_error().expect("an ErrorResponse").clone();
            (db.code().code().to_string(), db.message().to_string())
        };
        let direct = refusal(pg.port).await;
        let proxied = refusal(proxy.port).await;
        assert_eq!(direct, proxied);
        assert_eq!(proxied.0, "3D000");
        // Every backend's database is served: the app's name survives a switch.
        for db in ["app", "shop"] {
            let url = format!(
                "postgres://app:secret@127.0.0.1:{}/{db}?sslmode=disable",
                proxy.port
            );
            let c = crate::support::connect(&url).await.unwrap();
            c.simple_query("select 1").await.unwrap();
        }
        // No database name: the user's, here "app".
        let url = format!(
            "postgres://app:secret@127.0.0.1:{}?sslmode=disable",
            proxy.port
        );
        let c = crate::support::connect(&url).await.unwrap();
        c.simple_query("select 1").await.unwrap();
    });
}

/// Server sessions ended while idle in the pool (`pg_terminate_backend`, as an
/// `idle_session_timeout` or a restart would) are never handed to a client: each next
/// client gets a live connection, and the dropped ones are counted.
#[test]
fn dead_idle_server_connections_are_not_handed_out() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pool_size = 4");
    rt().block_on(async {
        // Four server connections, all idle in the pool afterwards.
        let mut warm = Vec::new();
        for _ in 0..4 {
            let mut c = Raw::login(proxy.port, "app", "secret").await;
            c.send(&query("begin; select 1")).await;
            c.until_ready().await;
            warm.push(c);
        }
        for c in &mut warm {
            c.send(&query("commit")).await;
            c.until_ready().await;
        }
        drop(warm);
        let killed = pg.psql(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity \
             where usename = 'app' and state = 'idle' and pid <> pg_backend_pid()",
        );
        assert_eq!(killed.trim(), "4", "four idle server sessions ended");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        for i in 0..5 {
            let mut c = Raw::login(proxy.port, "app", "secret").await;
            assert_eq!(
                c.scalar("select 40 + 2").await.as_deref(),
                Some("42"),
                "client {i}"
            );
        }
    });
    let metrics = proxy.metrics();
    assert!(
        metrics.contains("switchyard_server_connections_found_closed_total{backend=\"main\"} 4"),
        "{metrics}"
    );
}

/// A statement prepared again after its table changed (psycopg's way: DEALLOCATE ALL,
/// then the same text) runs with the new columns, as directly, also for a client served
/// without a pin (its statements cached on the server under proxy names).
#[test]
fn a_statement_prepared_again_after_ddl_sees_the_new_columns() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(
        &pg.url("app"),
        "pool_size = 1\npooler = \"none\"\nmax_pinned = 0",
    );
    rt().block_on(async {
        for (port, via) in [(pg.port, "direct"), (proxy.port, "switchyard")] {
            let mut c = Raw::login(port, "app", "secret").await;
            c.send(&query("drop table if exists ddl_t; create table ddl_t (a int); insert into ddl_t values (1)")).await;
            c.until_ready().await;
            c.send(&prepare("s", "select * from ddl_t")).await;
            c.until_ready().await;
            c.send(&run("s")).await;
            let (_, errors) = c.until_ready().await;
            assert!(errors.is_empty(), "{via}: {errors:?}");
            c.send(&query("alter table ddl_t add column b int")).await;
            c.until_ready().await;
            c.send(&run("s")).await;
            let (_, errors) = c.until_ready().await;
            assert!(
                errors.len() == 1 && errors[0].contains("cached plan must not change result type"),
                "{via}: {errors:?}"
            );
            c.send(&query("deallocate all")).await;
            c.until_ready().await;
            c.send(&prepare("s", "select * from ddl_t")).await;
            c.until_ready().await;
            c.send(&run("s")).await;
            let (tags, errors) = c.until_ready().await;
            assert!(errors.is_empty() && tags.contains('D'), "{via}: {tags} {errors:?}");
        }
    });
}

/// DEALLOCATE through the extended protocol (psycopg sends it so in pipeline mode) from a
/// client whose statements the server knows under proxy names: answered as PostgreSQL
/// answers it, and the statement is gone for the client.
#[test]
fn deallocate_through_the_extended_protocol() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(
        &pg.url("app"),
        "pool_size = 2\npooler = \"none\"\nmax_pinned = 0",
    );
    rt().block_on(async {
        let mut seen = Vec::new();
        for port in [pg.port, proxy.port] {
            let mut c = Raw::login(port, "app", "secret").await;
            c.send(&prepare("s1", "select 1")).await;
            c.until_ready().await;
            let mut dealloc = parse("", "deallocate s1");
            dealloc.extend(bind(""));
            dealloc.extend(msg(b'D', b"P\0"));
            dealloc.extend(execute());
            dealloc.extend(sync());
            c.send(&dealloc).await;
            let first = c.until_ready().await;
            c.send(&run("s1")).await;
            let (tags, errors) = c.until_ready().await;
            let codes: Vec<bool> = errors.iter().map(|e| e.contains("C26000\0")).collect();
            seen.push((first.0, first.1.len(), tags, codes));
        }
        assert_eq!(seen[0], seen[1], "direct, then switchyard");
        assert_eq!(seen[1].0, "12nCZI");
    });
}

/// DISCARD ALL through the extended protocol reaches the server, which drops every
/// statement, the ones the proxy cached under its own names too: the next statement with
/// the same text is prepared again, as it would be directly.
#[test]
fn discard_all_through_the_extended_protocol() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(
        &pg.url("app"),
        "pool_size = 1\npooler = \"none\"\nmax_pinned = 0",
    );
    rt().block_on(async {
        for (port, via) in [(pg.port, "direct"), (proxy.port, "switchyard")] {
            let mut c = Raw::login(port, "app", "secret").await;
            let mut m = parse("s1", "select 41");
            m.extend(run("s1"));
            c.send(&m).await;
            assert!(c.until_ready().await.1.is_empty(), "{via}");
            let mut m = parse("", "discard all");
            m.extend(run(""));
            c.send(&m).await;
            let (_, errors) = c.until_ready().await;
            assert!(errors.is_empty(), "{via}: {errors:?}");
            let mut m = parse("s2", "select 41");
            m.extend(run("s2"));
            c.send(&m).await;
            let (tags, errors) = c.until_ready().await;
            assert!(
                errors.is_empty() && tags.contains('D'),
                "{via}: {tags} {errors:?}"
            );
        }
    });
}

/// COPY FROM STDIN through the extended protocol fails on bad data before the client has
/// ended it (the server's error overtakes the client's CopyDone): the client's Sync is
/// answered and the session goes on, as directly.
#[test]
fn copy_failing_before_the_client_ends_it() {
    let pg = PgCluster::start();
    let proxy = Proxy::simple(&pg.url("app"), "pooler = \"none\"");
    rt().block_on(async {
        for (port, via) in [(pg.port, "direct"), (proxy.port, "switchyard")] {
            let mut c = Raw::login(port, "app", "secret").await;
            c.send(&query(
                "drop table if exists cp_fail; create table cp_fail (a int)",
            ))
            .await;
            c.until_ready().await;
            c.send(&[parse("", "copy cp_fail from stdin"), run("")].concat())
                .await;
            loop {
                let (tag, _) = c.read().await.expect("CopyInResponse");
                if tag == b'G' {
                    break;
                }
            }
            c.send(&msg(b'd', b"not a number\n")).await;
            loop {
                let (tag, _) = c.read().await.expect("the server's error");
                if tag == b'E' {
                    break;
                }
            }
            c.send(&[msg(b'c', b""), sync()].concat()).await;
            let (tags, errors) = c.until_ready().await;
            assert!(
                errors.is_empty() && tags == "ZI",
                "{via}: {tags} {errors:?}"
            );
            assert_eq!(c.scalar("select 1").await.as_deref(), Some("1"), "{via}");
        }
    });
}
