//! The serving hot path end to end over real sockets: zero-copy (sendfile) bodies
//! byte for byte over HTTP/1.1 (pipelined too) and h2c, a hyper HTTP/1.1 client on one
//! kept-alive connection, the whole-request deadline against a client that reads just
//! fast enough to dodge the stall timeout, h2c without the Upgrade dance, and request
//! bodies in every framing.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use qpage_edge::{SiteConfig, Store, WwwPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

/// A site "files" (host files.test) with large bodies: a 200 KiB image, a 40 KiB page
/// (gets br/gz variants), a 6 MiB blob (cached whole) and a 12 MiB one (streamed).
struct Files {
    image: Vec<u8>,
    page: Vec<u8>,
    six: Vec<u8>,
    twelve: Vec<u8>,
}

fn add_files_site(store: &Store) -> Files {
    let tmp = tempfile::tempdir().unwrap();
    let files = Files {
        image: noise(200 * 1024, 1),
        page: page("large page").repeat(30).into_bytes(),
        six: noise(6 << 20, 2),
        twelve: noise(12 << 20, 3),
    };
    write(tmp.path(), "image.jpg", &files.image);
    write(tmp.path(), "page.html", &files.page);
    write(tmp.path(), "six.bin", &files.six);
    write(tmp.path(), "twelve.bin", &files.twelve);
    store
        .put_site(
            "files",
            &SiteConfig {
                hosts: vec!["files.test".into()],
                aliases: vec![],
                www: WwwPolicy::Off,
                https: Default::default(),
            },
        )
        .unwrap();
    let id = store.import_dir("files", tmp.path()).unwrap();
    store.activate("files", &id).unwrap();
    files
}

fn brotli_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut std::io::Cursor::new(b), &mut out).unwrap();
    out
}

#[tokio::test]
async fn large_bodies_are_byte_exact_whole_ranged_and_encoded() {
    let f = fixture();
    let files = add_files_site(&f.store);
    let mut cfg = config(&f.data);
    cfg.cache.max_object_bytes = 8 << 20;
    let s = start(cfg).await;
    // Twice each: the first read fills the cache, the second is a cache hit.
    for _ in 0..2 {
        let r = get(s.addr, "files.test", "/image.jpg").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("204800"));
        assert!(r.body == files.image, "image bytes differ");
        let r = get(s.addr, "files.test", "/six.bin").await;
        assert!(r.body == files.six, "6 MiB bytes differ");
        let r = get(s.addr, "files.test", "/twelve.bin").await;
        assert!(r.body == files.twelve, "12 MiB bytes differ");
        let r = req(
            s.addr,
            "GET",
            "files.test",
            "/page.html",
            &[("Accept-Encoding", "br")],
        )
        .await;
        assert_eq!(r.header("content-encoding"), Some("br"));
        assert_eq!(brotli_decode(&r.body), files.page);
        let r = get(s.addr, "files.test", "/page.html").await;
        assert!(r.body == files.page);
    }
    assert!(s.handle.metrics().cache_hits() > 0);
    // Ranges inside a cached body start at the right offset.
    for (range, lo, hi) in [
        ("bytes=0-0", 0usize, 1usize),
        ("bytes=100000-150000", 100_000, 150_001),
        ("bytes=-20000", 204_800 - 20_000, 204_800),
        ("bytes=180000-", 180_000, 204_800),
    ] {
        let r = req(
            s.addr,
            "GET",
            "files.test",
            "/image.jpg",
            &[("Range", range)],
        )
        .await;
        assert_eq!(r.status, 206, "{range}");
        assert!(r.body == files.image[lo..hi], "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {}-{}/204800", lo, hi - 1).as_str())
        );
    }
    // HEAD sends the length and no body.
    let r = req(s.addr, "HEAD", "files.test", "/six.bin", &[]).await;
    assert_eq!(r.header("content-length"), Some("6291456"));
    assert!(r.body.is_empty());
    s.stop().await;
}

