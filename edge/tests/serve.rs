//! End-to-end tests of the serving path over real sockets: routing, hostile paths and
//! hosts, clean URLs, rules, HTTP semantics, caching headers, the blob cache.

mod common;

use common::*;

#[tokio::test]
async fn routes_exact_alias_case_port_and_trailing_dot() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    for host in [
        "alpha.test",
        "ALPHA.Test",
        "alpha.test:8080",
        "alpha.test.",
        "alpha.test.:80",
        "alpha-alias.test",
    ] {
        let r = get(s.addr, host, "/").await;
        assert_eq!(r.status, 200, "host {host}");
        assert!(r.text().contains("alpha home"), "host {host}");
    }
    let r = get(s.addr, "www.beta.test", "/").await;
    assert!(r.text().contains("beta home"));
    s.stop().await;
}

#[tokio::test]
async fn www_redirect_policy() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    // alpha: www -> apex.
    let r = get(s.addr, "www.alpha.test", "/about/?x=1").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://alpha.test/about/?x=1"));
    // A hostile path cannot turn the redirect into another host.
    let r = get(s.addr, "www.alpha.test", "//evil.com").await;
    assert_eq!(r.header("location"), Some("https://alpha.test/evil.com"));
    // beta: apex -> www.
    let r = get(s.addr, "beta.test", "/").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://www.beta.test/"));
    let r = get(s.addr, "www.beta.test", "/").await;
    assert_eq!(r.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn unknown_host_is_neutral_404() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let a = get(s.addr, "nobody.test", "/").await;
    let b = get(s.addr, "other.example", "/secret-alpha.txt").await;
    let c = get(s.addr, "nosuchsite.preview.test", "/").await;
    let d = raw(s.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    for r in [&a, &b, &c, &d] {
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"Not Found\n");
        assert!(r.header("surrogate-key").is_none());
        assert!(r.header("cache-tag").is_none());
        assert!(!r.text().contains("alpha"));
    }
    // Same bytes whoever asks.
    assert_eq!(a.headers.len(), c.headers.len());
    // HTTP/1.1 without Host is a 400.
    let r = raw(s.addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 400);
    s.stop().await;
}

#[tokio::test]
async fn default_site_for_unknown_hosts() {
    let f = fixture();
    let mut cfg = config(&f.data);
    cfg.routing.default_site = Some("beta".into());
    let s = start(cfg).await;
    let r = get(s.addr, "unknown.test", "/").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("beta home"));
    s.stop().await;
}

#[tokio::test]
async fn wildcard_preview_hosts() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let r = get(s.addr, "alpha.preview.test", "/").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("alpha home"));
    let r = get(s.addr, "Beta.Preview.Test.", "/only-beta.html").await;
    assert_eq!(r.status, 200);
    // A specific deploy: DEPLOY--SITE.
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "index.html", b"alpha next version");
    let id = f.store.import_dir("alpha", tmp.path()).unwrap();
    let r = get(s.addr, &format!("{id}--alpha.preview.test"), "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"alpha next version");
    // The live deploy did not change.
    assert!(
        get(s.addr, "alpha.test", "/")
            .await
            .text()
            .contains("alpha home")
    );
    // Deeper subdomains, unknown deploys, unknown sites: neutral 404.
    for host in [
        "x.alpha.preview.test",
        "0000000000000000--alpha.preview.test",
        "zzz.preview.test",
    ] {
        let r = get(s.addr, host, "/").await;
        assert_eq!(
            (r.status, r.body.as_slice()),
            (404, b"Not Found\n".as_slice()),
            "{host}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn tenant_isolation() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let r = get(s.addr, "alpha.test", "/secret-alpha.txt").await;
    assert_eq!(r.body, b"alpha-only secret");
    let r = get(s.addr, "www.beta.test", "/secret-alpha.txt").await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("secret"));
    let r = get(s.addr, "alpha.test", "/only-beta.html").await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains("alpha not found page"));
    s.stop().await;
}

