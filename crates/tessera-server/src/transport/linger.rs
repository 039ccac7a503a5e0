//! The socket under TLS and HTTP, with a lingering close: when a connection ends while the
//! peer is still sending (a 413 answered before the body was read), closing at once would make
//! the kernel reset the connection and the peer lose our answer. Instead the write side is
//! shut and what the peer still sends is read and discarded, for a bounded time and size.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

/// Most bytes drained after close.
const MAX_DRAIN: usize = 1 << 20;

pub(crate) struct LingerIo {
    stream: Option<TcpStream>,
    linger: Duration,
    peer_closed: bool,
    /// Connection slots (global and per address), released when draining is over.
    held: Option<Box<dyn Send + Sync>>,
}

impl LingerIo {
    pub(crate) fn new(stream: TcpStream, linger: Duration, held: Box<dyn Send + Sync>) -> Self {
        Self { stream: Some(stream), linger, peer_closed: false, held: Some(held) }
    }

    fn stream(&mut self) -> &mut TcpStream {
        self.stream.as_mut().expect("stream present until drop")
    }
}

impl AsyncRead for LingerIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(self.stream()).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            if buf.filled().len() == before && buf.remaining() > 0 {
                self.peer_closed = true;
            }
        }
        result
    }
}

impl AsyncWrite for LingerIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(self.stream()).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(self.stream()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.stream()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(self.stream()).poll_shutdown(cx)
    }
}

impl Drop for LingerIo {
    fn drop(&mut self) {
        let (Some(mut stream), held) = (self.stream.take(), self.held.take()) else { return };
        if self.peer_closed || self.linger.is_zero() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let linger = self.linger;
        runtime.spawn(async move {
            let _held = held;
            let _ = stream.shutdown().await;
            let mut buf = [0u8; 4096];
            let mut drained = 0;
            let _ = tokio::time::timeout(linger, async {
                while drained < MAX_DRAIN {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => drained += n,
                    }
                }
            })
            .await;
        });
    }
}
