//! The relay: the protocol state between one client and whichever server connection it
//! holds at the moment. It frames messages, forwards them without decoding rows, rewrites
//! only statement names, keeps the order of proxy-made responses, tracks the transaction
//! status that decides when the server connection can go back to the pool, and keeps
//! prepared statements and session settings working across server connections.
//!
//! - [`client`]: client → server messages.
//! - [`server`]: server → client messages.
//! - [`expect`]: the queue of expected responses.
//! - [`statements`], [`params`], [`reported`]: what must follow the client across servers;
//!   [`handover`]: what a server connection needs before it serves this client.
//! - [`lexer`], [`sqlscan`]: SQL tokens and statement classification.
//! - [`pump`]: non-blocking I/O in both directions with backpressure.

pub mod client;
mod emulate;
pub mod expect;
pub mod handover;
pub mod lexer;
mod listen;
mod lost;
pub mod params;
pub mod pin;
pub mod pump;
pub mod reported;
pub mod rewind;
pub mod server;
mod sql_prepare;
pub mod sqlscan;
pub mod statements;

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::config::PoolerMode;
use crate::protocol::build::{self, ErrorFields};
use crate::protocol::framing::FrameError;
use crate::protocol::parse::Malformed;
use crate::protocol::{TxStatus, sqlstate};
use expect::{Expect, ExpectQueue, Synth, Undo};
use params::SessionParams;
use sqlscan::Effect;
use statements::ClientStatements;

/// The maps the relay consults per message (statements by name or body, portals): keyed by
/// client-chosen bytes, so hashed with a randomly seeded hasher, but foldhash rather than
/// SipHash, which cost ~600 instructions per `-M prepared` transaction (callgrind).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Errors that end a client's session.
#[derive(Debug, Error)]
pub enum RelayError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error("invalid frontend message type '{0}'")]
    UnknownMessage(char),
    #[error("unexpected message '{got}' from the server while expecting {expected}")]
    Desync { got: char, expected: String },
}

impl RelayError {
    /// The error to send the client before closing.
    pub fn to_client(&self) -> ErrorFields {
        match self {
            RelayError::Frame(FrameError::TooLarge { .. }) => {
                ErrorFields::fatal(sqlstate::PROGRAM_LIMIT_EXCEEDED, self.to_string())
                    .with_hint("raise proxy.max_message_size if this is intended")
            }
            RelayError::Desync { .. } => ErrorFields::fatal(
                sqlstate::INTERNAL_ERROR,
                format!("switchyard lost track of the protocol: {self}"),
            ),
            _ => ErrorFields::fatal(sqlstate::PROTOCOL_VIOLATION, self.to_string()),
        }
    }
}

/// What the session must do after a client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Done,
    /// The message needs a server connection; nothing was consumed.
    NeedServer,
    Terminate,
}

/// Protocol state of one client session.
/// A FATAL ErrorResponse from the server, which then closes the session.
#[derive(Debug)]
pub struct ServerFatal {
    /// For logs: message and SQLSTATE.
    pub reason: String,
    /// The whole ErrorResponse, as the client should get it.
    pub message: Vec<u8>,
}

