//! The lean HTTP/1.1 path of the plaintext listener: keep-alive GET and HEAD requests
//! without bodies (what browsers, CDNs and crawlers send to a static origin) are
//! parsed with `httparse` straight from the connection's buffer and answered with one
//! vectored write of a serialized head and the body's bytes, without hyper's
//! dispatcher. Anything else — HTTP/1.0, a request body, `Expect`, `Upgrade`, the h2c
//! preface, a malformed or oversized head — hands the connection, with every byte
//! read so far, to hyper ([`Outcome::Fallback`]), which answers it as before.
//!
//! Pipelined requests (a client that sends the next request before its answer): while
//! another request's bytes are already buffered, a small answer (no body, or one under
//! [`SENDFILE_MIN`]) waits in the output buffer, up to [`COALESCE_MAX`] bytes, and goes
//! out with the next write: one system call and one wake-up of the client's reader
//! per batch of answers instead of one per answer. Everything waiting is written
//! before the connection waits for more bytes, before a larger answer, and before a
//! hand-over to hyper, so answers keep their order and none waits on the client.
//!
//! Timeouts: the wait for each request head (idle keep-alive included) is bounded by
//! `header_read_timeout`; writes go through the caller's I/O, which bounds stalls.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use crate::handler::Body;
use crate::zerocopy::SENDFILE_MIN;

/// Most bytes of answers held back for a pipelining client (see the module's comment).
const COALESCE_MAX: usize = 64 * 1024;

/// Headers parsed in place; a request with more goes to hyper, which applies the
/// configured `max_headers`.
const MAX_FAST_HEADERS: usize = 48;

/// The body type of the requests the lean path makes (they have none). The handler
/// recognizes it and may answer with a [`crate::hot::WireHead`] instead of a header
/// map, which only this path's writer understands.
pub(crate) struct LeanBody;

/// What ended the lean path.
pub(crate) enum Outcome<IO> {
    /// The connection is finished (closed by the client, timed out, asked to close,
    /// or the server is draining).
    Closed,
    /// A request the lean path does not take: serve the rest of the connection with
    /// hyper, starting with the bytes already read.
    Fallback(Rewind<IO>),
}

/// Limits of the lean path, from `[limits]`.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    /// How long a client may take to send a request head, idle time included.
    pub header_read_timeout: Duration,
    /// The largest request head taken here; larger ones go to hyper (which answers 431).
    pub max_header_bytes: usize,
}

/// Serves requests from `io` with `handle` until the connection ends or a request
/// needs hyper.
pub(crate) async fn serve<IO, F, Fut>(
    mut io: IO,
    limits: Limits,
    stop: &mut watch::Receiver<bool>,
    mut handle: F,
) -> Outcome<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Request<LeanBody>) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let mut buf = BytesMut::with_capacity(8 * 1024);
    // Answers held back for a pipelining client, then the head being written.
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let timer = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(timer);
    loop {
        // Read until one whole request head is buffered.
        let mut armed = false;
        let head = loop {
            if !buf.is_empty() {
                match parse(&buf) {
                    Parsed::Complete(h) => break h,
                    Parsed::Partial if buf.len() < limits.max_header_bytes => {}
                    Parsed::Partial | Parsed::NotOurs => {
                        if send_held(&mut io, &mut out).await.is_err() {
                            return Outcome::Closed;
                        }
                        return Outcome::Fallback(Rewind::new(io, buf.freeze()));
                    }
                }
            }
            // About to wait for the client: what is held back goes out first.
            if send_held(&mut io, &mut out).await.is_err() {
                return Outcome::Closed;
            }
            if !armed {
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + limits.header_read_timeout);
                armed = true;
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(4096);
            }
            let idle = buf.is_empty();
            tokio::select! {
                biased;
                r = io.read_buf(&mut buf) => match r {
                    Ok(0) | Err(_) => return Outcome::Closed,
                    Ok(_) => {}
                },
                _ = &mut timer => return Outcome::Closed,
                _ = stop.changed(), if idle => return Outcome::Closed,
            }
        };

        let raw = buf.split_to(head.len).freeze();
        let Some(req) = head.request(&raw) else {
            // Not representable as an `http::Request` (a bad target or header): hyper
            // answers it.
            let mut rest = BytesMut::with_capacity(raw.len() + buf.len());
            rest.extend_from_slice(&raw);
            rest.extend_from_slice(&buf);
            if send_held(&mut io, &mut out).await.is_err() {
                return Outcome::Closed;
            }
            return Outcome::Fallback(Rewind::new(io, rest.freeze()));
        };
        let is_head = req.method() == Method::HEAD;
        let resp = handle(req).await;
        let keep = !head.close && !*stop.borrow();
        // The next request's bytes are here already: a small answer can wait for its.
        let hold = keep && !buf.is_empty() && out.len() < COALESCE_MAX;
        if write_response(&mut io, &mut out, resp, is_head, keep, hold)
            .await
            .is_err()
        {
            return Outcome::Closed;
        }
        if !keep {
            let _ = io.shutdown().await;
            return Outcome::Closed;
        }
    }
}