/// Reads one response with a Content-Length off a kept-alive connection.
async fn read_one(c: &mut TcpStream, pending: &mut Vec<u8>) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = parse(&pending[..end + 4]);
            let len: usize = head.header("content-length").unwrap().parse().unwrap();
            if pending.len() >= end + 4 + len {
                let rest = pending.split_off(end + 4 + len);
                let r = parse(pending);
                *pending = rest;
                return r;
            }
        }
        assert!(Instant::now() < deadline, "response not complete in time");
        let mut buf = vec![0u8; 256 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
            .await
            .expect("read in time")
            .unwrap();
        assert!(n > 0, "connection closed mid-response");
        pending.extend_from_slice(&buf[..n]);
    }
}

/// The "files" site on a running edge, and a connection to it.
async fn files_connection() -> (Fixture, Files, Running, TcpStream) {
    let f = fixture();
    let files = add_files_site(&f.store);
    let s = start(config(&f.data)).await;
    let c = TcpStream::connect(s.addr).await.unwrap();
    (f, files, s, c)
}

#[tokio::test]
async fn pipelined_large_and_small_responses_stay_in_order() {
    let (_f, files, s, mut c) = files_connection().await;
    // Warm the cache, then pipeline: large, small, large range, large.
    let one = b"GET /image.jpg HTTP/1.1\r\nHost: files.test\r\n\r\n";
    c.write_all(one).await.unwrap();
    let mut pending = Vec::new();
    assert!(read_one(&mut c, &mut pending).await.body == files.image);
    let mut batch = Vec::new();
    batch.extend_from_slice(one);
    batch.extend_from_slice(b"GET /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\n\r\n");
    batch.extend_from_slice(
        b"GET /image.jpg HTTP/1.1\r\nHost: files.test\r\nRange: bytes=65536-131071\r\n\r\n",
    );
    batch.extend_from_slice(b"GET /page.html HTTP/1.1\r\nHost: files.test\r\n\r\n");
    c.write_all(&batch).await.unwrap();
    let r = read_one(&mut c, &mut pending).await;
    assert!(r.body == files.image);
    let r = read_one(&mut c, &mut pending).await;
    assert_eq!(r.body, b"alpha-only secret");
    let r = read_one(&mut c, &mut pending).await;
    assert_eq!(r.status, 206);
    assert!(r.body == files.image[65536..131072]);
    let r = read_one(&mut c, &mut pending).await;
    assert!(r.body == files.page);
    assert!(pending.is_empty());
    s.stop().await;
}

/// TCP segments the socket has received (`tcpi_segs_in`).
fn segments_in(c: &TcpStream) -> u32 {
    use std::os::fd::AsRawFd;
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            c.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info.tcpi_segs_in
}

/// Twenty small GETs sent in one write are answered in order, and together: the
/// answers wait for one another while the next request is already buffered, so they
/// arrive in a few segments, not one (or more) per answer. A large answer in the
/// middle is not held (it goes by sendfile), and what was held goes out before it.
#[tokio::test]
async fn pipelined_small_answers_share_writes() {
    let (_f, files, s, mut c) = files_connection().await;
    let mut pending = Vec::new();
    // Warm the cache with each answer.
    for req in [
        &b"GET /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\n\r\n"[..],
        b"GET /image.jpg HTTP/1.1\r\nHost: files.test\r\n\r\n",
    ] {
        c.write_all(req).await.unwrap();
        assert_eq!(read_one(&mut c, &mut pending).await.status, 200);
    }
    let small = b"GET /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\n\r\n";
    let before = segments_in(&c);
    c.write_all(&small.repeat(20)).await.unwrap();
    for i in 0..20 {
        let r = read_one(&mut c, &mut pending).await;
        assert_eq!(r.status, 200, "answer {i}");
        assert_eq!(r.body, b"alpha-only secret", "answer {i}");
    }
    assert!(pending.is_empty());
    let segs = segments_in(&c) - before;
    assert!(segs <= 6, "20 answers took {segs} segments: not coalesced");

    // Small, small, large, small: in order, bodies intact.
    let mut batch = small.repeat(2);
    batch.extend_from_slice(b"GET /image.jpg HTTP/1.1\r\nHost: files.test\r\n\r\n");
    batch.extend_from_slice(small);
    c.write_all(&batch).await.unwrap();
    for want in [
        &b"alpha-only secret"[..],
        b"alpha-only secret",
        &files.image,
        b"alpha-only secret",
    ] {
        let r = read_one(&mut c, &mut pending).await;
        assert_eq!(r.status, 200);
        assert!(r.body == want, "body differs");
    }
    assert!(pending.is_empty());
    s.stop().await;
}

