//! Moving data, grouped by what a user runs:
//!
//! - [`schema`]: the table model and PostgreSQL DDL, and reading a source's schema
//!   (SQLite, PostgreSQL).
//! - [`source`]: reading a source's rows.
//! - [`copy`]: `switchyard sync` (plan, backfill, checkpoints, foreign keys, sequences).
//! - [`verify`]: `switchyard verify` (row-by-row comparison with a documented
//!   normalisation).
//! - [`live`]: change capture and continuous apply for a cutover without lost writes.
//! - [`choices`]: the user's per-column choices (left out, typed), from any command.
//! - [`pgconn`], [`progress`]: connections and progress display, shared by all of them.

pub mod choices;
pub mod copy;
pub mod live;
pub mod pgconn;
pub mod progress;
pub mod schema;
pub mod source;
pub mod verify;

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SyncError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot connect to {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error("source: {0}")]
    Source(String),
    #[error("target: {0}")]
    Target(String),
    /// A foreign-key or unique constraint on the target refused a write (a live apply
    /// round that read part of a change retries with more of the changelog).
    #[error("target: {0}")]
    Constraint(String),
    #[error("schema: {0}")]
    Schema(String),
    #[error("table {table}, row with key {key}, column {column}: {reason}")]
    BadValue {
        table: String,
        key: String,
        column: String,
        reason: String,
    },
    #[error("{0}")]
    Refused(String),
    /// Another process took over the live sync this one was applying.
    #[error(
        "live sync was taken over by another process (this one is {0}); this process stops applying"
    )]
    Fenced(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A tokio-postgres error with the server's message and SQLSTATE when there is one.
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        // The detail names the row ("Key (id)=(42) is still referenced from table …").
        Some(db) => match db.detail() {
            Some(detail) => format!("{} (SQLSTATE {}): {detail}", db.message(), db.code().code()),
            None => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        },
        // tokio-postgres's own text leaves out the cause ("error connecting to server").
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// What `switchyard sync` was asked to do.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub from: String,
    pub to: String,
    pub tables: Vec<String>,
    pub batch_rows: usize,
    pub parallel: usize,
    pub dry_run: bool,
    pub schema_only: bool,
    pub force: bool,
    pub resume: bool,
    pub skip_bad_rows: Option<PathBuf>,
    /// Source columns left out and column types stated by the user.
    pub choices: choices::ColumnChoices,
    /// Leave new foreign keys NOT VALID and return them in [`copy::plan::Summary::unvalidated`]
    /// (live sync validates them once the changes captured during the copy are applied).
    pub defer_foreign_keys: bool,
    /// Counts tables and rows as they are copied (live sync's progress in `/status`).
    pub tally: Option<std::sync::Arc<progress::CopyTally>>,
}
