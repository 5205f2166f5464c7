//! Access events against the real sinks: NDJSON files, nats-server 2.15 with JetStream
//! and ClickHouse, each started here on a free loopback port in a temp dir and stopped
//! by PID. Counts are exact: N requests in, N distinct event ids out; a sink stopped
//! mid-load and restarted still ends with N, in order, while requests keep their
//! latency; a spool filled past its bound drops exactly what it counts.

mod common;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use qpage_edge::{EdgeConfig, SINK_CLICKHOUSE, SINK_FILE, SINK_NATS, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------- helpers

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tool from its env var (set by scripts/lib.sh) or PATH; a clear failure otherwise.
fn tool(env: &str, name: &str, how: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: {how} (or set {env} to its path)");
}

/// A process started by a test, stopped (SIGTERM, then SIGKILL) when dropped.
struct Proc(Option<Child>);

impl Proc {
    fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            for _ in 0..100 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_port(port: u16, what: &str) {
    for _ in 0..300 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 15 s");
}

async fn start_nats(port: u16, store: &Path) -> Proc {
    let bin = tool(
        "QPAGE_NATS_SERVER",
        "nats-server",
        "run `. scripts/lib.sh && need_nats_server`",
    );
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    let p = Proc(Some(child));
    wait_port(port, "nats-server").await;
    p
}

/// Polls `f` every 20 ms for up to `secs` seconds.
async fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// A kept-alive HTTP/1.1 connection to the edge.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        Conn {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// One GET; returns the status and how long the response took.
    async fn get(&mut self, host: &str, path: &str, extra: &[(&str, &str)]) -> (u16, Duration) {
        let mut r = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
        for (n, v) in extra {
            r.push_str(&format!("{n}: {v}\r\n"));
        }
        r.push_str("\r\n");
        let t = Instant::now();
        self.s.write_all(r.as_bytes()).await.unwrap();
        let status = self.response().await;
        (status, t.elapsed())
    }