/// Zero-copy bodies go out as a head sent with `MSG_MORE` and a `sendfile` that ends
/// with a push: a head or tail left waiting for more (a stray `MSG_MORE` or `TCP_CORK`)
/// would hold every response's last partial segment for the kernel's 200 ms cork
/// timeout. Ten sendfile-sized answers in a row on one connection must each arrive well
/// before that.
#[tokio::test]
async fn sendfile_answers_are_not_held_back() {
    let (_f, files, s, mut c) = files_connection().await;
    let mut pending = Vec::new();
    let mut quick = 0;
    let mut took = Vec::new();
    for path in ["/image.jpg", "/page.html"].iter().cycle().take(10) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: files.test\r\n\r\n");
        let t = Instant::now();
        c.write_all(req.as_bytes()).await.unwrap();
        let r = read_one(&mut c, &mut pending).await;
        let dt = t.elapsed();
        assert_eq!(r.status, 200);
        let want = if *path == "/image.jpg" {
            &files.image
        } else {
            &files.page
        };
        assert!(r.body == *want, "{path}: body differs");
        if dt < Duration::from_millis(150) {
            quick += 1;
        }
        took.push(dt);
    }
    assert!(quick >= 8, "answers held back: {took:?}");
    s.stop().await;
}

/// Plain keep-alive GETs and HEADs take the lean HTTP/1.1 path; anything else on the
/// same connection (HTTP/1.0, a request body) is handed to hyper with the bytes already
/// read, and the connection goes on in order.
#[tokio::test]
async fn lean_and_full_http1_paths_share_one_connection() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let mut pending = Vec::new();

    // A head that arrives a few bytes at a time.
    for chunk in b"GET /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\n\r\n".chunks(7) {
        c.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = read_one(&mut c, &mut pending).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"alpha-only secret");
    assert!(r.header("date").is_some(), "no date header");
    assert_eq!(r.header("content-length").unwrap(), "17");

    // The second GET of a file is written from its prepared header lines: the same
    // headers as the first, built from the header map (only the date may differ),
    // and the same as hyper's (HTTP/1.0) answer.
    let headers = |r: &Resp| {
        let mut h: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| n != "date" && n != "connection")
            .cloned()
            .collect();
        h.sort();
        h
    };
    c.write_all(b"GET /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\n\r\n")
        .await
        .unwrap();
    let again = read_one(&mut c, &mut pending).await;
    assert_eq!(again.body, b"alpha-only secret");
    assert_eq!(headers(&again), headers(&r));
    assert!(again.header("etag").is_some() && again.header("cache-control").is_some());
    let hyper_answer = raw(
        s.addr,
        b"GET /secret-alpha.txt HTTP/1.0\r\nHost: alpha.test\r\n\r\n",
    )
    .await;
    assert_eq!(headers(&hyper_answer), headers(&r));

    // HEAD: the GET's length, no body (the next response follows directly).
    c.write_all(b"HEAD /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\n\r\nGET /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\n\r\n")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pending.windows(4).filter(|w| *w == b"\r\n\r\n").count() < 2
        || !pending.ends_with(b"alpha-only secret")
    {
        assert!(Instant::now() < deadline, "responses not complete in time");
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed");
        pending.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&pending).to_string();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert_eq!(text.matches("content-length: 17\r\n").count(), 2, "{text}");
    assert_eq!(
        text.matches("alpha-only secret").count(),
        1,
        "HEAD sent a body: {text}"
    );
    pending.clear();

    // A request with a body, pipelined behind a plain GET: the GET is answered by the
    // lean path, the POST by hyper (405 or 413, never served), then hyper keeps going.
    c.write_all(b"GET /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\n\r\nPOST / HTTP/1.1\r\nHost: alpha.test\r\nContent-Length: 3\r\n\r\nabcGET /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\n\r\n")
        .await
        .unwrap();
    let r = read_one(&mut c, &mut pending).await;
    assert_eq!(r.body, b"alpha-only secret");
    let r = read_one(&mut c, &mut pending).await;
    assert!(r.status >= 400 && r.status < 500, "POST got {}", r.status);
    let r = read_one(&mut c, &mut pending).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"alpha-only secret");

    // HTTP/1.0 on a fresh connection: answered (by hyper) and closed.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /secret-alpha.txt HTTP/1.0\r\nHost: alpha.test\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut all))
        .await
        .expect("HTTP/1.0 connection closed in time")
        .unwrap();
    let r = parse(&all);
    assert_eq!(r.status, 200);
    assert!(all.ends_with(b"alpha-only secret"));

    // `Connection: close` on the lean path: answered, then closed by the server.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut all))
        .await
        .expect("closed in time")
        .unwrap();
    let r = parse(&all);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection").unwrap(), "close");
    assert!(all.ends_with(b"alpha-only secret"));
    s.stop().await;
}

