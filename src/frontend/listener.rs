//! The accept loop: one task per client connection, a cap on concurrent clients, and a
//! shutdown signal that stops accepting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::startup::{self, Startup};
use super::{login, wire};
use crate::app::Shared;
use crate::protocol::build::ErrorFields;
use crate::protocol::sqlstate;

/// Accepts clients until `shutdown` turns true.
pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tokio::spawn(handle(shared.clone(), tcp, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    shared.metrics.errors.with_label_values(&["accept"]).inc();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped(&mut shutdown) => break,
        }
    }
}

/// Resolves when the shutdown flag turns true (or its sender is gone).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Decrements the client gauge when a connection ends, however it ends.
struct ClientCount(Arc<Shared>);

impl Drop for ClientCount {
    fn drop(&mut self) {
        self.0.metrics.clients_current.dec();
    }
}

async fn handle(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    shared.metrics.clients_total.inc();
    shared.metrics.clients_current.inc();
    let _count = ClientCount(shared.clone());
    if shared.metrics.clients_current.get() as usize > shared.proxy.max_client_connections {
        let mut tcp = tcp;
        let err = ErrorFields::fatal(
            sqlstate::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
        )
        .with_hint("raise proxy.max_client_connections");
        wire::send_error(&mut tcp, &err).await;
        return;
    }
    let (client, msg) = match startup::handshake(&shared, tcp).await {
        Ok(Startup::Session(client, msg)) => (client, msg),
        Ok(Startup::Cancelled) => return,
        Err((stream, e)) => {
            tracing::debug!(%peer, error = %e, "startup failed");
            shared.metrics.errors.with_label_values(&["startup"]).inc();
            if let (Some(mut s), Some(err)) = (stream, e.to_client()) {
                wire::send_error(&mut s, &err).await;
            }
            return;
        }
    };
    let session = match login::login(&shared, client, msg, peer.ip()).await {
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
