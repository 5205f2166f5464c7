//! HTTPS without ACME: operator-provided certificate files, HTTP/1.1 and HTTP/2 over
//! TLS 1.2 and 1.3, 421 for a Host the certificate does not cover, HSTS, the HTTP ->
//! HTTPS redirect and its opt-out, session resumption, hot replacement, the lazily
//! loaded store with wildcards, refused SNI names and the handshake timeout.

mod common;
#[path = "support/edge.rs"]
mod edge;
#[path = "support/tlskit.rs"]
mod tlskit;

use std::path::Path;
use std::time::Duration;

use edge::TlsRunning;
use qpage_edge::{CertFiles, EdgeConfig, HttpsPolicy};
use tlskit::{TestCa, client_config, handshake, https_get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DAY: Duration = Duration::from_secs(86_400);
const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn write_pair(dir: &Path, stem: &str, pair: &(String, String)) -> CertFiles {
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, &pair.0).unwrap();
    std::fs::write(&key, &pair.1).unwrap();
    CertFiles { cert, key }
}

fn tls_config(data: &Path) -> EdgeConfig {
    let mut cfg = common::config(data);
    cfg.tls.listen = "127.0.0.1:0".into();
    cfg.tls.acme.enabled = false;
    cfg
}

fn set_https(f: &common::Fixture, site: &str, https: HttpsPolicy) {
    let mut c = f.store.site_config(site).unwrap();
    c.https = https;
    f.store.put_site(site, &c).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_from_operator_files() {
    let f = common::fixture();
    set_https(
        &f,
        "alpha",
        HttpsPolicy {
            hsts_max_age: 31_536_000,
            hsts_include_subdomains: true,
            ..Default::default()
        },
    );
    set_https(
        &f,
        "beta",
        HttpsPolicy {
            allow_http: true,
            ..Default::default()
        },
    );
    let ca = TestCa::new("operator test CA");
    let dir = f.data.parent().unwrap().to_path_buf();
    let mut cfg = tls_config(&f.data);
    cfg.tls.certificates = vec![
        write_pair(
            &dir,
            "alpha",
            &ca.leaf(
                &["alpha.test", "www.alpha.test", "alpha-alias.test"],
                DAY,
                30 * DAY,
            ),
        ),
        write_pair(
            &dir,
            "beta",
            &ca.leaf(&["beta.test", "www.beta.test"], DAY, 30 * DAY),
        ),
        write_pair(&dir, "wild", &ca.leaf(&["*.wild.test"], DAY, 30 * DAY)),
    ];
    let s = TlsRunning::start(cfg).await;
    let h1 = client_config(ca.roots(), &[b"http/1.1"], BOTH);
    let h2 = client_config(ca.roots(), &[b"h2", b"http/1.1"], BOTH);

    // HTTP/1.1 over TLS 1.3, with the site's opt-in HSTS.
    let r = https_get(s.https, "alpha.test", "alpha.test", "/", h1.clone())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("alpha home"));
    assert_eq!(r.version, http::Version::HTTP_11);
    assert_eq!(r.tls_version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(
        r.headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );

    // HTTP/2 by ALPN; a site without HSTS sends none.
    // (beta's www policy sends beta.test to www.beta.test.)
    let r = https_get(s.https, "www.beta.test", "www.beta.test", "/", h2.clone())
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.version, http::Version::HTTP_2);
    assert_eq!(r.alpn.as_deref(), Some(&b"h2"[..]));
    assert!(!r.headers.contains_key("strict-transport-security"));

    // TLS 1.2 still works; TLS 1.2 and 1.3 are the only versions rustls speaks.
    let tls12 = client_config(ca.roots(), &[b"http/1.1"], &[&rustls::version::TLS12]);
    let r = https_get(s.https, "alpha.test", "alpha.test", "/about/", tls12)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.tls_version, Some(rustls::ProtocolVersion::TLSv1_2));

    // A connection made for alpha.test cannot be reused for beta.test: 421.
    for (cfg, is_h2) in [(h1.clone(), false), (h2.clone(), true)] {
        let io = handshake(s.https, "alpha.test", cfg).await.unwrap();
        let got = tlskit::statuses_on_one_connection(
            io,
            is_h2,
            &[
                "alpha.test",
                "beta.test",
                "alpha-alias.test",
                "www.alpha.test",
            ],
        )
        .await;
        assert_eq!(got, vec![200, 421, 200, 301], "h2={is_h2}");
    }

    // Wildcard: any one label under wild.test; deeper names and strangers are refused.
    let r = https_get(s.https, "any.wild.test", "any.wild.test", "/", h1.clone())
        .await
        .unwrap();
    assert_eq!(
        r.status, 404,
        "covered by the certificate, not routed: neutral 404"
    );
    for refused in ["a.b.wild.test", "stranger.test"] {
        let e = handshake(s.https, refused, h1.clone()).await.unwrap_err();
        assert!(!e.to_string().is_empty());
    }
    assert!(s.metric("qpage_tls_unknown_sni_total").await >= 2.0);

    // The HTTP listener: redirect to HTTPS keeping path, query and port; the opt-out
    // site is served; ACME paths are never redirected; unknown hosts get the 404.
    let (st, loc, _) = tlskit::http_get(s.http, "alpha.test", "/about/?x=1").await;
    assert_eq!(st, 308);
    assert_eq!(
        loc.unwrap(),
        format!("https://alpha.test:{}/about/?x=1", s.https.port())
    );
    let (st, _, body) = tlskit::http_get(s.http, "www.beta.test", "/").await;
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("beta home"));
    let (st, loc, _) =
        tlskit::http_get(s.http, "alpha.test", "/.well-known/acme-challenge/nope").await;
    assert_eq!((st, loc), (404, None));
    let (st, _, _) = tlskit::http_get(s.http, "nobody.test", "/").await;
    assert_eq!(st, 404);

    // Resumption: the second connection with the same client resumes.
    let r1 = https_get(s.https, "alpha.test", "alpha.test", "/", h2.clone())
        .await
        .unwrap();
    let r2 = https_get(s.https, "alpha.test", "alpha.test", "/", h2.clone())
        .await
        .unwrap();
    assert!(!r1.resumed || r2.resumed);
    assert!(r2.resumed, "second handshake resumed");
    assert!(s.metric("qpage_tls_resumed_total").await >= 1.0);
    assert_eq!(
        s.metric("qpage_tls_certificates{state=\"valid\"}").await,
        3.0
    );
    assert!(s.metric("qpage_tls_soonest_expiry_days").await > 29.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_replacement_keeps_open_connections() {
    let f = common::fixture();
    let ca = TestCa::new("operator test CA");
    let dir = f.data.parent().unwrap().to_path_buf();
    let mut cfg = tls_config(&f.data);
    cfg.tls.certificates = vec![write_pair(
        &dir,
        "alpha",
        &ca.leaf(&["alpha.test"], DAY, 30 * DAY),
    )];
    let s = TlsRunning::start(cfg.clone()).await;
    let h1 = client_config(ca.roots(), &[b"http/1.1"], BOTH);

    let io = handshake(s.https, "alpha.test", h1.clone()).await.unwrap();
    let old_leaf = io.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let get = || {
        http::Request::get("/")
            .header("host", "alpha.test")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    assert_eq!(send.send_request(get()).await.unwrap().status(), 200);

    // Replace the files and reload (what SIGHUP does).
    write_pair(&dir, "alpha", &ca.leaf(&["alpha.test"], DAY, 60 * DAY));
    s.handle.reload(Some(cfg)).await.unwrap();

    // A new client: a resumed session would not show the certificate again.
    let fresh = client_config(ca.roots(), &[b"http/1.1"], BOTH);
    let r = https_get(s.https, "alpha.test", "alpha.test", "/", fresh)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.resumed);
    assert_ne!(r.leaf, old_leaf, "new connections get the new certificate");
    let resp = send.send_request(get()).await.unwrap();
    assert_eq!(resp.status(), 200, "the open connection keeps working");
    assert!(s.metric("qpage_tls_soonest_expiry_days").await > 59.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_loads_lazily_with_wildcards() {
    let f = common::fixture();
    let ca = TestCa::new("store test CA");
    let certs = f.data.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let n = 150;
    for i in 0..n {
        let name = format!("host-{i:04}.lazy.test");
        let (chain, key) = ca.leaf(&[&name], DAY, 30 * DAY);
        std::fs::write(certs.join(format!("{name}.pem")), format!("{key}{chain}")).unwrap();
    }
    let (chain, key) = ca.leaf(&["*.lazy.test"], DAY, 30 * DAY);
    std::fs::write(
        certs.join("_wildcard.lazy.test.pem"),
        format!("{key}{chain}"),
    )
    .unwrap();
    std::fs::write(certs.join("broken.lazy.test.pem"), "not a certificate").unwrap();

    let s = TlsRunning::start(tls_config(&f.data)).await;
    assert_eq!(
        s.metric("qpage_tls_certificates{state=\"unloaded\"}").await,
        (n + 2) as f64,
        "nothing is read at start"
    );
    let h1 = client_config(ca.roots(), &[b"http/1.1"], BOTH);
    let io = handshake(s.https, "host-0042.lazy.test", h1.clone())
        .await
        .unwrap();
    let leaf = io.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert!(contains(&leaf, b"host-0042.lazy.test"));
    assert_eq!(
        s.metric("qpage_tls_certificates{state=\"unloaded\"}").await,
        (n + 1) as f64,
        "one handshake reads one file"
    );
    // A name without its own file falls back to the wildcard (also for the broken one).
    for name in ["other.lazy.test", "broken.lazy.test"] {
        let io = handshake(s.https, name, h1.clone()).await.unwrap();
        let leaf = io.get_ref().1.peer_certificates().unwrap()[0].clone();
        assert!(contains(&leaf, b"*.lazy.test"), "{name}");
    }
    s.stop().await;
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handshakes_are_cut_off() {
    let f = common::fixture();
    let mut cfg = tls_config(&f.data);
    cfg.tls.handshake_timeout_ms = 300;
    let s = TlsRunning::start(cfg).await;
    let mut tcp = tokio::net::TcpStream::connect(s.https).await.unwrap();
    // The first byte of a ClientHello record, then silence.
    tcp.write_all(&[0x16]).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without a response");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(s.metric("qpage_tls_handshake_timeouts_total").await, 1.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_over_tls_batches_and_streams_large_bodies() {
    let f = common::fixture();
    let dist = f.data.parent().unwrap().join("gamma");
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    common::write(&dist, "big.bin", &big);
    common::write(&dist, "index.html", common::page("gamma home").as_bytes());
    f.store
        .put_site(
            "gamma",
            &qpage_edge::SiteConfig {
                hosts: vec!["gamma.test".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let id = f.store.import_dir("gamma", &dist).unwrap();
    f.store.activate("gamma", &id).unwrap();
    let ca = TestCa::new("operator test CA");
    let dir = f.data.parent().unwrap().to_path_buf();
    let mut cfg = tls_config(&f.data);
    // Bodies above 1 KiB are streamed from disk, chunk by chunk.
    cfg.cache.max_object_bytes = 1024;
    cfg.tls.certificates = vec![write_pair(
        &dir,
        "gamma",
        &ca.leaf(&["gamma.test"], DAY, 30 * DAY),
    )];
    let s = TlsRunning::start(cfg).await;
    let h2 = client_config(ca.roots(), &[b"h2"], BOTH);
    let io = handshake(s.https, "gamma.test", h2).await.unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let mut send = send.clone();
        let path = if i % 2 == 0 { "/big.bin" } else { "/" };
        tasks.push(tokio::spawn(async move {
            let req = http::Request::get(format!("https://gamma.test{path}"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            let r = send.send_request(req).await.unwrap();
            let status = r.status().as_u16();
            let body = http_body_util::BodyExt::collect(r.into_body())
                .await
                .unwrap()
                .to_bytes();
            (path, status, body)
        }));
    }
    for t in tasks {
        let (path, status, body) = tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .expect("every stream completes")
            .unwrap();
        assert_eq!(status, 200, "{path}");
        if path == "/big.bin" {
            assert_eq!(body.len(), big.len());
            assert!(body[..] == big[..], "the streamed body arrives intact");
        } else {
            assert!(String::from_utf8_lossy(&body).contains("gamma home"));
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_events_carry_the_tls_version_and_protocol() {
    let f = common::fixture();
    let ca = TestCa::new("events test CA");
    let dir = f.data.parent().unwrap().to_path_buf();
    let mut cfg = tls_config(&f.data);
    cfg.events.flush_interval_ms = 20;
    cfg.tls.certificates = vec![write_pair(
        &dir,
        "alpha",
        &ca.leaf(&["alpha.test"], DAY, 30 * DAY),
    )];
    let s = TlsRunning::start(cfg).await;
    let h1 = client_config(ca.roots(), &[b"http/1.1"], BOTH);
    let h2 = client_config(ca.roots(), &[b"h2"], BOTH);
    let tls12 = client_config(ca.roots(), &[b"http/1.1"], &[&rustls::version::TLS12]);
    for (path, cfg) in [
        ("/", h1),
        ("/about/", h2),
        ("/assets/app.3f2a9c1b.css", tls12),
    ] {
        let r = https_get(s.https, "alpha.test", "alpha.test", path, cfg)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{path}");
    }
    let handle = s.handle.clone();
    edge::eventually(Duration::from_secs(10), "3 events", || {
        let n = handle.metrics().events().sinks[qpage_edge::SINK_FILE].delivered;
        async move { n == 3 }
    })
    .await;
    s.stop().await;
    let mut events = Vec::new();
    for e in std::fs::read_dir(f.data.join("events/files")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            events.push((
                v["path"].as_str().unwrap().to_string(),
                v["proto"].as_str().unwrap().to_string(),
                v["tls"].as_str().unwrap().to_string(),
            ));
        }
    }
    events.sort();
    let want =
        |p: &str, proto: &str, tls: &str| (p.to_string(), proto.to_string(), tls.to_string());
    assert_eq!(
        events,
        vec![
            want("/", "HTTP/1.1", "TLSv1.3"),
            want("/about/", "HTTP/2", "TLSv1.3"),
            want("/assets/app.3f2a9c1b.css", "HTTP/1.1", "TLSv1.2"),
        ]
    );
}