#[tokio::test]
async fn h2c_large_bodies_and_hostile_paths() {
    let f = fixture();
    let files = add_files_site(&f.store);
    let s = start(config(&f.data)).await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let req = http::Request::get("http://files.test/image.jpg")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(body == files.image);
    }
    // The :path of HTTP/2 goes through the same normalization.
    for p in [
        "/%2e%2e/secret-alpha.txt",
        "/a%2f..%2fsecret-alpha.txt",
        "/%00",
    ] {
        let req = http::Request::get(format!("http://alpha.test{p}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 400, "{p}");
    }
    // A stream with a body is refused.
    let req = http::Request::post("http://alpha.test/")
        .body(http_body_util::Full::new(Bytes::from_static(b"x")))
        .unwrap();
    let stream2 = TcpStream::connect(s.addr).await.unwrap();
    let (mut sender2, conn2) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream2),
    )
    .await
    .unwrap();
    tokio::spawn(conn2);
    let resp = sender2.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 405);
    s.stop().await;
}

#[tokio::test]
async fn h2c_upgrade_header_is_ignored() {
    // Only prior-knowledge h2c is spoken; an HTTP/1.1 `Upgrade: h2c` request is served
    // as plain HTTP/1.1 (no 101).
    let f = fixture();
    let mut cfg = config(&f.data);
    // The connection stays open after the response: the idle timeout closes it.
    cfg.limits.header_read_timeout_ms = 300;
    let s = start(cfg).await;
    let r = raw(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: alpha.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("alpha home"));
    assert!(r.header("upgrade").is_none());
    s.stop().await;
}

