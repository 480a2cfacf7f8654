//! Login: authenticate the client, bring a server connection to the client's startup
//! settings so the ParameterStatus values it receives are the server's own, and greet it
//! as PostgreSQL would (AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use thiserror::Error;

use super::auth::{self, AuthError};
use super::session::Session;
use super::wire;
use crate::protocol::build::{self, ErrorFields};
use crate::protocol::startup::StartupMessage;
use crate::protocol::{TxStatus, sqlstate};
use crate::relay::Relay;
use crate::relay::params::{self, SessionParams};
use crate::relay::reported::Reported;
use crate::state::ProxyState;
use crate::stream::ClientStream;

#[derive(Debug, Error)]
pub enum LoginError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Backend(String),
    #[error(transparent)]
    NoServer(#[from] crate::backend::AcquireError),
    #[error("invalid startup setting: {message}")]
    Setting { code: String, message: String },
    #[error("client I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("login timed out")]
    Timeout,
}

impl LoginError {
    fn to_client(&self) -> Option<ErrorFields> {
        Some(match self {
            LoginError::Auth(AuthError::Failed(_)) => {
                ErrorFields::fatal(sqlstate::INVALID_PASSWORD, self.to_string())
            }
            LoginError::Auth(AuthError::Malformed(_)) => {
                ErrorFields::fatal(sqlstate::PROTOCOL_VIOLATION, self.to_string())
            }
            LoginError::Backend(m) => ErrorFields::fatal(sqlstate::CONNECTION_FAILURE, m.clone()),
            LoginError::NoServer(e) => {
                let mut f = super::errors::no_server(e);
                f.severity = crate::protocol::build::Severity::Fatal;
                f
            }
            LoginError::Setting { message, .. } => ErrorFields::fatal(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("invalid startup setting: {message}"),
            ),
            _ => return None,
        })
    }
}

/// Authenticates and greets the client; returns its session ready to run.
pub async fn login(
    shared: &Arc<ProxyState>,
    mut client: ClientStream,
    startup: StartupMessage,
    peer: std::net::IpAddr,
    deadline: tokio::time::Instant,
) -> Result<Session, LoginError> {
    let mut buf = BytesMut::new();
    let user = startup.get("user").unwrap_or_default().to_string();
    let channel_binding = match &client {
        ClientStream::Tls(_) => shared.tls.as_ref().and_then(|t| t.end_point.clone()),
        ClientStream::Tcp(_) => None,
    };
    let authenticated = tokio::time::timeout_at(
        deadline,
        auth::authenticate(
            &mut client,
            &mut buf,
            &shared.users,
            &user,
            shared.proxy.auth,
            channel_binding.as_deref(),
        ),
    )
    .await;
    let Ok(authenticated) = authenticated else {
        // As PostgreSQL at authentication_timeout: closed without an answer, logged.
        let timeout = shared.proxy.login_timeout.get();
        tracing::info!(user = %user, %peer, ?timeout, "client did not authenticate within proxy.login_timeout; connection closed");
        shared
            .metrics
            .count_error(crate::metrics::ErrorKind::LoginTimeout);
        return Err(LoginError::Timeout);
    };
    match authenticated {
        Ok(_) => {}
        Err(e) => {
            let method = shared
                .users
                .get(&user)
                .map(|u| u.method)
                .unwrap_or(shared.proxy.auth);
            shared
                .metrics
                .auth_failures
                .with_label_values(&[AuthError::method_label(method)])
                .inc();
            let delay = shared.auth_throttle.failed(peer);
            tracing::info!(user = %user, %peer, delay_ms = delay.as_millis() as u64, error = %e, "client authentication failed");
            // Repeated failures from one address are answered more and more slowly.
            tokio::time::sleep(delay).await;
            if let Some(err) = LoginError::from(e).to_client() {
                wire::send_error(&mut client, &err).await;
            }
            return Err(LoginError::Auth(AuthError::Failed(user)));
        }
    }
    shared.auth_throttle.succeeded(peer);
    let database = startup.get("database").filter(|d| !d.is_empty());
    let database = database.unwrap_or(&user);
    if !shared.databases.iter().any(|d| d == database || d == "*") {
        let err = unknown_database(database, &shared.databases);
        wire::send_error(&mut client, &err).await;
        return Err(LoginError::Backend(err.message));
    }
    let slot = match shared.users.get(&user) {
        Some(u) => match u.open.take(u.max_connections) {
            Some(slot) => Some(slot),
            None => {
                let err = ErrorFields::fatal(
                    sqlstate::TOO_MANY_CONNECTIONS,
                    format!("too many connections for user \"{user}\""),
                )
                .with_hint("raise max_connections of this user in [[users]]");
                wire::send_error(&mut client, &err).await;
                return Err(LoginError::Backend(format!(
                    "user {user} is at max_connections"
                )));
            }
        },
        None => None,
    };
    let id = shared.next_session.fetch_add(1, Ordering::Relaxed);
    let settings = SessionParams::new(params::startup_settings(&startup.params));
    let mut relay = Relay::new(id, settings, shared.proxy.max_message_size);
    let status = match server_parameters(shared, &mut relay, id).await {
        Ok(s) => s,
        Err(e) => {
            if let Some(err) = e.to_client() {
                wire::send_error(&mut client, &err).await;
            }
            return Err(e);
        }
    };
    let cancel = shared.cancels.register();
    let mut out = BytesMut::new();
    auth::auth_ok(&mut out);
    out.extend_from_slice(&status);
    build::backend_key_data(&mut out, cancel.pid, cancel.slot.secret);
    build::ready_for_query(&mut out, TxStatus::Idle);
    wire::send(&mut client, &out).await?;
    relay.client_pid = cancel.pid;
    let mut session = Session::new(shared.clone(), client, buf, relay, cancel, id);
    session.user_slot = slot;
    Ok(session)
}