/// A request head found in the buffer, checked to be one the lean path serves: its
/// length and where its parts lie, as offsets from the head's start.
struct Head {
    len: usize,
    close: bool,
    method: Method,
    path: (u32, u32),
    headers: [(u32, u32, u32, u32); MAX_FAST_HEADERS],
    count: usize,
}

// A head lives on the stack of one request's parse: no allocation per request.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Complete(Head),
    Partial,
    NotOurs,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_FAST_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotOurs,
    };
    let method = match req.method {
        Some("GET") if req.version == Some(1) => Method::GET,
        Some("HEAD") if req.version == Some(1) => Method::HEAD,
        _ => return Parsed::NotOurs,
    };
    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| {
        let at = s.as_ptr() as usize - base;
        // Heads are capped far below 4 GiB; the casts cannot truncate.
        (at as u32, (at + s.len()) as u32)
    };
    let Some(path) = req.path else {
        return Parsed::NotOurs;
    };
    let mut head = Head {
        len,
        close: false,
        method,
        path: span(path.as_bytes()),
        headers: [(0, 0, 0, 0); MAX_FAST_HEADERS],
        count: req.headers.len(),
    };
    for (i, h) in req.headers.iter().enumerate() {
        let n = h.name.as_bytes();
        if n.eq_ignore_ascii_case(b"content-length") {
            if h.value != b"0" {
                return Parsed::NotOurs;
            }
        } else if n.eq_ignore_ascii_case(b"transfer-encoding")
            || n.eq_ignore_ascii_case(b"expect")
            || n.eq_ignore_ascii_case(b"upgrade")
        {
            return Parsed::NotOurs;
        } else if n.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    head.close = true;
                } else if !t.eq_ignore_ascii_case(b"keep-alive") {
                    return Parsed::NotOurs;
                }
            }
        }
        let (ns, ne) = span(n);
        let (vs, ve) = span(h.value);
        head.headers[i] = (ns, ne, vs, ve);
    }
    Parsed::Complete(head)
}

impl Head {
    /// The request as `http` types, sharing `raw`'s memory (the bytes `parse` saw);
    /// `None` when a part is not valid for them.
    fn request(&self, raw: &Bytes) -> Option<Request<LeanBody>> {
        let mut req = Request::new(LeanBody);
        *req.method_mut() = self.method.clone();
        let (ps, pe) = self.path;
        *req.uri_mut() = Uri::from_maybe_shared(raw.slice(ps as usize..pe as usize)).ok()?;
        *req.version_mut() = Version::HTTP_11;
        let map = req.headers_mut();
        map.reserve(self.count);
        for &(ns, ne, vs, ve) in &self.headers[..self.count] {
            let name = HeaderName::from_bytes(&raw[ns as usize..ne as usize]).ok()?;
            let value = HeaderValue::from_maybe_shared(raw.slice(vs as usize..ve as usize)).ok()?;
            map.append(name, value);
        }
        Some(req)
    }
}

/// Writes out the answers held back in `out`, if any.
async fn send_held<IO: AsyncWrite + Unpin>(io: &mut IO, out: &mut Vec<u8>) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    io.write_all(out).await?;
    out.clear();
    io.flush().await
}

