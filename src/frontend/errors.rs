//! What a client is told when the proxy itself refuses or ends something, with the
//! SQLSTATE a PostgreSQL server would use: built here, in one place. A client learns which
//! backend and what to do, never a backend's host, port or connection error (those go to
//! the log and `/status`).

use crate::backend::AcquireError;
use crate::protocol::build::ErrorFields;
use crate::protocol::sqlstate;

/// The proxy is shutting down (FATAL, as PostgreSQL says it).
pub fn admin_shutdown() -> ErrorFields {
    ErrorFields::fatal(
        sqlstate::ADMIN_SHUTDOWN,
        "terminating connection due to administrator command",
    )
    .with_hint("switchyard is shutting down; reconnect")
}

/// A switch moved the database under a pinned client whose session state cannot move.
pub fn session_state_moved(to: &str) -> ErrorFields {
    ErrorFields::fatal(
        sqlstate::ADMIN_SHUTDOWN,
        "terminating connection due to administrator command",
    )
    .with_detail(format!(
        "The database moved to backend \"{to}\"; this session's LISTEN, temporary tables, advisory locks or cursors WITH HOLD cannot move with it."
    ))
    .with_hint("reconnect: the new session is served by the new backend")
}

/// The route moved to a backend the proxy cannot listen on while this client listened.
pub fn listen_moved(to: &str) -> ErrorFields {
    ErrorFields::fatal(
        sqlstate::ADMIN_SHUTDOWN,
        "terminating connection due to administrator command",
    )
    .with_detail(format!(
        "The database moved to backend \"{to}\", where switchyard cannot serve LISTEN (it is a transaction pooler or an embedded database)."
    ))
    .with_hint("reconnect; to keep LISTEN, move to a backend that keeps sessions (pooler = \"none\")")
}

/// The server session that held a pinned client's session state is gone.
pub fn session_state_lost(backend: &str) -> ErrorFields {
    ErrorFields::fatal(
        sqlstate::CONNECTION_FAILURE,
        format!(
            "the server session on backend \"{backend}\" that held this session's state was lost"
        ),
    )
    .with_detail(
        "Its temporary tables, advisory locks, cursors WITH HOLD or LISTEN are gone with it.",
    )
    .with_hint("reconnect")
}

/// `proxy.max_client_connections` reached (FATAL).
pub fn too_many_clients() -> ErrorFields {
    ErrorFields::fatal(
        sqlstate::TOO_MANY_CONNECTIONS,
        "sorry, too many clients already",
    )
    .with_hint("raise proxy.max_client_connections")
}

/// No server connection could be had for a transaction.
pub fn no_server(e: &AcquireError) -> ErrorFields {
    let (message, hint) = match e {
        AcquireError::Timeout {
            backend,
            waited_ms,
            last,
        } => (
            format!(
                "no server connection to backend \"{backend}\" within {waited_ms} ms{}",
                last.as_ref()
                    .map(|(_, client)| format!(": {client}"))
                    .unwrap_or_default()
            ),
            "the backend is slow to accept connections or its pool is full; switchyard's log and /status say which",
        ),
        AcquireError::Connect { backend, source } => (
            format!(
                "cannot connect to backend \"{backend}\": {}",
                source.client_reason()
            ),
            "switchyard's log and /status say more",
        ),
        AcquireError::Down {
            backend,
            client_reason,
            ..
        } => (
            format!("backend \"{backend}\" is down: {client_reason}"),
            "switchyard retries it with backoff; /status shows its last error",
        ),
        AcquireError::ShuttingDown => return admin_shutdown(),
    };
    ErrorFields::error(sqlstate::CONNECTION_FAILURE, message).with_hint(hint)
}

/// A query's server stayed silent past `proxy.query_timeout`.
pub fn query_timeout(ms: u128) -> ErrorFields {
    ErrorFields::error(
        sqlstate::QUERY_CANCELED,
        format!("canceling statement: the server sent nothing for {ms} ms (proxy.query_timeout)"),
    )
}

/// A client idled inside a transaction past `proxy.idle_transaction_timeout` (FATAL).
pub fn idle_in_transaction(ms: u128) -> ErrorFields {
    ErrorFields::fatal(
        sqlstate::IDLE_IN_TRANSACTION_TIMEOUT,
        format!(
            "terminating connection: idle in transaction for {ms} ms (proxy.idle_transaction_timeout)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendError;

    #[test]
    fn a_client_is_never_told_where_a_backend_lives() {
        let errors = [
            AcquireError::Timeout {
                backend: "remote".into(),
                waited_ms: 5000,
                last: Some((
                    "connection refused by 10.1.2.3:6543".into(),
                    "connection refused".into(),
                )),
            },
            AcquireError::Connect {
                backend: "remote".into(),
                source: BackendError::Timeout {
                    addr: "10.1.2.3:6543".into(),
                    ms: 5,
                },
            },
            AcquireError::Down {
                backend: "remote".into(),
                reason: "timeout connecting to 10.1.2.3:6543".into(),
                client_reason: "connecting timed out after 5 ms".into(),
            },
        ];
        for e in &errors {
            let f = no_server(e);
            let text = format!("{} {:?}", f.message, f.hint);
            assert!(text.contains("\"remote\""), "{text}");
            assert!(
                !text.contains("10.1.2.3") && !text.contains("6543"),
                "{text}"
            );
            assert_eq!(f.code, sqlstate::CONNECTION_FAILURE);
        }
        assert_eq!(
            no_server(&AcquireError::ShuttingDown).code,
            sqlstate::ADMIN_SHUTDOWN
        );
    }
}
