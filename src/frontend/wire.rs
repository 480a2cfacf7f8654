//! Reading and writing whole messages on a client connection during the startup phase
//! (before the relay's non-blocking pump takes over).

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::protocol::build::{self, ErrorFields};
use crate::protocol::framing;

/// Reads one tagged message of at most `limit` bytes, using `buf` for leftovers.
pub async fn read_message<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    limit: usize,
) -> io::Result<(u8, Bytes)> {
    loop {
        match framing::complete(buf, limit) {
            Ok(Some(h)) => {
                let mut msg = buf.split_to(h.total);
                let body = msg.split_off(framing::HEADER_LEN).freeze();
                return Ok((h.tag, body));
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
        buf.reserve(1024);
        if s.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Writes and flushes.
pub async fn send<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// Sends an ErrorResponse (best effort: the client may already be gone).
pub async fn send_error<S: AsyncWrite + Unpin>(s: &mut S, err: &ErrorFields) {
    let mut b = BytesMut::new();
    build::error_response(&mut b, err);
    let _ = send(s, &b).await;
}
