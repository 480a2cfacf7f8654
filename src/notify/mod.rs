//! LISTEN/NOTIFY without pinning: which clients listen on which channels, and their
//! mailboxes. The proxy's own connections (see [`listener`]) listen on every channel a
//! client asked for, one connection per PostgreSQL backend that keeps sessions, and hand
//! each notification from the active backend to the subscribed clients' mailboxes; a
//! session writes its mail to the client between transactions, as PostgreSQL delivers
//! them. So a listening client holds no server connection, and its subscriptions follow a
//! switch: the new backend is listened on before the route moves to it.

pub mod listener;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;

use crate::frontend::cancel::CancelSlot;
use crate::protocol::{be, build, parse};
use crate::relay::sqlscan::ListenOp;

/// Mail beyond this much for one client that does not read is dropped (and logged).
const MAILBOX_LIMIT: usize = 16 << 20;

/// The notifications waiting for one client.
pub struct Mailbox {
    pending: AtomicBool,
    mail: Mutex<BytesMut>,
    slot: Arc<CancelSlot>,
    dropped: AtomicU64,
    /// The client can listen no more: the backend the route moved to.
    ended: std::sync::OnceLock<String>,
}

impl Mailbox {
    fn push(&self, msg: &[u8]) {
        let mut mail = self.mail.lock().unwrap_or_else(|e| e.into_inner());
        if mail.len() + msg.len() > MAILBOX_LIMIT {
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    limit_bytes = MAILBOX_LIMIT,
                    "a listening client does not read its notifications; dropping them"
                );
            }
            return;
        }
        mail.extend_from_slice(msg);
        self.pending.store(true, Ordering::Release);
        self.slot.wake.wake();
    }

    /// The backend the route moved to, when the client can listen no more.
    pub fn ended(&self) -> Option<&str> {
        self.ended.get().map(String::as_str)
    }

    /// Whether mail is waiting (the flag the session's wait watches).
    pub fn flag(&self) -> &AtomicBool {
        &self.pending
    }

    /// Moves the waiting notifications to `out`.
    pub fn drain_into(&self, out: &mut BytesMut) {
        if self.pending.swap(false, Ordering::AcqRel) {
            let mut mail = self.mail.lock().unwrap_or_else(|e| e.into_inner());
            out.extend_from_slice(&mail);
            mail.clear();
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Channel → listening sessions.
    channels: HashMap<String, BTreeSet<u64>>,
    boxes: HashMap<u64, Arc<Mailbox>>,
    /// Server process → the client pid of the session that last sent a notification
    /// from it: what a notification from that process shows as its sender.
    notifiers: HashMap<u32, u32>,
}

/// Every client's subscriptions, shared by the sessions and the listeners.
pub struct Hub {
    inner: Mutex<Inner>,
    /// Bumped at every change of the set of channels; listeners wait on it.
    version: tokio::sync::watch::Sender<u64>,
    /// Whether LISTEN can be served by the hub now (the active backend is listened on).
    available: AtomicBool,
    /// Some client listens (then notifying sessions record who they are).
    in_use: AtomicBool,
    /// Backend → the version of the channel set its listening connection listens on.
    confirmed: tokio::sync::watch::Sender<HashMap<String, u64>>,
    /// Round trips asked of the listening connections (see [`Self::want_sync`]).
    sync_wanted: tokio::sync::watch::Sender<u64>,
    /// Backend → the last of those its listening connection made.
    synced: tokio::sync::watch::Sender<HashMap<String, u64>>,
    /// `switchyard_listening_clients`.
    clients: prometheus::IntGauge,
}

impl Hub {
    pub fn new(clients: prometheus::IntGauge) -> Hub {
        Hub {
            inner: Default::default(),
            version: Default::default(),
            available: Default::default(),
            in_use: Default::default(),
            confirmed: Default::default(),
            sync_wanted: Default::default(),
            synced: Default::default(),
            clients,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    pub(crate) fn set_available(&self, yes: bool) {
        self.available.store(yes, Ordering::Release);
    }

    pub fn in_use(&self) -> bool {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Applies a client's LISTEN/UNLISTEN; returns its mailbox while it listens, and the
    /// version of the channel set to wait for (see [`Self::wait_listened`]).
    pub fn apply(
        &self,
        session: u64,
        slot: &Arc<CancelSlot>,
        op: &ListenOp,
    ) -> (Option<Arc<Mailbox>>, u64) {
        let mut inner = self.lock();
        let before = inner.channels.len();
        match op {
            ListenOp::Listen(ch) => {
                inner.boxes.entry(session).or_insert_with(|| {
                    Arc::new(Mailbox {
                        pending: AtomicBool::new(false),
                        mail: Mutex::new(BytesMut::new()),
                        slot: slot.clone(),
                        dropped: AtomicU64::new(0),
                        ended: Default::default(),
                    })
                });
                inner
                    .channels
                    .entry(ch.clone())
                    .or_default()
                    .insert(session);
            }
            ListenOp::Unlisten(ch) => {
                if let Some(s) = inner.channels.get_mut(ch) {
                    s.remove(&session);
                    if s.is_empty() {
                        inner.channels.remove(ch);
                    }
                }
            }
            ListenOp::UnlistenAll => Self::forget(&mut inner, session),
        }
        if !inner.channels.values().any(|s| s.contains(&session)) {
            inner.boxes.remove(&session);
        }
        let changed = inner.channels.len() != before || matches!(op, ListenOp::Listen(_));
        self.in_use
            .store(!inner.channels.is_empty(), Ordering::Relaxed);
        self.clients.set(inner.boxes.len() as i64);
        let mailbox = inner.boxes.get(&session).cloned();
        drop(inner);
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
        (mailbox, *self.version.borrow())
    }

    /// The listening connection to `backend` listens on the channel set of `version`.
    pub(crate) fn confirm(&self, backend: &str, version: u64) {
        self.confirmed.send_if_modified(|m| {
            let old = m.insert(backend.to_string(), version);
            old != Some(version)
        });
    }

    /// The listening connection to `backend` is gone.
    pub(crate) fn unconfirm(&self, backend: &str) {
        self.confirmed.send_modify(|m| {
            m.remove(backend);
        });
    }

    /// Asks every listening connection for a round trip: notifications committed before
    /// it are passed on before it ends. Returns the number to wait for.
    pub fn want_sync(&self) -> u64 {
        let mut n = 0;
        self.sync_wanted.send_modify(|v| {
            *v += 1;
            n = *v;
        });
        n
    }

    pub(crate) fn sync_requests(&self) -> tokio::sync::watch::Receiver<u64> {
        self.sync_wanted.subscribe()
    }

    /// The listening connection to `backend` made the round trip numbered `n`.
    pub(crate) fn synced(&self, backend: &str, n: u64) {
        self.synced.send_modify(|m| {
            m.insert(backend.to_string(), n);
        });
    }

    /// Waits (up to `limit`) until `backend` made round trip `n` (see [`Self::want_sync`]).
    pub async fn wait_synced(&self, backend: &str, n: u64, limit: std::time::Duration) -> bool {
        let mut rx = self.synced.subscribe();
        let done = rx.wait_for(|m| m.get(backend).is_some_and(|&v| v >= n));
        matches!(tokio::time::timeout(limit, done).await, Ok(Ok(_)))
    }

    /// Waits (up to `limit`) until `backend` listens on the channel set of `version` or a
    /// later one. False on timeout.
    pub async fn wait_listened(
        &self,
        backend: &str,
        version: u64,
        limit: std::time::Duration,
    ) -> bool {
        let mut rx = self.confirmed.subscribe();
        let done = rx.wait_for(|m| m.get(backend).is_some_and(|&v| v >= version));
        matches!(tokio::time::timeout(limit, done).await, Ok(Ok(_)))
    }

    /// The session ended: its subscriptions go.
    pub fn leave(&self, session: u64) {
        let mut inner = self.lock();
        if inner.boxes.remove(&session).is_none() {
            return;
        }
        Self::forget(&mut inner, session);
        self.in_use
            .store(!inner.channels.is_empty(), Ordering::Relaxed);
        self.clients.set(inner.boxes.len() as i64);
        drop(inner);
        self.version.send_modify(|v| *v += 1);
    }

    fn forget(inner: &mut Inner, session: u64) {
        inner.channels.retain(|_, s| {
            s.remove(&session);
            !s.is_empty()
        });
    }

    /// The route moved to `backend`, which cannot be listened on: every listening client
    /// is told and ended, as it would be if its own session had gone.
    pub(crate) fn end_all(&self, backend: &str) {
        let inner = self.lock();
        for b in inner.boxes.values() {
            let _ = b.ended.set(backend.to_string());
            b.pending.store(true, Ordering::Release);
            b.slot.wake.wake();
        }
    }

    /// The channels to listen on, sorted.
    pub fn channels(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().channels.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// A session sent a notification from server process `server_pid`.
    pub fn note_notifier(&self, server_pid: u32, client_pid: u32) {
        let mut inner = self.lock();
        if inner.notifiers.len() > 4096 {
            inner.notifiers.clear();
        }
        inner.notifiers.insert(server_pid, client_pid);
    }

    /// A NotificationResponse body from a listening connection: to every client that
    /// listens on its channel, with the sender shown as the client that sent it.
    pub fn deliver(&self, body: &[u8]) {
        let Ok(n) = parse::notification(body) else {
            return;
        };
        let inner = self.lock();
        let Some(sessions) = inner.channels.get(n.channel) else {
            return;
        };
        let pid = inner.notifiers.get(&n.pid).copied().unwrap_or(n.pid);
        let mut msg = BytesMut::new();
        build::message(&mut msg, be::NOTIFICATION, |m| {
            m.extend_from_slice(&pid.to_be_bytes());
            m.extend_from_slice(&body[4..]);
        });
        for s in sessions {
            if let Some(b) = inner.boxes.get(s) {
                b.push(&msg);
            }
        }
    }
}