    /// Reads one response (head and `Content-Length` body); returns its status.
    async fn response(&mut self) -> u16 {
        let (status, len) = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status: u16 = head[9..12].parse().unwrap();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .unwrap_or(0);
                self.buf.drain(..end + 4);
                break (status, len);
            }
            self.read_more().await;
        };
        while self.buf.len() < len {
            self.read_more().await;
        }
        self.buf.drain(..len);
        status
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = tokio::time::timeout(Duration::from_secs(10), self.s.read(&mut chunk))
            .await
            .expect("response within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// The requests every test sends: request `i` of a mix of sites, paths and statuses.
async fn send(conn: &mut Conn, i: usize) -> Duration {
    let (host, path, want) = match i % 5 {
        0 => ("alpha.test", "/", 200),
        1 => ("alpha.test", "/about/", 200),
        2 => ("beta.test", "/only-beta.html", 301), // beta prefers www: host redirect
        3 => ("nobody.test", "/x", 404),
        _ => ("alpha.test", "/missing", 404),
    };
    let q = format!("{path}?n={i}");
    let (status, took) = conn.get(host, &q, &[("user-agent", "events-test/1")]).await;
    assert_eq!(status, want, "request {i} {host}{path}");
    took
}

fn events_config(data: &Path) -> EdgeConfig {
    let mut cfg = config(data);
    cfg.events.flush_interval_ms = 20;
    cfg.events.node_id = "test-node".into();
    cfg
}

fn counts(h: &ServerHandle) -> qpage_edge::EventCounts {
    h.metrics().events()
}

/// Every line of the event files (closed, open and gzipped).
fn file_events(data: &Path) -> Vec<serde_json::Value> {
    let dir = data.join("events/files");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for p in names {
        let name = p.to_string_lossy().into_owned();
        let text = if name.ends_with(".gz") {
            let mut s = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()),
                &mut s,
            )
            .unwrap();
            s
        } else if name.ends_with(".ndjson") || name.ends_with(".open") {
            std::fs::read_to_string(&p).unwrap()
        } else {
            continue;
        };
        for line in text.lines() {
            out.push(serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")));
        }
    }
    out
}

fn ids(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// No file under `dir` contains `needle` (the client address must not be stored).
fn assert_nowhere(dir: &Path, needle: &str) {
    for e in walk(dir) {
        let bytes = std::fs::read(&e).unwrap();
        let text = if e.to_string_lossy().ends_with(".gz") {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(&bytes[..]),
                &mut s,
            );
            s
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        assert!(!text.contains(needle), "{} contains {needle}", e.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

// ---------------------------------------------------------------- files

/// Sends `per_conn` requests on each of `conns` connections, pipelined `depth` at a
/// time, as fast as the edge answers; each request has its own path, user agent,
/// referrer and `X-Forwarded-For`. Returns how many were answered 200.
async fn burst(addr: SocketAddr, conns: usize, per_conn: usize, depth: usize) -> usize {
    let mut tasks = Vec::new();
    for c in 0..conns {
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut ok = 0;
            for b in 0..per_conn / depth {
                let mut w = String::new();
                for k in 0..depth {
                    let i = (c * per_conn + b * depth + k) as u32;
                    w.push_str(&format!(
                        "GET /?n={i} HTTP/1.1\r\nHost: alpha.test\r\n\
                         User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:{}.0) Gecko/20100101 Firefox/{}.0\r\n\
                         Referer: https://ref{}.example/page?q={i}\r\n\
                         X-Forwarded-For: 198.51.{}.{}\r\n\r\n",
                        i % 50,
                        i % 50,
                        i % 7,
                        (i >> 8) % 256,
                        i % 256
                    ));
                }
                conn.s.write_all(w.as_bytes()).await.unwrap();
                for _ in 0..depth {
                    if conn.response().await == 200 {
                        ok += 1;
                    }
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_with_the_default_settings_loses_no_event() {
    let f = fixture();
    let mut cfg = config(&f.data);
    cfg.events.trusted_proxies = vec!["127.0.0.1".into()];
    let s = start(cfg).await;
    const N: usize = 32_000;
    let t = Instant::now();
    assert_eq!(burst(s.addr, 8, N / 8, 50).await, N);
    let took = t.elapsed();
    wait_for("every event delivered", 30, || {
        counts(&s.handle).sinks[SINK_FILE].delivered == N as u64
    })
    .await;
    let c = counts(&s.handle);
    eprintln!("{N} requests in {took:?}: {c:?}");
    assert_eq!(c.emitted, N as u64, "emitted");
    assert_eq!(c.queue_dropped, 0, "dropped at the queue");
    assert_eq!(c.sinks[SINK_FILE].dropped, 0, "dropped at the sink");
    s.stop().await;
    let events = file_events(&f.data);
    assert_eq!(events.len(), N);
    assert_eq!(ids(&events).iter().collect::<HashSet<_>>().len(), N);
    let paths: HashSet<&str> = events.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), 1, "the query string is not recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filling_buffer_wakes_the_batcher_before_its_timer() {
    let f = fixture();
    let mut cfg = config(&f.data);
    // The timer would first fire after ten minutes (after its immediate first tick):
    // only the wake-up of a request that passes an eighth of a buffer (128 KiB, some
    // 600 events here) can get events to the sink during this test.
    cfg.events.flush_interval_ms = 600_000;
    cfg.events.queue_max_bytes = 1 << 20;
    let s = start(cfg).await;
    const N: usize = 20_000;
    assert_eq!(burst(s.addr, 4, N / 4, 50).await, N);
    // What is below the mark of each worker thread's buffer stays until shutdown.
    wait_for("wake-ups deliver most events", 30, || {
        counts(&s.handle).sinks[SINK_FILE].delivered >= (N / 2) as u64
    })
    .await;
    let c = counts(&s.handle);
    assert_eq!(c.queue_dropped, 0, "{c:?}");
    let handle = s.handle.clone();
    s.stop().await;
    // Shutdown takes the rest.
    let c = counts(&handle);
    assert_eq!(
        (c.emitted, c.queue_dropped, c.sinks[SINK_FILE].delivered),
        (N as u64, 0, N as u64),
        "{c:?}"
    );
    assert_eq!(file_events(&f.data).len(), N);
}

#[tokio::test]
async fn file_sink_writes_one_event_per_request() {
    let f = fixture();
    let mut cfg = events_config(&f.data);
    cfg.events.file.gzip = true;
    let s = start(cfg).await;
    const N: usize = 300;
    let mut conn = Conn::open(s.addr).await;
    for i in 0..N {
        send(&mut conn, i).await;
    }
    // A browser from a referring page, on its own connection.
    let mut other = Conn::open(s.addr).await;
    let (st, _) = other
        .get(
            "alpha.test",
            "/about/",
            &[
                (
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                ),
                ("referer", "https://Search.Example:443/q?x=secret"),
            ],
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = other
        .get(
            "alpha.test",
            "/",
            &[(
                "user-agent",
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            )],
        )
        .await;
    assert_eq!(st, 200);
    let total = N + 2;
    wait_for("file sink delivery", 20, || {
        counts(&s.handle).sinks[SINK_FILE].delivered == total as u64
    })
    .await;
    let c = counts(&s.handle);
    assert_eq!(c.emitted, total as u64);
    assert_eq!(c.queue_dropped, 0);
    let metrics = get(s.admin, "admin", "/metrics").await.text();
    assert!(
        metrics.contains(&format!("qpage_events_emitted_total {total}")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "qpage_events_delivered_total{{sink=\"file\"}} {total}"
    )));
    s.stop().await;

    // Shutdown closed and gzipped the file.
    wait_for("gzipped event file", 10, || {
        walk(&f.data.join("events/files"))
            .iter()
            .all(|p| p.to_string_lossy().ends_with(".ndjson.gz"))
    })
    .await;
    let events = file_events(&f.data);
    assert_eq!(events.len(), total);
    let ids = ids(&events);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        total,
        "distinct ids"
    );
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ids increase in request order");
    for (i, e) in events.iter().take(N).enumerate() {
        assert_eq!(e["v"], 1);
        assert_eq!(e["node"], "test-node");
        assert_eq!(e["proto"], "HTTP/1.1");
        assert_eq!(e["tls"], "");
        assert_eq!(e["ua"], "other");
        let (site, path, status) = match i % 5 {
            0 => ("alpha", "/", 200),
            1 => ("alpha", "/about/", 200),
            2 => ("beta", "/only-beta.html", 301),
            3 => ("", "/x", 404),
            _ => ("alpha", "/missing", 404),
        };
        assert_eq!(e["site"], site, "event {i}");
        assert_eq!(e["path"], path, "event {i}: no query string");
        assert_eq!(e["status"], status, "event {i}");
    }
    let first = &events[0];
    assert_eq!(first["host"], "alpha.test");
    assert_eq!(first["ctype"], "text/html; charset=utf-8");
    assert!(first["bytes"].as_u64().unwrap() > 100);
    assert_eq!(
        events[5]["cache"], "hit",
        "second request of / is a cache hit"
    );
    assert_eq!(events[3]["cache"], "none");
    let browser = &events[N];
    assert_eq!(browser["ua"], "browser");
    assert_eq!(browser["bot"], "");
    assert_eq!(browser["ref"], "search.example");
    assert_eq!(events[N + 1]["ua"], "bot");
    assert_eq!(events[N + 1]["bot"], "Googlebot");
    // Same site, address and user agent: one visitor; another user agent: another.
    assert_eq!(events[0]["visitor"], events[1]["visitor"]);
    assert_ne!(events[0]["visitor"], browser["visitor"]);
    assert_ne!(events[0]["visitor"], events[3]["visitor"], "other site");
    let ts = first["ts"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now - ts < 60_000, "ts {ts} is now-ish ({now})");
    // No raw address anywhere in the events directory, nor the query string.
    assert_nowhere(&f.data.join("events"), "127.0.0.1");
    assert_nowhere(&f.data.join("events"), "secret");
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let f = fixture();
    let visitors = |trusted: bool| {
        let data = f.data.clone();
        async move {
            let mut cfg = events_config(&data);
            cfg.events.dir = Some(data.join(if trusted { "ev-trusted" } else { "ev-plain" }));
            if trusted {
                cfg.events.trusted_proxies = vec!["127.0.0.0/8".into()];
            }
            let s = start(cfg).await;
            let mut c = Conn::open(s.addr).await;
            for xff in [
                None,
                Some("203.0.113.5"),
                Some("198.51.100.1, 203.0.113.5"),
                Some("198.51.100.1"),
            ] {
                let mut h = vec![("user-agent", "ua")];
                if let Some(x) = xff {
                    h.push(("x-forwarded-for", x));
                }
                c.get("alpha.test", "/", &h).await;
            }
            c.get(
                "alpha.test",
                "/",
                &[
                    ("user-agent", "ua"),
                    ("forwarded", "for=\"203.0.113.5:1234\";proto=https"),
                ],
            )
            .await;
            wait_for("5 events", 10, || {
                counts(&s.handle).sinks[SINK_FILE].delivered == 5
            })
            .await;
            s.stop().await;
            let dir = data.join(if trusted { "ev-trusted" } else { "ev-plain" });
            assert_nowhere(&dir, "203.0.113.5");
            assert_nowhere(&dir, "198.51.100.1");
            let mut lines = Vec::new();
            for p in walk(&dir.join("files")) {
                for l in std::fs::read_to_string(p).unwrap().lines() {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    lines.push((
                        v["id"].as_str().unwrap().to_string(),
                        v["visitor"].as_str().unwrap().to_string(),
                    ));
                }
            }
            lines.sort();
            lines.into_iter().map(|(_, v)| v).collect::<Vec<_>>()
        }
    };
    let plain = visitors(false).await;
    assert_eq!(plain.len(), 5);
    assert!(
        plain.iter().all(|v| *v == plain[0]),
        "untrusted peer: headers ignored"
    );
    let t = visitors(true).await;
    assert_eq!(t[1], t[2], "nearest untrusted hop is the client");
    assert_eq!(t[1], t[4], "Forwarded for= is read too");
    assert_ne!(t[0], t[1], "the peer itself is not the client");
    assert_ne!(t[3], t[1]);
}

// ---------------------------------------------------------------- NATS

struct StreamEvent {
    subject: String,
    id: String,
    site: String,
}

/// Every event in the stream, in stream order (lines of each message in order).
async fn nats_events(port: u16) -> Vec<StreamEvent> {
    let client = async_nats::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("QPAGE_EVENTS").await.unwrap();
    let info = stream.info().await.unwrap().clone();
    let mut out = Vec::new();
    if info.state.messages == 0 {
        return out;
    }
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let m = stream.get_raw_message(seq).await.unwrap();
        let text = String::from_utf8(m.payload.to_vec()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            out.push(StreamEvent {
                subject: m.subject.to_string(),
                id: v["id"].as_str().unwrap().to_string(),
                site: v["site"].as_str().unwrap().to_string(),
            });
        }
    }
    out
}

fn nats_config(data: &Path, port: u16) -> EdgeConfig {
    let mut cfg = events_config(data);
    cfg.events.nats.url = format!("nats://127.0.0.1:{port}");
    cfg
}

/// Checks N distinct ids, each once, in order per subject, on the site's subject.
fn check_stream(events: &[StreamEvent], n: usize) {
    let distinct: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(distinct.len(), n, "distinct event ids in the stream");
    assert_eq!(events.len(), n, "no duplicates left in the stream");
    for e in events {
        let site = if e.site.is_empty() { "_" } else { &e.site };
        assert_eq!(e.subject, format!("qpage.events.{site}"));
    }
    for subject in ["qpage.events.alpha", "qpage.events.beta", "qpage.events._"] {
        let ids: Vec<&str> = events
            .iter()
            .filter(|e| e.subject == subject)
            .map(|e| e.id.as_str())
            .collect();
        assert!(!ids.is_empty(), "{subject} has events");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{subject} in order");
    }
}

#[tokio::test]
async fn nats_stopped_mid_load_and_restarted_gets_every_event_in_order() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut nats = start_nats(port, tmp.path()).await;
    let mut cfg = nats_config(&f.data, port);
    cfg.events.memory_max_bytes = 4096; // spool soon while NATS is down
    let s = start(cfg).await;
    const N: usize = 1500;
    let mut conn = Conn::open(s.addr).await;
    let mut before = Vec::new();
    for i in 0..500 {
        before.push(send(&mut conn, i).await);
    }
    wait_for("first events in NATS", 20, || {
        counts(&s.handle).sinks[SINK_NATS].delivered == 500
    })
    .await;
    nats.stop();
    let mut during = Vec::new();
    for i in 500..1000 {
        during.push(send(&mut conn, i).await);
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    wait_for("errors while NATS is down", 20, || {
        counts(&s.handle).sinks[SINK_NATS].errors > 0
    })
    .await;
    for i in 1000..1200 {
        during.push(send(&mut conn, i).await);
    }
    let _nats = start_nats(port, tmp.path()).await;
    for i in 1200..N {
        send(&mut conn, i).await;
    }
    wait_for("every event in NATS", 60, || {
        counts(&s.handle).sinks[SINK_NATS].delivered == N as u64
    })
    .await;
    let c = counts(&s.handle);
    assert_eq!(c.emitted, N as u64);
    assert!(c.sinks[SINK_NATS].spooled > 0, "events were spooled: {c:?}");
    assert_eq!(c.sinks[SINK_NATS].dropped, 0);
    assert_eq!(
        c.sinks[SINK_FILE].delivered, N as u64,
        "the file sink never noticed"
    );
    s.stop().await;
    assert!(
        walk(&f.data.join("events/spool/nats")).is_empty(),
        "spool drained"
    );
    check_stream(&nats_events(port).await, N);

    // Requests did not wait for the sink.
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let worst = *during.iter().max().unwrap();
    let (mb, md) = (median(&mut before), median(&mut during));
    assert!(
        worst < Duration::from_secs(1),
        "slowest request while NATS was down: {worst:?}"
    );
    assert!(
        md < mb * 5 + Duration::from_millis(5),
        "median latency before {mb:?}, while NATS was down {md:?}"
    );
}

#[tokio::test]
async fn full_spool_drops_exactly_what_it_counts() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens yet
    let mut cfg = nats_config(&f.data, port);
    cfg.events.memory_max_bytes = 1024;
    cfg.events.spool_max_bytes = 40_000;
    let s = start(cfg).await;
    const N: usize = 600;
    let mut conn = Conn::open(s.addr).await;
    for i in 0..N {
        send(&mut conn, i).await;
        if i % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(30)).await; // several batches
        }
    }
    // The batcher has handed every event to every sink once the file sink has them all.
    wait_for("file sink delivery", 20, || {
        counts(&s.handle).sinks[SINK_FILE].delivered == N as u64
    })
    .await;
    let c = counts(&s.handle);
    let dropped = c.sinks[SINK_NATS].dropped;
    assert!(dropped > 0, "the spool overflowed: {c:?}");
    assert!(c.sinks[SINK_NATS].spooled > 0);
    let metrics = get(s.admin, "admin", "/metrics").await.text();
    assert!(metrics.contains(&format!(
        "qpage_events_dropped_total{{sink=\"nats\"}} {dropped}"
    )));

    let _nats = start_nats(port, tmp.path()).await;
    wait_for("the rest delivered", 60, || {
        let c = counts(&s.handle);
        c.sinks[SINK_NATS].delivered + c.sinks[SINK_NATS].dropped == N as u64
    })
    .await;
    s.stop().await;
    let in_stream = nats_events(port).await;
    let got: HashSet<String> = in_stream.iter().map(|e| e.id.clone()).collect();
    assert_eq!(got.len(), in_stream.len(), "no duplicates");
    let all: HashSet<String> = ids(&file_events(&f.data)).into_iter().collect();
    assert_eq!(all.len(), N);
    assert!(got.is_subset(&all));
    let missing = all.difference(&got).count();
    assert_eq!(missing as u64, dropped, "missing = dropped");
}

#[tokio::test]
async fn spooled_events_survive_an_edge_restart() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port(); // NATS down during the first run
    let cfg = nats_config(&f.data, port);
    let s = start(cfg.clone()).await;
    let mut conn = Conn::open(s.addr).await;
    for i in 0..100 {
        send(&mut conn, i).await;
    }
    wait_for("file sink delivery", 20, || {
        counts(&s.handle).sinks[SINK_FILE].delivered == 100
    })
    .await;
    drop(conn);
    s.stop().await; // NATS still down: what it holds goes to the spool
    assert!(!walk(&f.data.join("events/spool/nats")).is_empty());
    let _nats = start_nats(port, tmp.path()).await;
    let s = start(cfg).await;
    let mut conn = Conn::open(s.addr).await;
    for i in 100..150 {
        send(&mut conn, i).await;
    }
    wait_for("spool replayed after restart", 30, || {
        counts(&s.handle).sinks[SINK_NATS].delivered == 150
    })
    .await;
    s.stop().await;
    let events = nats_events(port).await;
    let distinct: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(distinct.len(), 150);
    // The first run's events come first on every subject.
    let file_ids = ids(&file_events(&f.data));
    let first_run: HashSet<&str> = file_ids[..100].iter().map(String::as_str).collect();
    for subject in ["qpage.events.alpha", "qpage.events._"] {
        let seq: Vec<bool> = events
            .iter()
            .filter(|e| e.subject == subject)
            .map(|e| first_run.contains(e.id.as_str()))
            .collect();
        let switch = seq.iter().position(|b| !b).unwrap_or(seq.len());
        assert!(
            seq[switch..].iter().all(|b| !b),
            "{subject}: replay before new events"
        );
    }
}

// ---------------------------------------------------------------- ClickHouse

struct ClickHouse {
    proc: Proc,
    port: u16,
    tcp: u16,
    inter: u16,
    dir: PathBuf,
}

impl ClickHouse {
    async fn start(dir: &Path, port: u16, tcp: u16, inter: u16) -> ClickHouse {
        let bin = tool(
            "QPAGE_CLICKHOUSE_SERVER",
            "clickhouse-server",
            "run `apt-get install clickhouse-server`",
        );
        let d = |s: &str| format!("{}/", dir.join(s).display());
        let child = Command::new(bin)
            .arg("--config-file=/etc/clickhouse-server/config.xml")
            .arg("--")
            .arg(format!("--http_port={port}"))
            .arg(format!("--tcp_port={tcp}"))
            .arg(format!("--interserver_http_port={inter}"))
            .arg("--listen_host=127.0.0.1")
            .arg(format!("--path={}", d("data")))
            .arg(format!("--tmp_path={}", d("tmp")))
            .arg(format!("--user_files_path={}", d("uf")))
            .arg(format!("--format_schema_path={}", d("fs")))
            .arg(format!("--logger.log={}", dir.join("log").display()))
            .arg(format!("--logger.errorlog={}", dir.join("err").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clickhouse-server");
        let ch = ClickHouse {
            proc: Proc(Some(child)),
            port,
            tcp,
            inter,
            dir: dir.to_path_buf(),
        };
        for _ in 0..600 {
            if let Ok((200, _)) = ch.query("SELECT 1").await {
                return ch;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "clickhouse-server did not answer within 30 s (log in {})",
            dir.display()
        );
    }

    async fn restart(mut self) -> ClickHouse {
        self.proc.stop();
        ClickHouse::start(&self.dir.clone(), self.port, self.tcp, self.inter).await
    }

    async fn query(&self, sql: &str) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let req = format!(
            "POST / HTTP/1.1\r\nHost: ch\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{sql}",
            sql.len()
        );
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("timeout"))??;
        let r = parse(&buf);
        let body = if r.header("transfer-encoding") == Some("chunked") {
            dechunk(&r.body)
        } else {
            r.body
        };
        Ok((r.status, String::from_utf8_lossy(&body).trim().to_string()))
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
    out
}

/// The table DDL exactly as docs/events.md gives it.
fn documented_ddl() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/events.md")).unwrap();
    let start = doc.find("```sql\n").expect("a sql block in docs/events.md") + 7;
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].trim().trim_end_matches(';').to_string()
}

/// ClickHouse on free loopback ports in `dir`, with the events table of docs/events.md.
async fn clickhouse_with_events_table(dir: &Path) -> ClickHouse {
    let ch = ClickHouse::start(dir, free_port(), free_port(), free_port()).await;
    let (st, body) = ch.query(&documented_ddl()).await.unwrap();
    assert_eq!(st, 200, "documented DDL: {body}");
    ch
}

#[tokio::test]
async fn clickhouse_gets_every_event_across_an_outage() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let ch = clickhouse_with_events_table(tmp.path()).await;
    let mut cfg = events_config(&f.data);
    cfg.events.clickhouse.url = format!("http://127.0.0.1:{}", ch.port);
    cfg.events.memory_max_bytes = 4096;
    let s = start(cfg).await;
    let mut conn = Conn::open(s.addr).await;
    for i in 0..400 {
        send(&mut conn, i).await;
    }
    wait_for("first inserts", 20, || {
        counts(&s.handle).sinks[SINK_CLICKHOUSE].delivered == 400
    })
    .await;
    let (_, n) = ch
        .query("SELECT count(), uniqExact(id) FROM qpage_events")
        .await
        .unwrap();
    assert_eq!(n, "400\t400");

    // Down mid-load, then back.
    let mut ch = ch;
    ch.proc.stop();
    let mut during = Vec::new();
    for i in 400..800 {
        during.push(send(&mut conn, i).await);
    }
    wait_for("insert errors while ClickHouse is down", 20, || {
        counts(&s.handle).sinks[SINK_CLICKHOUSE].errors > 0
    })
    .await;
    let ch = ch.restart().await;
    for i in 800..1000 {
        send(&mut conn, i).await;
    }
    wait_for("every event in ClickHouse", 60, || {
        counts(&s.handle).sinks[SINK_CLICKHOUSE].delivered == 1000
    })
    .await;
    let c = counts(&s.handle);
    assert!(c.sinks[SINK_CLICKHOUSE].spooled > 0, "{c:?}");
    s.stop().await;
    let (_, n) = ch
        .query("SELECT uniqExact(id), count() FROM qpage_events")
        .await
        .unwrap();
    let (distinct, rows) = n.split_once('\t').unwrap();
    assert_eq!(distinct, "1000");
    assert_eq!(rows, "1000", "no batch inserted twice");
    let (_, row) = ch
        .query("SELECT site, path, status, ua, proto, toYear(time) > 2000 FROM qpage_events WHERE path = '/about/' LIMIT 1")
        .await
        .unwrap();
    assert_eq!(row, "alpha\t/about/\t200\tother\tHTTP/1.1\t1");
    assert!(
        *during.iter().max().unwrap() < Duration::from_secs(1),
        "requests did not wait"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_gets_batches_gathered_into_fewer_inserts() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let ch = clickhouse_with_events_table(tmp.path()).await;
    let mut cfg = events_config(&f.data);
    cfg.events.clickhouse.url = format!("http://127.0.0.1:{}", ch.port);
    cfg.events.flush_interval_ms = 5;
    cfg.events.clickhouse.insert_interval_ms = 300;
    let s = start(cfg).await;
    let mut conn = Conn::open(s.addr).await;
    // 30 groups of 20 requests, 40 ms apart: with a 5 ms timer each group is its own
    // batch, and ClickHouse gets one insert per 300 ms at most.
    let groups = 30;
    let began = std::time::Instant::now();
    for g in 0..groups {
        for i in 0..20 {
            send(&mut conn, g * 20 + i).await;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    wait_for("every event in ClickHouse", 30, || {
        counts(&s.handle).sinks[SINK_CLICKHOUSE].delivered == 600
    })
    .await;
    let took = began.elapsed();
    s.stop().await;
    let (_, n) = ch
        .query("SELECT count(), uniqExact(id) FROM qpage_events")
        .await
        .unwrap();
    assert_eq!(n, "600\t600");
    // Every insert makes one level-0 part (merged ones stay listed as inactive).
    let (_, parts) = ch
        .query("SELECT count() FROM system.parts WHERE table = 'qpage_events' AND level = 0")
        .await
        .unwrap();
    let parts: usize = parts.trim().parse().unwrap();
    let most = took.as_millis() as usize / 300 + 1;
    assert!(
        parts >= 1 && parts <= most && parts < groups / 2,
        "{parts} inserts for {groups} batches in {took:?} (at most {most})"
    );
}