#[tokio::test]
async fn hyper_http1_client_keeps_one_connection_for_conditional_and_ranged_requests() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut send = |req: http::Request<Empty<Bytes>>| {
        let fut = sender.send_request(req);
        async move {
            let resp = fut.await.unwrap();
            let (parts, body) = resp.into_parts();
            (parts, body.collect().await.unwrap().to_bytes())
        }
    };
    let (p, body) = send(
        http::Request::get("/about/")
            .header("host", "alpha.test")
            .body(Empty::new())
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, 200);
    assert!(String::from_utf8_lossy(&body).contains("alpha about"));
    let etag = p.headers["etag"].clone();
    let (p, body) = send(
        http::Request::get("/about/")
            .header("host", "alpha.test")
            .header("if-none-match", etag.clone())
            .body(Empty::new())
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, 304);
    assert!(body.is_empty());
    let (p, body) = send(
        http::Request::get("/about/")
            .header("host", "alpha.test")
            .header("range", "bytes=0-14")
            .header("if-range", etag)
            .body(Empty::new())
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, 206);
    assert_eq!(&body[..], b"<!doctype html>");
    // A stale If-Range gets the whole body.
    let (p, _) = send(
        http::Request::get("/about/")
            .header("host", "alpha.test")
            .header("range", "bytes=0-14")
            .header("if-range", "\"stale\"")
            .body(Empty::new())
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, 200);
    // q=0 refuses br; gzip chosen.
    let (p, _) = send(
        http::Request::get("/about/")
            .header("host", "alpha.test")
            .header("accept-encoding", "br;q=0, gzip;q=0.5")
            .body(Empty::new())
            .unwrap(),
    )
    .await;
    assert_eq!(p.headers["content-encoding"], "gzip");
    assert_eq!(p.headers["vary"], "Accept-Encoding");
    // All of it over the one connection.
    assert_eq!(s.handle.metrics().open_connections(), 1);
    s.stop().await;
}

#[tokio::test]
async fn request_bodies_are_refused_in_every_framing() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let r = raw(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: alpha.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    let r = raw(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: alpha.test\r\nContent-Length: 100000\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 413);
    // Content-Length: 0 is no body.
    let r = req(s.addr, "GET", "alpha.test", "/", &[("Content-Length", "0")]).await;
    assert_eq!(r.status, 200);
    // A raw NUL in the request target never reaches routing.
    let r = raw(
        s.addr,
        b"GET /in\0dex.html HTTP/1.1\r\nHost: alpha.test\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 400);
    s.stop().await;
}

/// Reads `stream` `step` bytes at a time every `pause` until EOF or error; returns the
/// byte count and the time it took.
async fn trickle_read(mut c: TcpStream, step: usize, pause: Duration) -> (usize, Duration) {
    let t = Instant::now();
    let mut got = 0;
    let mut buf = vec![0u8; step];
    while t.elapsed() < Duration::from_secs(30) {
        match c.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        tokio::time::sleep(pause).await;
    }
    (got, t.elapsed())
}

async fn slow_client(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    let mut c = sock.connect(addr).await.unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: files.test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    c
}

#[tokio::test]
async fn whole_request_deadline_cuts_a_slow_steady_reader() {
    let f = fixture();
    let files = add_files_site(&f.store);
    let mut cfg = config(&f.data);
    // Stall timeout far above the reader's pauses: only the deadline can end it.
    cfg.limits.request_timeout_ms = 5_000;
    cfg.limits.response_deadline_ms = 700;
    cfg.cache.max_object_bytes = 8 << 20;
    let s = start(cfg).await;
    // Cached whole (6 MiB, written from memory or by sendfile) and streamed (12 MiB).
    for (path, size) in [
        ("/six.bin", files.six.len()),
        ("/twelve.bin", files.twelve.len()),
    ] {
        let c = slow_client(s.addr, path).await;
        // 16 KiB every 20 ms: 800 KiB/s, 8 s or more for the whole body.
        let (got, took) = trickle_read(c, 16 * 1024, Duration::from_millis(20)).await;
        assert!(
            got < size,
            "{path}: the whole body went through ({got} bytes)"
        );
        assert!(took < Duration::from_secs(20), "{path}: {took:?}");
        assert!(took >= Duration::from_millis(700), "{path}: {took:?}");
    }
    // A client that reads at full speed gets everything under the same limits.
    let r = get(s.addr, "files.test", "/six.bin").await;
    assert!(r.body == files.six);
    s.stop().await;
}

#[tokio::test]
async fn precomputed_headers_follow_path_variant_and_policy() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "docs/index.html", page("docs").as_bytes());
    write(tmp.path(), "_headers", b"/docs/\n  X-Dir: yes\n");
    f.store
        .put_site(
            "hdr",
            &SiteConfig {
                hosts: vec!["hdr.test".into()],
                aliases: vec![],
                www: WwwPolicy::Off,
                https: Default::default(),
            },
        )
        .unwrap();
    let id = f.store.import_dir("hdr", tmp.path()).unwrap();
    f.store.activate("hdr", &id).unwrap();
    let mut cfg = config(&f.data);
    cfg.http.cdn_max_age = 111;
    let s = start(cfg.clone()).await;
    // One file, two paths, a rule for one of them: alternate so templates are reused
    // and replaced.
    for _ in 0..3 {
        let a = get(s.addr, "hdr.test", "/docs/").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-dir"), Some("yes"));
        let b = get(s.addr, "hdr.test", "/docs/index.html").await;
        assert_eq!(b.status, 200);
        assert_eq!(b.header("x-dir"), None);
        assert_eq!(a.body, b.body);
        // A conditional request in between takes the full path and answers 304.
        let etag = a.header("etag").unwrap().to_string();
        let c = req(
            s.addr,
            "GET",
            "hdr.test",
            "/docs/",
            &[("If-None-Match", &etag)],
        )
        .await;
        assert_eq!(c.status, 304);
    }
    // Variants: each keeps its own Content-Encoding and ETag.
    for _ in 0..2 {
        for (ae, enc) in [
            ("br", Some("br")),
            ("identity", None),
            ("gzip", Some("gzip")),
        ] {
            let r = req(
                s.addr,
                "GET",
                "hdr.test",
                "/docs/",
                &[("Accept-Encoding", ae)],
            )
            .await;
            assert_eq!(r.header("content-encoding"), enc, "{ae}");
            let etag = r.header("etag").unwrap();
            match enc {
                Some("br") => assert!(etag.ends_with("-br\""), "{etag}"),
                Some(_) => assert!(etag.ends_with("-gz\""), "{etag}"),
                None => assert!(!etag.contains('-'), "{etag}"),
            }
            assert_eq!(r.header("cdn-cache-control"), Some("max-age=111"));
        }
    }
    // HEAD after GET: same headers, the GET body's length, no body.
    let g = get(s.addr, "hdr.test", "/docs/").await;
    let h = req(s.addr, "HEAD", "hdr.test", "/docs/", &[]).await;
    assert_eq!(h.header("content-length"), g.header("content-length"));
    assert_eq!(h.header("etag"), g.header("etag"));
    assert!(h.body.is_empty());
    // A reloaded policy replaces every template.
    cfg.http.cdn_max_age = 222;
    s.handle.reload(Some(cfg)).await.unwrap();
    let r = get(s.addr, "hdr.test", "/docs/").await;
    assert_eq!(r.header("cdn-cache-control"), Some("max-age=222"));
    assert_eq!(r.header("x-dir"), Some("yes"));
    s.stop().await;
}

