//! Reading a source's rows: a SQLite file ([`sqlite`], values scanned by [`sqlite_scan`]
//! and encoded for binary COPY by [`cast`]) or a PostgreSQL database ([`postgres`], COPY
//! passed through). Arrays, which SQLite keeps as JSON, are read by [`array`].

pub mod array;
pub mod cast;
pub mod postgres;
pub mod sqlite;
pub(crate) mod sqlite_scan;
