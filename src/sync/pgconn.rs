//! tokio-postgres connections for the proxy's own work (sync, verify, live sync), from the
//! same URLs and TLS modes as backends. Statements are run with `simple_query` or
//! `query_typed` only: named prepared statements would collide behind a transaction pooler.

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::{Config, Host, SslMode as PgSslMode};
use tokio_postgres::{AsyncMessage, Client};

use crate::backend::url::{BackendUrl, PgHost, PgTarget};
use crate::config::SslMode;
use crate::tls;

use super::SyncError;

/// Connects to a PostgreSQL URL; the connection task runs on the current runtime.
pub async fn connect(target: &PgTarget) -> Result<Client, SyncError> {
    let mut cfg = Config::new();
    cfg.user(&target.user)
        .dbname(&target.database)
        .connect_timeout(target.connect_timeout);
    cfg.application_name("switchyard-sync");
    if let Some(pw) = &target.password {
        cfg.password(pw);
    }
    match &target.host {
        PgHost::Tcp { host, port } => {
            cfg.host(host).port(*port);
        }
        PgHost::Unix { dir, port } => {
            cfg.host_path(dir).port(*port);
        }
    }
    let addr = target.host.to_string();
    let err = |e: tokio_postgres::Error| SyncError::Connect {
        addr: addr.clone(),
        detail: super::pg_error(&e),
    };
    let client = if target.sslmode == SslMode::Disable
        || matches!(cfg.get_hosts().first(), Some(Host::Unix(_)))
    {
        cfg.ssl_mode(PgSslMode::Disable);
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.map_err(err)?;
        crate::lifecycle::spawn_owned(drive(conn));
        client
    } else {
        let tls_cfg = tls::client_config(target.sslmode, target.ca_file.as_deref())
            .map_err(|e| SyncError::Connect {
                addr: addr.clone(),
                detail: e.to_string(),
            })?
            .ok_or_else(|| SyncError::Connect {
                addr: addr.clone(),
                detail: "no TLS configuration".into(),
            })?;
        cfg.ssl_mode(if target.sslmode == SslMode::Prefer {
            PgSslMode::Prefer
        } else {
            PgSslMode::Require
        });
        let connector = tokio_postgres_rustls::MakeRustlsConnect::new((*tls_cfg).clone());
        let (client, conn) = cfg.connect(connector).await.map_err(err)?;
        crate::lifecycle::spawn_owned(drive(conn));
        client
    };
    Ok(client)
}

/// Runs a connection until it ends. The server's notices (`schema "switchyard" already
/// exists, skipping`) are logged at debug: they are for whoever looks into switchyard's
/// own statements, not for the operator.
async fn drive<S, T>(mut conn: tokio_postgres::Connection<S, T>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
    while let Some(m) = messages.next().await {
        match m {
            Ok(AsyncMessage::Notice(n)) => {
                tracing::debug!(
                    severity = n.severity(),
                    code = n.code().code(),
                    "database notice: {}",
                    n.message()
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "connection ended");
                return;
            }
        }
    }
}

/// Parses a URL that must be PostgreSQL.
pub fn pg_target(url: &str, what: &str) -> Result<PgTarget, SyncError> {
    match BackendUrl::parse(url).map_err(|e| SyncError::Usage(format!("{what}: {e}")))? {
        BackendUrl::Postgres(t) => Ok(t),
        BackendUrl::Sqlite(_) => Err(SyncError::Usage(format!(
            "{what} must be a postgres:// URL"
        ))),
    }
}

/// Runs a `COPY … TO STDOUT` inside a transaction of its own and returns all it sent.
/// tokio-postgres sends COPY as a named prepared statement (Parse, then Bind, then Close,
/// each followed by Sync): behind a transaction pooler those must all reach the same
/// server, and only an open transaction guarantees that.
pub async fn copy_out_all(c: &Client, sql: &str) -> Result<bytes::BytesMut, tokio_postgres::Error> {
    c.simple_query("BEGIN READ ONLY").await?;
    let result = copy_out_in_tx(c, sql).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = c.simple_query(end).await;
    let data = result?;
    ended?;
    Ok(data)
}

/// Runs a `COPY … TO STDOUT` inside the transaction the caller has open (which keeps its
/// snapshot, and its server behind a pooler) and returns all it sent.
pub async fn copy_out_in_tx(
    c: &Client,
    sql: &str,
) -> Result<bytes::BytesMut, tokio_postgres::Error> {
    let stream = c.copy_out(sql).await?;
    futures::pin_mut!(stream);
    let mut data = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        data.extend_from_slice(&chunk?);
    }
    Ok(data)
}
