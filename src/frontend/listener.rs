//! The accept loop: one tracked task per client connection, a cap on concurrent clients
//! (a semaphore permit held by each connection), and the proxy's shutdown, which stops
//! accepting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;

use super::startup::{self, Startup};
use super::{login, wire};
use crate::metrics::ErrorKind;
use crate::state::ProxyState;

/// Accepts clients until the proxy shuts down.
pub async fn serve(shared: Arc<ProxyState>, listener: TcpListener) {
    let lifecycle = shared.lifecycle.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let permit = shared.client_slots.clone().try_acquire_owned().ok();
                    lifecycle.spawn(handle(shared.clone(), tcp, peer, permit));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    shared.metrics.count_error(ErrorKind::Accept);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = lifecycle.stopped() => break,
        }
    }
}

/// Decrements the client gauge when a connection ends, however it ends.
struct ClientCount(Arc<ProxyState>);

impl Drop for ClientCount {
    fn drop(&mut self) {
        self.0.metrics.clients_current.dec();
    }
}

/// Logs and counts a startup that failed. A connection closed before its first byte is
/// not worth a line (health checks and port scanners do it); one that timed out or sent
/// something that is not the protocol is.
fn startup_failed(shared: &ProxyState, peer: SocketAddr, e: &startup::HandshakeError) {
    use startup::HandshakeError as H;
    match e {
        H::Timeout => {
            let timeout = shared.proxy.login_timeout.get();
            tracing::info!(%peer, ?timeout, "client did not log in within proxy.login_timeout; connection closed");
            shared.metrics.count_error(ErrorKind::LoginTimeout);
        }
        H::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::debug!(%peer, "client closed before its startup packet");
            shared.metrics.count_error(ErrorKind::Startup);
        }
        _ => {
            tracing::info!(%peer, error = %e, "client startup refused");
            shared.metrics.count_error(ErrorKind::Startup);
        }
    }
}

/// One client connection; `permit` is its slot under `proxy.max_client_connections`
/// (none left: it is refused).
async fn handle(
    shared: Arc<ProxyState>,
    tcp: TcpStream,
    peer: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
) {
    let _ = tcp.set_nodelay(true);
    shared.metrics.clients_total.inc();
    shared.metrics.clients_current.inc();
    let _count = ClientCount(shared.clone());
    let Some(_permit) = permit else {
        let mut tcp = tcp;
        wire::send_error(&mut tcp, &super::errors::too_many_clients()).await;
        return;
    };
    let deadline = tokio::time::Instant::now() + shared.proxy.login_timeout.get();
    let (client, msg) = match startup::handshake(&shared, tcp, deadline).await {
        Ok(Startup::Session(client, msg)) => (client, msg),
        Ok(Startup::Cancelled) => return,
        Err((stream, e)) => {
            startup_failed(&shared, peer, &e);
            if let (Some(mut s), Some(err)) = (stream, e.to_client()) {
                wire::send_error(&mut s, &err).await;
            }
            return;
        }
    };
    let session = match login::login(&shared, client, msg, peer.ip(), deadline).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "login failed");
            return;
        }
    };
    let id = session.id;
    tracing::debug!(%peer, session = id, "client logged in");
    if let Err(e) = session.run().await {
        tracing::debug!(%peer, session = id, error = %e, "session ended with an error");
    }
}
