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

/// Every update swaps what is served in place (the server keeps two copies of the
/// site's file table and brings the spare one up to date): a run of edits, a page
/// added and removed, and a `_headers` change must each be served, with files the
/// edits did not touch still served with the current rules.
#[test]
fn successive_updates_are_all_served() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = small_site(tmp.path());
    std::fs::write(site.join("static/plain.txt"), "plain\n").expect("plain");
    std::fs::write(site.join("static/_headers"), "/plain.txt\n  X-Rule: one\n").expect("h");
    let dev = start(&site, Some(0));
    let addr = dev.addr();
    let limit = Duration::from_secs(20);
    let rule = || get(addr, "/plain.txt").header("x-rule").map(str::to_string);
    // Served twice: the second response comes from the precomputed headers.
    assert_eq!(rule().as_deref(), Some("one"));
    assert_eq!(rule().as_deref(), Some("one"));

    let edit = |n: usize, expect_rule: &str| {
        let text = format!("Edit number {n} of the page.");
        write_hello(&site, &text);
        let served = wait_for(limit, || {
            let p = get(addr, "/hello/");
            (p.status == 200 && p.text().contains(&text)).then_some(())
        });
        assert!(served.is_some(), "edit {n} is served");
        for _ in 0..2 {
            assert_eq!(rule().as_deref(), Some(expect_rule), "after edit {n}");
        }
    };
    for n in 1..=3 {
        edit(n, "one");
    }

    // A page added, then an edit, then the page removed, then an edit.
    std::fs::write(
        site.join("content/extra.md"),
        "+++\ntitle = \"Extra\"\n+++\n\nAn extra page.\n",
    )
    .expect("extra");
    let added = wait_for(limit, || (get(addr, "/extra/").status == 200).then_some(()));
    assert!(added.is_some(), "the new page is served");
    edit(4, "one");
    assert_eq!(
        get(addr, "/extra/").status,
        200,
        "still there after an edit"
    );
    std::fs::remove_file(site.join("content/extra.md")).expect("rm");
    let removed = wait_for(limit, || (get(addr, "/extra/").status == 404).then_some(()));
    assert!(removed.is_some(), "the removed page is gone");
    edit(5, "one");
    edit(6, "one");
    assert_eq!(get(addr, "/extra/").status, 404, "still gone after edits");

    // New rules apply to files no edit touched, through every later update.
    std::fs::write(site.join("static/_headers"), "/plain.txt\n  X-Rule: two\n").expect("h");
    let ruled = wait_for(limit, || (rule().as_deref() == Some("two")).then_some(()));
    assert!(ruled.is_some(), "the new _headers rule is served");
    for n in 7..=9 {
        edit(n, "two");
    }
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