/// What PostgreSQL answers a login to a database it does not have, with the names this
/// proxy serves.
fn unknown_database(name: &str, served: &[String]) -> ErrorFields {
    ErrorFields::fatal(
        sqlstate::INVALID_CATALOG_NAME,
        format!("database \"{name}\" does not exist"),
    )
    .with_hint(format!(
        "switchyard serves {}; connect to one of them or list more in proxy.databases",
        served
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Takes a server connection, makes it the session PostgreSQL would start for this
/// client (no other client's state, the proxy's own startup settings, then the client's),
/// and returns the ParameterStatus messages a server would send at login. The relay
/// learns them as what the client was told.
async fn server_parameters(
    shared: &Arc<ProxyState>,
    relay: &mut Relay,
    session: u64,
) -> Result<BytesMut, LoginError> {
    let mut held = shared.router.acquire().await?;
    relay.pooler = held.backend.pooler();
    relay.offer_pin(held.backend.session_pins());
    let conn = &mut *held.conn;
    if held.backend.pooler() == crate::config::PoolerMode::Transaction {
        conn.dirty = false;
    }
    let mut statements: Vec<String> = conn
        .discard_for(session)
        .map(String::from)
        .into_iter()
        .collect();
    let mut sql = String::new();
    Reported(conn.baseline.clone()).sync_statements(&conn.reported, &conn.baseline, &mut sql);
    params::diff_into(&relay.params.desired, &conn.applied, |_| false, &mut sql);
    if !sql.is_empty() {
        statements.push(sql);
    }
    for sql in &statements {
        let res = conn.own_query(sql).await.map_err(|e| {
            conn.broken = true;
            LoginError::Backend(e.to_string())
        })?;
        if let Some((code, message)) = res.error {
            conn.broken = true;
            return Err(LoginError::Setting { code, message });
        }
    }
    relay.seen = Reported(conn.reported.clone());
    conn.applied = relay.params.desired.clone();
    conn.applied.retain(|name, _| !relay.seen.follows(name));
    let mut out = BytesMut::new();
    for (k, v) in &conn.reported {
        build::parameter_status(&mut out, k, v);
    }
    Ok(out)
}
