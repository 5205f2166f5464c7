//! Crash safety of deploys, on the real binary: `qpage edge serve` is SIGKILLed at 24
//! points of a deploy (after the manifest, between uploads, in the middle of an upload,
//! during finalize), restarted, and then:
//! - the site serves the old deploy or the new one, every file of it from that one;
//! - every blob on disk hashes to its name (Brotli and gzip variants decompressed);
//! - no half-written file is visible (no `.tmp-*` left, `data/tmp/` emptied);
//! - the interrupted deploy can be finished after the restart and goes live.
//!
//! Also `qpage publish` end to end against the same binary: token only from
//! `QPAGE_TOKEN` or `--token-file`, and an unchanged re-publish uploads nothing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const OP: &str = "crash-test-operator-token-0123456789";
const KILL_POINTS: usize = 24;

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A running `qpage edge serve`, SIGKILLed on drop.
struct Edge {
    child: Child,
    public: SocketAddr,
    admin: SocketAddr,
}

impl Edge {
    fn start(data: &Path, log: &Path) -> Edge {
        let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_qpage"))
            .args(["edge", "serve", "--data"])
            .arg(data)
            .args([
                "--listen",
                &public.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .env("QPAGE_OPERATOR_TOKEN", OP)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn qpage edge serve");
        let mut edge = Edge {
            child,
            public,
            admin,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = try_http(edge.admin, "GET", "/healthz", None, b"", "admin")
                && r.0 == 200
            {
                break;
            }
            if let Ok(Some(status)) = edge.child.try_wait() {
                panic!("qpage edge serve exited early: {status}");
            }
            assert!(Instant::now() < deadline, "edge did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        edge.public = public;
        edge
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.kill();
    }
}

type Resp = (u16, String, Vec<u8>);

fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
    host: &str,
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((status, head, buf[end + 4..].to_vec()))
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Resp {
    try_http(addr, method, path, Some(OP), body, "admin")
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// The files of version `v` of the site: every page names its version; one stylesheet
/// is shared by all versions.
fn version(v: usize) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let filler = "<p>The quick brown fox jumps over the lazy dog.</p>";
    files.insert(
        "/index.html".to_string(),
        format!("<h1>version {v}</h1>{}", filler.repeat(40)).into_bytes(),
    );
    for i in 0..20 {
        files.insert(
            format!("/p{i}.html"),
            format!(
                "<h1>version {v} page {i}</h1>{}",
                filler.repeat(20 + i * 10)
            )
            .into_bytes(),
        );
    }
    files.insert(
        "/assets/site.0a1b2c3d.css".to_string(),
        "body{margin:0;font:16px/1.5 system-ui}\n"
            .repeat(30)
            .into_bytes(),
    );
    files.insert(
        "/data.bin".to_string(),
        (0..3000u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(v as u32 * 7919) >> 11) as u8)
            .collect(),
    );
    files
}

fn manifest(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let list: Vec<serde_json::Value> = files
        .iter()
        .map(|(p, b)| serde_json::json!({"path": p, "sha256": sha(b), "size": b.len()}))
        .collect();
    serde_json::to_vec(&serde_json::json!({ "files": list })).unwrap()
}

/// Starts a deploy: returns its id and the missing hashes.
fn begin(edge: &Edge, files: &BTreeMap<String, Vec<u8>>) -> (String, Vec<String>) {
    let r = http(
        edge.admin,
        "POST",
        "/v1/sites/crash/deploys",
        &manifest(files),
    );
    assert!(
        r.0 == 201 || r.0 == 200,
        "{}",
        String::from_utf8_lossy(&r.2)
    );
    let v: serde_json::Value = serde_json::from_slice(&r.2).unwrap();
    let missing = v["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    (v["deploy"].as_str().unwrap().to_string(), missing)
}

fn by_hash(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files.values().map(|b| (sha(b), b.clone())).collect()
}

/// The whole deploy, to completion; returns its id and how long finalize took.
fn deploy_fully(edge: &Edge, files: &BTreeMap<String, Vec<u8>>) -> (String, Duration) {
    let (id, missing) = begin(edge, files);
    let blobs = by_hash(files);
    for h in missing {
        let r = http(
            edge.admin,
            "PUT",
            &format!("/v1/sites/crash/blobs/{h}"),
            &blobs[&h],
        );
        assert!(
            r.0 == 201 || r.0 == 200,
            "{}",
            String::from_utf8_lossy(&r.2)
        );
    }
    let t = Instant::now();
    let r = http(
        edge.admin,
        "POST",
        &format!("/v1/sites/crash/deploys/{id}/finalize"),
        b"",
    );
    assert_eq!(r.0, 200, "{}", String::from_utf8_lossy(&r.2));
    (id, t.elapsed())
}

/// Which version the site serves, checking that every file is from that one version.
fn served_version(edge: &Edge, candidates: &[usize]) -> usize {
    let r = try_http(edge.public, "GET", "/", None, b"", "crash.test").expect("GET /");
    assert_eq!(r.0, 200);
    let text = String::from_utf8_lossy(&r.2).into_owned();
    let v = candidates
        .iter()
        .copied()
        .find(|v| text.starts_with(&format!("<h1>version {v}</h1>")))
        .unwrap_or_else(|| panic!("serves neither of {candidates:?}: {}", &text[..40]));
    for (path, body) in version(v) {
        let r = try_http(edge.public, "GET", &path, None, b"", "crash.test").expect("GET");
        assert_eq!(r.0, 200, "{path}");
        assert_eq!(r.2, body, "{path} is not from version {v}");
    }
    v
}

/// Every blob hashes to its name; no temp file is visible.
fn check_disk(data: &Path) {
    let mut count = 0;
    for shard in std::fs::read_dir(data.join("blobs")).unwrap() {
        let shard = shard.unwrap().path();
        for f in std::fs::read_dir(&shard).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            let (hash, plain) = if let Some(h) = name.strip_suffix(".br") {
                let mut out = Vec::new();
                brotli::Decompressor::new(&bytes[..], 4096)
                    .read_to_end(&mut out)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                (h.to_string(), out)
            } else if let Some(h) = name.strip_suffix(".gz") {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_end(&mut out)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                (h.to_string(), out)
            } else if name.ends_with("-none") {
                continue;
            } else {
                (name.clone(), bytes)
            };
            assert_eq!(sha(&plain), hash, "blob {name} does not match its hash");
            count += 1;
        }
    }
    assert!(count > 0);
    let leftovers: Vec<PathBuf> = walk(data)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"))
                || p.starts_with(data.join("tmp"))
        })
        .collect();
    assert!(leftovers.is_empty(), "half-files left: {leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn sigkill_at_any_point_of_a_deploy_leaves_old_or_new_and_intact_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("edge.log");
    let mut edge = Edge::start(&data, &log);
    let r = http(
        edge.admin,
        "PUT",
        "/v1/sites/crash",
        br#"{"hosts":["crash.test"]}"#,
    );
    assert_eq!(r.0, 201, "{}", String::from_utf8_lossy(&r.2));
    let (_, mut finalize_time) = deploy_fully(&edge, &version(0));
    assert_eq!(served_version(&edge, &[0]), 0);
    let mut live = 0;
    let mut outcomes = BTreeMap::new();

    for k in 0..KILL_POINTS {
        let v = k + 1;
        let files = version(v);
        let blobs = by_hash(&files);
        let steps_total = 2 + files.len() - 1; // manifest + (new blobs) + finalize
        let cut = k * steps_total / KILL_POINTS;
        let mode = k % 3;
        let mut label = String::new();
        // Steps, stopping at the kill point.
        let (id, missing) = begin(&edge, &files);
        let mut partial: Option<TcpStream> = None;
        // Step 1 was the manifest; step `done` uploads the next missing blob.
        for (done, h) in (1..).zip(missing.iter()) {
            if done >= cut.max(1) && mode != 2 {
                if mode == 1 {
                    // Half an upload, then the kill.
                    let body = &blobs[h];
                    let mut s = TcpStream::connect(edge.admin).unwrap();
                    let head = format!(
                        "PUT /v1/sites/crash/blobs/{h} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {OP}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    s.write_all(head.as_bytes()).unwrap();
                    s.write_all(&body[..body.len() / 2]).unwrap();
                    s.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                    partial = Some(s);
                    label = format!("mid-upload after {done} steps");
                } else {
                    label = format!("after {done} steps");
                }
                break;
            }
            let r = http(
                edge.admin,
                "PUT",
                &format!("/v1/sites/crash/blobs/{h}"),
                &blobs[h],
            );
            assert!(r.0 == 201 || r.0 == 200);
        }
        if label.is_empty() {
            // All blobs are up: kill during finalize, from early in it to just past
            // the time the last complete finalize took.
            let mut s = TcpStream::connect(edge.admin).unwrap();
            let req = format!(
                "POST /v1/sites/crash/deploys/{id}/finalize HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {OP}\r\nContent-Length: 0\r\n\r\n"
            );
            s.write_all(req.as_bytes()).unwrap();
            let delay = finalize_time * (k / 3 + 1) as u32 / 6;
            std::thread::sleep(delay);
            partial = Some(s);
            label = format!("finalize + {delay:.1?}");
        }
        edge.kill();
        drop(partial);

        edge = Edge::start(&data, &log);
        check_disk(&data);
        let now = served_version(&edge, &[live, v]);
        outcomes.insert(k, (label, now == v));
        // The interrupted deploy can be finished after the restart.
        let (id2, took) = deploy_fully(&edge, &files);
        finalize_time = took;
        assert_eq!(id2, id);
        assert_eq!(served_version(&edge, &[v]), v);
        live = v;
    }
    // Some kill points landed before the switch and some after (the test covers both).
    let went_live = outcomes.values().filter(|(_, new)| *new).count();
    eprintln!("kill points (label, new deploy live after restart): {outcomes:?}");
    assert!(went_live < KILL_POINTS, "{outcomes:?}");
    drop(edge);
    check_disk(&data);
}

fn qpage(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qpage"));
    c.args(args).env_remove("QPAGE_TOKEN").env("NO_COLOR", "1");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run qpage")
}

#[test]
fn qpage_publish_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let edge = Edge::start(&data, &tmp.path().join("edge.log"));
    let r = http(
        edge.admin,
        "PUT",
        "/v1/sites/shop",
        br#"{"hosts":["shop.test"]}"#,
    );
    assert_eq!(r.0, 201);
    let r = http(edge.admin, "POST", "/v1/sites/shop/tokens", b"");
    let token: serde_json::Value = serde_json::from_slice(&r.2).unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let dist = tmp.path().join("dist");
    for (p, b) in version(7) {
        let f = dist.join(&p[1..]);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, b).unwrap();
    }
    let url = format!("http://{}", edge.admin);
    let dist_s = dist.to_str().unwrap();
    let args = [
        "publish", dist_s, "--edge", &url, "--site", "shop", "--quiet",
    ];

    // No token: a clear error; a token on the command line is not an option.
    let o = qpage(&args, &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("QPAGE_TOKEN"));
    let mut with_arg = args.to_vec();
    with_arg.extend(["--token", &token]);
    assert!(!qpage(&with_arg, &[]).status.success());

    let o = qpage(&args, &[("QPAGE_TOKEN", &token)]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("live: https://shop.test/"), "{out}");
    assert!(out.contains("uploaded 23 blobs"), "{out}");
    let r = try_http(edge.public, "GET", "/", None, b"", "shop.test").unwrap();
    assert!(String::from_utf8_lossy(&r.2).contains("version 7"));

    // Unchanged: nothing uploaded. Token from a file.
    let tf = tmp.path().join("token");
    std::fs::write(&tf, format!("{token}\n")).unwrap();
    let mut from_file = args.to_vec();
    from_file.extend(["--token-file", tf.to_str().unwrap()]);
    let o = qpage(&from_file, &[]);
    let out2 = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out2}");
    assert!(out2.contains("uploaded 0 blobs (0 bytes)"), "{out2}");
    let id = |s: &str| s.split_whitespace().nth(1).map(str::to_string);
    assert_eq!(id(&out), id(&out2));

    // Another site's name with this token is refused.
    let o = qpage(
        &[
            "publish", dist_s, "--edge", &url, "--site", "other", "--quiet",
        ],
        &[("QPAGE_TOKEN", &token)],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
