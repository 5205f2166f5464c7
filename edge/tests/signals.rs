//! `serve_blocking` as `qpage edge serve` runs it: SIGHUP reloads edge.toml and routing
//! without dropping a kept-alive connection; SIGTERM drains and returns. Signals go to
//! this test process, so this file holds exactly one test.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use qpage_edge::ServeOptions;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn kill(sig: &str) {
    let pid = std::process::id().to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// One request on an open connection; returns the response head.
fn ask(c: &mut TcpStream) -> String {
    c.write_all(b"GET / HTTP/1.1\r\nHost: alpha.test\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    loop {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if got.len() >= end + 4 + len {
                return text[..end].to_string();
            }
        }
    }
}

#[test]
fn sighup_reloads_and_sigterm_drains() {
    let f = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("edge.toml");
    let port = free_port();
    let write_conf = |cdn: u64| {
        std::fs::write(
            &conf,
            format!(
                "listen = \"127.0.0.1:{port}\"\nadmin = \"\"\ndata_dir = {:?}\nworkers = 2\n[routing]\nreload_poll_ms = 0\n[http]\ncdn_max_age = {cdn}\n",
                f.data
            ),
        )
        .unwrap()
    };
    write_conf(111);
    let opts = ServeOptions {
        config: Some(conf.clone()),
        ..ServeOptions::default()
    };
    let server = std::thread::spawn(move || qpage_edge::serve_blocking(opts));
    let mut conn = None;
    for _ in 0..100 {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            conn = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = conn.expect("server listening");
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = ask(&mut c);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("cdn-cache-control: max-age=111"), "{head}");

    write_conf(222);
    kill("-HUP");
    let mut reloaded = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(50));
        // The same connection keeps working across the reload.
        if ask(&mut c).contains("cdn-cache-control: max-age=222") {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "SIGHUP applied the new edge.toml");

    kill("-TERM");
    let result = server.join().unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
