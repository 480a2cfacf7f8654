//! Server → client: messages are matched against the expected-response queue, forwarded in
//! runs (one copy per run, not per message), dropped when they answer the proxy's own
//! requests, and large rows are streamed through without being buffered whole.

use super::expect::{Expect, Undo};
use super::params;
use super::sqlscan::Effect;
use super::{Relay, RelayError};
use crate::backend::conn::ServerConn;
use crate::protocol::{TxStatus, be, framing, parse};

/// Messages at least this large that the relay does not need to read are streamed.
const STREAM_THRESHOLD: usize = 64 * 1024;

/// What to do with one server message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Forward,
    Drop,
}

/// Scan position over a server read buffer.
#[derive(Default)]
struct Cursor {
    /// Bytes consumed so far.
    pos: usize,
    /// Start of the run of forwarded bytes not yet copied to the client.
    run: usize,
    /// Extra capacity the buffer needs to hold the next message whole.
    reserve: usize,
}

impl Relay {
    /// Processes everything buffered from the server.
    pub fn on_server_input(&mut self, server: &mut ServerConn) -> Result<(), RelayError> {
        let mut buf = std::mem::take(&mut server.rbuf);
        let mut cur = Cursor::default();
        let result = self.scan(server, &buf, &mut cur);
        self.client_out.extend_from_slice(&buf[cur.run..cur.pos]);
        bytes::Buf::advance(&mut buf, cur.pos);
        if cur.reserve > 0 {
            buf.reserve(cur.reserve);
        }
        server.rbuf = buf;
        result
    }

    fn scan(
        &mut self,
        server: &mut ServerConn,
        buf: &[u8],
        cur: &mut Cursor,
    ) -> Result<(), RelayError> {
        loop {
            let avail = buf.len() - cur.pos;
            if self.stream_left > 0 {
                let n = self.stream_left.min(avail);
                if n == 0 {
                    return Ok(());
                }
                if !self.stream_forward {
                    self.flush_run(buf, cur, cur.pos);
                    cur.run = cur.pos + n;
                }
                cur.pos += n;
                self.stream_left -= n;
                continue;
            }
            let Some(h) = framing::header(&buf[cur.pos..], usize::MAX >> 1)? else {
                return Ok(());
            };
            if avail < h.total {
                if h.total >= STREAM_THRESHOLD && matches!(h.tag, be::DATA_ROW | be::COPY_DATA) {
                    let action = self.head_forwards();
                    self.stream_left = h.total - avail;
                    self.stream_forward = action == Action::Forward;
                    self.take(buf, cur, action, avail);
                } else {
                    cur.reserve = h.total - avail;
                }
                return Ok(());
            }
            let action = if matches!(h.tag, be::DATA_ROW | be::COPY_DATA) {
                self.head_forwards()
            } else {
                let body = &buf[cur.pos + framing::HEADER_LEN..cur.pos + h.total];
                self.on_message(server, h.tag, body)?
            };
            self.take(buf, cur, action, h.total);
            if let Some(m) = self.rewritten.take() {
                self.client_out.extend_from_slice(&m);
            }
            if self.server_fatal.is_some() || self.held_ready.is_some() {
                return Ok(());
            }
            if matches!(self.queue.head(), Some(Expect::Synthetic { .. })) {
                self.flush_run(buf, cur, cur.pos);
                cur.run = cur.pos;
                self.emit_ready();
            }
        }
    }

    /// Consumes `len` bytes at the cursor, forwarding them in the current run or dropping them.
    fn take(&mut self, buf: &[u8], cur: &mut Cursor, action: Action, len: usize) {
        if action == Action::Drop {
            self.flush_run(buf, cur, cur.pos);
            cur.pos += len;
            cur.run = cur.pos;
        } else {
            cur.pos += len;
        }
    }

    /// Copies the pending run of forwarded bytes up to `to`.
    fn flush_run(&mut self, buf: &[u8], cur: &mut Cursor, to: usize) {
        if to > cur.run {
            self.client_out.extend_from_slice(&buf[cur.run..to]);
        }
        cur.run = to;
    }

    fn head_forwards(&self) -> Action {
        match self.queue.head() {
            Some(Expect::Query { forward: false, .. }) => Action::Drop,
            _ => Action::Forward,
        }
    }