#[tokio::test]
async fn hostile_paths_end_in_400_or_404() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let paths = [
        "/%2e%2e/etc/passwd",
        "/..%2fetc/passwd",
        "/../../etc/passwd",
        "/assets/../secret-alpha.txt",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/..\\..\\etc\\passwd",
        "/%5c..%5cetc%5cpasswd",
        "/index.html%00.txt",
        "/%00",
        "/%c0%ae%c0%ae/etc/passwd",
        "/%c0%af",
        "/%e0%80%ae",
        "/%zz",
        "/./index.html",
        "/.qpage/manifest.json",
        "/_redirects",
        "/_headers",
        "/blobs/../../data",
    ];
    for p in paths {
        let r = get(s.addr, "alpha.test", p).await;
        assert!(r.status == 400 || r.status == 404, "{p}: {}", r.status);
        let t = r.text();
        assert!(
            !t.contains("root:") && !t.contains("secret") && !t.contains("/news/*"),
            "{p}: {t}"
        );
    }
    // Encoded slashes and dots never reach a file.
    assert_eq!(
        get(s.addr, "alpha.test", "/about%2findex.html")
            .await
            .status,
        400
    );
    assert_eq!(
        get(s.addr, "alpha.test", "/%2e%2e/etc/passwd").await.status,
        400
    );
    assert_eq!(
        get(s.addr, "alpha.test", "/%c0%ae%c0%ae/etc/passwd")
            .await
            .status,
        400
    );
    // Absolute-form request targets are routed by their authority, not the Host header.
    let r = raw(s.addr, b"GET http://beta.test/secret-alpha.txt HTTP/1.1\r\nHost: alpha.test\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 301, "beta.test apex redirects to www");
    s.stop().await;
}

