//! Taking back what was sent to a server connection that died before answering any of it,
//! so that the same client messages can be handled again on another connection. The
//! session marks the relay when it takes a fresh connection from the pool; if that
//! connection turns out to have been closed by the server (it ended the session while the
//! connection sat idle, and the check at checkout raced the close), the relay is rewound
//! to the mark: the expected responses are dropped and their undo records applied, so
//! the client's statements are as they were.

use std::mem::discriminant;

use super::Relay;
use super::pin::Pin;
use super::statements::Unnamed;
use crate::backend::conn::ServerConn;

/// The relay as it was when a fresh server connection was taken.
#[derive(Debug)]
pub struct Mark {
    emitted: u64,
    local_changes: u64,
    pin: std::mem::Discriminant<Pin>,
    kept_state: bool,
    unnamed: Option<Unnamed>,
}

impl Relay {
    /// Marks the state to come back to if the connection just taken never answers.
    pub fn mark(&self) -> Mark {
        Mark {
            emitted: self.emitted,
            local_changes: self.local_changes,
            pin: discriminant(&self.pin),
            kept_state: self.kept_state,
            unnamed: self.stmts.save_unnamed(),
        }
    }

    /// The connection `server` (taken at `mark`) died before answering anything: forgets
    /// what was sent to it so the client messages since the mark can be handled again.
    /// False, changing nothing, when that cannot be done exactly: the proxy already
    /// answered some of them, or changed the client's statements without an undo record.
    pub fn rewind(&mut self, mark: Mark, server: &mut ServerConn) -> bool {
        if self.emitted != mark.emitted || self.local_changes != mark.local_changes {
            return false;
        }
        for undo in self.queue.unwind() {
            self.undo(server, undo);
        }
        if discriminant(&self.pin) != mark.pin {
            // It pinned (or gave up pinning) on the dead connection: it is offered a
            // pin again with the next one (a pinned client is never marked).
            self.pin = Pin::Off;
        }
        self.kept_state = mark.kept_state;
        self.stmts.restore_unnamed(mark.unnamed);
        self.server_out.clear();
        self.unsynced = false;
        self.skip_to_sync = false;
        self.in_copy = false;
        self.stream_left = 0;
        self.query_failed = false;
        self.saw_rollback = false;
        self.portal_effects.clear();
        self.queries = 0;
        true
    }
}
