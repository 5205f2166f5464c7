//! `qpage dev` over real sockets: the edge's behaviour (404 page, `_redirects`,
//! `_headers`, clean URLs), the injected live-reload script, the event stream, an edit
//! served without restarting, ports (a taken default port gives a free one; a taken
//! explicit port is an error) and loopback binding.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::{get, small_site, wait_for, write_hello};

fn start(site: &std::path::Path, port: Option<u16>) -> qpage_dev::Running {
    let mut opts = qpage_dev::DevOptions::new(site);
    opts.port = port;
    qpage_dev::start(opts).expect("dev server starts")
}

#[test]
fn serves_like_the_edge_and_updates_on_edit() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = small_site(tmp.path());
    std::fs::write(site.join("static/_redirects"), "/old /hello/ 301\n").expect("redirects");
    std::fs::write(site.join("static/_headers"), "/hello/\n  X-Preview: yes\n").expect("headers");
    let dev = start(&site, Some(0));
    let addr = dev.addr();
    assert!(addr.ip().is_loopback(), "binds loopback by default: {addr}");

    let page = get(addr, "/hello/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Original words on the page."));
    assert!(
        page.text().contains("/__qpage/live.js"),
        "the live-reload script is injected"
    );
    assert_eq!(page.header("x-preview"), Some("yes"), "_headers applies");
    let on_disk = std::fs::read_to_string(dev.output().join("hello/index.html")).expect("built");
    assert!(
        !on_disk.contains("__qpage"),
        "the build itself has no script"
    );

    let moved = get(addr, "/old");
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/hello/"));
    let clean = get(addr, "/hello");
    assert_eq!(clean.status, 301, "clean URL redirect");
    let missing = get(addr, "/no/such/page/");
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("__qpage/live.js"),
        "the site's 404 page, with the script"
    );
    let js = get(addr, "/__qpage/live.js");
    assert_eq!(js.status, 200);
    assert!(js.text().contains("EventSource"));

    // The event stream announces a reload after an edit.
    let mut events = TcpStream::connect(addr).expect("connect");
    events
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        events,
        "GET /__qpage/events HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    .expect("send");
    let mut reader = BufReader::new(events);
    let mut line = String::new();
    let mut seen = String::new();
    while !seen.contains("event: ready") {
        line.clear();
        assert!(
            reader.read_line(&mut line).expect("read") > 0,
            "stream ended"
        );
        seen.push_str(&line);
    }
    write_hello(&site, "Edited words, served at once.");
    let mut got_reload = false;
    for _ in 0..200 {
        line.clear();
        if reader.read_line(&mut line).expect("read event") == 0 {
            break;
        }
        if line.starts_with("event: reload") {
            got_reload = true;
            break;
        }
    }
    assert!(got_reload, "no reload event after the edit: {seen}");
    let page = get(addr, "/hello/");
    assert!(page.text().contains("Edited words, served at once."));

    // A bad edit: the server keeps serving the last good page.
    std::fs::write(
        site.join("content/hello.md"),
        "+++\ntitle = \n+++\nbroken\n",
    )
    .expect("w");
    std::thread::sleep(Duration::from_millis(300));
    let page = get(addr, "/hello/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Edited words, served at once."));
    write_hello(&site, "Fixed again.");
    let fixed = wait_for(Duration::from_secs(20), || {
        let p = get(addr, "/hello/");
        p.text().contains("Fixed again.").then_some(())
    });
    assert!(fixed.is_some(), "the fixed page is served");
    dev.stop();
}

#[test]
fn ports() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = small_site(tmp.path());
    // Hold the default port (it may already be held by something else: also fine).
    let _hold = TcpListener::bind(("127.0.0.1", qpage_dev::DEFAULT_PORT));
    let dev = start(&site, None);
    assert_ne!(dev.addr().port(), qpage_dev::DEFAULT_PORT);
    assert_eq!(get(dev.addr(), "/hello/").status, 200);

    // An explicit port that is taken is an error naming it.
    let taken: SocketAddr = dev.addr();
    let mut opts = qpage_dev::DevOptions::new(&site);
    opts.port = Some(taken.port());
    opts.output = Some(tmp.path().join("second"));
    match qpage_dev::start(opts) {
        Ok(_) => panic!("started on a taken port"),
        Err(e) => assert!(e.to_string().contains(&taken.port().to_string()), "{e}"),
    }
    dev.stop();
}