#[tokio::test]
async fn hostile_hosts() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    for host in [
        "alpha.test/../beta.test",
        "alpha.test:abc",
        "alpha..test",
        "[::1",
        "alpha.test\u{0}",
        "-",
    ] {
        let r = get(s.addr, host, "/").await;
        assert!(r.status == 404 || r.status == 400, "{host:?}: {}", r.status);
        assert!(!r.text().contains("alpha home"), "{host:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn redirects_never_point_to_another_host() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    // Clean-URL redirect for a path with doubled slashes.
    let r = get(s.addr, "alpha.test", "//about").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/about/"));
    // A splat rule fed a doubled slash.
    let r = get(s.addr, "alpha.test", "/go//evil.com").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/evil.com"));
    let r = get(s.addr, "alpha.test", "/go/%2fevil.com").await;
    assert_eq!(r.status, 400);
    let r = get(s.addr, "alpha.test", "/go/\\evil.com").await;
    assert_eq!(r.status, 400);
    for p in ["//evil.com/", "///evil.com", "//evil.com/%2e%2e"] {
        let r = get(s.addr, "alpha.test", p).await;
        if let Some(loc) = r.header("location") {
            assert!(
                !loc.starts_with("//") && !loc.starts_with("/\\"),
                "{p} -> {loc}"
            );
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn clean_urls_and_404_page() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let r = get(s.addr, "alpha.test", "/about").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/about/"));
    let r = get(s.addr, "alpha.test", "/about?x=1").await;
    assert_eq!(r.header("location"), Some("/about/?x=1"));
    let r = get(s.addr, "alpha.test", "/about/").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("alpha about"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = get(s.addr, "alpha.test", "/about/index.html").await;
    assert_eq!(r.status, 200);
    // name -> name.html, name/ -> 301 name.
    let r = get(s.addr, "alpha.test", "/contact").await;
    assert_eq!(r.status, 200, "a file shadows the non-forced /contact rule");
    assert!(r.text().contains("alpha contact"));
    let r = get(s.addr, "alpha.test", "/contact/").await;
    assert_eq!((r.status, r.header("location")), (301, Some("/contact")));
    // 404 with the site's page.
    let r = get(s.addr, "alpha.test", "/nope").await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains("alpha not found page"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    // A site without 404.html gets a plain one.
    let r = get(s.addr, "www.beta.test", "/nope").await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (404, b"Not Found\n".as_slice())
    );
    // Paths are case-sensitive.
    assert_eq!(get(s.addr, "alpha.test", "/ABOUT/").await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn redirect_rules() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let cases: &[(&str, u16, Option<&str>)] = &[
        ("/old", 301, Some("/about/")),
        ("/old/", 301, Some("/about/")),
        ("/old?utm=1", 301, Some("/about/?utm=1")),
        ("/news/2024/hello", 302, Some("/blog/2024/hello")),
        ("/store?id=42", 301, Some("/items/42")),
        ("/shadow", 302, Some("/moved")),
        ("/abs", 307, Some("https://example.org/x")),
    ];
    for (path, status, loc) in cases {
        let r = get(s.addr, "alpha.test", path).await;
        assert_eq!(r.status, *status, "{path}");
        assert_eq!(r.header("location"), *loc, "{path}");
    }
    // Query condition not met: no rule, 404.
    assert_eq!(
        get(s.addr, "alpha.test", "/store?other=1").await.status,
        404
    );
    // 200 rewrite serves the target's content at the requested path.
    let r = get(s.addr, "alpha.test", "/spa/deep/link").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("alpha home"));
    // Rewrites to clean URLs serve the file the URL stands for.
    let r = get(s.addr, "alpha.test", "/docs/x").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("alpha about"));
    let r = get(s.addr, "alpha.test", "/c2").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("alpha contact"));
    // 410 with the target's body.
    let r = get(s.addr, "alpha.test", "/gone").await;
    assert_eq!(r.status, 410);
    assert!(r.text().contains("alpha home"));
    s.stop().await;
}

#[tokio::test]
async fn header_rules_and_security_defaults() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let r = get(s.addr, "alpha.test", "/").await;
    assert_eq!(r.header("x-site"), Some("alpha"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        r.header("referrer-policy"),
        Some("strict-origin-when-cross-origin")
    );
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
    let r = get(s.addr, "alpha.test", "/assets/app.3f2a9c1b.css").await;
    assert_eq!(
        r.header("x-frame-options"),
        Some("DENY"),
        "_headers overrides the default"
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("x-site"), Some("alpha"));
    let r = get(s.addr, "www.beta.test", "/").await;
    assert!(r.header("x-site").is_none());
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
    s.stop().await;
}

#[tokio::test]
async fn cache_control_and_purge_tags() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let live = f.store.live("alpha").unwrap().unwrap();
    let r = get(s.addr, "alpha.test", "/assets/app.3f2a9c1b.css").await;
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(r.header("cdn-cache-control").is_none());
    let r = get(s.addr, "alpha.test", "/").await;
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=0, must-revalidate, s-maxage=300")
    );
    assert_eq!(r.header("cdn-cache-control"), Some("max-age=300"));
    assert_eq!(
        r.header("surrogate-key"),
        Some(format!("site-alpha deploy-{live}").as_str())
    );
    assert_eq!(
        r.header("cache-tag"),
        Some(format!("site-alpha,deploy-{live}").as_str())
    );
    s.stop().await;
    // Configurable.
    let mut cfg = config(&f.data);
    cfg.http.cdn_max_age = 60;
    cfg.http.browser_max_age = 10;
    let s = start(cfg).await;
    let r = get(s.addr, "alpha.test", "/").await;
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=10, must-revalidate, s-maxage=60")
    );
    s.stop().await;
}

#[tokio::test]
async fn etag_last_modified_and_304() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let r = get(s.addr, "alpha.test", "/about/").await;
    let etag = r.header("etag").unwrap().to_string();
    let lm = r.header("last-modified").unwrap().to_string();
    assert_eq!(etag.len(), 66, "strong ETag = quoted sha256: {etag}");
    assert!(httpdate::parse_http_date(&lm).is_ok());
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/about/",
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/about/",
        &[("If-None-Match", "\"other\", W/".to_string().as_str())],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/about/",
        &[("If-None-Match", "*")],
    )
    .await;
    assert_eq!(r.status, 304);
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/about/",
        &[("If-Modified-Since", &lm)],
    )
    .await;
    assert_eq!(r.status, 304);
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/about/",
        &[("If-Modified-Since", "Thu, 01 Jan 1998 00:00:00 GMT")],
    )
    .await;
    assert_eq!(r.status, 200);
    // If-None-Match wins over If-Modified-Since.
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/about/",
        &[("If-None-Match", "\"x\""), ("If-Modified-Since", &lm)],
    )
    .await;
    assert_eq!(r.status, 200);
    // The 404 page is never a 304.
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/missing",
        &[("If-None-Match", "*")],
    )
    .await;
    assert_eq!(r.status, 404);
    // A compressed variant's tag still validates.
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/about/",
        &[("Accept-Encoding", "br")],
    )
    .await;
    let br_tag = r.header("etag").unwrap().to_string();
    assert_ne!(br_tag, etag);
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/about/",
        &[("Accept-Encoding", "br"), ("If-None-Match", &br_tag)],
    )
    .await;
    assert_eq!(r.status, 304);
    s.stop().await;
}

