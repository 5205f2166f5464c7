//! A write coalescer for HTTP/2 over TLS. hyper's HTTP/2 (the `h2` crate) writes and
//! flushes once per DATA frame, and tokio-rustls turns each flush into a TLS record
//! and a `writev`: one system call per response. Here a flush only marks the buffered
//! bytes as due and wakes the connection task; they are written (encrypted in one go,
//! one `writev`) the next time the connection polls its socket for reading, which h2
//! does on every poll, after the other ready tasks (other streams) have added theirs.
//! A full buffer, a shutdown or a read always write first, so nothing waits for more
//! than one turn of the scheduler.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Buffers writes until the connection's next read or until `cap` bytes; with `cap`
/// 0 (HTTP/1.1, which writes a response with one call) it passes everything through.
pub(crate) struct Coalesce<S> {
    inner: S,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed to `inner`.
    sent: usize,
    cap: usize,
    /// The last attempt to write the buffer found the socket full: a flush then
    /// waits for it (instead of deferring again, which would spin).
    blocked: bool,
}

impl<S: AsyncWrite + Unpin> Coalesce<S> {
    pub(crate) fn new(inner: S, cap: usize) -> Self {
        Coalesce {
            inner,
            buf: Vec::with_capacity(cap),
            sent: 0,
            cap,
            blocked: false,
        }
    }

    /// Writes the buffer out and flushes `inner`; remembers whether that blocked.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = self.poll_drain_inner(cx);
        self.blocked = r.is_pending();
        r
    }

    fn poll_drain_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Coalesce<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.buf.is_empty() {
            // Pending registers the task for write readiness; reading goes on.
            if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesce<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.cap == 0 {
            return Pin::new(&mut self.inner).poll_write(cx, data);
        }
        if self.buf.len() + data.len() > self.cap {
            std::task::ready!(self.poll_drain(cx))?;
            if data.len() >= self.cap {
                return Pin::new(&mut self.inner).poll_write(cx, data);
            }
        }
        self.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.cap == 0 {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.buf.len() + total > self.cap {
            std::task::ready!(self.poll_drain(cx))?;
            if total >= self.cap {
                return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
            }
        }
        for b in bufs {
            self.buf.extend_from_slice(b);
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        self.cap > 0 || self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buf.is_empty() {
            return Pin::new(&mut self.inner).poll_flush(cx);
        }
        if self.blocked {
            // The socket is full: wait for it like any writer would.
            return self.poll_drain(cx);
        }
        // Due: written on the next read (h2 reads on every poll), which this wake-up
        // guarantees comes.
        cx.waker().wake_by_ref();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
