//! One client session after login: the loop that reads client messages, takes a server
//! connection from the router when a transaction starts, pumps bytes both ways, and gives
//! the server connection back at the end of each transaction.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use thiserror::Error;

use super::cancel::{CancelHandle, CancelTarget};
use crate::config::PoolerMode;
use crate::metrics::ErrorKind;
use crate::protocol::build::ErrorFields;
use crate::protocol::{TxStatus, fe, framing};
use crate::relay::pump::{self, Event, Out, PumpError, Sides};
use crate::relay::{Relay, RelayError, Step};
use crate::router::Held;
use crate::state::ProxyState;
use crate::stream::ClientStream;

#[derive(Debug, Error)]
pub enum SessionError {
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error("client I/O: {0}")]
    Client(std::io::Error),
}

/// A logged-in client.
pub struct Session {
    pub shared: Arc<ProxyState>,
    pub client: ClientStream,
    pub client_in: BytesMut,
    pub relay: Relay,
    pub held: Option<Held>,
    pub cancel: CancelHandle,
    pub id: u64,
    client_dirty: bool,
    pub(super) server_dirty: bool,
    /// This user's connection slot (`[[users]] max_connections`), held until the end.
    pub user_slot: Option<super::throttle::UserSlot>,
    /// The session must end (after what is already queued for the client), with this.
    pub(super) ending: Option<ErrorFields>,
    /// What a fresh server connection was sent, until it answers.
    pub(super) replay: super::checkout::Replay,
    /// Notifications for the client, while it listens through the proxy.
    pub(super) mailbox: Option<Arc<crate::notify::Mailbox>>,
}

/// Why a client got no server connection.
pub(super) enum Refused {
    /// An error to answer the client's statement with.
    Client(ErrorFields),
    /// The proxy is shutting down.
    Shutdown,
    /// The session cannot go on: tell the client (FATAL) and close.
    End(ErrorFields),
}

impl Session {
    pub fn new(
        shared: Arc<ProxyState>,
        client: ClientStream,
        client_in: BytesMut,
        relay: Relay,
        cancel: CancelHandle,
        id: u64,
    ) -> Self {
        Session {
            client,
            client_in,
            relay,
            held: None,
            cancel,
            id,
            client_dirty: false,
            server_dirty: false,
            user_slot: None,
            ending: None,
            replay: Default::default(),
            mailbox: None,
            shared,
        }
    }

    /// Serves the client until it leaves. Server connections are always returned or discarded.
    pub async fn run(mut self) -> Result<(), SessionError> {
        let result = self.serve().await;
        if let Err(SessionError::Relay(e)) = &result {
            self.relay.fatal(&e.to_client());
            let _ = self.flush_client().await;
        }
        self.stop_listening();
        self.cleanup().await;
        result
    }

    async fn serve(&mut self) -> Result<(), SessionError> {
        loop {
            if let Some(err) = self.ending.take() {
                self.relay.fatal(&err);
                return self.flush_client().await.map_err(SessionError::Client);
            }
            if self.process_client().await? == Step::Terminate {
                return Ok(());
            }
            self.apply_listens().await;
            self.note_notifier();
            self.maybe_release();
            let has_pending = self.has_complete_message();
            let limit = self.timeout_now();
            let idle = self.held.is_none() || self.parked();
            if idle {
                self.deliver_mail();
                if self.ending.is_some() {
                    continue;
                }
            }
            let step = {
                let server = self.held.as_mut().map(|h| {
                    let conn = &mut *h.conn;
                    (
                        &mut conn.stream,
                        &mut conn.rbuf,
                        Out {
                            buf: &mut self.relay.server_out,
                            dirty: &mut self.server_dirty,
                        },
                    )
                });
                pump::step(Sides {
                    client: &mut self.client,
                    client_in: &mut self.client_in,
                    client_out: Out {
                        buf: &mut self.relay.client_out,
                        dirty: &mut self.client_dirty,
                    },
                    server,
                    read_client: true,
                    wake_on_drain: has_pending,
                    // Without a transaction open, a shutdown ends the session at once;
                    // inside one, the transaction finishes first.
                    stop: idle.then(|| {
                        (
                            &self.cancel.slot.wake,
                            self.shared.lifecycle.stopping_flag(),
                        )
                    }),
                    mail: self.mailbox.as_ref().map(|m| m.flag()),
                })
            };
            let event = match limit {
                None => step.await,
                Some((limit, kind)) => match tokio::time::timeout(limit, step).await {
                    Ok(e) => e,
                    Err(_) => match kind {
                        Timeout::Query => {
                            self.query_timed_out(limit);
                            continue;
                        }
                        Timeout::IdleTransaction => return self.idle_timed_out(limit).await,
                    },
                },
            };
            match event {
                Ok(Event::ClientData) | Ok(Event::Idle) => {}
                Ok(Event::ServerData) => {
                    if !self.first_answer_ok() {
                        continue;
                    }
                    loop {
                        if let Some(h) = self.held.as_mut() {
                            if let Err(e) = self.relay.on_server_input(&mut h.conn) {
                                h.conn.broken = true;
                                return Err(e.into());
                            }
                            if let Some(fatal) = self.relay.server_fatal.take() {
                                return self.server_ended(fatal).await;
                            }
                            if std::mem::take(&mut self.relay.fenced)
                                && let Some(fleet) = &self.shared.fleet
                            {
                                fleet.fence_hit(&self.shared);
                            }
                        }
                        if !self.own_notifications_first().await {
                            break;
                        }
                    }
                }
                Ok(Event::ClientClosed) => return Ok(()),
                Ok(Event::Stop) => return self.shut_down().await,
                Err(PumpError::Client(e)) => return Err(SessionError::Client(e)),
                Ok(Event::ServerClosed) => self.server_lost("the server closed the connection"),
                Err(PumpError::Server(e)) => self.server_lost(&e.to_string()),
            }
        }
    }

