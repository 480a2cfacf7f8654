//! A pinned client between transactions (see `relay::pin`): its server connection stays
//! with the session, outside the switch gate, so the pump keeps passing notifications on
//! while it idles. Its next transaction waits at the gate like any other; if the route
//! moved meanwhile, a client with only prepared statements goes on on the new backend
//! (they are made again there under proxy names), and one with other session state
//! (LISTEN, temporary tables, advisory locks, cursors WITH HOLD) is ended with 57P01,
//! since that state cannot move.

use super::errors;
use super::session::{Refused, Session};
use crate::backend::AcquireError;

impl Session {
    /// Whether the client keeps its connection between transactions and is between
    /// them now.
    pub(super) fn parked(&self) -> bool {
        self.held.as_ref().is_some_and(|h| !h.in_gate())
    }

    /// The transaction is over and the client is pinned: keep the connection, leave the
    /// gate. False when the connection should go back to the pool instead.
    pub(super) fn park(&mut self) -> bool {
        if !self.relay.pin.is_pinned() {
            return false;
        }
        let Some(held) = self.held.as_mut() else {
            return false;
        };
        if held.conn.broken {
            self.relay.unpin();
            return false;
        }
        held.leave_gate();
        self.cancel.slot.set(None);
        true
    }

    /// A parked client sends something (not Terminate): its transaction enters the gate
    /// (waiting out a pause), on its own connection if the route has not moved.
    pub(super) async fn resume(&mut self, tag: u8, len: usize) -> Result<(), Refused> {
        let Some(held) = self.held.as_mut() else {
            return Ok(());
        };
        match self.shared.router.reenter(held).await {
            Ok(true) => {
                self.watch_for_cancel(tag, len);
                return Ok(());
            }
            Err(AcquireError::ShuttingDown) => return Err(Refused::Shutdown),
            Err(e) => return Err(Refused::Client(errors::no_server(&e))),
            Ok(false) => {}
        }
        let moved_to = self.shared.router.active().name.clone();
        let from = held.backend.name.clone();
        let kept = self.relay.kept_state;
        // The connection goes back dirty: DISCARD ALL before anyone else uses it.
        self.held = None;
        self.relay.unpin();
        if kept {
            tracing::info!(session = self.id, %from, to = %moved_to, "the database moved under a pinned client with session state; ending its session");
            return Err(Refused::End(errors::session_state_moved(&moved_to)));
        }
        tracing::debug!(session = self.id, %from, to = %moved_to, "pinned client follows the switch; its statements are made again there");
        self.acquire(tag, len).await
    }
}