pub struct Relay {
    pub client_out: BytesMut,
    pub server_out: BytesMut,
    pub queue: ExpectQueue,
    pub stmts: ClientStatements,
    pub params: SessionParams,
    /// The reported settings as this client was told them.
    pub seen: reported::Reported,
    /// Transaction status as the client last learned it (or will, from queued responses).
    pub status: TxStatus,
    /// Extended-protocol messages were sent since the last Sync.
    pub unsynced: bool,
    /// Discarding client messages until Sync after a proxy-made error.
    pub skip_to_sync: bool,
    /// The server died inside a transaction: behave as an aborted transaction.
    pub lost_tx: bool,
    /// In lost_tx, the client is ending the transaction through the extended protocol.
    lost_tx_ending: bool,
    pub in_copy: bool,
    /// How the currently held server treats named statements.
    pub pooler: PoolerMode,
    portal_effects: FastMap<Bytes, Effect>,
    /// A Query in progress failed (its SET effects do not apply).
    query_failed: bool,
    /// The last command tag before ReadyForQuery was ROLLBACK.
    saw_rollback: bool,
    /// Bytes left of a large server message being streamed through.
    stream_left: usize,
    stream_forward: bool,
    pub max_message: usize,
    /// Queries and executes sent since the last count was taken.
    pub queries: u64,
    /// The server sent a FATAL error and is closing: the message, to pass on.
    pub server_fatal: Option<ServerFatal>,
    /// A fleet's fence refused a statement (the database this proxy sends to was left
    /// by its fleet): the session tells the fleet member, which re-reads the route.
    pub fenced: bool,
    /// Why the transaction was lost, to report at the client's next message.
    pub(crate) lost_reason: Option<ErrorFields>,
    /// Whether the client keeps its server connection between transactions.
    pub pin: pin::Pin,
    /// The client made session state other than prepared statements (LISTEN, a
    /// temporary table, …) while pinned: it cannot follow a switch.
    pub kept_state: bool,
    /// The process id this client was given (BackendKeyData), which it sees in place of
    /// its server's in notifications it sent itself.
    pub client_pid: u32,
    /// A server message rewritten for the client, to send in place of the original.
    rewritten: Option<Vec<u8>>,
    /// The client's statements the proxy answers itself (DEALLOCATE, LISTEN).
    emulated: emulate::Emulated,
    /// Proxy-made responses written to the client so far.
    emitted: u64,
    /// Changes to the client's statements made without the server and without an undo
    /// record (DEALLOCATE and DISCARD ALL answered by the proxy).
    local_changes: u64,
    /// LISTEN/UNLISTEN is served by the proxy's listening connections now.
    pub listen_hub: bool,
    /// LISTEN/UNLISTEN changes for the session to apply.
    pub listens: Vec<sqlscan::ListenOp>,
    /// Those made in the open transaction, applied if it commits.
    pending_listens: Vec<sqlscan::ListenOp>,
    /// A statement that sends a notification went to the held server.
    pub notified: bool,
    /// The same, in the transaction in progress (cleared when it ends).
    notified_tx: bool,
    /// The client listens through the proxy's listening connections.
    pub listening: bool,
    /// The ReadyForQuery that ends a transaction in which a listening client notified,
    /// held back until its own notifications are passed on (PostgreSQL sends them first).
    pub held_ready: Option<TxStatus>,
}

impl Relay {
    pub fn new(session_id: u64, params: SessionParams, max_message: usize) -> Self {
        Relay {
            // Empty until first used: an idle client costs no buffer pages, and a busy one
            // grows them to what its traffic needs and then keeps reusing them.
            client_out: BytesMut::new(),
            server_out: BytesMut::new(),
            queue: ExpectQueue::default(),
            stmts: ClientStatements::new(session_id),
            params,
            seen: reported::Reported::default(),
            status: TxStatus::Idle,
            unsynced: false,
            skip_to_sync: false,
            lost_tx: false,
            lost_tx_ending: false,
            in_copy: false,
            pooler: PoolerMode::Transaction,
            portal_effects: FastMap::default(),
            query_failed: false,
            saw_rollback: false,
            stream_left: 0,
            stream_forward: true,
            max_message,
            queries: 0,
            server_fatal: None,
            fenced: false,
            lost_reason: None,
            pin: pin::Pin::Off,
            kept_state: false,
            client_pid: 0,
            rewritten: None,
            emulated: Default::default(),
            emitted: 0,
            local_changes: 0,
            listen_hub: false,
            listens: Vec::new(),
            pending_listens: Vec::new(),
            notified: false,
            notified_tx: false,
            listening: false,
            held_ready: None,
        }
    }

    /// True when the server connection can go back to the pool.
    pub fn can_release(&self) -> bool {
        self.queue.is_empty()
            && !self.unsynced
            && self.status == TxStatus::Idle
            && !self.in_copy
            && self.stream_left == 0
    }

    /// True when requests are in flight on the server.
    pub fn busy(&self) -> bool {
        !self.queue.is_empty() || self.unsynced || self.in_copy
    }

    /// Queues a proxy-made response behind whatever is in flight and writes what can go now.
    pub fn synth(&mut self, synth: Synth, undo: Undo) {
        self.queue.push(Expect::Synthetic { synth, undo });
        self.emit_ready();
    }

