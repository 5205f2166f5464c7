//! The publish API over real sockets: the publish flow, hostile manifests and uploads
//! (each leaving the store byte-for-byte unchanged), token scoping, escapes from the
//! data directory, rollback / keep-N / GC / purge, and scheduled activation across a
//! restart.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::*;
use qpage_edge::EdgeConfig;
use qpage_edge::client::{PublishOptions, publish};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

const OP: &str = "operator-token-for-tests-0123456789";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// Every file under the data directory with the hash of its content.
fn snapshot(data: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![data.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(data).unwrap().display().to_string();
                out.insert(rel, sha(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn api_config(tmp: &Path, data: &Path) -> EdgeConfig {
    let tok = tmp.join("operator.token");
    std::fs::write(&tok, format!("{OP}\n")).unwrap();
    let mut cfg = config(data);
    cfg.api.operator_token_file = Some(tok);
    cfg.api.max_manifest_entries = 50;
    cfg.api.max_path_bytes = 200;
    cfg.api.max_blob_bytes = 64 * 1024;
    cfg
}

async fn api(
    admin: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Resp {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        r.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    raw(admin, &bytes).await
}

fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn manifest(files: &[(&str, &[u8])]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = files
        .iter()
        .map(|(p, b)| serde_json::json!({"path": p, "sha256": sha(b), "size": b.len()}))
        .collect();
    serde_json::to_vec(&serde_json::json!({ "files": list })).unwrap()
}

fn opts(r: &Running, site: &str, token: &str) -> PublishOptions {
    let mut o = PublishOptions::new(&format!("http://{}", r.admin), site, token);
    o.retries = 1;
    o.backoff = Duration::from_millis(10);
    o
}

fn quiet() -> Arc<dyn Fn(qpage_edge::client::Progress) + Send + Sync> {
    Arc::new(|_| {})
}

/// Polls a page on the public listener until its body contains `needle` (10 s at most).
async fn wait_for(addr: SocketAddr, host: &str, path: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(addr, host, path).await;
        if r.status == 200 && r.text().contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host}{path} never served {needle:?}; last: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn publish_goes_live_and_an_unchanged_republish_uploads_nothing() {
    let f = fixture();
    let run = start(api_config(f._tmp.path(), &f.data)).await;
    let dist = f._tmp.path().join("new");
    write(&dist, "index.html", page("alpha v2 home").as_bytes());
    write(&dist, "assets/app.3f2a9c1b.css", CSS.repeat(10).as_bytes());
    write(&dist, "big.bin", &vec![7u8; 40_000]);
    let first = f.store.live("alpha").unwrap().unwrap();
    let before = f.store.deploy("alpha", &first).unwrap();

    let rep = publish(&dist, &opts(&run, "alpha", OP), quiet())
        .await
        .unwrap();
    assert!(rep.live);
    assert_eq!(rep.files, 3);
    // The CSS was already stored by the fixture's deploy: only 2 new blobs.
    assert_eq!(rep.blobs_uploaded, 2);
    assert_eq!(rep.url.as_deref(), Some("https://alpha.test/"));
    // The in-memory routing swapped before finalize answered.
    let r = get(run.addr, "alpha.test", "/").await;
    assert!(r.text().contains("alpha v2 home"), "{}", r.text());
    assert!(r.header("cache-tag").unwrap().contains(rep.deploy.as_str()));
    assert_eq!(f.store.live("alpha").unwrap(), Some(rep.deploy.clone()));
    // Precompressed variants exist for the new HTML.
    let d = f.store.deploy("alpha", &rep.deploy).unwrap();
    assert!(d.files["/index.html"].br.is_some() && d.files["/index.html"].gz.is_some());
    // The CSS's variants were known from the live deploy, not made again: same sizes.
    let css = "/assets/app.3f2a9c1b.css";
    assert!(d.files[css].br.is_some());
    assert_eq!(
        (d.files[css].br, d.files[css].gz),
        (before.files[css].br, before.files[css].gz)
    );

    let again = publish(&dist, &opts(&run, "alpha", OP), quiet())
        .await
        .unwrap();
    assert_eq!(again.deploy, rep.deploy);
    assert_eq!(again.blobs_uploaded, 0);
    assert_eq!(again.blob_bytes, 0);
    assert!(again.live);

    // The deploy list shows both, with the live one marked.
    let r = api(run.admin, "GET", "/v1/sites/alpha/deploys", Some(OP), b"").await;
    assert_eq!(r.status, 200);
    let v = json(&r);
    assert_eq!(v["live"], rep.deploy.as_str());
    assert_eq!(v["deploys"].as_array().unwrap().len(), 2);
    run.stop().await;
}

#[tokio::test]
async fn hostile_manifests_are_refused_and_leave_the_store_unchanged() {
    let f = fixture();
    let run = start(api_config(f._tmp.path(), &f.data)).await;
    let before = snapshot(&f.data);
    let long = format!("/{}", "a".repeat(250));
    let many: Vec<(String, Vec<u8>)> = (0..51)
        .map(|i| (format!("/f{i}.txt"), format!("{i}").into_bytes()))
        .collect();
    let many_refs: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    let h = sha(b"x");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dot-dot", manifest(&[("/a/../../etc/passwd", b"x")])),
        ("dot-dot at end", manifest(&[("/a/..", b"x")])),
        ("relative", manifest(&[("etc/passwd", b"x")])),
        ("absolute fs path", manifest(&[("//etc/passwd", b"x")])),
        ("backslash", manifest(&[("/a\\..\\b.html", b"x")])),
        ("nul", manifest(&[("/a\u{0}.html", b"x")])),
        ("control", manifest(&[("/a\n.html", b"x")])),
        ("percent escape", manifest(&[("/a%2e%2e/b", b"x")])),
        ("directory", manifest(&[("/a/", b"x")])),
        ("reserved", manifest(&[("/.qpage/manifest.json", b"x")])),
        ("duplicate", manifest(&[("/a.html", b"x"), ("/a.html", b"y")])),
        ("over-long name", manifest(&[(long.as_str(), b"x")])),
        ("too many entries", manifest(&many_refs)),
        ("empty", br#"{"files":[]}"#.to_vec()),
        (
            "bad hash",
            format!(r#"{{"files":[{{"path":"/a","sha256":"{}","size":1}}]}}"#, "z".repeat(64))
                .into_bytes(),
        ),
        (
            "uppercase hash",
            format!(
                r#"{{"files":[{{"path":"/a","sha256":"{}","size":1}}]}}"#,
                h.to_uppercase()
            )
            .into_bytes(),
        ),
        (
            "short hash",
            br#"{"files":[{"path":"/a","sha256":"abcd","size":1}]}"#.to_vec(),
        ),
        (
            "oversized file",
            format!(r#"{{"files":[{{"path":"/a","sha256":"{h}","size":99999999}}]}}"#).into_bytes(),
        ),
        (
            "one hash two sizes",
            format!(
                r#"{{"files":[{{"path":"/a","sha256":"{h}","size":1}},{{"path":"/b","sha256":"{h}","size":2}}]}}"#
            )
            .into_bytes(),
        ),
        (
            "bad content type",
            format!(
                r#"{{"files":[{{"path":"/a","sha256":"{h}","size":1,"content_type":"text/html\r\nx: y"}}]}}"#
            )
            .into_bytes(),
        ),
        (
            "unknown field",
            format!(r#"{{"files":[{{"path":"/a","sha256":"{h}","size":1,"mode":"0777"}}]}}"#)
                .into_bytes(),
        ),
        ("not json", b"{files: nope".to_vec()),
    ];
    for (name, body) in &cases {
        let r = api(run.admin, "POST", "/v1/sites/alpha/deploys", Some(OP), body).await;
        assert_eq!(r.status, 400, "{name}: {}", r.text());
        assert!(
            json(&r)["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}"
        );
        assert_eq!(snapshot(&f.data), before, "{name} changed the store");
    }
    // A manifest body over the size limit.
    let mut cfg = api_config(f._tmp.path(), &f.data);
    cfg.api.max_manifest_bytes = 1000;
    run.handle.reload(Some(cfg)).await.unwrap();
    let big = manifest(&many_refs[..40]);
    let r = api(run.admin, "POST", "/v1/sites/alpha/deploys", Some(OP), &big).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(snapshot(&f.data), before);
    run.stop().await;
}

#[tokio::test]
async fn hostile_uploads_are_refused_and_leave_the_store_unchanged() {
    let f = fixture();
    let run = start(api_config(f._tmp.path(), &f.data)).await;
    let good = page("upload target").into_bytes();
    let r = api(
        run.admin,
        "POST",
        "/v1/sites/alpha/deploys",
        Some(OP),
        &manifest(&[("/index.html", &good)]),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = json(&r);
    let id = v["deploy"].as_str().unwrap().to_string();
    let h = sha(&good);
    assert_eq!(v["missing"], serde_json::json!([h]));
    let before = snapshot(&f.data);
    let blob = format!("/v1/sites/alpha/blobs/{h}");

    // Content that does not hash to the name (same size).
    let mut wrong = good.clone();
    wrong[0] ^= 1;
    let r = api(run.admin, "PUT", &blob, Some(OP), &wrong).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("hashes to"), "{}", r.text());
    assert_eq!(snapshot(&f.data), before, "hash mismatch");

    // Oversized: more bytes than declared.
    let mut more = good.clone();
    more.extend_from_slice(b"extra");
    let r = api(run.admin, "PUT", &blob, Some(OP), &more).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(snapshot(&f.data), before, "oversized");
    // Oversized with a lying (chunked) body: no Content-Length.
    let mut req = format!(
        "PUT {blob} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {OP}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..3 {
        req.extend_from_slice(format!("{:x}\r\n", good.len()).as_bytes());
        req.extend_from_slice(&good);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = raw(run.admin, &req).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(snapshot(&f.data), before, "chunked oversized");

    // Truncated: half the declared bytes, then the connection drops.
    {
        let mut s = tokio::net::TcpStream::connect(run.admin).await.unwrap();
        let head = format!(
            "PUT {blob} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {OP}\r\nContent-Length: {}\r\n\r\n",
            good.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&good[..good.len() / 2]).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(s);
    }
    // The server notices the dropped connection and removes its temp file.
    let deadline = Instant::now() + Duration::from_secs(10);
    while snapshot(&f.data) != before {
        assert!(
            Instant::now() < deadline,
            "truncated upload left files behind"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A hash that no pending deploy declares; a malformed hash.
    let other = sha(b"not declared");
    let r = api(
        run.admin,
        "PUT",
        &format!("/v1/sites/alpha/blobs/{other}"),
        Some(OP),
        b"not declared",
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let r = api(
        run.admin,
        "PUT",
        "/v1/sites/alpha/blobs/..%2f..%2fx",
        Some(OP),
        b"x",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Finalize before the blob is there.
    let r = api(
        run.admin,
        "POST",
        &format!("/v1/sites/alpha/deploys/{id}/finalize"),
        Some(OP),
        b"",
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(snapshot(&f.data), before, "refused calls changed the store");

    // The real upload then works, and the deploy goes live.
    let r = api(run.admin, "PUT", &blob, Some(OP), &good).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api(
        run.admin,
        "POST",
        &format!("/v1/sites/alpha/deploys/{id}/finalize"),
        Some(OP),
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(run.addr, "alpha.test", "/").await;
    assert!(r.text().contains("upload target"));
    let m = api(run.admin, "GET", "/metrics", None, b"").await.text();
    assert!(m.contains("qpage_api_blobs_rejected_total 4"), "{m}");
    run.stop().await;
}

#[tokio::test]
async fn tokens_are_scoped_hashed_and_denials_are_counted() {
    let f = fixture();
    let run = start(api_config(f._tmp.path(), &f.data)).await;
    let r = api(run.admin, "POST", "/v1/sites/alpha/tokens", Some(OP), b"").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let alpha_tok = json(&r)["token"].as_str().unwrap().to_string();
    let r = api(run.admin, "POST", "/v1/sites/beta/tokens", Some(OP), b"").await;
    let beta_tok = json(&r)["token"].as_str().unwrap().to_string();
    assert!(alpha_tok.starts_with("s.alpha."));
    // Only the hash is stored.
    let stored = std::fs::read_to_string(f.data.join("sites/alpha/tokens.json")).unwrap();
    assert!(!stored.contains(&alpha_tok[8..]));
    assert!(stored.contains(&sha(alpha_tok.as_bytes())));

    let before = snapshot(&f.data);
    let body = manifest(&[("/index.html", b"hijack")]);
    let forged = format!("s.alpha.{}", "0".repeat(64));
    let cases: Vec<(Option<&str>, &str, &str, u16)> = vec![
        (None, "POST", "/v1/sites/alpha/deploys", 401),
        (Some("nope"), "POST", "/v1/sites/alpha/deploys", 401),
        (Some(&forged), "POST", "/v1/sites/alpha/deploys", 401),
        (Some(&beta_tok), "POST", "/v1/sites/alpha/deploys", 403),
        (Some(&beta_tok), "POST", "/v1/sites/alpha/rollback", 403),
        (Some(&beta_tok), "POST", "/v1/sites/alpha/purge", 403),
        (Some(&alpha_tok), "GET", "/v1/sites", 403),
        (Some(&alpha_tok), "POST", "/v1/gc", 403),
        (Some(&alpha_tok), "PUT", "/v1/sites/alpha", 403),
        (Some(&alpha_tok), "DELETE", "/v1/sites/beta", 403),
        (Some(&alpha_tok), "POST", "/v1/sites/alpha/tokens", 403),
    ];
    for (tok, method, path, status) in &cases {
        let r = api(run.admin, method, path, *tok, &body).await;
        assert_eq!(
            r.status,
            *status,
            "{method} {path} with {tok:?}: {}",
            r.text()
        );
        assert_eq!(snapshot(&f.data), before, "{method} {path} with {tok:?}");
    }
    let m = api(run.admin, "GET", "/metrics", None, b"").await.text();
    assert!(
        m.contains("qpage_api_denied_total{reason=\"missing\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("qpage_api_denied_total{reason=\"invalid\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("qpage_api_denied_total{reason=\"wrong_site\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("qpage_api_denied_total{reason=\"operator_only\"} 5"),
        "{m}"
    );

    // The site token publishes its own site.
    let dist = f._tmp.path().join("own");
    write(
        &dist,
        "index.html",
        page("published with a site token").as_bytes(),
    );
    let rep = publish(&dist, &opts(&run, "alpha", &alpha_tok), quiet())
        .await
        .unwrap();
    assert!(rep.live);
    wait_for(run.addr, "alpha.test", "/", "published with a site token").await;
    // Revoked tokens stop working.
    let r = api(run.admin, "DELETE", "/v1/sites/alpha/tokens", Some(OP), b"").await;
    assert_eq!(r.status, 200);
    let r = api(
        run.admin,
        "GET",
        "/v1/sites/alpha/deploys",
        Some(&alpha_tok),
        b"",
    )
    .await;
    assert_eq!(r.status, 401);
    run.stop().await;
}

#[tokio::test]
async fn crafted_names_cannot_escape_the_data_directory() {
    let f = fixture();
    let run = start(api_config(f._tmp.path(), &f.data)).await;
    let outside = f._tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("deploys")).unwrap();
    std::fs::write(outside.join("site.toml"), "hosts = [\"evil.test\"]\n").unwrap();
    let before = snapshot(&f.data);
    let outside_before = snapshot(f._tmp.path());
    let body = manifest(&[("/index.html", b"x")]);
    let paths = [
        "/v1/sites/../outside/deploys",
        "/v1/sites/..%2f..%2foutside/deploys",
        "/v1/sites/%2e%2e/deploys",
        "/v1/sites/ALPHA/deploys",
        "/v1/sites/alpha%00/deploys",
        "/v1/sites/alpha/deploys/..%2f..%2f..%2fsite/finalize",
        "/v1/sites/alpha/deploys/../../tokens/finalize",
        "/v1/sites/alpha/deploys/0123456789ABCDEF/activate",
        "/v1/sites/alpha/deploys/0123456789abcdef0/activate",
        "/v1/sites/a--b/deploys",
    ];
    for p in paths {
        for method in ["POST", "PUT", "GET", "DELETE"] {
            let r = api(run.admin, method, p, Some(OP), &body).await;
            assert!(
                matches!(r.status, 400 | 404 | 405),
                "{method} {p}: {} {}",
                r.status,
                r.text()
            );
        }
    }
    // PUT a site named like a path.
    let r = api(
        run.admin,
        "PUT",
        "/v1/sites/..",
        Some(OP),
        br#"{"hosts":["x.test"]}"#,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // A well-formed id that does not exist.
    let r = api(
        run.admin,
        "POST",
        "/v1/sites/alpha/deploys/0123456789abcdef/activate",
        Some(OP),
        b"",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(snapshot(&f.data), before);
    assert_eq!(snapshot(f._tmp.path()), outside_before);
    run.stop().await;
}

#[tokio::test]
async fn sites_crud_rollback_keep_n_gc_and_purge() {
    let f = fixture();
    let mut cfg = api_config(f._tmp.path(), &f.data);
    cfg.api.keep_deploys = 3;
    cfg.api.gc_grace_secs = 0;
    let run = start(cfg).await;

    // Create a site, read it, change it; a host of another site is refused.
    let r = api(
        run.admin,
        "PUT",
        "/v1/sites/gamma",
        Some(OP),
        br#"{"hosts":["gamma.test"],"aliases":["www.gamma.test"]}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api(
        run.admin,
        "PUT",
        "/v1/sites/gamma",
        Some(OP),
        br#"{"hosts":["gamma.test","alpha.test"]}"#,
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let r = api(
        run.admin,
        "PUT",
        "/v1/sites/gamma",
        Some(OP),
        br#"{"hosts":["gamma.test"],"www":"off"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api(run.admin, "GET", "/v1/sites", Some(OP), b"").await;
    let names: Vec<String> = json(&r)["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);

    // Five deploys; only the last three are kept.
    let mut ids = Vec::new();
    for i in 0..5 {
        let dist = f._tmp.path().join(format!("g{i}"));
        write(
            &dist,
            "index.html",
            page(&format!("gamma version {i}")).as_bytes(),
        );
        write(
            &dist,
            &format!("only-{i}.txt"),
            format!("unique to deploy {i}").as_bytes(),
        );
        let rep = publish(&dist, &opts(&run, "gamma", OP), quiet())
            .await
            .unwrap();
        ids.push(rep.deploy);
        wait_for(run.addr, "gamma.test", "/", &format!("gamma version {i}")).await;
    }
    let kept: Vec<_> = f
        .store
        .deploys("gamma")
        .unwrap()
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    for id in &ids[2..] {
        assert!(kept.contains(id));
    }

    // Rollback goes to the previous deploy, and the routing follows at once.
    let r = api(run.admin, "POST", "/v1/sites/gamma/rollback", Some(OP), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["deploy"], ids[3].as_str());
    let r = get(run.addr, "gamma.test", "/").await;
    assert!(r.text().contains("gamma version 3"));
    // And forward again by id.
    let r = api(
        run.admin,
        "POST",
        &format!("/v1/sites/gamma/deploys/{}/activate", ids[4]),
        Some(OP),
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        get(run.addr, "gamma.test", "/")
            .await
            .text()
            .contains("gamma version 4")
    );

    // GC drops the blobs only the pruned deploys used; everything kept stays.
    let gone = sha(b"unique to deploy 0");
    let kept_blob = sha(b"unique to deploy 4");
    assert!(f.data.join("blobs").join(&gone[..2]).join(&gone).exists());
    let r = api(run.admin, "POST", "/v1/gc", Some(OP), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        json(&r)["blobs_removed"].as_u64().unwrap() >= 2,
        "{}",
        r.text()
    );
    assert!(!f.data.join("blobs").join(&gone[..2]).join(&gone).exists());
    assert!(
        f.data
            .join("blobs")
            .join(&kept_blob[..2])
            .join(&kept_blob)
            .exists()
    );
    for site in ["alpha", "beta", "gamma"] {
        for (id, _) in f.store.deploys(site).unwrap() {
            for (p, file) in f.store.deploy(site, &id).unwrap().files {
                let b = f
                    .data
                    .join("blobs")
                    .join(&file.sha256[..2])
                    .join(&file.sha256);
                assert!(b.exists(), "{site} {id} {p}: blob collected");
            }
        }
    }
    assert_eq!(get(run.addr, "alpha.test", "/about/").await.status, 200);

    // Purge drops the site's blobs from memory: the next request misses the cache.
    assert_eq!(get(run.addr, "gamma.test", "/only-4.txt").await.status, 200);
    assert_eq!(get(run.addr, "gamma.test", "/only-4.txt").await.status, 200);
    let misses = run.handle.metrics().cache_misses();
    let r = api(run.admin, "POST", "/v1/sites/gamma/purge", Some(OP), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(json(&r)["evicted"].as_u64().unwrap() >= 1, "{}", r.text());
    assert_eq!(get(run.addr, "gamma.test", "/only-4.txt").await.status, 200);
    assert_eq!(run.handle.metrics().cache_misses(), misses + 1);

    // Delete the site: it stops routing.
    let r = api(run.admin, "DELETE", "/v1/sites/gamma", Some(OP), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(run.addr, "gamma.test", "/").await.status, 404);
    assert!(!f.data.join("sites/gamma").exists());
    run.stop().await;
}

#[tokio::test]
async fn scheduled_activation_fires_and_survives_a_restart() {
    let f = fixture();
    let cfg = api_config(f._tmp.path(), &f.data);
    let run = start(cfg.clone()).await;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };

    // Fires while running.
    let dist = f._tmp.path().join("s1");
    write(&dist, "index.html", page("scheduled one").as_bytes());
    let mut o = opts(&run, "beta", OP);
    o.activate_at = Some(now() + 2);
    let rep = publish(&dist, &o, quiet()).await.unwrap();
    assert!(!rep.live);
    assert_eq!(rep.activate_at, o.activate_at);
    assert!(
        get(run.addr, "www.beta.test", "/")
            .await
            .text()
            .contains("beta home")
    );
    wait_for(run.addr, "www.beta.test", "/", "scheduled one").await;
    assert!(f.store.scheduled("beta").unwrap().is_empty());

    // Scheduled, then the node stops before the time and starts after it.
    let dist = f._tmp.path().join("s2");
    write(&dist, "index.html", page("scheduled two").as_bytes());
    let at = now() + 2;
    o.activate_at = Some(at);
    let rep2 = publish(&dist, &o, quiet()).await.unwrap();
    assert!(!rep2.live);
    run.stop().await;
    assert_eq!(f.store.scheduled("beta").unwrap().len(), 1);
    assert_eq!(f.store.live("beta").unwrap(), Some(rep.deploy.clone()));
    while now() <= at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(f.store.live("beta").unwrap(), Some(rep.deploy.clone()));
    let run = start(cfg).await;
    wait_for(run.addr, "www.beta.test", "/", "scheduled two").await;
    assert_eq!(f.store.live("beta").unwrap(), Some(rep2.deploy.clone()));

    // A cancelled schedule never fires.
    let dist = f._tmp.path().join("s3");
    write(&dist, "index.html", page("cancelled").as_bytes());
    o = opts(&run, "beta", OP);
    o.activate_at = Some(now() + 1);
    publish(&dist, &o, quiet()).await.unwrap();
    let r = api(
        run.admin,
        "DELETE",
        "/v1/sites/beta/schedule",
        Some(OP),
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let until = now() + 2;
    while now() <= until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        get(run.addr, "www.beta.test", "/")
            .await
            .text()
            .contains("scheduled two")
    );
    run.stop().await;
}

/// A proxy in front of the admin listener that answers every third connection with a
/// 503 and closes it: the client retries with backoff and the publish still succeeds.
#[tokio::test]
async fn the_client_retries_through_a_flaky_link() {
    let f = fixture();
    let run = start(api_config(f._tmp.path(), &f.data)).await;
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let paddr = proxy.local_addr().unwrap();
    let admin = run.admin;
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let r2 = refused.clone();
    let refuse_all = Arc::new(AtomicBool::new(false));
    let ra = refuse_all.clone();
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            let Ok((mut c, _)) = proxy.accept().await else {
                return;
            };
            n += 1;
            if n % 3 == 1 || ra.load(std::sync::atomic::Ordering::Relaxed) {
                r2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = tokio::io::AsyncReadExt::read(&mut c, &mut buf).await;
                    let _ = c
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                });
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut up) = tokio::net::TcpStream::connect(admin).await {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
                }
            });
        }
    });
    let dist = f._tmp.path().join("flaky");
    for i in 0..12 {
        write(
            &dist,
            &format!("f{i}.html"),
            page(&format!("flaky {i}")).as_bytes(),
        );
    }
    let retries = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let r3 = retries.clone();
    let progress: Arc<dyn Fn(qpage_edge::client::Progress) + Send + Sync> = Arc::new(move |p| {
        if matches!(p, qpage_edge::client::Progress::Retry(..)) {
            r3.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let mut o = PublishOptions::new(&format!("http://{paddr}"), "alpha", OP);
    o.retries = 6;
    o.backoff = Duration::from_millis(5);
    o.concurrency = 1;
    let rep = publish(&dist, &o, progress).await.unwrap();
    assert!(rep.live);
    assert_eq!(rep.blobs_uploaded, 12);
    assert!(refused.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert!(retries.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    wait_for(run.addr, "alpha.test", "/f3.html", "flaky 3").await;
    // Without retries a failing link fails with a clear error.
    refuse_all.store(true, std::sync::atomic::Ordering::Relaxed);
    let dist2 = f._tmp.path().join("flaky2");
    for i in 0..12 {
        write(
            &dist2,
            &format!("g{i}.html"),
            page(&format!("second {i}")).as_bytes(),
        );
    }
    o.retries = 0;
    o.concurrency = 1;
    let err = publish(&dist2, &o, quiet()).await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    task.abort();
    run.stop().await;
}

/// GC while an upload session is open keeps the blobs it declares (uploaded or not
/// yet), so the deploy can still be finalized afterwards.
#[tokio::test]
async fn gc_keeps_the_blobs_of_an_upload_in_flight() {
    let f = fixture();
    let mut cfg = api_config(f._tmp.path(), &f.data);
    cfg.api.gc_grace_secs = 0;
    let run = start(cfg).await;
    let a = page("in flight a").into_bytes();
    let b = page("in flight b").into_bytes();
    let r = api(
        run.admin,
        "POST",
        "/v1/sites/beta/deploys",
        Some(OP),
        &manifest(&[("/index.html", &a), ("/b.html", &b)]),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = json(&r)["deploy"].as_str().unwrap().to_string();
    let r = api(
        run.admin,
        "PUT",
        &format!("/v1/sites/beta/blobs/{}", sha(&a)),
        Some(OP),
        &a,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api(run.admin, "POST", "/v1/gc", Some(OP), b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ha = sha(&a);
    assert!(
        f.data.join("blobs").join(&ha[..2]).join(&ha).exists(),
        "GC removed an in-flight blob"
    );
    // The rest of the session still works after the GC.
    let r = api(
        run.admin,
        "PUT",
        &format!("/v1/sites/beta/blobs/{}", sha(&b)),
        Some(OP),
        &b,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api(
        run.admin,
        "POST",
        &format!("/v1/sites/beta/deploys/{id}/finalize"),
        Some(OP),
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        get(run.addr, "www.beta.test", "/")
            .await
            .text()
            .contains("in flight a")
    );
    assert!(
        get(run.addr, "www.beta.test", "/b.html")
            .await
            .text()
            .contains("in flight b")
    );
    run.stop().await;
}
