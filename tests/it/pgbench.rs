//! pgbench through the proxy in every query mode, to PostgreSQL directly and through
//! PgBouncer in transaction mode (where `-M prepared` fails without switchyard).

use crate::support::{Bouncer, PgCluster, Proxy, pgbench};

fn run_modes(port: u16, label: &str) {
    for mode in ["simple", "extended", "prepared"] {
        // One thread per client: pgbench prepares synchronously, so with fewer threads a
        // client waiting for a pooled connection would stall the clients that hold one.
        let b = pgbench(port, &["-c", "8", "-j", "8", "-T", "3", "-M", mode]);
        assert!(b.ok, "{label} -M {mode} failed:\n{}", b.output);
        assert_eq!(b.failed, 0, "{label} -M {mode}:\n{}", b.output);
        assert!(
            b.processed > 50,
            "{label} -M {mode} processed too little:\n{}",
            b.output
        );
    }
}

#[test]
fn pgbench_to_postgres_directly() {
    let pg = PgCluster::start();
    let init = pgbench(pg.port, &["-i", "-s", "1", "-q"]);
    assert!(init.ok, "{}", init.output);
    for pooler in ["none", "transaction"] {
        let proxy = Proxy::simple(
            &pg.url("app"),
            &format!("pool_size = 4\npooler = \"{pooler}\""),
        );
        run_modes(proxy.port, &format!("direct, pooler={pooler}"));
    }
}

#[test]
fn pgbench_prepared_through_pgbouncer_transaction_mode() {
    let pg = PgCluster::start();
    let init = pgbench(pg.port, &["-i", "-s", "1", "-q"]);
    assert!(init.ok, "{}", init.output);
    let bouncer = Bouncer::start(&pg, "transaction", 2);
    // The stand-in is faithful: PgBouncer 1.18 alone fails -M prepared.
    let alone = pgbench(
        bouncer.port,
        &["-c", "8", "-j", "8", "-T", "2", "-M", "prepared"],
    );
    assert!(
        !alone.ok || alone.failed > 0,
        "expected PgBouncer alone to fail -M prepared:\n{}",
        alone.output
    );
    let proxy = Proxy::simple(&bouncer.url(), "pool_size = 4");
    run_modes(proxy.port, "via pgbouncer");
}