#[tokio::test]
async fn ranges() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let full = get(s.addr, "alpha.test", "/img/logo.png").await;
    assert_eq!(full.body.len(), 1000);
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Range", "bytes=10-19")],
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(r.body, full.body[10..20]);
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Range", "bytes=-5")],
    )
    .await;
    assert_eq!(r.body, full.body[995..]);
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Range", "bytes=990-")],
    )
    .await;
    assert_eq!((r.status, r.body.len()), (206, 10));
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Range", "bytes=1000-")],
    )
    .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
    // Multiple ranges: the whole body.
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Range", "bytes=0-1,5-6")],
    )
    .await;
    assert_eq!((r.status, r.body.len()), (200, 1000));
    // If-Range.
    let etag = full.header("etag").unwrap();
    let lm = full.header("last-modified").unwrap();
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Range", "bytes=0-9"), ("If-Range", etag)],
    )
    .await;
    assert_eq!(r.status, 206);
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Range", "bytes=0-9"), ("If-Range", lm)],
    )
    .await;
    assert_eq!(r.status, 206);
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
    )
    .await;
    assert_eq!((r.status, r.body.len()), (200, 1000));
    // A range on a compressible file is served from the identity body.
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/",
        &[("Range", "bytes=0-14"), ("Accept-Encoding", "br, gzip")],
    )
    .await;
    assert_eq!(r.status, 206);
    assert!(r.header("content-encoding").is_none());
    assert_eq!(r.body, b"<!doctype html>");
    s.stop().await;
}

#[tokio::test]
async fn head_requests() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let g = get(s.addr, "alpha.test", "/about/").await;
    let r = req(s.addr, "HEAD", "alpha.test", "/about/", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("content-length").map(str::to_string),
        Some(g.body.len().to_string())
    );
    assert_eq!(r.header("etag"), g.header("etag"));
    let r = req(
        s.addr,
        "HEAD",
        "alpha.test",
        "/about/",
        &[("Accept-Encoding", "br")],
    )
    .await;
    assert_eq!(r.header("content-encoding"), Some("br"));
    let br = req(
        s.addr,
        "GET",
        "alpha.test",
        "/about/",
        &[("Accept-Encoding", "br")],
    )
    .await;
    assert_eq!(
        r.header("content-length").map(str::to_string),
        Some(br.body.len().to_string())
    );
    s.stop().await;
}

#[tokio::test]
async fn accept_encoding_q_values() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let plain = get(s.addr, "alpha.test", "/").await;
    assert!(plain.header("content-encoding").is_none());
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    let cases = [
        ("gzip, deflate, br", Some("br")),
        ("br;q=0.5, gzip;q=0.8", Some("gzip")),
        ("gzip", Some("gzip")),
        ("br;q=0, gzip;q=0", None),
        ("identity", None),
        ("*", Some("br")),
        ("*;q=0, identity", None),
        ("deflate", None),
    ];
    for (ae, want) in cases {
        let r = req(s.addr, "GET", "alpha.test", "/", &[("Accept-Encoding", ae)]).await;
        assert_eq!(r.header("content-encoding"), want, "{ae}");
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        let body = match want {
            Some("br") => {
                let mut out = Vec::new();
                brotli::BrotliDecompress(&mut r.body.as_slice(), &mut out).unwrap();
                out
            }
            Some("gzip") => {
                use std::io::Read;
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(r.body.as_slice())
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            _ => r.body.clone(),
        };
        assert_eq!(body, plain.body, "{ae}");
        if want.is_some() {
            assert!(r.body.len() < plain.body.len());
        }
    }
    // Binary files are never compressed and carry no Vary.
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Accept-Encoding", "br, gzip")],
    )
    .await;
    assert!(r.header("content-encoding").is_none());
    assert!(r.header("vary").is_none());
    assert_eq!(r.header("content-type"), Some("image/png"));
    s.stop().await;
}