    /// Sends a request of the proxy's own (built by `f`: a Query, or a Sync) whose answer,
    /// up to its ReadyForQuery, is not for the client.
    pub fn own_request(&mut self, f: impl FnOnce(&mut BytesMut)) {
        f(&mut self.server_out);
        self.queue.push(Expect::Query {
            forward: false,
            effects: Vec::new(),
            undo: Undo::default(),
        });
    }

    /// Queues prebuilt messages.
    pub fn synth_msgs(&mut self, f: impl FnOnce(&mut BytesMut)) {
        let mut b = BytesMut::new();
        f(&mut b);
        self.synth(Synth::Bytes(b.freeze()), Undo::default());
    }

    /// A proxy-made error for a simple Query: the error and ReadyForQuery.
    pub fn query_error(&mut self, err: &ErrorFields) {
        self.synth_msgs(|b| build::error_response(b, err));
        self.synth(Synth::ReadyForQuery, Undo::default());
    }

    /// A proxy-made error in the extended protocol: the error, then skip until Sync.
    pub fn extended_error(&mut self, err: &ErrorFields) {
        self.synth_msgs(|b| build::error_response(b, err));
        self.skip_to_sync = true;
    }

    /// Writes synthetic entries that have reached the head of the queue.
    pub fn emit_ready(&mut self) {
        while let Some(Expect::Synthetic { .. }) = self.queue.head() {
            let Some(Expect::Synthetic { synth, .. }) = self.queue.pop() else {
                break;
            };
            self.emitted += 1;
            match synth {
                Synth::Empty(tag) => build::empty(&mut self.client_out, tag),
                Synth::Bytes(b) => self.client_out.extend_from_slice(&b),
                Synth::ReadyForQuery => {
                    let status = if self.lost_tx {
                        TxStatus::Failed
                    } else {
                        self.status
                    };
                    build::ready_for_query(&mut self.client_out, status);
                }
            }
        }
    }

    /// The server connection died. Tells the client, answers what was in flight, and
    /// emulates an aborted transaction if one was open.
    pub fn server_lost(&mut self, backend: &str, reason: &str) {
        let err = ErrorFields::error(
            sqlstate::CONNECTION_FAILURE,
            format!("server connection to backend \"{backend}\" was lost: {reason}"),
        );
        self.abandon_server(err);
    }

    /// The server connection is being given up (lost, or timed out): answers what was in
    /// flight with `err` and emulates an aborted transaction if one was open.
    pub fn abandon_server(&mut self, err: ErrorFields) {
        let in_tx = self.status != TxStatus::Idle;
        let outstanding = self.busy();
        let was_unsynced = self.unsynced;
        self.stream_left = 0;
        self.in_copy = false;
        self.unsynced = false;
        let readies = self.queue.readies_pending();
        self.queue.clear();
        self.portal_effects.clear();
        // Only an open transaction with nothing asked of the server is certainly rolled
        // back; anything in flight (a COMMIT among it) may have been done.
        let err = err.with_detail(match (in_tx, outstanding) {
            (true, false) => "The transaction was rolled back by the server.",
            (true, true) => {
                "The outcome is unknown: the server may have committed the transaction before the connection was lost."
            }
            (false, _) => "The statement may or may not have completed.",
        });
        if in_tx {
            self.lost_tx = true;
            self.status = TxStatus::Failed;
            self.pending_listens.clear();
        }
        if !outstanding {
            // Nothing was asked: tell the client at its next message, not unsolicited.
            if in_tx {
                self.lost_reason = Some(err);
            }
            return;
        }
        // Each request in flight up to its Sync (or Query) fails on its own, as it would
        // on a server that refused it: a pipelining client (tokio-postgres, psycopg's
        // pipeline) matches one error and one ReadyForQuery to each request it sent.
        build::error_response(&mut self.client_out, &err);
        for i in 0..readies {
            if i > 0 {
                build::error_response(&mut self.client_out, &err);
            }
            build::ready_for_query(&mut self.client_out, self.status);
        }
        if readies == 0 && was_unsynced {
            self.skip_to_sync = true;
        }
    }

    /// Appends a one-off fatal error for the client (before closing).
    pub fn fatal(&mut self, err: &ErrorFields) {
        build::error_response(&mut self.client_out, err);
    }
}
