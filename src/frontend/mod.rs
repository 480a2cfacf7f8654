//! The client side: accepting connections, TLS, startup and authentication, cancel keys,
//! and the per-client session loop.
//!
//! - [`listener`]: accept loop, connection limit, shutdown.
//! - [`startup`]: SSLRequest, CancelRequest, StartupMessage.
//! - [`auth`], [`users`]: SCRAM-SHA-256, md5, trust.
//! - [`login`]: greeting with the server's parameters.
//! - [`session`]: the relay loop; [`checkout`]: taking a server connection (and a
//!   fresh one when it was closed in the pool); [`reset`]: cleanup after a vanished client;
//!   [`pinned`]: clients that keep their server connection between transactions;
//!   [`listening`]: LISTEN/NOTIFY served by the proxy.
//! - [`cancel`]: proxy-issued cancel keys.
//! - [`throttle`]: slowing repeated login failures; per-user connection counts.

pub mod auth;
pub mod cancel;
pub mod channel_binding;
pub mod checkout;
pub mod errors;
pub mod listener;
pub mod listening;
pub mod login;
pub mod pinned;
pub mod reset;
pub mod session;
pub mod startup;
pub mod throttle;
pub mod users;
pub mod wire;
