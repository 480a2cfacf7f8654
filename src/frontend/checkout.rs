//! Taking a server connection for a client's transaction: the handover that brings it to
//! the client's session settings, and a retry for connections the server closed while
//! they sat in the pool.
//!
//! The check at checkout (`ServerStream::idle_and_open`) sees a close that has arrived;
//! one still on its way (the server ended the idle session a moment before, or its FATAL
//! is crossing a slow network) shows only when the connection is used. So a connection
//! that sat idle for [`PROBE_AFTER`] or more is sent a request of the proxy's own ahead of
//! the client's: its handover statements, or else a Sync. The server answers in order, so
//! a FATAL that comes before the answer to that request proves the server ran none of
//! what followed it, and the client's messages are handled again on a fresh connection
//! (up to [`MAX_TRIES`] times). Any other loss is reported as it is: the server may have
//! run the request before it went. Behind a transaction pooler the proxy's request is a
//! round trip of its own before the client's, with the same retry.

use bytes::BytesMut;

use super::session::{Refused, Session};
use crate::backend::AcquireError;
use crate::config::PoolerMode;
use crate::metrics::ErrorKind;
use crate::protocol::build::ErrorFields;
use crate::protocol::{be, build, framing, parse, sqlstate};
use crate::relay::rewind::Mark;
use crate::router::Held;

/// Fresh connections tried for one request after the first.
pub const MAX_TRIES: u8 = 3;
/// A connection idle this long in the pool is sent a request of the proxy's own first.
pub const PROBE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
/// Client messages beyond this much (a large COPY, say) are not kept for a retry.
const MAX_KEPT: usize = 64 * 1024;

/// The client messages handled since a fresh connection was taken, kept until it answers.
#[derive(Default)]
pub(super) struct Replay {
    kept: BytesMut,
    mark: Option<Mark>,
    /// Connections found closed for the current request.
    tries: u8,
}

impl Replay {
    pub(super) fn armed(&self) -> bool {
        self.mark.is_some()
    }

    /// Keeps a client message that went to the fresh connection.
    pub(super) fn keep(&mut self, msg: &[u8]) {
        if self.mark.is_none() {
            return;
        }
        if self.kept.len() + msg.len() > MAX_KEPT {
            self.disarm();
        } else {
            self.kept.extend_from_slice(msg);
        }
    }

    /// The connection answered (or is given up for another reason): nothing to retry.
    pub(super) fn disarm(&mut self) {
        self.mark = None;
        self.kept.clear();
        self.tries = 0;
    }
}

/// What the first bytes from a fresh connection say.
#[derive(Debug, PartialEq, Eq)]
enum FirstAnswer {
    /// Not a whole message yet.
    Incomplete,
    /// A FATAL error before the answer to the proxy's own first request: the server
    /// ended the session before it ran anything it was sent.
    Closed,
    Answered,
}

fn first_answer(rbuf: &[u8]) -> FirstAnswer {
    let Ok(Some(h)) = framing::header(rbuf, usize::MAX >> 1) else {
        return FirstAnswer::Incomplete;
    };
    if h.tag != be::ERROR_RESPONSE {
        return FirstAnswer::Answered;
    }
    if rbuf.len() < h.total {
        return FirstAnswer::Incomplete;
    }
    if parse::is_fatal(&rbuf[framing::HEADER_LEN..h.total]) {
        FirstAnswer::Closed
    } else {
        FirstAnswer::Answered
    }
}

impl Session {
    /// Takes a server connection for a new transaction and brings it up to the client's
    /// session settings. The error is for the client when none could be had.
    /// `tag` and `len`: the client message (at the start of `client_in`) that needs it.
    pub(super) async fn acquire(&mut self, tag: u8, len: usize) -> Result<(), Refused> {
        let mut tries = 0;
        let (held, leads) = loop {
            match self.checkout().await? {
                Ok(taken) => break taken,
                Err((backend, err)) if tries < MAX_TRIES => {
                    tries += 1;
                    self.count_retry(&backend, &err.message);
                }
                Err((_, err)) => return Err(Refused::Client(err)),
            }
        };
        self.held = Some(held);
        if leads && self.replay.tries < MAX_TRIES {
            self.replay.mark = Some(self.relay.mark());
        } else {
            self.replay.disarm();
        }
        self.watch_for_cancel(tag, len);
        Ok(())
    }

