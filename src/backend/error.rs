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
