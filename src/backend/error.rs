//! Errors of the backend layer: reaching, securing and logging in to a database server.
//! Messages never contain a password.

use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BackendError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("connecting to {addr} timed out after {ms} ms")]
    Timeout { addr: String, ms: u128 },
    #[error("{addr} refused TLS (sslmode requires it)")]
    TlsRefused { addr: String },
    #[error("TLS handshake with {addr} failed: {detail}")]
    TlsHandshake { addr: String, detail: String },
    #[error("{addr} asked for a password but the backend URL has none")]
    NoPassword { addr: String },
    #[error("{addr} asked for an unsupported authentication method (code {code})")]
    UnsupportedAuth { addr: String, code: i32 },
    #[error("SCRAM authentication with {addr} failed: {detail}")]
    Scram { addr: String, detail: String },
    #[error("server {addr} said: {message} (SQLSTATE {code})")]
    Server {
        addr: String,
        code: String,
        message: String,
    },
    #[error("protocol error from {addr}: {detail}")]
    Protocol { addr: String, detail: String },
    #[error("connection to {addr} closed unexpectedly")]
    Closed { addr: String },
    #[error("I/O error with {addr}: {source}")]
    Io { addr: String, source: io::Error },
    #[error("embedded engine: {0}")]
    Engine(String),
}

impl BackendError {
    /// What a client may be told: the reason without the server's address.
    pub fn client_reason(&self) -> String {
        match self {
            BackendError::Connect { source, .. } => format!("cannot connect: {source}"),
            BackendError::Timeout { ms, .. } => format!("connecting timed out after {ms} ms"),
            BackendError::TlsRefused { .. } => {
                "the server refused TLS (sslmode requires it)".into()
            }
            BackendError::TlsHandshake { detail, .. } => format!("TLS handshake failed: {detail}"),
            BackendError::NoPassword { .. } => {
                "the server asked for a password but the backend URL has none".into()
            }
            BackendError::UnsupportedAuth { code, .. } => {
                format!("the server asked for an unsupported authentication method (code {code})")
            }
            BackendError::Scram { detail, .. } => format!("SCRAM authentication failed: {detail}"),
            BackendError::Server { code, message, .. } => {
                format!("the server said: {message} (SQLSTATE {code})")
            }
            BackendError::Protocol { .. } => "the server broke the protocol".into(),
            BackendError::Closed { .. } => "the server closed the connection".into(),
            BackendError::Io { source, .. } => format!("I/O error: {source}"),
            BackendError::Engine(_) => "the embedded engine failed".into(),
        }
    }

    /// A short label for metrics (`errors_total{kind=…}`).
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::Connect { .. } => "connect",
            BackendError::Timeout { .. } => "timeout",
            BackendError::TlsRefused { .. } | BackendError::TlsHandshake { .. } => "tls",
            BackendError::NoPassword { .. }
            | BackendError::UnsupportedAuth { .. }
            | BackendError::Scram { .. } => "auth",
            BackendError::Server { code, .. } if code.starts_with("28") => "auth",
            BackendError::Server { .. } => "server",
            BackendError::Protocol { .. } => "protocol",
            BackendError::Closed { .. } | BackendError::Io { .. } => "io",
            BackendError::Engine(_) => "engine",
        }
    }
}