    fn desync(&self, got: u8) -> RelayError {
        RelayError::Desync {
            got: got as char,
            expected: match self.queue.head() {
                Some(e) => format!("{e:?}"),
                None => "nothing".into(),
            },
        }
    }

    fn on_message(
        &mut self,
        server: &mut ServerConn,
        tag: u8,
        body: &[u8],
    ) -> Result<Action, RelayError> {
        tracing::trace!(tag = %(tag as char), head = ?self.queue.head(), "server message");
        match tag {
            be::PARAMETER_STATUS => {
                server.note_parameter(body);
                // Caused by the proxy's own statements (a handover): not the client's news.
                let action = self.head_forwards();
                if action == Action::Forward {
                    self.seen.note(body);
                }
                Ok(action)
            }
            be::NOTICE_RESPONSE => Ok(self.head_forwards()),
            be::NOTIFICATION => Ok(self.on_notification(server, body)),
            be::PARSE_COMPLETE => match self.queue.pop() {
                Some(Expect::Parse { forward, .. }) => Ok(if forward {
                    Action::Forward
                } else {
                    Action::Drop
                }),
                _ => Err(self.desync(tag)),
            },
            be::BIND_COMPLETE => match self.queue.pop() {
                Some(Expect::Bind) => Ok(Action::Forward),
                _ => Err(self.desync(tag)),
            },
            be::CLOSE_COMPLETE => match self.queue.pop() {
                Some(Expect::Close { forward }) => Ok(if forward {
                    Action::Forward
                } else {
                    Action::Drop
                }),
                _ => Err(self.desync(tag)),
            },
            be::PARAMETER_DESCRIPTION => match self.queue.head() {
                Some(Expect::Describe) => Ok(Action::Forward),
                _ => Err(self.desync(tag)),
            },
            be::ROW_DESCRIPTION | be::NO_DATA => match self.queue.head() {
                Some(Expect::Describe) => {
                    self.queue.pop();
                    Ok(Action::Forward)
                }
                Some(Expect::Query { .. }) => Ok(self.head_forwards()),
                _ => Err(self.desync(tag)),
            },
            be::COMMAND_COMPLETE | be::EMPTY_QUERY | be::PORTAL_SUSPENDED => {
                self.on_complete(tag, body)
            }
            be::COPY_IN | be::COPY_BOTH => {
                self.in_copy = true;
                if matches!(self.queue.head(), Some(Expect::Execute { .. })) {
                    // The server ignores Syncs until the COPY ends, so it needs one after.
                    self.queue.copy_in_started();
                    self.unsynced = true;
                }
                Ok(Action::Forward)
            }
            be::COPY_OUT | be::COPY_DONE | be::FUNCTION_CALL_RESPONSE => Ok(self.head_forwards()),
            be::ERROR_RESPONSE => Ok(self.on_error(server, body)),
            be::READY_FOR_QUERY => self.on_ready(server, body),
            _ => Err(self.desync(tag)),
        }
    }

    fn on_complete(&mut self, tag: u8, body: &[u8]) -> Result<Action, RelayError> {
        self.in_copy = false;
        if tag == be::COMMAND_COMPLETE {
            self.saw_rollback = parse::command_tag(body) == b"ROLLBACK";
        }
        match self.queue.head_mut() {
            Some(Expect::Execute { effect }) => {
                if let (Some(e), be::COMMAND_COMPLETE) = (effect.take(), tag) {
                    self.params.record(*e);
                }
                self.queue.pop();
                Ok(Action::Forward)
            }
            Some(Expect::Query { .. }) if tag != be::PORTAL_SUSPENDED => Ok(self.head_forwards()),
            _ => Err(self.desync(tag)),
        }
    }

    /// A notification this client's own session sent names the server process, which the
    /// client knows by the id the proxy gave it: that id is put in its place.
    fn on_notification(&mut self, server: &ServerConn, body: &[u8]) -> Action {
        let own = server.key.map(|(pid, _)| pid.to_be_bytes());
        if body.len() < 4 || own.is_none_or(|pid| body[..4] != pid) || self.client_pid == 0 {
            return Action::Forward;
        }
        let mut m = Vec::with_capacity(body.len() + 5);
        m.push(be::NOTIFICATION);
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(&self.client_pid.to_be_bytes());
        m.extend_from_slice(&body[4..]);
        self.rewritten = Some(m);
        Action::Drop
    }

