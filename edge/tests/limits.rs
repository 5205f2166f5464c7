//! Holding up: header limits, slowloris, idle keep-alive, connection caps; the admin
//! listener; routing reloads without restart; graceful stop.

mod common;

use std::time::{Duration, Instant};

use common::*;
use qpage_edge::{SiteConfig, WwwPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn header_size_and_count_limits() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let big = "a".repeat(20_000);
    let r = raw(
        s.addr,
        format!("GET / HTTP/1.1\r\nHost: alpha.test\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 431);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: alpha.test\r\n");
    for i in 0..80 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let r = raw(s.addr, many.as_bytes()).await;
    assert_eq!(r.status, 431);
    // Within the limits all is well.
    let r = get(s.addr, "alpha.test", "/").await;
    assert_eq!(r.status, 200);
    s.stop().await;
}

/// Reads until EOF; returns how long that took.
async fn time_to_close(stream: &mut TcpStream) -> Duration {
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .expect("the server closes the connection");
    t.elapsed()
}

#[tokio::test]
async fn slowloris_header_timeout_and_idle_keepalive() {
    let f = fixture();
    let mut cfg = config(&f.data);
    cfg.limits.header_read_timeout_ms = 300;
    let s = start(cfg).await;
    // Headers trickled and never finished.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: alpha.te")
        .await
        .unwrap();
    let took = time_to_close(&mut c).await;
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // A connection that never sends anything.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let took = time_to_close(&mut c).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    // An idle kept-alive connection after a response.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: alpha.test\r\n\r\n")
        .await
        .unwrap();
    let took = time_to_close(&mut c).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    s.stop().await;
}

#[tokio::test]
async fn per_ip_connection_cap() {
    let f = fixture();
    let mut cfg = config(&f.data);
    cfg.limits.max_connections_per_ip = 2;
    let s = start(cfg).await;
    let a = TcpStream::connect(s.addr).await.unwrap();
    let b = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = get(s.addr, "alpha.test", "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    drop(a);
    drop(b);
    // Slots come back once those connections close.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if get(s.addr, "alpha.test", "/").await.status == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok);
    let metrics = get(s.admin, "admin", "/metrics").await.text();
    assert!(
        metrics.contains("qpage_connections_rejected_total 1"),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test]
async fn total_connection_cap() {
    let f = fixture();
    let mut cfg = config(&f.data);
    cfg.limits.max_connections = 1;
    let s = start(cfg).await;
    let _held = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = get(s.addr, "alpha.test", "/").await;
    assert_eq!(r.status, 503);
    s.stop().await;
}

#[tokio::test]
async fn admin_healthz_and_metrics() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let r = get(s.admin, "admin", "/healthz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok 2 sites\n");
    for _ in 0..3 {
        get(s.addr, "alpha.test", "/").await;
    }
    get(s.addr, "alpha.test", "/missing").await;
    get(s.addr, "nobody.test", "/").await;
    get(s.addr, "alpha.preview.test", "/").await;
    let m = get(s.admin, "admin", "/metrics").await;
    assert_eq!(m.status, 200);
    let t = m.text();
    for line in [
        "qpage_requests_total{site_class=\"site\",status=\"2xx\"} 3",
        "qpage_requests_total{site_class=\"site\",status=\"4xx\"} 1",
        "qpage_requests_total{site_class=\"unknown\",status=\"4xx\"} 1",
        "qpage_requests_total{site_class=\"preview\",status=\"2xx\"} 1",
        "qpage_cache_hits_total 3",
        "qpage_cache_misses_total 2",
        "qpage_request_duration_seconds_count 6",
        "qpage_sites 2",
    ] {
        assert!(t.contains(line), "missing {line:?} in\n{t}");
    }
    assert!(t.contains("qpage_open_connections "));
    assert!(t.contains("qpage_response_body_bytes_total "));
    assert!(t.contains("le=\"+Inf\"} 6"));
    assert_eq!(get(s.admin, "admin", "/other").await.status, 404);
    // The public listener does not answer admin paths.
    assert_eq!(get(s.addr, "alpha.test", "/metrics").await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn routing_changes_apply_without_restart() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    assert_eq!(get(s.addr, "gamma.test", "/").await.status, 404);
    // A new site.
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "index.html", b"gamma v1");
    f.store
        .put_site(
            "gamma",
            &SiteConfig {
                hosts: vec!["gamma.test".into()],
                aliases: vec![],
                www: WwwPolicy::Off,
                https: Default::default(),
            },
        )
        .unwrap();
    let v1 = f.store.import_dir("gamma", tmp.path()).unwrap();
    f.store.activate("gamma", &v1).unwrap();
    let wait_for = |host: &'static str, body: &'static [u8]| {
        let addr = s.addr;
        async move {
            for _ in 0..100 {
                let r = get(addr, host, "/").await;
                if r.body == body {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(wait_for("gamma.test", b"gamma v1").await);
    // A new deploy, then a rollback: each one pointer swap.
    write(tmp.path(), "index.html", b"gamma v2");
    let v2 = f.store.import_dir("gamma", tmp.path()).unwrap();
    assert_ne!(v1, v2);
    assert!(
        wait_for("gamma.test", b"gamma v1").await,
        "not live before activate"
    );
    f.store.activate("gamma", &v2).unwrap();
    assert!(wait_for("gamma.test", b"gamma v2").await);
    f.store.activate("gamma", &v1).unwrap();
    assert!(wait_for("gamma.test", b"gamma v1").await);
    // Explicit reload with a new configuration.
    let mut cfg = config(&f.data);
    cfg.http.cdn_max_age = 7;
    assert_eq!(s.handle.reload(Some(cfg)).await.unwrap(), 3);
    let r = get(s.addr, "alpha.test", "/").await;
    assert_eq!(r.header("cdn-cache-control"), Some("max-age=7"));
    s.stop().await;
}

#[tokio::test]
async fn stop_drains_and_closes_the_listener() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let addr = s.addr;
    // A kept-alive connection that is idle does not hold the stop up.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: alpha.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let t = Instant::now();
    s.stop().await;
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn blob_cache_stays_within_its_byte_bound() {
    let f = fixture();
    let mut cfg = config(&f.data);
    cfg.cache.max_bytes = 3000;
    let s = start(cfg).await;
    // Five distinct bodies of 1-1.5 KB each: more than the cache may hold.
    for _ in 0..3 {
        for p in ["/", "/about/", "/contact", "/shadow.html", "/img/logo.png"] {
            assert_eq!(get(s.addr, "alpha.test", p).await.status, 200, "{p}");
        }
    }
    let t = get(s.admin, "admin", "/metrics").await.text();
    let gauge = |name: &str| -> f64 {
        t.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing"))
            .parse()
            .unwrap()
    };
    assert!(gauge("qpage_cache_bytes") <= 3000.0, "{t}");
    assert!(gauge("qpage_cache_bytes") > 0.0, "{t}");
    assert!(gauge("qpage_cache_entries") < 5.0, "{t}");
    // What was evicted is read from disk again.
    let m0 = s.handle.metrics().cache_misses();
    for p in ["/", "/about/", "/contact", "/shadow.html", "/img/logo.png"] {
        get(s.addr, "alpha.test", p).await;
    }
    assert!(s.handle.metrics().cache_misses() > m0);
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    let f = fixture();
    // 16 MiB, more than loopback socket buffers hold: the server's writes must stall.
    let tmp = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..16u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    write(tmp.path(), "big.bin", &big);
    f.store
        .put_site(
            "big",
            &SiteConfig {
                hosts: vec!["big.test".into()],
                aliases: vec![],
                www: WwwPolicy::Off,
                https: Default::default(),
            },
        )
        .unwrap();
    let id = f.store.import_dir("big", tmp.path()).unwrap();
    f.store.activate("big", &id).unwrap();
    let mut cfg = config(&f.data);
    cfg.limits.request_timeout_ms = 300;
    let s = start(cfg).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: big.test\r\n\r\n")
        .await
        .unwrap();
    // Never read. The server gives up on the connection.
    let m = s.handle.metrics();
    let mut closed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if m.open_connections() == 0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "connection still open");
    // The socket got less than the whole body before being closed.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got)).await;
    assert!(got.len() < big.len(), "{}", got.len());
    // A client that reads gets all of it, streamed.
    let r = get(s.addr, "big.test", "/big.bin").await;
    assert_eq!(r.body.len(), big.len());
    assert!(r.body == big);
    s.stop().await;
}