#[tokio::test]
async fn blob_cache_is_shared_across_sites_and_counts_hits() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let m = s.handle.metrics();
    let (h0, m0) = (m.cache_hits(), m.cache_misses());
    // The same CSS in both sites is one blob: one miss, then hits from either host.
    let a = get(s.addr, "alpha.test", "/assets/app.3f2a9c1b.css").await;
    let b = get(s.addr, "www.beta.test", "/assets/app.3f2a9c1b.css").await;
    let c = get(s.addr, "alpha.test", "/assets/app.3f2a9c1b.css").await;
    assert_eq!(a.body, b.body);
    assert_eq!(a.body, c.body);
    assert_eq!(m.cache_misses() - m0, 1);
    assert_eq!(m.cache_hits() - h0, 2);
    // Another variant is another entry.
    req(
        s.addr,
        "GET",
        "alpha.test",
        "/assets/app.3f2a9c1b.css",
        &[("Accept-Encoding", "br")],
    )
    .await;
    assert_eq!(m.cache_misses() - m0, 2);
    // HEAD reads no body.
    req(s.addr, "HEAD", "alpha.test", "/", &[]).await;
    assert_eq!(m.cache_misses() - m0, 2);
    s.stop().await;
}

#[tokio::test]
async fn blob_cache_is_bounded_by_bytes() {
    let f = fixture();
    let mut cfg = config(&f.data);
    cfg.cache.max_object_bytes = 500; // the 1000-byte PNG is never cached
    let s = start(cfg).await;
    let m = s.handle.metrics();
    let m0 = m.cache_misses();
    for _ in 0..3 {
        assert_eq!(
            get(s.addr, "alpha.test", "/img/logo.png").await.body.len(),
            1000
        );
    }
    assert_eq!(m.cache_misses() - m0, 3);
    // Streamed from disk, ranges and HEAD still hold.
    let full = get(s.addr, "alpha.test", "/img/logo.png").await;
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/img/logo.png",
        &[("Range", "bytes=100-199")],
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(r.body, full.body[100..200]);
    let r = req(s.addr, "HEAD", "alpha.test", "/img/logo.png", &[]).await;
    assert_eq!(
        (r.header("content-length"), r.body.len()),
        (Some("1000"), 0)
    );
    // A streamed compressible body decodes to the original.
    let plain = get(s.addr, "alpha.test", "/").await;
    let r = req(
        s.addr,
        "GET",
        "alpha.test",
        "/",
        &[("Accept-Encoding", "gzip")],
    )
    .await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(r.body.as_slice()),
        &mut out,
    )
    .unwrap();
    assert_eq!(out, plain.body);
    s.stop().await;
}

#[tokio::test]
async fn methods_and_bodies() {
    let f = fixture();
    let s = start(config(&f.data)).await;
    let r = req(
        s.addr,
        "POST",
        "alpha.test",
        "/",
        &[("Content-Length", "0")],
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = req(s.addr, "DELETE", "alpha.test", "/", &[]).await;
    assert_eq!(r.status, 405);
    let r = raw(s.addr, b"GET / HTTP/1.1\r\nHost: alpha.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello").await;
    assert_eq!(r.status, 413);
    s.stop().await;
}

#[tokio::test]
async fn http2_cleartext() {
    use http_body_util::{BodyExt, Empty};
    let f = fixture();
    let s = start(config(&f.data)).await;
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for (host, want) in [("alpha.test", "alpha home"), ("www.beta.test", "beta home")] {
        let req = http::Request::get(format!("http://{host}/"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains(want));
    }
    s.stop().await;
}