/// Open descriptors of this process that point at `path`.
fn fds_on(path: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t == path)
        .count()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn large_cached_bodies_keep_their_blob_open_for_sendfile() {
    use sha2::Digest;
    let f = fixture();
    let files = add_files_site(&f.store);
    let s = start(config(&f.data)).await;
    let blob = |bytes: &[u8]| {
        let h: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        f.data.join("blobs").join(&h[..2]).join(&h)
    };
    let image = blob(&files.image).canonicalize().unwrap();
    let small = blob(b"alpha-only secret").canonicalize().unwrap();
    assert_eq!(fds_on(&image), 0);
    let r = get(s.addr, "files.test", "/image.jpg").await;
    assert!(r.body == files.image);
    // The 200 KiB body is in the cache with its file open (sent by sendfile); the
    // 17-byte one is copied and holds no descriptor.
    assert_eq!(fds_on(&image), 1);
    let r = get(s.addr, "alpha.test", "/secret-alpha.txt").await;
    assert_eq!(r.body, b"alpha-only secret");
    assert_eq!(fds_on(&small), 0);
    // Served again from the cache: still one descriptor, not one per request.
    for _ in 0..3 {
        assert!(get(s.addr, "files.test", "/image.jpg").await.body == files.image);
    }
    assert_eq!(fds_on(&image), 1);
    s.stop().await;
}
