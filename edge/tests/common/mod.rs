//! Test fixtures: a store with two sites, an in-process server on 127.0.0.1:0, and a
//! raw HTTP/1.1 client (so hostile request lines reach the server byte for byte).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use qpage_edge::{EdgeConfig, Server, ServerHandle, SiteConfig, Store, WwwPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const CSS: &str =
    "body { color: #333; margin: 0 auto; max-width: 40rem; font-family: system-ui, sans-serif; }\n";

pub fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// Text long enough to be precompressed.
pub fn page(title: &str) -> String {
    format!(
        "<!doctype html><title>{title}</title><h1>{title}</h1>{}",
        "<p>lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>".repeat(20)
    )
}

pub fn alpha_dist(dir: &Path) {
    write(dir, "index.html", page("alpha home").as_bytes());
    write(dir, "about/index.html", page("alpha about").as_bytes());
    write(dir, "contact.html", page("alpha contact").as_bytes());
    write(dir, "shadow.html", page("alpha shadow").as_bytes());
    write(dir, "404.html", page("alpha not found page").as_bytes());
    write(dir, "assets/app.3f2a9c1b.css", CSS.repeat(10).as_bytes());
    let png: Vec<u8> = (0..1000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    write(dir, "img/logo.png", &png);
    write(dir, "secret-alpha.txt", b"alpha-only secret");
    write(
        dir,
        "_redirects",
        b"# alpha rules\n/old /about/ 301\n/news/* /blog/:splat 302\n/go/* /:splat 302\n/spa/* /index.html 200\n/gone /index.html 410\n/store id=:id /items/:id 301\n/contact /elsewhere 301\n/shadow /moved 302!\n/abs https://example.org/x 307\n/docs/* /about 200\n/c2 /contact/ 200\n",
    );
    write(
        dir,
        "_headers",
        b"/*\n  X-Site: alpha\n/assets/*\n  X-Frame-Options: DENY\n  Access-Control-Allow-Origin: *\n",
    );
}

pub fn beta_dist(dir: &Path) {
    write(dir, "index.html", page("beta home").as_bytes());
    write(dir, "only-beta.html", b"beta only");
    write(dir, "assets/app.3f2a9c1b.css", CSS.repeat(10).as_bytes());
}

pub struct Fixture {
    pub _tmp: tempfile::TempDir,
    pub data: std::path::PathBuf,
    pub store: Store,
}

pub fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = Store::open(&data).unwrap();
    let a = tmp.path().join("alpha");
    alpha_dist(&a);
    let b = tmp.path().join("beta");
    beta_dist(&b);
    store
        .put_site(
            "alpha",
            &SiteConfig {
                hosts: vec!["alpha.test".into()],
                aliases: vec!["www.alpha.test".into(), "alpha-alias.test".into()],
                www: WwwPolicy::Apex,
                https: Default::default(),
            },
        )
        .unwrap();
    let id = store.import_dir("alpha", &a).unwrap();
    store.activate("alpha", &id).unwrap();
    store
        .put_site(
            "beta",
            &SiteConfig {
                hosts: vec!["beta.test".into(), "www.beta.test".into()],
                aliases: vec![],
                www: WwwPolicy::Www,
                https: Default::default(),
            },
        )
        .unwrap();
    let id = store.import_dir("beta", &b).unwrap();
    store.activate("beta", &id).unwrap();
    Fixture {
        _tmp: tmp,
        data,
        store,
    }
}

pub struct Running {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub handle: ServerHandle,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<qpage_edge::Result<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops");
        r.unwrap().unwrap();
    }
}

pub fn config(data: &Path) -> EdgeConfig {
    let mut cfg = EdgeConfig {
        listen: "127.0.0.1:0".into(),
        admin: "127.0.0.1:0".into(),
        data_dir: data.to_path_buf(),
        ..EdgeConfig::default()
    };
    cfg.routing.preview_domains = vec!["preview.test".into()];
    cfg.routing.reload_poll_ms = 100;
    cfg
}

pub async fn start(cfg: EdgeConfig) -> Running {
    let server = Server::bind(cfg).await.unwrap();
    let addr = server.local_addr().unwrap();
    let admin = server.admin_addr().unwrap();
    let handle = server.handle();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        admin,
        handle,
        stop: Some(tx),
        task,
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw bytes, reads to EOF (5 s at most), parses one response.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("response within 5 s")
        .ok();
    parse(&buf)
}

pub fn parse(buf: &[u8]) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    }
}

/// GET (or another method) with a Host and extra header lines.
pub async fn req(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Resp {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in extra {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    r.push_str("\r\n");
    raw(addr, r.as_bytes()).await
}

pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Resp {
    req(addr, "GET", host, path, &[]).await
}