    fn on_error(&mut self, server: &mut ServerConn, body: &[u8]) -> Action {
        if parse::is_fatal(body) {
            // The server is about to close this connection: the session passes the error
            // on and closes the client, as the server would have.
            let (code, message) = parse::error_fields(body);
            let mut whole = Vec::with_capacity(body.len() + 5);
            whole.push(be::ERROR_RESPONSE);
            whole.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
            whole.extend_from_slice(body);
            self.server_fatal = Some(super::ServerFatal {
                reason: format!("{message} (SQLSTATE {code})"),
                message: whole,
            });
            server.broken = true;
            return Action::Drop;
        }
        server.statements.unnamed = None;
        self.in_copy = false;
        let (code, message) = parse::error_fields(body);
        if fence_refusal(&code, &message) {
            self.fenced = true;
        }
        if !self.pin.is_pinned() && !server.statements.is_empty() && stale_plan(&code, &message) {
            // A statement cached under a proxy name outlived a change of the tables it
            // reads: the server refuses it until it is made again.
            server.stale_plans = true;
        }
        if let Some(Expect::Query { forward, .. }) = self.queue.head() {
            self.query_failed = true;
            if !*forward {
                tracing::warn!(server = %server.addr, %code, %message, "re-applying session settings failed");
                return Action::Drop;
            }
            return Action::Forward;
        }
        for undo in self.queue.void_until_sync() {
            self.undo(server, undo);
        }
        if self.queue.is_empty() {
            // No Sync has been sent yet: the server ignores what the client sends until
            // its Sync, so the relay must expect nothing for it either. (A COPY FROM
            // STDIN that failed before the client ended it is over too: the client's
            // next Sync is answered, not swallowed.)
            self.skip_to_sync = true;
            self.queue.swallow_syncs = false;
        }
        Action::Forward
    }
}

/// A fleet's fence refusing a write (`fleet::fence`): SQLSTATE 25006 with its message.
fn fence_refusal(code: &str, message: &str) -> bool {
    code == "25006" && message.starts_with("switchyard fence:")
}

/// The server's "cached plan must not change result type" (a prepared statement whose
/// result columns changed under it).
fn stale_plan(code: &str, message: &str) -> bool {
    code == "0A000" && message.starts_with("cached plan must not change result type")
}

impl Relay {
    pub(super) fn undo(&mut self, server: &mut ServerConn, undo: Undo) {
        let Some(undo) = undo.into_parts() else {
            return;
        };
        if let Some((name, id)) = undo.client_added {
            self.stmts.remove_if(&name, id);
        }
        if let Some(body) = undo.server_added {
            server.statements.forget(&body);
        }
        if let Some((name, def)) = undo.client_removed {
            self.stmts.insert(&name, def);
        }
    }

    fn on_ready(&mut self, server: &mut ServerConn, body: &[u8]) -> Result<Action, RelayError> {
        let status = body
            .first()
            .and_then(|&b| TxStatus::from_byte(b))
            .ok_or_else(|| self.desync(be::READY_FOR_QUERY))?;
        let action = match self.queue.pop() {
            Some(Expect::Sync) => Action::Forward,
            Some(Expect::Query {
                forward,
                effects,
                undo,
            }) => {
                if std::mem::take(&mut self.query_failed) {
                    self.undo(server, undo);
                } else {
                    for e in effects {
                        self.params.record(e);
                    }
                }
                if forward {
                    Action::Forward
                } else {
                    Action::Drop
                }
            }
            _ => return Err(self.desync(be::READY_FOR_QUERY)),
        };
        self.in_copy = false;
        if action == Action::Forward {
            self.status = status;
        }
        if status == TxStatus::Idle && self.params.has_pending() {
            for e in self.params.finish_transaction(self.saw_rollback) {
                let followed = match &e {
                    Effect::Set { name, .. } | Effect::Reset { name } => self.seen.follows(name),
                    Effect::ResetAll => false,
                };
                if !followed {
                    params::apply(&mut server.applied, &e);
                }
            }
        }
        if status == TxStatus::Idle {
            self.finish_listens(self.saw_rollback);
            if std::mem::take(&mut self.notified_tx) && self.listening && action == Action::Forward
            {
                self.held_ready = Some(status);
                self.saw_rollback = false;
                return Ok(Action::Drop);
            }
        }
        self.saw_rollback = false;
        Ok(action)
    }
}
