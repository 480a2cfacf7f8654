//! Prometheus metrics: one typed struct registered into a registry passed in by the caller
//! (no process-global registry), plus per-backend handles resolved once so the hot path
//! only touches atomics. Every name is prefixed `switchyard_`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// What `switchyard_errors_total{kind}` counts; the label values are these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Accepting a client connection failed.
    Accept,
    /// A client's startup (TLS, protocol) failed.
    Startup,
    /// A wrong admin token.
    AdminAuth,
    /// A client got no server connection in time.
    PoolTimeout,
    /// A client did not log in within `proxy.login_timeout`.
    LoginTimeout,
    /// A query outlived `proxy.query_timeout`.
    QueryTimeout,
    /// A client idled in a transaction past `proxy.idle_transaction_timeout`.
    IdleTransactionTimeout,
    /// A server connection died under a client.
    ServerLost,
    /// Opening a server connection failed (by the backend error's kind).
    Backend(&'static str),
}

impl ErrorKind {
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Accept => "accept",
            ErrorKind::Startup => "startup",
            ErrorKind::AdminAuth => "admin_auth",
            ErrorKind::PoolTimeout => "pool_timeout",
            ErrorKind::LoginTimeout => "login_timeout",
            ErrorKind::QueryTimeout => "query_timeout",
            ErrorKind::IdleTransactionTimeout => "idle_transaction_timeout",
            ErrorKind::ServerLost => "server_lost",
            ErrorKind::Backend(kind) => kind,
        }
    }
}

/// All of the proxy's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub clients_current: IntGauge,
    pub clients_total: IntCounter,
    pub clients_waiting: IntGauge,
    pub auth_failures: IntCounterVec,
    pub server_connections: IntGaugeVec,
    pub pool_waiting: IntGaugeVec,
    pub backend_up: IntGaugeVec,
    pub connect_attempts: IntCounterVec,
    pub connect_failures: IntCounterVec,
    pub backoff_seconds: prometheus::GaugeVec,
    pub active_backend: IntGaugeVec,
    pub transactions: IntCounterVec,
    pub queries: IntCounterVec,
    pub transaction_seconds: HistogramVec,
    pub pool_wait_seconds: HistogramVec,
    pub switches: IntCounterVec,
    pub pause_seconds: Histogram,
    pub paused: IntGauge,
    /// Use [`Metrics::count_error`].
    errors: IntCounterVec,
    pub cancel_requests: IntCounterVec,
    pub dead_idle_connections: IntCounterVec,
    pub requests_retried: IntCounterVec,
    pub listen_connection_lost: IntCounterVec,
    pub listening_clients: IntGauge,
    pub pinned_clients: IntGaugeVec,
    pub sync_phase: IntGauge,
    pub sync_pending: IntGauge,
    pub sync_lag_seconds: prometheus::Gauge,
    pub sync_applied: IntCounter,
    pub sync_errors: IntCounter,
    pub sync_inactive_writes: IntGauge,
    pub sync_blocked: IntGauge,
    pub sync_resumes: IntCounter,
    pub sync_unvalidated_fks: IntGauge,
    pub sync_copy_rows: IntGaugeVec,
    pub sync_copy_tables: IntGaugeVec,
    pub sync_copy_eta_seconds: prometheus::Gauge,
    pub route_epoch: IntGauge,
    pub route_config_mismatch: IntGauge,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(format!("switchyard_{name}"), help), labels)
        .expect("valid metric");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(format!("switchyard_{name}"), help), labels)
        .expect("valid metric");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(format!("switchyard_{name}"), help).expect("valid metric");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn float_gauge(r: &Registry, name: &str, help: &str) -> prometheus::Gauge {
    let g = prometheus::Gauge::new(format!("switchyard_{name}"), help).expect("valid metric");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(format!("switchyard_{name}"), help).expect("valid metric");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(format!("switchyard_{name}"), help).buckets(buckets),
        labels,
    )
    .expect("valid metric");
    r.register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

