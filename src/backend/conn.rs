//! A server connection as the relay uses it: the byte stream, its read buffer, what the
//! server reported, and what the proxy has put on it (settings, prepared statements).
//! Also the small request/response helper the proxy uses for its own queries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::BackendError;
use crate::protocol::{TxStatus, be, build, framing, parse};
use crate::relay::params::ParamMap;
use crate::relay::statements::ServerStatements;
use crate::stream::ServerStream;

/// Largest message accepted from a server during the proxy's own exchanges.
const OWN_LIMIT: usize = 64 << 20;

/// One connection to a backend.
pub struct ServerConn {
    pub stream: ServerStream,
    pub rbuf: BytesMut,
    /// Display address, for errors and logs.
    pub addr: Arc<str>,
    /// The server's BackendKeyData (pid, secret), for cancel requests.
    pub key: Option<(u32, u32)>,
    /// ParameterStatus values as last reported by the server.
    pub reported: BTreeMap<String, String>,
    /// ParameterStatus values when the connection was new: what `DISCARD ALL` returns to.
    pub baseline: BTreeMap<String, String>,
    /// The session may hold state the proxy does not track (a temporary table,
    /// `set_config(…, false)`): it is cleaned before anyone but `owner` uses it.
    pub dirty: bool,
    /// The client session that used the connection last.
    pub owner: u64,
    /// The server understands `DISCARD ALL` (PostgreSQL, not the SQLite backend).
    pub discards: bool,
    /// Session settings the proxy has applied (name → statement).
    pub applied: ParamMap,
    pub statements: ServerStatements,
    /// Set when the connection must not be reused.
    pub broken: bool,
    /// A statement cached here under a proxy name has a stale plan: the cache is
    /// dropped (`DEALLOCATE ALL`) at the next handover.
    pub stale_plans: bool,
    pub created: Instant,
    /// When a client last took it from the pool (when it was made, before that).
    pub taken: Instant,
    pub id: u64,
}

/// The outcome of a simple query the proxy ran for itself.
#[derive(Debug, Default)]
pub struct OwnQuery {
    pub rows: Vec<Vec<Option<String>>>,
    pub tags: Vec<String>,
    pub error: Option<(String, String)>,
    pub status: Option<TxStatus>,
    /// ParameterStatus messages the query caused, raw, to pass on to a client.
    pub param_msgs: BytesMut,
}

impl ServerConn {
    pub fn new(stream: ServerStream, addr: Arc<str>, id: u64) -> Self {
        ServerConn {
            stream,
            rbuf: BytesMut::with_capacity(16 * 1024),
            addr,
            key: None,
            reported: BTreeMap::new(),
            baseline: BTreeMap::new(),
            dirty: false,
            owner: 0,
            discards: false,
            applied: ParamMap::new(),
            statements: ServerStatements::default(),
            broken: false,
            stale_plans: false,
            created: Instant::now(),
            taken: Instant::now(),
            id,
        }
    }

    fn io_err(&self, source: std::io::Error) -> BackendError {
        BackendError::Io {
            addr: self.addr.to_string(),
            source,
        }
    }

    pub fn protocol_err(&self, detail: impl Into<String>) -> BackendError {
        BackendError::Protocol {
            addr: self.addr.to_string(),
            detail: detail.into(),
        }
    }

