//! Integration tests against real PostgreSQL clusters and PgBouncer, with real clients.

mod support;

mod auth_tls;
mod cli;
mod django;
mod drivers;
mod faults;
mod hostile;
mod lifecycle;
mod listen;
mod live;
mod live_choices;
mod live_copy;
mod live_faults;
mod live_race;
mod live_standalone;
mod memory;
mod pgbench;
mod pinning;
mod pool_retry;
mod proxy_basic;
mod proxy_session;
mod route;
mod runbook;
mod schema_first;
mod security;
mod sql_prepare;
mod sqlite;
mod sqlite_ddl;
mod sqlite_isolation;
mod sqlite_session;
mod switch_bounds;
mod switching;
mod sync;
mod transparency;
mod verify;
