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
//! - [`router`]: the active route and the pause/drain gate.
//! - [`protocol`]: wire-protocol framing, builders and parsers.
//! - [`admin`]: the admin HTTP API.
//! - [`sync`]: `switchyard sync` and `switchyard verify`.
//! - [`metrics`]: Prometheus metrics.
//! - [`stream`], [`tls`]: byte streams and TLS configuration.
//! - [`cli`], [`ctl`]: the command line and the admin API client; [`logging`]: log format.

pub mod admin;
pub mod app;
pub mod backend;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod frontend;
pub mod init;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod protocol;
pub mod relay;
pub mod reload;
pub mod router;
pub mod state;
pub mod stream;
pub mod sync;
pub mod tls;