    /// Writes bytes and flushes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), BackendError> {
        let r = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        }
        .await;
        r.map_err(|e| {
            self.broken = true;
            self.io_err(e)
        })
    }

    /// Reads one whole message: (tag, body).
    pub async fn read_message(&mut self) -> Result<(u8, Bytes), BackendError> {
        loop {
            match framing::complete(&self.rbuf, OWN_LIMIT) {
                Ok(Some(h)) => {
                    let mut msg = self.rbuf.split_to(h.total);
                    let body = msg.split_off(framing::HEADER_LEN).freeze();
                    return Ok((h.tag, body));
                }
                Ok(None) => {}
                Err(e) => {
                    self.broken = true;
                    return Err(self.protocol_err(e.to_string()));
                }
            }
            self.rbuf.reserve(8192);
            let n = self.stream.read_buf(&mut self.rbuf).await.map_err(|e| {
                self.broken = true;
                self.io_err(e)
            })?;
            if n == 0 {
                self.broken = true;
                return Err(BackendError::Closed {
                    addr: self.addr.to_string(),
                });
            }
        }
    }

    /// Runs a simple query for the proxy itself and reads up to ReadyForQuery.
    pub async fn own_query(&mut self, sql: &str) -> Result<OwnQuery, BackendError> {
        let mut out = BytesMut::new();
        build::query(&mut out, sql);
        self.send(&out).await?;
        self.read_until_ready().await
    }

    /// Reads responses up to ReadyForQuery, collecting rows, tags and the first error.
    pub async fn read_until_ready(&mut self) -> Result<OwnQuery, BackendError> {
        let mut res = OwnQuery::default();
        loop {
            let (tag, body) = self.read_message().await?;
            match tag {
                be::DATA_ROW => res.rows.push(decode_text_row(&body)),
                be::COMMAND_COMPLETE => res
                    .tags
                    .push(String::from_utf8_lossy(parse::command_tag(&body)).into_owned()),
                be::ERROR_RESPONSE if res.error.is_none() => {
                    res.error = Some(parse::error_fields(&body));
                }
                be::PARAMETER_STATUS => {
                    self.note_parameter(&body);
                    build::message(&mut res.param_msgs, tag, |b| b.extend_from_slice(&body));
                }
                be::READY_FOR_QUERY => {
                    res.status = body.first().and_then(|&b| TxStatus::from_byte(b));
                    return Ok(res);
                }
                be::COPY_IN => {
                    let mut out = BytesMut::new();
                    build::copy_fail(&mut out, "switchyard does not send COPY data here");
                    self.send(&out).await?;
                }
                _ => {}
            }
        }
    }

    /// Records a ParameterStatus body.
    pub fn note_parameter(&mut self, body: &[u8]) {
        if let Ok((k, v)) = parse::parameter_status(body) {
            match self.reported.get_mut(k) {
                Some(old) if old == v => {}
                Some(old) => v.clone_into(old),
                None => {
                    self.reported.insert(k.to_string(), v.to_string());
                }
            }
        }
    }

    /// The connection is ready for its first client: what it reports now is its baseline.
    pub fn set_baseline(&mut self) {
        self.baseline = self.reported.clone();
    }

    /// Cleans a session another client left state on: `DISCARD ALL` drops its temporary
    /// tables, prepared statements, listens, advisory locks and settings, so the proxy's
    /// records of them are cleared too. Returns the statement to send (on its own: it
    /// cannot run inside a transaction block) or None when nothing needs cleaning.
    pub fn discard_for(&mut self, client: u64) -> Option<&'static str> {
        let needed = self.dirty && self.owner != client && self.discards;
        self.owner = client;
        if !needed {
            return None;
        }
        self.dirty = false;
        self.applied.clear();
        self.statements = ServerStatements::default();
        self.reported.clone_from(&self.baseline);
        Some("DISCARD ALL")
    }

    /// Says goodbye politely; errors do not matter at this point.
    pub async fn terminate(&mut self) {
        let mut out = BytesMut::new();
        build::terminate(&mut out);
        let _ = self.stream.write_all(&out).await;
        let _ = self.stream.shutdown().await;
    }
}

/// Decodes a text-format DataRow body.
fn decode_text_row(body: &[u8]) -> Vec<Option<String>> {
    let mut row = Vec::new();
    if body.len() < 2 {
        return row;
    }
    let n = i16::from_be_bytes([body[0], body[1]]).max(0) as usize;
    let mut pos = 2;
    for _ in 0..n {
        if pos + 4 > body.len() {
            break;
        }
        let len = i32::from_be_bytes([body[pos], body[pos + 1], body[pos + 2], body[pos + 3]]);
        pos += 4;
        if len < 0 {
            row.push(None);
            continue;
        }
        let end = (pos + len as usize).min(body.len());
        row.push(Some(String::from_utf8_lossy(&body[pos..end]).into_owned()));
        pos = end;
    }
    row
}