impl Metrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn new(registry: Registry) -> Self {
        let r = &registry;
        let pause_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "switchyard_pause_seconds",
                "How long clients were paused by a switch or pause",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ]),
        )
        .expect("valid metric");
        r.register(Box::new(pause_seconds.clone()))
            .expect("metric registered once");
        let backoff = prometheus::GaugeVec::new(
            Opts::new(
                "switchyard_backend_backoff_seconds",
                "Current reconnect backoff delay per backend",
            ),
            &["backend"],
        )
        .expect("valid metric");
        r.register(Box::new(backoff.clone()))
            .expect("metric registered once");
        let clients_total = IntCounter::new(
            "switchyard_client_connections_total",
            "Client connections accepted",
        )
        .expect("valid metric");
        r.register(Box::new(clients_total.clone()))
            .expect("metric registered once");
        Metrics {
            clients_current: gauge(r, "client_connections", "Client connections open now"),
            clients_total,
            clients_waiting: gauge(
                r,
                "clients_waiting",
                "Clients waiting for a server connection or a pause",
            ),
            auth_failures: counter_vec(
                r,
                "client_auth_failures_total",
                "Failed client logins",
                &["method"],
            ),
            server_connections: gauge_vec(
                r,
                "server_connections",
                "Server connections per backend and state",
                &["backend", "state"],
            ),
            pool_waiting: gauge_vec(
                r,
                "pool_waiting",
                "Clients waiting on a backend's pool",
                &["backend"],
            ),
            backend_up: gauge_vec(
                r,
                "backend_up",
                "1 when the backend is reachable",
                &["backend"],
            ),
            connect_attempts: counter_vec(
                r,
                "backend_connect_attempts_total",
                "Server connections attempted",
                &["backend"],
            ),
            connect_failures: counter_vec(
                r,
                "backend_connect_failures_total",
                "Server connections that failed",
                &["backend", "kind"],
            ),
            backoff_seconds: backoff,
            active_backend: gauge_vec(
                r,
                "active_backend",
                "1 for the backend new transactions go to",
                &["backend"],
            ),
            transactions: counter_vec(
                r,
                "transactions_total",
                "Transactions (server checkouts) per backend",
                &["backend"],
            ),
            queries: counter_vec(
                r,
                "queries_total",
                "Queries and executes per backend",
                &["backend"],
            ),
            transaction_seconds: histogram_vec(
                r,
                "transaction_seconds",
                "Time a client held a server connection",
                &["backend"],
                LATENCY_BUCKETS.to_vec(),
            ),
            pool_wait_seconds: histogram_vec(
                r,
                "pool_wait_seconds",
                "Time a client waited for a server connection",
                &["backend"],
                LATENCY_BUCKETS.to_vec(),
            ),
            switches: counter_vec(
                r,
                "switches_total",
                "Backend switches by result",
                &["result"],
            ),
            pause_seconds,
            paused: gauge(r, "paused", "1 while new transactions are held"),
            errors: counter_vec(r, "errors_total", "Errors by kind", &["kind"]),
            pinned_clients: gauge_vec(
                r,
                "pinned_clients",
                "Clients keeping a server connection between transactions for session state",
                &["backend"],
            ),
            dead_idle_connections: counter_vec(
                r,
                "server_connections_found_closed_total",
                "Idle server connections the server had closed, dropped at checkout",
                &["backend"],
            ),
            listen_connection_lost: counter_vec(
                r,
                "listen_connection_lost_total",
                "Listening connections (LISTEN served by the proxy) lost and made again; notifications sent meanwhile were missed",
                &["backend"],
            ),
            listening_clients: gauge(
                r,
                "listening_clients",
                "Clients listening on at least one channel through the proxy's listening connections",
            ),
            requests_retried: counter_vec(
                r,
                "requests_retried_total",
                "Client requests sent again on a fresh server connection because the one taken from the pool had been closed by the server before it answered",
                &["backend"],
            ),
            cancel_requests: counter_vec(
                r,
                "cancel_requests_total",
                "Cancel requests by outcome",
                &["outcome"],
            ),
            sync_phase: gauge(
                r,
                "sync_phase",
                "Live sync phase: 0 starting, 1 capturing, 2 backfilling, 3 streaming, 4 stopped, 5 failed",
            ),
            sync_pending: gauge(
                r,
                "sync_pending_changes",
                "Captured changes not yet applied to the target",
            ),
            sync_lag_seconds: float_gauge(
                r,
                "sync_lag_seconds",
                "Age of the oldest change not yet applied",
            ),
            sync_applied: counter(r, "sync_applied_changes_total", "Captured changes applied"),
            sync_errors: counter(r, "sync_errors_total", "Live sync rounds that failed"),
            sync_inactive_writes: gauge(
                r,
                "sync_inactive_side_writes",
                "Writes that reached the inactive side directly (not through the proxy)",
            ),
            sync_blocked: gauge(
                r,
                "sync_blocked",
                "1 when a live sync recorded in the databases is not running in this proxy (could not be resumed, or run by another process); switches between its backends are refused",
            ),
            sync_resumes: counter(
                r,
                "sync_resumes_total",
                "Live syncs this proxy resumed from their record in the databases (after a restart or a crash)",
            ),
            sync_unvalidated_fks: gauge(
                r,
                "sync_unvalidated_foreign_keys",
                "Foreign keys on the target still NOT VALID, waiting for the changes captured during the copy",
            ),
            sync_copy_rows: gauge_vec(
                r,
                "sync_copy_rows",
                "Live sync's initial copy: rows copied so far (state=copied) and counted on the source at the start (state=planned)",
                &["state"],
            ),
            sync_copy_tables: gauge_vec(
                r,
                "sync_copy_tables",
                "Live sync's initial copy: tables copied (state=copied) of all (state=planned)",
                &["state"],
            ),
            sync_copy_eta_seconds: float_gauge(
                r,
                "sync_copy_eta_seconds",
                "Live sync's initial copy: time left at the rate so far (0 once copied)",
            ),
            route_epoch: gauge(
                r,
                "route_epoch",
                "Switches committed so far (the epoch kept in the route file)",
            ),
            route_config_mismatch: gauge(
                r,
                "route_config_mismatch",
                "1 when the config's routing.active differs from the route this proxy came back to",
            ),
            registry,
        }
    }

    /// Counts an error under `switchyard_errors_total{kind}`.
    pub fn count_error(&self, kind: ErrorKind) {
        self.errors.with_label_values(&[kind.label()]).inc();
    }

    /// Per-backend handles for the hot path.
    pub fn for_backend(&self, name: &str) -> BackendMetrics {
        BackendMetrics {
            transactions: self.transactions.with_label_values(&[name]),
            queries: self.queries.with_label_values(&[name]),
            transaction_seconds: self.transaction_seconds.with_label_values(&[name]),
            pool_wait_seconds: self.pool_wait_seconds.with_label_values(&[name]),
            connect_attempts: self.connect_attempts.with_label_values(&[name]),
        }
    }

    /// The Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Label-resolved metrics of one backend.
#[derive(Clone)]
pub struct BackendMetrics {
    pub transactions: IntCounter,
    pub queries: IntCounter,
    pub transaction_seconds: Histogram,
    pub pool_wait_seconds: Histogram,
    pub connect_attempts: IntCounter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_instances_do_not_collide() {
        let a = Metrics::new(Registry::new());
        let b = Metrics::new(Registry::new());
        a.clients_total.inc();
        assert_eq!(b.clients_total.get(), 0);
        a.for_backend("x").transactions.inc();
        assert!(
            a.render()
                .contains("switchyard_transactions_total{backend=\"x\"} 1")
        );
    }
}
