//! switchyard itself, in-process on a free port, on its own runtime thread so that tests
//! can block (running psql or pgbench) without starving it.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use switchyard::testing::App;
use switchyard::testing::Config;
use switchyard::testing::Lifecycle;
use switchyard::testing::Metrics;
use switchyard::testing::ProxyState;

pub struct Proxy {
    pub port: u16,
    pub admin_port: u16,
    pub shared: Arc<ProxyState>,
    stop: Lifecycle,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy from config text (its `proxy.listen` is ignored: a free port is used).
    pub fn start(config: &str) -> Proxy {
        if let Ok(filter) = std::env::var("SY_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let resolved = Config::from_toml(config, &HashMap::<String, String>::new())
            .expect("test config is valid");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let app = rt
            .block_on(async { App::build(resolved, Metrics::new(prometheus::Registry::new())) })
            .expect("app builds");
        let shared = app.state.clone();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let admin = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let admin_port = admin.local_addr().unwrap().port();
        let stop = app.lifecycle();
        let thread = std::thread::spawn(move || {
            rt.block_on(app.run(listener, Some(admin)));
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        });
        Proxy {
            port,
            admin_port,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// A proxy with one PostgreSQL backend `main` and the user app/secret.
    pub fn simple(url: &str, extra_backend: &str) -> Proxy {
        Proxy::start(&format!(
            "[[users]]\nname = \"app\"\npassword = \"secret\"\n[backends.main]\nurl = \"{url}\"\n{extra_backend}\n"
        ))
    }

    pub fn url(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/app?sslmode=disable",
            self.port
        )
    }

    /// Metrics text.
    pub fn metrics(&self) -> String {
        // As GET /metrics does: the gauges read from pools first.
        self.shared.refresh_gauges();
        self.shared.metrics.render()
    }

    /// (idle, in use) server connections of the active backend.
    pub fn pool_counts(&self) -> (u32, u32) {
        self.shared.router.active().pool_counts()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