    /// Which timeout applies while waiting now: the server owes an answer (query), or the
    /// client sits in an open transaction (idle in transaction).
    fn timeout_now(&self) -> Option<(std::time::Duration, Timeout)> {
        self.held.as_ref()?;
        let p = &self.shared.proxy;
        if self.relay.busy() {
            // Only while the server owes us bytes: a client reading a large result slowly
            // holds the server back through backpressure, which is not a stalled server.
            if !self.relay.client_out.is_empty() {
                return None;
            }
            p.query_timeout.map(|d| (d.0, Timeout::Query))
        } else if self.relay.status != TxStatus::Idle {
            p.idle_transaction_timeout
                .map(|d| (d.0, Timeout::IdleTransaction))
        } else {
            None
        }
    }

    /// The server said nothing for `proxy.query_timeout`: cancel the query, discard the
    /// connection, and answer the client with 57014.
    fn query_timed_out(&mut self, limit: std::time::Duration) {
        let Some(held) = self.discard_held(ErrorKind::QueryTimeout) else {
            return;
        };
        tracing::warn!(session = self.id, backend = %held.backend.name, timeout_ms = limit.as_millis() as u64, "query timed out; cancelling it and discarding its server connection");
        if let Some(key) = held.conn.key {
            let backend = held.backend.clone();
            self.shared.lifecycle.spawn(async move {
                let _ = backend.cancel(key).await;
            });
        }
        self.relay
            .abandon_server(super::errors::query_timeout(limit.as_millis()));
        self.relay.server_out.clear();
    }

    /// Gives up the server connection in use (it will be closed, not pooled), counting
    /// why under `switchyard_errors_total{kind}`.
    fn discard_held(&mut self, kind: ErrorKind) -> Option<Held> {
        let mut held = self.held.take()?;
        held.conn.broken = true;
        self.replay.disarm();
        if self.relay.pin.is_pinned() && self.relay.kept_state {
            // Its LISTEN, temporary tables, … went with that server session: the client
            // must not go on as if they were there.
            self.ending = Some(super::errors::session_state_lost(&held.backend.name));
        }
        self.relay.unpin();
        self.shared.metrics.count_error(kind);
        self.cancel.slot.set(None);
        Some(held)
    }

    /// The client kept a transaction open and idle for `proxy.idle_transaction_timeout`:
    /// tell it and end the session (cleanup rolls the transaction back).
    async fn idle_timed_out(&mut self, limit: std::time::Duration) -> Result<(), SessionError> {
        self.shared
            .metrics
            .count_error(ErrorKind::IdleTransactionTimeout);
        tracing::info!(
            session = self.id,
            "idle-in-transaction timeout; closing the client"
        );
        self.relay
            .fatal(&super::errors::idle_in_transaction(limit.as_millis()));
        let _ = self.flush_client().await;
        Ok(())
    }

    fn has_complete_message(&self) -> bool {
        matches!(
            framing::complete(&self.client_in, self.relay.max_message),
            Ok(Some(_))
        )
    }

    /// Handles every complete client message that is buffered.
    async fn process_client(&mut self) -> Result<Step, SessionError> {
        loop {
            if self.relay.server_out.len() >= pump::HIGH_WATER {
                return Ok(Step::Done);
            }
            let Some(h) = framing::complete(&self.client_in, self.relay.max_message)
                .map_err(RelayError::from)?
            else {
                return Ok(Step::Done);
            };
            if self.parked() && h.tag != fe::TERMINATE {
                let resumed = self.resume(h.tag, h.total).await;
                if let Some(step) = self.refused(resumed, h.tag, h.total).await? {
                    return Ok(step);
                }
                continue;
            }
            self.relay.listen_hub = self.shared.notify.available();
            let step = {
                let msg = &self.client_in[..h.total];
                let server = self.held.as_mut().map(|h| &mut **h.conn);
                self.relay.on_client(h.tag, msg, server)?
            };
            match step {
                Step::Done => {
                    self.replay.keep(&self.client_in[..h.total]);
                    self.client_in.advance(h.total);
                }
                Step::Terminate => return Ok(Step::Terminate),
                Step::NeedServer => {
                    let acquired = self.acquire(h.tag, h.total).await;
                    if let Some(step) = self.refused(acquired, h.tag, h.total).await? {
                        return Ok(step);
                    }
                }
            }
        }
    }

