//! Opening a server connection: TCP or Unix socket, SSLRequest and TLS per `sslmode`,
//! StartupMessage, and authentication with SCRAM-SHA-256, md5 or cleartext as the server
//! asks. Also sending a CancelRequest for a running query.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::{md5_hash, sasl};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::backend::conn::ServerConn;
use crate::backend::error::BackendError;
use crate::backend::url::{PgHost, PgTarget};
use crate::config::SslMode;
use crate::protocol::{be, build, fe, parse, startup};
use crate::stream::ServerStream;

/// Opens and authenticates a connection within the target's connect timeout.
pub async fn connect(
    target: &PgTarget,
    tls: Option<&Arc<ClientConfig>>,
    id: u64,
) -> Result<ServerConn, BackendError> {
    let addr = target.host.to_string();
    let limit = target.connect_timeout;
    match tokio::time::timeout(limit, connect_inner(target, tls, id)).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::Timeout {
            addr,
            ms: limit.as_millis(),
        }),
    }
}

async fn connect_inner(
    target: &PgTarget,
    tls: Option<&Arc<ClientConfig>>,
    id: u64,
) -> Result<ServerConn, BackendError> {
    let addr: Arc<str> = target.host.to_string().into();
    let stream = open_stream(target, tls, &addr).await?;
    let mut conn = ServerConn::new(stream, addr, id);
    let mut out = BytesMut::new();
    let mut params: Vec<(&str, &str)> =
        vec![("user", &target.user), ("database", &target.database)];
    for (k, v) in &target.startup {
        params.push((k, v));
    }
    startup::encode_startup(&mut out, &params);
    conn.send(&out).await?;
    authenticate(&mut conn, target).await?;
    finish_startup(&mut conn).await?;
    conn.set_baseline();
    conn.discards = true;
    Ok(conn)
}

/// TCP (with TLS negotiation) or Unix socket.
pub async fn open_stream(
    target: &PgTarget,
    tls: Option<&Arc<ClientConfig>>,
    addr: &str,
) -> Result<ServerStream, BackendError> {
    let connect_err = |source| BackendError::Connect {
        addr: addr.to_string(),
        source,
    };
    match &target.host {
        PgHost::Unix { dir, port } => {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            let s = UnixStream::connect(path).await.map_err(connect_err)?;
            Ok(ServerStream::Unix(s))
        }
        PgHost::Tcp { host, port } => {
            let tcp = TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(connect_err)?;
            let _ = tcp.set_nodelay(true);
            match tls {
                Some(cfg) if target.sslmode != SslMode::Disable => {
                    negotiate_tls(tcp, cfg, host, target.sslmode, addr).await
                }
                _ => Ok(ServerStream::Tcp(tcp)),
            }
        }
    }
}

async fn negotiate_tls(
    mut tcp: TcpStream,
    cfg: &Arc<ClientConfig>,
    host: &str,
    mode: SslMode,
    addr: &str,
) -> Result<ServerStream, BackendError> {
    let io_err = |source| BackendError::Io {
        addr: addr.to_string(),
        source,
    };
    let mut req = BytesMut::new();
    startup::encode_code(&mut req, startup::SSL_REQUEST, &[]);
    tcp.write_all(&req).await.map_err(io_err)?;
    let answer = tcp.read_u8().await.map_err(io_err)?;
    match answer {
        b'S' => {
            let name =
                ServerName::try_from(host.trim_matches(|c| c == '[' || c == ']').to_string())
                    .map_err(|e| BackendError::TlsHandshake {
                        addr: addr.to_string(),
                        detail: format!("invalid server name: {e}"),
                    })?;
            let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| BackendError::TlsHandshake {
                    addr: addr.to_string(),
                    detail: e.to_string(),
                })?;
            Ok(ServerStream::Tls(Box::new(tls)))
        }
        b'N' if mode == SslMode::Prefer => Ok(ServerStream::Tcp(tcp)),
        b'N' => Err(BackendError::TlsRefused {
            addr: addr.to_string(),
        }),
        other => Err(BackendError::Protocol {
            addr: addr.to_string(),
            detail: format!("unexpected answer {other:#x} to SSLRequest"),
        }),
    }
}

fn password_message(out: &mut BytesMut, payload: &[u8]) {
    build::message(out, fe::PASSWORD, |b| b.put_slice(payload));
}

