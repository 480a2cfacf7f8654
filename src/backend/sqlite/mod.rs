//! The SQLite backend: a SQLite file served over the PostgreSQL protocol.
//!
//! Each pooled "server connection" is a thread that owns one rusqlite connection (WAL
//! mode, a busy timeout, foreign keys on) and speaks the PostgreSQL protocol over an
//! in-process pipe, so the relay treats it exactly like a PostgreSQL server: transaction
//! pooling, prepared statements, session settings and switching all work unchanged.
//! Nothing SQLite does ever runs on the async runtime's threads.
//!
//! - [`translate`], [`ddl`], [`infer`]: PostgreSQL SQL → SQLite SQL and types.
//! - [`session`], [`extended`], [`exec`], [`wire`]: the protocol and transactions;
//!   [`isolation`]: PostgreSQL's isolation levels and lock waits on SQLite.
//! - [`types`], [`setvar`], [`functions`], [`catalog`], [`error`].

pub mod alter;
mod alter_column;
mod array_concat;
mod array_functions;
pub mod arrays;
mod booltext;
pub mod busy;
mod casts;
pub mod catalog;
mod coerce;
mod column_names;
mod constraints;
mod cursors;
mod date_functions;
pub mod datetime;
pub mod ddl;
mod decimal;
mod decimal_rewrite;
mod decimal_shown;
mod decimal_spread;
mod defaults;
mod distinct_on;
mod drops;
pub mod enums;
pub mod error;
pub mod exec;
pub mod extended;
mod format;
mod from_functions;
pub mod functions;
mod indexdef;
pub mod infer;
mod infer_functions;
mod infer_sources;
mod input;
pub mod interval;
pub mod isolation;
mod json_build;
mod json_srf;
mod json_values;
pub mod jsonb;
mod jsonb_ops;
mod lateral;
mod null_order;
pub mod numeric;
mod opclass;
mod ordered_set;
mod pg_functions;
mod positions;
mod rebuild;
mod regex_functions;
pub mod rewrite;
mod rewrite_ops;
mod scope;
mod sequences;
mod series;
pub mod session;
pub mod setvar;
mod special;
mod srf_select;
mod standard_forms;
mod temporal_rewrite;
mod to_char;
mod to_char_number;
pub mod translate;
mod truncate;
pub mod types;
pub mod typmod;
mod value_types;
pub mod wire;
mod zone;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, InterruptHandle};

use super::conn::ServerConn;
use super::error::BackendError;
use crate::config::SqliteOpen;
use crate::stream::ServerStream;
use session::Session;
use setvar::Settings;

/// One SQLite database file.
pub struct SqliteEngine {
    pub path: PathBuf,
    db_name: String,
    next_pid: AtomicU32,
    interrupts: Mutex<HashMap<u32, InterruptHandle>>,
}

fn engine_err(path: &Path, e: impl std::fmt::Display) -> BackendError {
    BackendError::Engine(format!("SQLite database {}: {e}", path.display()))
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    busy::wait_per_session(&mut conn)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON;",
    )?;
    conn.set_prepared_statement_cache_capacity(256);
    rusqlite::vtab::series::load_module(&conn)?;
    Ok(conn)
}

/// The error for a configured SQLite file that is not there.
fn missing(path: &Path) -> String {
    let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!(
        "SQLite database {} does not exist (full path {}); switchyard does not make an empty \
         one for a configured backend. Check the path (a relative one is taken from the config \
         file's directory), or create the file first (sqlite3 FILE 'vacuum')",
        path.display(),
        full.display()
    )
}

impl SqliteEngine {
    /// Opens the database file once to check it is usable (see [`SqliteOpen`] for a file
    /// that does not exist, and for a check that changes nothing).
    pub fn new(path: &Path, mode: SqliteOpen) -> Result<Arc<SqliteEngine>, String> {
        let err = |e: &dyn std::fmt::Display| format!("SQLite database {}: {e}", path.display());
        if mode != SqliteOpen::Create && !path.exists() {
            return Err(missing(path));
        }
        if mode == SqliteOpen::Check {
            Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|c| c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())))
                .map_err(|e| err(&e))?;
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
            }
            let conn = open(path).map_err(|e| err(&e))?;
            catalog::install(&conn).map_err(|e| err(&e))?;
        }
        let db_name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sqlite".into());
        Ok(Arc::new(SqliteEngine {
            path: path.to_path_buf(),
            db_name,
            next_pid: AtomicU32::new(1),
            interrupts: Mutex::default(),
        }))
    }

    /// Opens a connection thread and returns its end of the pipe as a server connection.
    pub async fn connect(self: &Arc<Self>, id: u64) -> Result<ServerConn, BackendError> {
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let handle = tokio::runtime::Handle::current();
        let engine = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("sqlite-{pid}"))
            .spawn(move || {
                let settings = Arc::new(Mutex::new(Settings::default()));
                let opened = open(&engine.path).and_then(|c| {
                    functions::register(&c, settings.clone(), pid, engine.db_name.clone())?;
                    catalog::install(&c)?;
                    Ok(c)
                });
                match opened {
                    Ok(conn) => {
                        engine
                            .interrupts
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(pid, conn.get_interrupt_handle());
                        let _ = tx.send(Ok(()));
                        wire::serve(theirs, handle, Session::new(conn, settings));
                        engine
                            .interrupts
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&pid);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        spawned.map_err(|e| engine_err(&self.path, e))?;
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(engine_err(&self.path, e)),
            Err(_) => return Err(engine_err(&self.path, "connection thread ended")),
        }
        let mut conn = ServerConn::new(
            ServerStream::Local(ours),
            format!("sqlite:{}", self.path.display()).into(),
            id,
        );
        conn.key = Some((pid, 0));
        conn.reported = Settings::default()
            .reported()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        conn.set_baseline();
        Ok(conn)
    }

    /// Interrupts the statement running on connection `pid`.
    pub fn cancel(&self, pid: u32) {
        if let Some(h) = self
            .interrupts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
        {
            h.interrupt();
        }
    }
}
