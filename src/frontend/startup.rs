//! The startup phase of a client connection: SSLRequest/GSSENCRequest answers and the TLS
//! upgrade, CancelRequest dispatch, the StartupMessage (protocol version negotiation), and
//! refusal of garbage with the error PostgreSQL would send.

use std::sync::Arc;

use bytes::BytesMut;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire;
use crate::protocol::build::{self, ErrorFields};
use crate::protocol::sqlstate;
use crate::protocol::startup::{self, StartupError, StartupMessage, StartupPacket};
use crate::state::ProxyState;
use crate::stream::ClientStream;

#[derive(Debug, Error)]
pub enum HandshakeError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("client I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("SSLRequest received twice")]
    DoubleSsl,
    #[error("no PostgreSQL user name specified in startup packet")]
    NoUser,
    #[error("replication connections are not supported by switchyard")]
    Replication,
    #[error("startup timed out")]
    Timeout,
}

impl HandshakeError {
    /// The error to send before closing, if the client can still read one. A packet
    /// whose length is impossible is not answered (as PostgreSQL, which only logs it):
    /// whatever sent it is not speaking the protocol.
    pub fn to_client(&self) -> Option<ErrorFields> {
        Some(match self {
            HandshakeError::Startup(StartupError::BadLength(_)) => return None,
            HandshakeError::Startup(StartupError::Unsupported { .. }) => {
                ErrorFields::fatal(sqlstate::FEATURE_NOT_SUPPORTED, self.to_string())
            }
            HandshakeError::Startup(_) | HandshakeError::DoubleSsl => {
                ErrorFields::fatal(sqlstate::PROTOCOL_VIOLATION, self.to_string())
            }
            HandshakeError::NoUser => {
                ErrorFields::fatal(sqlstate::INVALID_AUTHORIZATION, self.to_string())
            }
            HandshakeError::Replication => {
                ErrorFields::fatal(sqlstate::FEATURE_NOT_SUPPORTED, self.to_string())
            }
            _ => return None,
        })
    }
}

/// What the startup phase produced.
pub enum Startup {
    /// A client wanting a session.
    Session(ClientStream, StartupMessage),
    /// A cancel request was handled; close the connection.
    Cancelled,
}

async fn read_packet(s: &mut ClientStream) -> Result<StartupPacket, HandshakeError> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let total = startup::packet_len(len)?;
    let mut body = vec![0u8; total - 4];
    s.read_exact(&mut body).await?;
    Ok(startup::decode(&body)?)
}

/// Runs the startup phase, which must end by `deadline` (the client's login deadline).
pub async fn handshake(
    shared: &Arc<ProxyState>,
    tcp: tokio::net::TcpStream,
    deadline: tokio::time::Instant,
) -> Result<Startup, (Option<ClientStream>, HandshakeError)> {
    let mut stream = Some(ClientStream::Tcp(tcp));
    match tokio::time::timeout_at(deadline, negotiate(shared, &mut stream)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err((stream, e)),
        Err(_) => Err((stream, HandshakeError::Timeout)),
    }
}

async fn negotiate(
    shared: &Arc<ProxyState>,
    slot: &mut Option<ClientStream>,
) -> Result<Startup, HandshakeError> {
    let mut ssl_done = false;
    loop {
        let s = slot.as_mut().ok_or(HandshakeError::DoubleSsl)?;
        match read_packet(s).await? {
            StartupPacket::SslRequest if ssl_done => return Err(HandshakeError::DoubleSsl),
            StartupPacket::SslRequest => {
                ssl_done = true;
                upgrade(shared, slot).await?;
            }
            StartupPacket::GssEncRequest => s.write_all(b"N").await?,
            StartupPacket::Cancel { pid, key } => {
                let outcome = shared.cancels.cancel(pid, key).await;
                shared
                    .metrics
                    .cancel_requests
                    .with_label_values(&[outcome.label()])
                    .inc();
                return Ok(Startup::Cancelled);
            }
            StartupPacket::Startup(msg) => {
                if msg
                    .get("replication")
                    .is_some_and(|v| v != "false" && v != "0")
                {
                    return Err(HandshakeError::Replication);
                }
                if msg.get("user").is_none_or(str::is_empty) {
                    return Err(HandshakeError::NoUser);
                }
                if msg.minor > 0 {
                    let unknown: Vec<String> = msg
                        .params
                        .iter()
                        .filter(|(k, _)| k.starts_with("_pq_."))
                        .map(|(k, _)| k.clone())
                        .collect();
                    let mut b = BytesMut::new();
                    build::negotiate_protocol_version(&mut b, 0, &unknown);
                    wire::send(s, &b).await?;
                }
                let stream = slot.take().ok_or(HandshakeError::DoubleSsl)?;
                return Ok(Startup::Session(stream, msg));
            }
        }
    }
}

/// Answers an SSLRequest: TLS when configured, 'N' otherwise.
async fn upgrade(
    shared: &Arc<ProxyState>,
    slot: &mut Option<ClientStream>,
) -> Result<(), HandshakeError> {
    let Some(acceptor) = shared.tls.as_ref().map(|t| t.acceptor.clone()) else {
        if let Some(s) = slot.as_mut() {
            s.write_all(b"N").await?;
        }
        return Ok(());
    };
    let Some(ClientStream::Tcp(mut tcp)) = slot.take() else {
        return Err(HandshakeError::DoubleSsl);
    };
    tcp.write_all(b"S").await?;
    let tls = acceptor.accept(tcp).await.map_err(HandshakeError::Tls)?;
    *slot = Some(ClientStream::Tls(Box::new(tls)));
    Ok(())
}
