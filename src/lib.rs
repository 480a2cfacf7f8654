//! switchyard: a PostgreSQL wire-protocol sidecar that routes an application's traffic to
//! one of several backends and moves it between them without dropping connections.
//!
//! Module map:
//! - [`config`]: TOML config, `${VAR}` expansion, validation.
//! - [`app`]: builds a proxy from its config and runs it (the library entry point).
//! - [`state`]: the state every layer of a running proxy shares.
//! - [`lifecycle`]: the owner of every task, and shutdown.
//! - [`frontend`]: client connections (startup, TLS, auth, cancel, session loop).
//! - [`relay`]: protocol state between a client and a server connection.
//! - [`backend`]: backends, their pools and server connections.
//! - [`notify`]: LISTEN/NOTIFY served from the proxy's own listening connections.
//! - [`router`]: the active route and the pause/drain gate.
//! - [`protocol`]: wire-protocol framing, builders and parsers.
//! - [`fleet`]: sidecars of one app switching as one, coordinated through PostgreSQL.
//! - [`admin`]: the admin HTTP API.
//! - [`sync`]: `switchyard sync` and `switchyard verify`.
//! - [`metrics`]: Prometheus metrics.
//! - [`stream`], [`tls`]: byte streams and TLS configuration.
//! - [`cli`], [`ctl`]: the command line and the admin API client; [`check_config`]:
//!   `switchyard check-config`; [`logging`]: log format.
//!
//! Outside the crate only [`cli`] (the binary's entry point) and [`testing`] (what the
//! integration tests and fuzz targets drive, named explicitly) are visible.

pub(crate) mod admin;
pub(crate) mod app;
pub(crate) mod backend;
pub(crate) mod check_config;
pub mod cli;
pub(crate) mod config;
pub(crate) mod ctl;
pub(crate) mod fleet;
pub(crate) mod frontend;
pub(crate) mod init;
pub(crate) mod lifecycle;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod notify;
pub(crate) mod protocol;
pub(crate) mod relay;
pub(crate) mod reload;
pub(crate) mod router;
pub(crate) mod state;
pub(crate) mod stream;
pub(crate) mod sync;
pub(crate) mod tls;

pub mod testing;
