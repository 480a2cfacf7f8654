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
    #[error(
        "server {addr} said: {message} (SQLSTATE {code}){}",
        login_hint(code, message)
    )]
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

/// A server's refusal of the proxy's login: a wrong user or password (PostgreSQL and
/// PgBouncer say 28P01 or 28000; Supabase's pooler says "SASL authentication failed" with
/// 08P01).
fn is_login_refusal(code: &str, message: &str) -> bool {
    code.starts_with("28") || (code == "08P01" && message.contains("authentication failed"))
}

/// What to do about a refused login, appended to the error.
fn login_hint(code: &str, message: &str) -> &'static str {
    if is_login_refusal(code, message) {
        "; check the user and password in this backend's url (or the ${VAR} it names): \
         percent-encode @ : / # ? % in the password, and on Supabase's pooler the user is \
         postgres.PROJECTREF"
    } else {
        ""
    }
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
            BackendError::Server { code, message, .. } if is_login_refusal(code, message) => "auth",
            BackendError::Server { .. } => "server",
            BackendError::Protocol { .. } => "protocol",
            BackendError::Closed { .. } | BackendError::Io { .. } => "io",
            BackendError::Engine(_) => "engine",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_login_says_where_the_password_is() {
        for (code, message) in [
            ("08P01", "SASL authentication failed"),
            ("28P01", "password authentication failed for user \"app\""),
        ] {
            let e = BackendError::Server {
                addr: "db:6543".into(),
                code: code.into(),
                message: message.into(),
            };
            assert_eq!(e.kind(), "auth", "{code}");
            assert!(e.to_string().contains("check the user and password"), "{e}");
        }
        let other = BackendError::Server {
            addr: "db".into(),
            code: "53300".into(),
            message: "too many connections".into(),
        };
        assert_eq!(other.kind(), "server");
        assert!(!other.to_string().contains("password"));
    }
}
