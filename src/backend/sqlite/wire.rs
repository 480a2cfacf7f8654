//! The PostgreSQL protocol served by one SQLite connection thread: reads frontend
//! messages from the in-process pipe, answers them through the session, and writes
//! responses at each Sync, Flush or simple Query (one write per round trip).

use std::io::{Read, Write};

use bytes::BytesMut;
use tokio::io::DuplexStream;
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

use super::error::PgError;
use super::session::Session;
use crate::protocol::{build, fe, sqlstate};

/// Largest message the engine accepts (the relay has already enforced the client limit).
const LIMIT: usize = 1 << 30;

fn read_message(io: &mut impl Read, body: &mut Vec<u8>) -> std::io::Result<u8> {
    let mut head = [0u8; 5];
    io.read_exact(&mut head)?;
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len < 4 || len as usize > LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "bad message length",
        ));
    }
    body.resize(len as usize - 4, 0);
    io.read_exact(body)?;
    Ok(head[0])
}

/// Serves the session until the pipe closes or the client terminates.
pub fn serve(pipe: DuplexStream, handle: Handle, mut s: Session) {
    let mut io = SyncIoBridge::new_with_handle(pipe, handle);
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut body = Vec::new();
    loop {
        let Ok(tag) = read_message(&mut io, &mut body) else {
            return;
        };
        let mut flush = false;
        if s.skip_until_sync && tag != fe::SYNC && tag != fe::TERMINATE {
            continue;
        }
        let result: Result<(), PgError> = match tag {
            fe::QUERY => {
                let sql =
                    String::from_utf8_lossy(body.strip_suffix(b"\0").unwrap_or(&body)).into_owned();
                s.simple_query(&sql, &mut out);
                flush = true;
                Ok(())
            }
            fe::PARSE => s.parse(&body, &mut out),
            fe::BIND => s.bind(&body, &mut out),
            fe::DESCRIBE => s.describe(&body, &mut out),
            fe::EXECUTE => s.execute_portal(&body, &mut out),
            fe::CLOSE => s.close(&body, &mut out),
            fe::SYNC => {
                s.skip_until_sync = false;
                s.portals.remove("");
                build::ready_for_query(&mut out, s.status());
                flush = true;
                Ok(())
            }
            fe::FLUSH => {
                flush = true;
                Ok(())
            }
            fe::TERMINATE => return,
            fe::COPY_DATA | fe::COPY_DONE | fe::COPY_FAIL => Ok(()),
            other => Err(PgError::new(
                sqlstate::PROTOCOL_VIOLATION,
                format!("unexpected message '{}'", other as char),
            )),
        };
        if let Err(e) = result {
            // PostgreSQL flushes an error at once, Flush or not: a client that sent
            // Parse/Describe/Flush waits for it before it sends Sync.
            s.fail(&mut out, e);
            s.skip_until_sync = true;
            flush = true;
        }
        if flush && (io.write_all(&out).is_err() || io.flush().is_err()) {
            return;
        }
        if flush {
            out.clear();
        }
    }
}