    /// Handles a failure to get a server for the message at the start of `client_in`:
    /// the client's error for it, or the end of the session (the step to return).
    async fn refused(
        &mut self,
        result: Result<(), Refused>,
        tag: u8,
        len: usize,
    ) -> Result<Option<Step>, SessionError> {
        let err = match result {
            Ok(()) => return Ok(None),
            Err(Refused::Shutdown) => {
                self.shut_down().await?;
                return Ok(Some(Step::Terminate));
            }
            Err(Refused::End(err)) => {
                self.relay.fatal(&err);
                self.flush_client().await.map_err(SessionError::Client)?;
                return Ok(Some(Step::Terminate));
            }
            Err(Refused::Client(err)) => err,
        };
        self.client_in.advance(len);
        if tag == fe::QUERY || tag == fe::FUNCTION_CALL {
            self.relay.query_error(&err);
        } else {
            self.relay.extended_error(&err);
        }
        Ok(None)
    }

    /// The proxy shuts down and this client has no transaction open: tell it why, as
    /// PostgreSQL does (FATAL 57P01), and close.
    async fn shut_down(&mut self) -> Result<(), SessionError> {
        self.relay.fatal(&super::errors::admin_shutdown());
        self.flush_client().await.map_err(SessionError::Client)?;
        tracing::debug!(session = self.id, "closed at shutdown");
        Ok(())
    }

    /// A transaction starts on the held connection: cancel requests reach it, and a
    /// switch's preflight sees it (with `tag`/`len`, the client message that began it).
    pub(super) fn watch_for_cancel(&mut self, tag: u8, len: usize) {
        let Some(held) = self.held.as_ref() else {
            return;
        };
        if let Some(key) = held.conn.key {
            self.cancel.slot.set(Some(CancelTarget {
                backend: held.backend.clone(),
                key,
                since: held.since,
                first: super::cancel::first_statement(tag, &self.client_in[..len]),
            }));
        }
    }

    /// Gives the server connection back when the transaction is over.
    fn maybe_release(&mut self) {
        if self.held.as_ref().is_some_and(|h| h.in_gate()) && self.relay.can_release() {
            self.count_transaction();
            if !self.park() {
                self.release();
            }
        }
    }

    /// The transaction on the held connection is over: its figures.
    fn count_transaction(&mut self) {
        let Some(held) = self.held.as_ref() else {
            return;
        };
        let m = &held.backend.metrics;
        m.transactions.inc();
        m.queries.inc_by(std::mem::take(&mut self.relay.queries));
        m.transaction_seconds
            .observe(held.since.elapsed().as_secs_f64());
    }

    fn release(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        self.cancel.slot.set(None);
        if held.conn.dirty && held.backend.pooler() == PoolerMode::Transaction {
            // Behind a transaction pooler nothing may be sent to clean a session (the
            // next statement can land on another one), so a connection with state the
            // proxy does not track is closed rather than handed to the next client.
            held.conn.broken = true;
        }
        self.server_dirty = false;
        drop(held);
    }

    /// The server connection died: tell the client and drop the connection.
    fn server_lost(&mut self, reason: &str) {
        if let Some(held) = self.discard_held(ErrorKind::ServerLost) {
            tracing::warn!(session = self.id, backend = %held.backend.name, reason, "server connection lost");
            self.relay.server_lost(&held.backend.name, reason);
            self.relay.server_out.clear();
        }
    }

    /// The server ended the session with a FATAL error (`pg_terminate_backend`, a
    /// shutdown, `idle_in_transaction_session_timeout`) while this client used it: the
    /// client gets that error as the server sent it, after what came before it, and is
    /// closed, as it would have been without the proxy.
    async fn server_ended(&mut self, fatal: crate::relay::ServerFatal) -> Result<(), SessionError> {
        if let Some(held) = self.discard_held(ErrorKind::ServerLost) {
            tracing::warn!(session = self.id, backend = %held.backend.name, reason = %fatal.reason, "the server ended the session in use; closing the client with its error");
        }
        self.relay.server_out.clear();
        self.relay.client_out.extend_from_slice(&fatal.message);
        self.flush_client().await.map_err(SessionError::Client)
    }

    async fn flush_client(&mut self) -> std::io::Result<()> {
        let out = self.relay.client_out.split();
        super::wire::send(&mut self.client, &out).await
    }

    /// The client is gone: leave the server connection clean for the next client, or
    /// discard it.
    async fn cleanup(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        self.cancel.slot.set(None);
        if !super::reset::reset(&mut self.relay, &mut held.conn).await {
            held.conn.broken = true;
        }
        self.release_held(held);
    }

    fn release_held(&mut self, held: Held) {
        let in_transaction = held.in_gate();
        self.held = Some(held);
        if in_transaction {
            // The transaction the vanished client left open is counted, as any other.
            self.count_transaction();
        }
        self.release();
    }
}

/// The timeouts a session enforces itself.
#[derive(Debug, Clone, Copy)]
enum Timeout {
    Query,
    IdleTransaction,
}
