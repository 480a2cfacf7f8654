//! Leaving a server connection clean after its client vanished: end a COPY, finish what
//! was in flight, roll back an open transaction. If that does not complete quickly the
//! connection is discarded instead (closing it makes the server roll back).

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend::conn::ServerConn;
use crate::protocol::{TxStatus, build, fe};
use crate::relay::Relay;

/// How long cleanup may take before the connection is discarded.
pub const RESET_TIMEOUT: Duration = Duration::from_secs(2);

/// True when the connection is clean and may go back to the pool.
pub async fn reset(relay: &mut Relay, conn: &mut ServerConn) -> bool {
    if conn.broken {
        return false;
    }
    tokio::time::timeout(RESET_TIMEOUT, reset_inner(relay, conn))
        .await
        .unwrap_or(false)
}

async fn reset_inner(relay: &mut Relay, conn: &mut ServerConn) -> bool {
    if relay.can_release() && relay.server_out.is_empty() {
        return true;
    }
    relay.skip_to_sync = false;
    if relay.in_copy {
        let mut m = BytesMut::new();
        build::copy_fail(&mut m, "client disconnected during COPY");
        if !feed(relay, conn, fe::COPY_FAIL, &m) {
            return false;
        }
    }
    if relay.unsynced {
        let mut m = BytesMut::new();
        build::sync(&mut m);
        if !feed(relay, conn, fe::SYNC, &m) {
            return false;
        }
    }
    if !drain(relay, conn).await {
        return false;
    }
    if relay.status != TxStatus::Idle {
        let mut m = BytesMut::new();
        build::query(&mut m, "ROLLBACK");
        if !feed(relay, conn, fe::QUERY, &m) || !drain(relay, conn).await {
            return false;
        }
    }
    relay.can_release()
}

fn feed(relay: &mut Relay, conn: &mut ServerConn, tag: u8, msg: &[u8]) -> bool {
    relay.on_client(tag, msg, Some(conn)).is_ok()
}

/// Sends what is pending and reads until every expected response has arrived.
async fn drain(relay: &mut Relay, conn: &mut ServerConn) -> bool {
    loop {
        if !relay.server_out.is_empty() {
            let out = relay.server_out.split();
            if conn.stream.write_all(&out).await.is_err() || conn.stream.flush().await.is_err() {
                return false;
            }
        }
        relay.client_out.clear();
        if relay.queue.is_empty() {
            return true;
        }
        conn.rbuf.reserve(16 * 1024);
        match conn.stream.read_buf(&mut conn.rbuf).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if relay.on_server_input(conn).is_err() {
            return false;
        }
    }
}