async fn authenticate(conn: &mut ServerConn, target: &PgTarget) -> Result<(), BackendError> {
    let addr = conn.addr.to_string();
    let password = || {
        target
            .password
            .as_deref()
            .ok_or_else(|| BackendError::NoPassword { addr: addr.clone() })
    };
    let mut scram: Option<sasl::ScramSha256> = None;
    loop {
        let (tag, body) = conn.read_message().await?;
        match tag {
            be::AUTHENTICATION => {}
            be::ERROR_RESPONSE => return Err(server_error(&addr, &body)),
            be::NOTICE_RESPONSE | be::NEGOTIATE_PROTOCOL => continue,
            other => {
                return Err(conn.protocol_err(format!(
                    "unexpected message '{}' during authentication",
                    other as char
                )));
            }
        }
        if body.len() < 4 {
            return Err(conn.protocol_err("short authentication message"));
        }
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let data = &body[4..];
        let mut out = BytesMut::new();
        match code {
            0 => return Ok(()),
            3 => {
                let mut p = password()?.as_bytes().to_vec();
                p.push(0);
                password_message(&mut out, &p);
            }
            5 => {
                let salt = [data[0], data[1], data[2], data[3]];
                let mut h =
                    md5_hash(target.user.as_bytes(), password()?.as_bytes(), salt).into_bytes();
                h.push(0);
                password_message(&mut out, &h);
            }
            10 => {
                let offered = data
                    .split(|&b| b == 0)
                    .any(|m| m == sasl::SCRAM_SHA_256.as_bytes());
                if !offered {
                    return Err(BackendError::UnsupportedAuth { addr, code });
                }
                let s = sasl::ScramSha256::new(
                    password()?.as_bytes(),
                    sasl::ChannelBinding::unsupported(),
                );
                build::message(&mut out, fe::PASSWORD, |b| {
                    build::cstr(b, sasl::SCRAM_SHA_256.as_bytes());
                    b.put_i32(s.message().len() as i32);
                    b.put_slice(s.message());
                });
                scram = Some(s);
            }
            11 | 12 => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| conn.protocol_err("SASL message before SASL start"))?;
                let step = if code == 11 {
                    s.update(data)
                } else {
                    s.finish(data)
                };
                step.map_err(|e| BackendError::Scram {
                    addr: addr.clone(),
                    detail: e.to_string(),
                })?;
                if code == 11 {
                    password_message(&mut out, s.message());
                }
            }
            _ => return Err(BackendError::UnsupportedAuth { addr, code }),
        }
        if !out.is_empty() {
            conn.send(&out).await?;
        }
    }
}

async fn finish_startup(conn: &mut ServerConn) -> Result<(), BackendError> {
    loop {
        let (tag, body) = conn.read_message().await?;
        match tag {
            be::PARAMETER_STATUS => conn.note_parameter(&body),
            be::BACKEND_KEY_DATA if body.len() >= 8 => {
                let pid = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let key = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                conn.key = Some((pid, key));
            }
            be::READY_FOR_QUERY => return Ok(()),
            be::ERROR_RESPONSE => return Err(server_error(&conn.addr, &body)),
            _ => {}
        }
    }
}

fn server_error(addr: &str, body: &[u8]) -> BackendError {
    let (code, message) = parse::error_fields(body);
    BackendError::Server {
        addr: addr.to_string(),
        code,
        message,
    }
}

/// Sends a CancelRequest for the server process `key` over a fresh connection.
pub async fn cancel(
    target: &PgTarget,
    tls: Option<&Arc<ClientConfig>>,
    key: (u32, u32),
) -> Result<(), BackendError> {
    let addr = target.host.to_string();
    let work = async {
        let mut stream = open_stream(target, tls, &addr).await?;
        let mut out = BytesMut::new();
        let mut extra = [0u8; 8];
        extra[..4].copy_from_slice(&key.0.to_be_bytes());
        extra[4..].copy_from_slice(&key.1.to_be_bytes());
        startup::encode_code(&mut out, startup::CANCEL_REQUEST, &extra);
        let io_err = |source| BackendError::Io {
            addr: addr.clone(),
            source,
        };
        stream.write_all(&out).await.map_err(io_err)?;
        stream.flush().await.map_err(io_err)?;
        // The server closes the connection when it has read the request.
        let mut sink = [0u8; 16];
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut sink)).await;
        Ok(())
    };
    tokio::time::timeout(target.connect_timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(BackendError::Timeout {
                addr: target.host.to_string(),
                ms: target.connect_timeout.as_millis(),
            })
        })
}