/// Writes a response after the answers held back in `out`: those, the head and the
/// first body chunk in one vectored write, the rest of a streamed body after it. With
/// `hold`, a response without a body or with one under [`SENDFILE_MIN`] bytes is
/// only appended to `out`, for a later write.
async fn write_response<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    out: &mut Vec<u8>,
    resp: Response<Body>,
    is_head: bool,
    keep_alive: bool,
    hold: bool,
) -> std::io::Result<()> {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let bodiless = is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_length = false;
    let mut has_date = false;
    if let Some(wire) = parts.extensions.get::<crate::hot::WireHead>() {
        // Prepared lines carry neither content-length nor date.
        out.extend_from_slice(&wire.lines);
    }
    for (name, value) in parts.headers.iter() {
        if name == header::CONTENT_LENGTH {
            has_length = true;
        } else if name == header::DATE {
            has_date = true;
        } else if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let size = hyper::body::Body::size_hint(&body).exact();
    if !has_length
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED
        && !status.is_informational()
    {
        // Every body this server makes has a known length.
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(size.unwrap_or(0)).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        http_date(out);
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");

    if bodiless {
        if hold {
            return Ok(());
        }
        return send_held(io, out).await;
    }
    if hold && size.is_some_and(|n| n < SENDFILE_MIN as u64) {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(std::io::Error::other)?;
            if let Ok(data) = frame.into_data() {
                out.extend_from_slice(&data);
            }
        }
        return Ok(());
    }
    let mut head_pending = true;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(std::io::Error::other)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if head_pending {
            write_two(io, out, data).await?;
            out.clear();
            head_pending = false;
        } else {
            io.write_all(&data).await?;
        }
    }
    send_held(io, out).await?;
    io.flush().await
}

/// Writes `head` then `data` with as few vectored writes as the socket allows.
async fn write_two<IO: AsyncWrite + Unpin>(
    io: &mut IO,
    head: &[u8],
    mut data: Bytes,
) -> std::io::Result<()> {
    let mut head = head;
    while !head.is_empty() {
        let n = io
            .write_vectored(&[IoSlice::new(head), IoSlice::new(&data)])
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        if n < head.len() {
            head = &head[n..];
        } else {
            data.advance(n - head.len());
            head = &[];
        }
    }
    while !data.is_empty() {
        let n = io.write_vectored(&[IoSlice::new(&data)]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        data.advance(n);
    }
    Ok(())
}

/// Appends the current time as an HTTP date, formatted once per second per thread.
fn http_date(out: &mut Vec<u8>) {
    thread_local! {
        static CACHED: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs || c.1.is_empty() {
            *c = (secs, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(c.1.as_bytes());
    });
}

/// An I/O whose reads first return bytes read earlier: how a connection started on
/// the lean path continues under hyper.
pub(crate) struct Rewind<IO> {
    pre: Bytes,
    inner: IO,
}

impl<IO> Rewind<IO> {
    fn new(inner: IO, pre: Bytes) -> Self {
        Rewind { pre, inner }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_gets_and_heads_are_taken() {
        let Parsed::Complete(h) = parse(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET") else {
            panic!("not complete");
        };
        assert_eq!(h.len, 28);
        assert!(!h.close);
        let Parsed::Complete(h) =
            parse(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, close\r\n\r\n")
        else {
            panic!("not complete");
        };
        assert!(h.close);
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHo"), Parsed::Partial));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for raw in [
            &b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Parsed::NotOurs),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn a_bad_target_is_not_representable() {
        let raw = Bytes::from_static(b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n");
        // httparse rejects the space; an absolute-form target with a bad authority
        // parses but is no `Uri`.
        assert!(matches!(parse(&raw), Parsed::NotOurs));
        let raw = Bytes::from_static(b"GET http://[::1/ HTTP/1.1\r\nHost: x\r\n\r\n");
        match parse(&raw) {
            Parsed::Complete(h) => assert!(h.request(&raw).is_none()),
            _ => panic!("httparse accepts this head; only the Uri rejects it"),
        }
    }

    #[tokio::test]
    async fn rewind_returns_the_prefix_first() {
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(b" world").await.unwrap_or_default();
        drop(b);
        let mut r = Rewind::new(a, Bytes::from_static(b"hello"));
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap_or_default();
        assert_eq!(s, "hello world");
    }
}