    /// One connection from the router, handed over to this client, and whether a request
    /// of the proxy's own goes ahead of the client's on it. The inner error: the
    /// connection failed while the handover ran alone on it (behind a transaction
    /// pooler), which is worth a try on another one.
    async fn checkout(&mut self) -> Result<Result<(Held, bool), (String, ErrorFields)>, Refused> {
        self.shared.metrics.clients_waiting.inc();
        let result = self.shared.router.acquire().await;
        self.shared.metrics.clients_waiting.dec();
        // A client held at the gate (a pause) when the proxy shuts down gets no server.
        let mut held = match result {
            Ok(h) => h,
            Err(AcquireError::ShuttingDown) => return Err(Refused::Shutdown),
            Err(e) => {
                tracing::warn!(session = self.id, error = %e, "no server connection for client");
                self.shared.metrics.count_error(ErrorKind::PoolTimeout);
                return Err(Refused::Client(super::errors::no_server(&e)));
            }
        };
        self.relay.pooler = held.backend.pooler();
        self.relay.offer_pin(held.backend.session_pins());
        let handover = self.relay.handover(&mut held.conn, self.id);
        // (An embedded database's connections are never closed under the proxy.)
        let idle =
            held.backend.postgres_port().is_some() && held.conn.taken.elapsed() >= PROBE_AFTER;
        held.conn.taken = std::time::Instant::now();
        let mut own: Vec<&str> = handover.statements().collect();
        if held.backend.pooler() == PoolerMode::Transaction {
            // A transaction pooler unlinks its server at the ReadyForQuery that ends the
            // handover: answers to client messages pipelined behind it would be lost. So
            // behind a pooler each statement is a round trip of its own.
            if own.is_empty() && idle {
                own.push("");
            }
            for sql in own {
                match apply_settings_alone(&mut held, sql).await {
                    Ok(()) => {}
                    Err(Applied::Refused(err)) => return Err(Refused::Client(err)),
                    Err(Applied::Closed(err)) => {
                        return Ok(Err((held.backend.name.to_string(), err)));
                    }
                }
            }
            return Ok(Ok((held, false)));
        }
        let leads = !own.is_empty() || idle;
        for sql in &own {
            self.relay.own_request(|b| build::query(b, sql));
        }
        if own.is_empty() && idle {
            self.relay.own_request(build::sync);
        }
        Ok(Ok((held, leads)))
    }

    /// Server data arrived. While a fresh connection has not answered yet, checks that
    /// its first message is not the FATAL of a session the server had already ended;
    /// if it is, the client's messages go to another connection. True when the data is
    /// for the relay to process now.
    pub(super) fn first_answer_ok(&mut self) -> bool {
        if !self.replay.armed() {
            return true;
        }
        let Some(held) = self.held.as_ref() else {
            return true;
        };
        match first_answer(&held.conn.rbuf) {
            FirstAnswer::Incomplete => false,
            FirstAnswer::Answered => {
                self.replay.disarm();
                true
            }
            FirstAnswer::Closed => {
                let (_, message) = parse::error_fields(&held.conn.rbuf[framing::HEADER_LEN..]);
                !self.retry_elsewhere(&message)
            }
        }
    }

    /// Gives the fresh connection up and puts the client messages it was sent back in
    /// front of the client's input. False when they cannot be taken back exactly.
    pub(super) fn retry_elsewhere(&mut self, why: &str) -> bool {
        let Some(mark) = self.replay.mark.take() else {
            return false;
        };
        let Some(mut held) = self.held.take() else {
            return false;
        };
        if !self.relay.rewind(mark, &mut held.conn) {
            self.held = Some(held);
            self.replay.disarm();
            return false;
        }
        held.conn.broken = true;
        self.cancel.slot.set(None);
        self.server_dirty = false;
        self.count_retry(&held.backend.name, why);
        drop(held);
        let mut input = std::mem::take(&mut self.replay.kept);
        input.extend_from_slice(&self.client_in);
        self.client_in = input;
        self.replay.tries += 1;
        true
    }

    fn count_retry(&self, backend: &str, why: &str) {
        tracing::info!(
            session = self.id,
            backend,
            reason = why,
            "the server had closed the connection taken from the pool before it answered; sending the request on a fresh connection"
        );
        self.shared
            .metrics
            .requests_retried
            .with_label_values(&[backend])
            .inc();
    }
}

/// How running a handover statement alone failed.
enum Applied {
    /// The server refused it.
    Refused(ErrorFields),
    /// The connection failed before answering.
    Closed(ErrorFields),
}

/// Runs the session-settings statement on `held` and waits for its answer; for an empty
/// one, a Sync (a round trip that proves the connection open).
async fn apply_settings_alone(held: &mut Held, sql: &str) -> Result<(), Applied> {
    let answer = if sql.is_empty() {
        let mut sync = BytesMut::new();
        build::sync(&mut sync);
        match held.conn.send(&sync).await {
            Ok(()) => held.conn.read_until_ready().await,
            Err(e) => Err(e),
        }
    } else {
        held.conn.own_query(sql).await
    };
    match answer {
        Ok(res) => match res.error {
            None => Ok(()),
            Some((code, message)) => {
                held.conn.broken = true;
                Err(Applied::Refused(ErrorFields::error(
                    sqlstate::CONNECTION_FAILURE,
                    format!(
                        "cannot apply this session's settings on the server: {message} ({code})"
                    ),
                )))
            }
        },
        Err(e) => {
            held.conn.broken = true;
            Err(Applied::Closed(ErrorFields::error(
                sqlstate::CONNECTION_FAILURE,
                e.to_string(),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(severity: crate::protocol::build::Severity) -> BytesMut {
        let mut b = BytesMut::new();
        let mut e = ErrorFields::error(
            "57P01",
            "terminating connection due to administrator command",
        );
        e.severity = severity;
        build::error_response(&mut b, &e);
        b
    }

    #[test]
    fn a_fatal_before_any_answer_means_closed() {
        let fatal = error(build::Severity::Fatal);
        assert_eq!(first_answer(&fatal), FirstAnswer::Closed);
        assert_eq!(
            first_answer(&fatal[..fatal.len() - 1]),
            FirstAnswer::Incomplete
        );
        assert_eq!(first_answer(&fatal[..3]), FirstAnswer::Incomplete);
        assert_eq!(
            first_answer(&error(build::Severity::Error)),
            FirstAnswer::Answered
        );
        let mut ready = BytesMut::new();
        build::ready_for_query(&mut ready, crate::protocol::TxStatus::Idle);
        assert_eq!(first_answer(&ready), FirstAnswer::Answered);
    }
}
