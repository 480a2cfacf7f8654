//! Authentication of clients (SCRAM, md5, trust) and of the proxy to its backends (SCRAM,
//! md5, cleartext), and TLS on both sides.

use std::process::Command;

use crate::support::certs::Certs;
use crate::support::{PgCluster, Proxy, connect, psql, rt};

fn users_config(url: &str) -> String {
    format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [[users]]\nname = \"legacy\"\npassword = \"hunter2\"\nauth = \"md5\"\n\
         [[users]]\nname = \"hashed\"\npassword = \"{}\"\n\
         [[users]]\nname = \"kiosk\"\nauth = \"trust\"\n\
         [backends.main]\nurl = \"{url}\"\n",
        postgres_protocol::password::scram_sha_256(b"from-a-hash")
    )
}

#[test]
fn client_authentication_methods() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&users_config(&pg.url("app")));
    rt().block_on(async {
        for (user, pw) in [
            ("app", "secret"),
            ("legacy", "hunter2"),
            ("hashed", "from-a-hash"),
            ("kiosk", "anything"),
        ] {
            let c = connect(&proxy.url(user, pw))
                .await
                .unwrap_or_else(|e| panic!("{user}: {e}"));
            let n: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
            assert_eq!(n, 1);
        }
        for (user, pw) in [
            ("app", "wrong"),
            ("legacy", "wrong"),
            ("hashed", "wrong"),
            ("nobody", "secret"),
        ] {
            let err = connect(&proxy.url(user, pw)).await.unwrap_err();
            let db = err.as_db_error().unwrap_or_else(|| panic!("{user}: {err}"));
            assert_eq!(db.code().code(), "28P01", "{user}");
            assert!(
                db.message().contains("password authentication failed"),
                "{}",
                db.message()
            );
        }
    });
    // psql speaks SCRAM and md5 too.
    let (ok, out, err) = psql(
        proxy.port,
        "legacy",
        "hunter2",
        &["-c", "SELECT current_user"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out, "app",
        "the proxy logs in to the backend as the URL's user"
    );
    let m = proxy.metrics();
    assert!(
        m.contains("switchyard_client_auth_failures_total{method=\"scram-sha-256\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("switchyard_client_auth_failures_total{method=\"md5\"} 1"),
        "{m}"
    );
}

#[test]
fn no_users_means_trust_on_loopback() {
    let pg = PgCluster::start();
    let proxy = Proxy::start(&format!("[backends.main]\nurl = \"{}\"\n", pg.url("app")));
    let (ok, out, err) = psql(proxy.port, "whoever", "", &["-c", "SELECT 2"]);
    assert!(ok, "{err}");
    assert_eq!(out, "2");
}

#[test]
fn backend_authentication_methods() {
    let pg = PgCluster::start();
    for user in ["app", "md5user", "plainuser"] {
        let proxy = Proxy::simple(&pg.url(user), "");
        let (ok, out, err) = psql(proxy.port, "app", "secret", &["-c", "SELECT current_user"]);
        assert!(ok, "{user}: {err}");
        assert_eq!(out, user);
    }
    let bad = pg.url("app").replace(":secret@", ":wrong@");
    let proxy = Proxy::simple(&bad, "");
    let (ok, _, err) = psql(proxy.port, "app", "secret", &["-c", "SELECT 1"]);
    assert!(!ok);
    assert!(
        err.contains("password authentication failed for user \"app\""),
        "{err}"
    );
    assert!(
        !err.contains("wrong"),
        "the backend password must not leak: {err}"
    );
}

fn psql_tls(port: u16, sslmode: &str, ca: &std::path::Path) -> (bool, String) {
    psql_conninfo(port, &format!("sslmode={sslmode}"), ca)
}

fn psql_conninfo(port: u16, extra: &str, ca: &std::path::Path) -> (bool, String) {
    let out = Command::new("psql")
        .env("PGPASSWORD", "secret")
        .args(["-X", "-A", "-t", "-c", "SELECT 1"])
        .arg(format!(
            "host=localhost port={port} user=app dbname=app {extra} sslrootcert={}",
            ca.display()
        ))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn client_tls() {
    let pg = PgCluster::start();
    let certs = Certs::make();
    let with_tls = Proxy::start(&format!(
        "[proxy]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n{}",
        certs.cert.display(),
        certs.key.display(),
        users_config(&pg.url("app"))
    ));
    let (ok, err) = psql_tls(with_tls.port, "verify-full", &certs.ca);
    assert!(ok, "TLS with a verified certificate: {err}");
    let (ok, err) = psql_tls(with_tls.port, "disable", &certs.ca);
    assert!(ok, "plain connections still work: {err}");
    // SCRAM-SHA-256-PLUS: libpq binds the login to the certificate it saw.
    let (ok, err) = psql_conninfo(
        with_tls.port,
        "sslmode=verify-full channel_binding=require",
        &certs.ca,
    );
    assert!(ok, "channel binding over TLS: {err}");
    let (ok, err) = psql_conninfo(
        with_tls.port,
        "sslmode=disable channel_binding=require",
        &certs.ca,
    );
    assert!(!ok && err.contains("channel binding"), "{err}");
    let without = Proxy::start(&users_config(&pg.url("app")));
    let (ok, err) = psql_tls(without.port, "require", &certs.ca);
    assert!(!ok);
    assert!(err.contains("does not support SSL"), "{err}");
}

#[test]
fn backend_tls_modes() {
    let pg = PgCluster::start();
    let certs = Certs::make();
    pg.enable_tls(&certs.cert, &certs.key);
    let base = format!("postgres://tlsonly:secret@localhost:{}/app", pg.port);
    let ssl_in_use = |proxy: &Proxy| {
        psql(
            proxy.port,
            "app",
            "secret",
            &[
                "-c",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ],
        )
    };
    // require: encrypted, certificate not checked.
    let proxy = Proxy::simple(&format!("{base}?sslmode=require"), "");
    let (ok, out, err) = ssl_in_use(&proxy);
    assert!(ok && out == "t", "{out} {err}");
    // verify-full against the right CA.
    let proxy = Proxy::simple(
        &format!("{base}?sslmode=verify-full"),
        &format!("ca_file = \"{}\"", certs.ca.display()),
    );
    let (ok, out, err) = ssl_in_use(&proxy);
    assert!(ok && out == "t", "{out} {err}");
    // verify-full against a different CA fails, and says why.
    let other = Certs::make();
    let proxy = Proxy::simple(
        &format!("{base}?sslmode=verify-full"),
        &format!("ca_file = \"{}\"", other.ca.display()),
    );
    let (ok, _, err) = ssl_in_use(&proxy);
    assert!(!ok);
    assert!(
        err.contains("TLS handshake") && err.contains("certificate"),
        "{err}"
    );
    // disable: the server refuses this user without TLS.
    let proxy = Proxy::simple(&format!("{base}?sslmode=disable"), "");
    let (ok, _, err) = ssl_in_use(&proxy);
    assert!(!ok);
    assert!(
        err.contains("pg_hba.conf") || err.contains("no encryption"),
        "{err}"
    );
}
