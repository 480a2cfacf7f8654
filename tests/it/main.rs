//! Integration tests against real PostgreSQL clusters and PgBouncer, with real clients.

mod support;

mod proxy_basic;
mod pgbench;
mod proxy_session;
mod hostile;
mod auth_tls;
