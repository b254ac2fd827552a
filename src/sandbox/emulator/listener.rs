//! Connections that can be closed without an answer: the server accepts
//! through its own listener, which can abort any one connection.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The TCP listener of a [`Server`]: every connection carries a flag that
/// aborts it.
pub(super) struct DroppableListener(pub(super) TcpListener);

/// What a handler knows of its connection: the flag that aborts it.
#[derive(Clone, Debug)]
pub(super) struct Connection {
    pub(super) closed: Arc<AtomicBool>,
}

/// A TCP stream that fails every read and write once its flag is set, so
/// that hyper closes it without writing another byte.
pub(super) struct DroppableStream {
    stream: TcpStream,
    closed: Arc<AtomicBool>,
}

impl DroppableStream {
    fn aborted(&self) -> Option<std::io::Error> {
        self.closed
            .load(Ordering::SeqCst)
            .then(|| std::io::Error::from(std::io::ErrorKind::ConnectionAborted))
    }
}

impl AsyncRead for DroppableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(error) = self.aborted() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for DroppableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(error) = self.aborted() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(error) = self.aborted() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(error) = self.aborted() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for DroppableListener {
    type Io = DroppableStream;
    type Addr = Connection;

    async fn accept(&mut self) -> (DroppableStream, Connection) {
        loop {
            match self.0.accept().await {
                Ok((stream, _)) => {
                    let closed = Arc::new(AtomicBool::new(false));
                    let connection = Connection {
                        closed: closed.clone(),
                    };
                    return (DroppableStream { stream, closed }, connection);
                }
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Connection> {
        self.0.local_addr().map(|_| Connection {
            closed: Arc::new(AtomicBool::new(false)),
        })
    }
}

impl Connected<axum::serve::IncomingStream<'_, DroppableListener>> for Connection {
    fn connect_info(stream: axum::serve::IncomingStream<'_, DroppableListener>) -> Connection {
        stream.remote_addr().clone()
    }
}
