//! The proxy's own listening connections: while any client listens, one connection per
//! PostgreSQL backend that keeps sessions (not a transaction pooler) runs `LISTEN` for
//! every channel the clients asked for, passes the notifications of the active backend to
//! the [`Hub`](super::Hub), and confirms each set of channels it listens on, so that a
//! client's LISTEN is answered only once a notification sent after it would arrive. On
//! request it makes a round trip, so that a client's own notifications reach it before
//! the end of the transaction that sent them, as PostgreSQL orders them.
//! Listening on every such backend, not only the active one, keeps notifications flowing
//! across a switch. A lost connection is made again (with its LISTENs) after a second;
//! notifications sent meanwhile are lost, as they are for a client whose connection drops.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use crate::backend::conn::ServerConn;
use crate::backend::{Backend, BackendError};
use crate::config::PoolerMode;
use crate::protocol::{be, build, parse};
use crate::state::ProxyState;

/// How often the set of backends and the route are looked at again.
const RECHECK: Duration = Duration::from_millis(250);
/// Wait before making a lost listening connection again.
const RETRY: Duration = Duration::from_secs(1);

/// Whether the hub can listen on `b` for its clients.
pub fn can_listen(b: &Backend) -> bool {
    b.postgres_port().is_some() && b.pooler() != PoolerMode::Transaction && !b.is_retired()
}

/// Starts the task that keeps one listening connection per backend while clients listen.
pub fn spawn(shared: &Arc<ProxyState>) {
    let s = shared.clone();
    shared.lifecycle.spawn(async move { supervise(s).await });
}

async fn supervise(shared: Arc<ProxyState>) {
    let hub = &shared.notify;
    let mut rx = hub.subscribe();
    let mut tasks: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut was_available = false;
    loop {
        let active = shared.router.active();
        let available = can_listen(&active);
        hub.set_available(available);
        if was_available && !available && !hub.channels().is_empty() {
            tracing::warn!(backend = %active.name, "the route moved to a backend that cannot be listened on; ending the listening clients");
            hub.end_all(&active.name);
        }
        was_available = available;
        tasks.retain(|_, t| !t.is_finished());
        if !hub.channels().is_empty() {
            for b in shared.router.backends() {
                if can_listen(&b) && !tasks.contains_key(&*b.name) {
                    let name = b.name.to_string();
                    let s = shared.clone();
                    tasks.insert(name, shared.lifecycle.spawn(listen_on(s, b)));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RECHECK) => {}
            r = rx.changed() => if r.is_err() { return },
            _ = shared.lifecycle.stopped() => return,
        }
    }
}

/// Keeps a listening connection to `backend` until no client listens.
async fn listen_on(shared: Arc<ProxyState>, backend: Arc<Backend>) {
    let hub = &shared.notify;
    loop {
        if hub.channels().is_empty() || !can_listen(&backend) {
            return;
        }
        let result = match backend.dedicated().await {
            Ok(mut conn) => {
                tracing::info!(backend = %backend.name, "listening connection open");
                let r = serve(&shared, &backend, &mut conn).await;
                if r.is_ok() {
                    conn.terminate().await;
                }
                r
            }
            Err(e) => Err(e),
        };
        hub.unconfirm(&backend.name);
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(backend = %backend.name, error = %e, "listening connection lost; notifications are missed until it is made again");
                shared
                    .metrics
                    .listen_connection_lost
                    .with_label_values(&[&backend.name])
                    .inc();
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            _ = shared.lifecycle.stopped() => return,
        }
    }
}

/// Listens on the hub's channels over `conn` until none are left (Ok) or it fails.
async fn serve(
    shared: &ProxyState,
    backend: &Backend,
    conn: &mut ServerConn,
) -> Result<(), BackendError> {
    let hub = &shared.notify;
    let mut rx = hub.subscribe();
    let mut syncs = hub.sync_requests();
    let mut listening = BTreeSet::new();
    loop {
        let version = *rx.borrow_and_update();
        let want: BTreeSet<String> = hub.channels().into_iter().collect();
        if want.is_empty() || !can_listen(backend) {
            return Ok(());
        }
        let sql = changes(&listening, &want);
        if !sql.is_empty() {
            run(shared, backend, conn, &sql).await?;
            listening = want;
        }
        hub.confirm(&backend.name, version);
        tokio::select! {
            m = conn.read_message() => {
                let (tag, body) = m?;
                pass_on(shared, backend, tag, &body);
            }
            r = rx.changed() => if r.is_err() { return Ok(()) },
            r = syncs.changed() => {
                if r.is_err() {
                    return Ok(());
                }
                let n = *syncs.borrow_and_update();
                run(shared, backend, conn, "").await?;
                hub.synced(&backend.name, n);
            }
            _ = tokio::time::sleep(RECHECK) => {}
            _ = shared.lifecycle.stopped() => return Ok(()),
        }
    }
}

/// A notification from `backend` reaches the clients while it is the active one.
fn pass_on(shared: &ProxyState, backend: &Backend, tag: u8, body: &[u8]) {
    if tag == be::NOTIFICATION && shared.router.active().name == backend.name {
        shared.notify.deliver(body);
    }
}

/// The LISTEN and UNLISTEN statements that take `have` to `want`.
fn changes(have: &BTreeSet<String>, want: &BTreeSet<String>) -> String {
    let mut sql = String::new();
    for ch in want.difference(have) {
        sql.push_str(&format!("LISTEN {};", quote(ch)));
    }
    for ch in have.difference(want) {
        sql.push_str(&format!("UNLISTEN {};", quote(ch)));
    }
    sql
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Runs `sql` on the listening connection, passing on notifications that arrive meanwhile
/// (for an empty text, a bare round trip: the server sends the notifications it has
/// received before its ReadyForQuery).
async fn run(
    shared: &ProxyState,
    backend: &Backend,
    conn: &mut ServerConn,
    sql: &str,
) -> Result<(), BackendError> {
    let mut out = BytesMut::new();
    build::query(&mut out, sql);
    conn.send(&out).await?;
    loop {
        let (tag, body) = conn.read_message().await?;
        match tag {
            be::READY_FOR_QUERY => return Ok(()),
            be::ERROR_RESPONSE => {
                let (code, message) = parse::error_fields(&body);
                tracing::warn!(backend = %backend.name, %code, %message, sql, "LISTEN on the listening connection failed");
            }
            _ => pass_on(shared, backend, tag, &body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_listen_new_channels_and_drop_old_ones_quoted() {
        let have: BTreeSet<String> = ["a".to_string(), "gone".to_string()].into();
        let want: BTreeSet<String> = ["a".to_string(), "Odd \"x\"".to_string()].into();
        assert_eq!(
            changes(&have, &want),
            "LISTEN \"Odd \"\"x\"\"\";UNLISTEN \"gone\";"
        );
        assert_eq!(changes(&want, &want), "");
    }
}
