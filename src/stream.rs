//! Byte streams: a client connection (TCP or TLS) and a server connection (TCP, Unix
//! socket, TLS, or an in-process pipe to an embedded engine), as enums so the relay's hot
//! path uses static dispatch.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

macro_rules! delegate_io {
    ($ty:ident { $($variant:ident),* }) => {
        impl AsyncRead for $ty {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_read(cx, buf),)*
                }
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_write(cx, buf),)*
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_flush(cx),)*
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_shutdown(cx),)*
                }
            }
        }
    };
}

/// A connection from an application.
pub enum ClientStream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

delegate_io!(ClientStream { Tcp, Tls });

/// A connection to a database server (or to the embedded engine).
pub enum ServerStream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Local(DuplexStream),
}

delegate_io!(ServerStream {
    Tcp,
    Unix,
    Tls,
    Local
});

impl ServerStream {
    /// Whether an idle server connection can be handed out: nothing has arrived on it
    /// since its last answer and the server has not closed it. One non-blocking peek at
    /// the socket, no round trip: a server that ended the session while it sat in the
    /// pool (`pg_terminate_backend`, `idle_session_timeout`, a restart) left its FATAL
    /// or its end of stream there.
    pub fn idle_and_open(&self) -> bool {
        let sock = match self {
            ServerStream::Tcp(s) => socket2::SockRef::from(s),
            ServerStream::Unix(s) => socket2::SockRef::from(s),
            ServerStream::Tls(s) => socket2::SockRef::from(s.get_ref().0),
            ServerStream::Local(_) => return true,
        };
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        // The socket is non-blocking (tokio's): nothing to read is WouldBlock.
        match sock.peek(&mut byte) {
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            Ok(_) => false,
        }
    }
}
