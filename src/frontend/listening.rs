//! A session's side of LISTEN/NOTIFY served by the proxy (see `crate::notify`): applying
//! the client's LISTEN/UNLISTEN to the hub (a LISTEN is answered once the active backend's
//! listening connection listens on the channel), recording which server process a
//! notifying client used, and writing notifications to the client between transactions.

use std::time::Duration;

use super::session::Session;
use crate::relay::sqlscan::ListenOp;

/// How long a LISTEN waits for the listening connection before it is answered anyway.
const LISTEN_WAIT: Duration = Duration::from_secs(5);
/// How long the end of a notifying transaction waits for the client's own notifications.
const OWN_WAIT: Duration = Duration::from_secs(1);

impl Session {
    /// Applies the LISTEN/UNLISTEN changes the relay queued.
    pub(super) async fn apply_listens(&mut self) {
        if self.relay.listens.is_empty() {
            return;
        }
        let hub = &self.shared.notify;
        let mut wait_for = None;
        for op in std::mem::take(&mut self.relay.listens) {
            if matches!(op, ListenOp::UnlistenAll) && self.mailbox.is_none() {
                continue;
            }
            let (mailbox, version) = hub.apply(self.id, &self.cancel.slot, &op);
            self.mailbox = mailbox;
            self.relay.listening = self.mailbox.is_some();
            if matches!(op, ListenOp::Listen(_)) {
                wait_for = Some(version);
            }
            tracing::debug!(session = self.id, ?op, "listen change");
        }
        let Some(version) = wait_for else {
            return;
        };
        let active = self.shared.router.active().name.clone();
        if !hub.wait_listened(&active, version, LISTEN_WAIT).await {
            tracing::warn!(session = self.id, backend = %active, "LISTEN answered before the listening connection could listen; notifications reach the client once it does");
        }
    }

    /// A listening client's notifying transaction ended (the relay holds back its
    /// ReadyForQuery): its own notifications are passed on first, as PostgreSQL sends
    /// them. True when a ReadyForQuery was released (the server input is processed on).
    pub(super) async fn own_notifications_first(&mut self) -> bool {
        if self.relay.held_ready.is_none() {
            return false;
        }
        let hub = &self.shared.notify;
        let active = self.shared.router.active().name.clone();
        let n = hub.want_sync();
        if !hub.wait_synced(&active, n, OWN_WAIT).await {
            tracing::warn!(session = self.id, backend = %active, "the listening connection did not answer; the client's own notifications may come after its transaction ends");
        }
        self.deliver_mail();
        self.relay.release_ready();
        true
    }

    /// The client sent a notification from its server connection: notifications from
    /// that server process show the client's process id.
    pub(super) fn note_notifier(&mut self) {
        if !std::mem::take(&mut self.relay.notified) || !self.shared.notify.in_use() {
            return;
        }
        if let Some((server_pid, _)) = self.held.as_ref().and_then(|h| h.conn.key) {
            self.shared
                .notify
                .note_notifier(server_pid, self.relay.client_pid);
        }
    }

    /// Between transactions: the notifications that arrived go to the client.
    pub(super) fn deliver_mail(&mut self) {
        let Some(m) = &self.mailbox else {
            return;
        };
        m.drain_into(&mut self.relay.client_out);
        if let Some(to) = m.ended() {
            self.ending = Some(super::errors::listen_moved(to));
        }
    }

    /// The session ends: its subscriptions go.
    pub(super) fn stop_listening(&mut self) {
        if self.mailbox.take().is_some() {
            self.shared.notify.leave(self.id);
        }
    }
}
