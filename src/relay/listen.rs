//! `LISTEN`/`UNLISTEN` answered by the proxy when its own listening connections serve
//! them (see `crate::notify`): the relay answers the statement, in either protocol, and
//! queues the change for the session to apply; inside a transaction block the change waits
//! for the end of the transaction and is dropped if it rolls back, as on the server.
//! It also notes statements that send notifications, so the session can record which
//! client a notification came from.

use super::Relay;
use super::sqlscan::{Classified, ListenOp, Special};
use crate::protocol::{TxStatus, build};

impl Relay {
    /// The LISTEN/UNLISTEN in `class` if the proxy answers it now.
    pub(super) fn hub_listen(&self, class: &Classified) -> Option<ListenOp> {
        match &class.special {
            Special::Listen(op) if self.listen_hub && self.status != TxStatus::Failed => {
                Some(op.clone())
            }
            _ => None,
        }
    }

    /// Records a LISTEN/UNLISTEN the client made: now, or at the end of its transaction.
    pub(super) fn listen(&mut self, op: ListenOp) {
        if self.status == TxStatus::Idle {
            self.listens.push(op);
        } else {
            self.pending_listens.push(op);
        }
    }

    /// The transaction ended (`rolled_back`: with a ROLLBACK): its LISTENs take effect or go.
    pub(super) fn finish_listens(&mut self, rolled_back: bool) {
        if self.pending_listens.is_empty() {
            return;
        }
        if rolled_back {
            self.pending_listens.clear();
        } else {
            self.listens.append(&mut self.pending_listens);
        }
    }

    /// The client's own notifications are passed on: the ReadyForQuery held back follows.
    pub fn release_ready(&mut self) {
        if let Some(status) = self.held_ready.take() {
            build::ready_for_query(&mut self.client_out, status);
        }
    }
}
