//! PostgreSQL backends: opening authenticated connections (TCP, Unix socket, TLS) and
//! cancelling queries. Relaying is shared with every backend in `crate::relay`.

pub mod connect;
