//! `COPY … TO STDOUT` read over switchyard's own protocol code rather than tokio-postgres:
//! CopyData messages are handed to the caller straight from the read buffer, with no
//! allocation, reference count or channel hop per row. A verify reads millions of rows;
//! this is its PostgreSQL side.

use bytes::Buf;
use tokio::io::AsyncReadExt;

use crate::backend::conn::ServerConn;
use crate::backend::postgres::connect;
use crate::backend::url::PgTarget;
use crate::protocol::{be, build, framing, parse};
use crate::sync::SyncError;
use crate::tls;

/// Largest message accepted (a COPY row of a wide table can be large).
const LIMIT: usize = 256 << 20;
/// How much the read buffer grows by before each read.
const READ_SIZE: usize = 64 * 1024;

/// A simple query that ends in a COPY TO STDOUT, being read.
pub struct CopyReader {
    conn: ServerConn,
    error: Option<String>,
    done: bool,
}

fn connect_err(target: &PgTarget, detail: impl ToString) -> SyncError {
    SyncError::Connect {
        addr: target.host.to_string(),
        detail: detail.to_string(),
    }
}

impl CopyReader {
    /// Connects (TLS and authentication as for a backend) and sends `sql`, a simple query
    /// whose statements may include one `COPY … TO STDOUT`.
    pub async fn start(target: &PgTarget, sql: &str) -> Result<CopyReader, SyncError> {
        let tls = tls::client_config(target.sslmode, target.ca_file.as_deref())
            .map_err(|e| connect_err(target, e))?;
        let mut conn = connect::connect(target, tls.as_ref(), 0)
            .await
            .map_err(|e| connect_err(target, e))?;
        let mut out = bytes::BytesMut::new();
        build::query(&mut out, sql);
        conn.send(&out).await.map_err(|e| connect_err(target, e))?;
        Ok(CopyReader {
            conn,
            error: None,
            done: false,
        })
    }

    /// Calls `row` with the body of every CopyData message buffered, reading from the
    /// server first when none is. Returns false once the query is over (its error, if
    /// it failed).
    pub async fn next_batch(&mut self, mut row: impl FnMut(&[u8])) -> Result<bool, String> {
        loop {
            if self.done {
                return match self.error.take() {
                    Some(e) => Err(e),
                    None => Ok(false),
                };
            }
            let (used, rows) = self.take_buffered(&mut row)?;
            self.conn.rbuf.advance(used);
            if rows > 0 {
                return Ok(true);
            }
            if self.done {
                continue;
            }
            self.conn.rbuf.reserve(READ_SIZE);
            let n = self
                .conn
                .stream
                .read_buf(&mut self.conn.rbuf)
                .await
                .map_err(|e| format!("reading from {}: {e}", self.conn.addr))?;
            if n == 0 {
                return Err(format!("{} closed the connection", self.conn.addr));
            }
        }
    }

    /// Handles the complete messages in the buffer: (bytes used, rows handed over).
    fn take_buffered(&mut self, row: &mut impl FnMut(&[u8])) -> Result<(usize, usize), String> {
        let (mut used, mut rows) = (0, 0);
        loop {
            let buf = &self.conn.rbuf[used..];
            let Some(h) = framing::complete(buf, LIMIT).map_err(|e| e.to_string())? else {
                return Ok((used, rows));
            };
            let body = &buf[framing::HEADER_LEN..h.total];
            match h.tag {
                be::COPY_DATA => {
                    row(body);
                    rows += 1;
                }
                be::ERROR_RESPONSE if self.error.is_none() => {
                    let (code, message) = parse::error_fields(body);
                    self.error = Some(format!("{message} (SQLSTATE {code})"));
                }
                be::READY_FOR_QUERY => self.done = true,
                _ => {}
            }
            used += h.total;
            if self.done {
                return Ok((used, rows));
            }
        }
    }

    /// Ends the session politely.
    pub async fn close(mut self) {
        self.conn.terminate().await;
    }
}
