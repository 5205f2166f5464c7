//! `qpage dev` in a real browser: headless Chromium (Debian's `chromium`, never a
//! downloaded one) driven over the DevTools protocol. Open a page, edit its Markdown
//! and see the new text without reloading by hand; break the front matter and see the
//! error overlay with the file and line; fix it and see the page; edit the stylesheet
//! and see it applied without a reload.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{small_site, wait_for, write_hello};
use serde_json::{Value, json};

/// The browser: `QPAGE_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("QPAGE_CHROMIUM") {
        return PathBuf::from(p);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "headless Chromium is needed: install Debian's `chromium` (scripts/lib.sh need_chromium) \
         or set QPAGE_CHROMIUM to its path"
    );
}

struct Browser {
    child: Child,
    ws: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Chromium writes its DevTools port and browser path once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let (port, path) = wait_for(Duration::from_secs(30), || {
            let text = std::fs::read_to_string(&port_file).ok()?;
            let mut lines = text.lines();
            let port: u16 = lines.next()?.trim().parse().ok()?;
            let path = lines.next()?.trim().to_string();
            Some((port, path))
        })
        .expect("chromium did not open its DevTools port within 30 s");
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("devtools connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("devtools handshake");
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        b
    }

    /// Sends a command (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .expect("devtools send");
        loop {
            let m = self.ws.read().expect("devtools read");
            let tungstenite::Message::Text(text) = m else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).expect("devtools json");
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    fn text(&mut self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until the page's live-reload stream is connected, so an edit made now is
    /// told to this page.
    fn wait_live(&mut self, limit: Duration) {
        let live = wait_for(limit, || {
            (self.eval("window.__qpageLive === true").as_bool() == Some(true)).then_some(())
        });
        assert!(live.is_some(), "the live-reload stream never connected");
    }

    fn overlay(&mut self) -> Option<String> {
        self.eval("(document.getElementById('__qpage_overlay') || {}).innerText || null")
            .as_str()
            .map(str::to_string)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(site: &Path, rel: &str, text: &str) {
    std::fs::write(site.join(rel), text).expect("write");
}

#[test]
fn edit_break_fix_in_chromium() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = small_site(tmp.path());
    let mut opts = qpage_dev::DevOptions::new(&site);
    opts.port = Some(0);
    let dev = qpage_dev::start(opts).expect("dev server");
    let url = format!("{}hello/", dev.url());

    let mut b = Browser::launch();
    b.call("Page.enable", json!({}));
    b.call("Page.navigate", json!({"url": url}));
    let limit = Duration::from_secs(20);
    assert!(
        wait_for(limit, || b.text().contains("Original words").then_some(())).is_some(),
        "the page did not load: {}",
        b.text()
    );
    // Marks this document: a reload would lose it.
    b.eval("window.__qpageMarker = 'same document'");
    b.wait_live(limit);

    // An edit shows up by itself.
    write_hello(&site, "Words edited while the page was open.");
    assert!(
        wait_for(limit, || b
            .text()
            .contains("Words edited while the page was open.")
            .then_some(()))
        .is_some(),
        "the edit did not show: {}",
        b.text()
    );

    // A broken front matter shows an overlay naming the file and line.
    write(
        &site,
        "content/hello.md",
        "+++\ntitle = \"Hello\"\ndate = \"not a date at all\"\n+++\n\nBroken.\n",
    );
    let overlay = wait_for(limit, || b.overlay());
    let overlay = overlay.expect("no error overlay after breaking the front matter");
    assert!(overlay.contains("content/hello.md"), "{overlay}");
    assert!(overlay.contains("date"), "{overlay}");
    assert!(
        b.text().contains("Words edited while the page was open."),
        "the last good page stays under the overlay"
    );

    // Fixing it clears the overlay and shows the page.
    write_hello(&site, "Fixed and showing again.");
    assert!(
        wait_for(limit, || {
            let t = b.text();
            (t.contains("Fixed and showing again.") && b.overlay().is_none()).then_some(())
        })
        .is_some(),
        "the fixed page did not show: overlay {:?}, text {}",
        b.overlay(),
        b.text()
    );

    // A stylesheet edit is applied without reloading the page.
    b.wait_live(limit);
    b.eval("window.__qpageMarker = 'before css'");
    write(
        &site,
        "static/style.css",
        "body { background-color: rgb(1, 2, 3) }\n",
    );
    let bg = wait_for(limit, || {
        let v = b.eval("getComputedStyle(document.body).backgroundColor");
        (v.as_str() == Some("rgb(1, 2, 3)")).then_some(())
    });
    assert!(bg.is_some(), "the new stylesheet was not applied");
    assert_eq!(
        b.eval("window.__qpageMarker").as_str(),
        Some("before css"),
        "the page was reloaded for a stylesheet change"
    );
    drop(b);
    dev.stop();
}
