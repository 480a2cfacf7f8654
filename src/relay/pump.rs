//! Moves bytes in both directions at once without blocking one side on the other: pending
//! output is written as the peers accept it, and each side is read only while the output
//! toward the other side is below a high-water mark (backpressure instead of buffering).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Buf, BufMut, BytesMut};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite};

/// Stop reading a side while this much output for the other side is pending.
pub const HIGH_WATER: usize = 256 * 1024;

/// What woke the pump.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    ClientData,
    ServerData,
    ClientClosed,
    ServerClosed,
    /// All output written and nothing else to wait for.
    Idle,
    /// `Sides::stop` was raised while waiting.
    Stop,
}

/// I/O failure on one side.
#[derive(Debug)]
pub enum PumpError {
    Client(io::Error),
    Server(io::Error),
}

/// One direction's output state.
pub struct Out<'a> {
    pub buf: &'a mut BytesMut,
    /// Bytes were written since the last successful flush.
    pub dirty: &'a mut bool,
}

fn write_out<S: AsyncWrite + Unpin>(
    s: &mut S,
    out: &mut Out<'_>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while !out.buf.is_empty() {
        match Pin::new(&mut *s).poll_write(cx, out.buf) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                out.buf.advance(n);
                *out.dirty = true;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    if *out.dirty {
        match Pin::new(&mut *s).poll_flush(cx) {
            Poll::Ready(Ok(())) => *out.dirty = false,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(()))
}

/// The most one read takes from a socket. The kernel may hold far more (a loopback
/// receive buffer autotunes up to `tcp_rmem`'s maximum, 32 MB here), and a buffer that
/// grew with every full read would take it all in one go: a slow client's result would
/// then sit in switchyard's memory after all.
const MAX_READ: usize = 256 * 1024;

fn read_in<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    // Small until a read fills it: an idle client's buffer stays one page, while a side
    // that streams (COPY, large rows) grows by 16 KB at each full read, up to MAX_READ,
    // and keeps that capacity (emptied buffers are reused from the start).
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    let spare = (buf.capacity() - buf.len()).min(MAX_READ);
    let read = tokio_util::io::poll_read_buf(Pin::new(s), cx, &mut (&mut *buf).limit(MAX_READ));
    if matches!(read, Poll::Ready(Ok(n)) if n == spare) && buf.capacity() < MAX_READ {
        buf.reserve(16 * 1024);
    }
    read
}

/// The two sides of a session for one pump step.
pub struct Sides<'a, C, S> {
    pub client: &'a mut C,
    pub client_in: &'a mut BytesMut,
    pub client_out: Out<'a>,
    pub server: Option<(&'a mut S, &'a mut BytesMut, Out<'a>)>,
    /// Whether to read from the client now.
    pub read_client: bool,
    /// Client messages are waiting for room in the server output: return as soon as
    /// that output is below the high-water mark.
    pub wake_on_drain: bool,
    /// When set, a wait ends with [`Event::Stop`] once the flag is raised; whoever raises
    /// it wakes the waker (costs a waker registration per wait, nothing per byte).
    pub stop: Option<(&'a AtomicWaker, &'a AtomicBool)>,
    /// With `stop`: a wait also ends (with [`Event::Idle`]) once this flag is raised
    /// (notifications for the client arrived; the raiser wakes the same waker).
    pub mail: Option<&'a AtomicBool>,
}

/// Writes what is pending and waits until there is something new to process.
pub async fn step<C, S>(mut sides: Sides<'_, C, S>) -> Result<Event, PumpError>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    poll_fn(|cx| poll_step(&mut sides, cx)).await
}

fn poll_step<C, S>(
    sides: &mut Sides<'_, C, S>,
    cx: &mut Context<'_>,
) -> Poll<Result<Event, PumpError>>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let client_flushed = match write_out(sides.client, &mut sides.client_out, cx) {
        Poll::Ready(Err(e)) => return Poll::Ready(Err(PumpError::Client(e))),
        Poll::Ready(Ok(())) => true,
        Poll::Pending => false,
    };
    let mut waiting = !client_flushed;
    if let Some((server, server_in, server_out)) = sides.server.as_mut() {
        match write_out(*server, server_out, cx) {
            Poll::Ready(Err(e)) => return Poll::Ready(Err(PumpError::Server(e))),
            Poll::Ready(Ok(())) => {}
            Poll::Pending => waiting = true,
        }
        if sides.wake_on_drain && server_out.buf.len() < HIGH_WATER {
            return Poll::Ready(Ok(Event::Idle));
        }
        if sides.client_out.buf.len() < HIGH_WATER {
            match read_in(*server, server_in, cx) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(Event::ServerClosed)),
                Poll::Ready(Ok(_)) => return Poll::Ready(Ok(Event::ServerData)),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(PumpError::Server(e))),
                Poll::Pending => waiting = true,
            }
        }
    }
    let server_out_full = sides
        .server
        .as_ref()
        .is_some_and(|(_, _, o)| o.buf.len() >= HIGH_WATER);
    if sides.read_client && !server_out_full {
        match read_in(sides.client, sides.client_in, cx) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(Event::ClientClosed)),
            Poll::Ready(Ok(_)) => return Poll::Ready(Ok(Event::ClientData)),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(PumpError::Client(e))),
            Poll::Pending => waiting = true,
        }
    }
    if !waiting {
        return Poll::Ready(Ok(Event::Idle));
    }
    if let Some((waker, flag)) = sides.stop {
        waker.register(cx.waker());
        if flag.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(Event::Stop));
        }
        if sides.mail.is_some_and(|m| m.load(Ordering::Acquire)) {
            return Poll::Ready(Ok(Event::Idle));
        }
    }
    Poll::Pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    #[tokio::test]
    async fn moves_bytes_both_ways() {
        let (mut client, mut client_peer) = duplex(64);
        let (mut server, mut server_peer) = duplex(64);
        client_peer.write_all(b"hello").await.unwrap();
        let mut cin = BytesMut::new();
        let mut cout = BytesMut::from(&b"to-client"[..]);
        let mut sin = BytesMut::new();
        let mut sout = BytesMut::from(&b"to-server"[..]);
        let (mut cd, mut sd) = (false, false);
        let ev = step::<DuplexStream, DuplexStream>(Sides {
            client: &mut client,
            client_in: &mut cin,
            client_out: Out {
                buf: &mut cout,
                dirty: &mut cd,
            },
            server: Some((
                &mut server,
                &mut sin,
                Out {
                    buf: &mut sout,
                    dirty: &mut sd,
                },
            )),
            read_client: true,
            wake_on_drain: false,
            stop: None,
            mail: None,
        })
        .await
        .unwrap();
        assert_eq!(ev, Event::ClientData);
        assert_eq!(&cin[..], b"hello");
        let mut got = [0u8; 9];
        client_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"to-client");
        server_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"to-server");
    }
}
