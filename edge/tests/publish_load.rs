//! Atomic deploys under load: readers load a page and then the fingerprinted stylesheet
//! it references, without pause, while 100 deploys go live one after another through
//! the publish API. Every page names its deploy; every stylesheet names the deploy it
//! was built for. Asserts zero errors, that no page load mixes two deploys (the page's
//! stylesheet is the one of the page's deploy, and the page's `Cache-Tag` names the
//! deploy that the publisher got for that page), and that no reader goes backwards.
//!
//! Like real sites, each deploy also carries the fingerprinted assets of the few
//! deploys before it, so a page fetched just before a swap still finds its stylesheet.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use qpage_edge::client::{PublishOptions, publish};
use qpage_edge::{SiteConfig, Store};

const DEPLOYS: u64 = 100;
const READERS: usize = 4;
const OP: &str = "operator-token-for-the-load-test";

fn asset(n: u64) -> String {
    format!("/assets/app.{:08x}.css", 0x1000_0000 + n)
}

fn write_deploy(dir: &std::path::Path, n: u64) {
    let html = format!(
        "<!doctype html><html data-deploy=\"{n}\"><link rel=stylesheet href=\"{}\"><h1>deploy {n}</h1>{}</html>",
        asset(n),
        "<p>filler text for compression</p>".repeat(20)
    );
    write(dir, "index.html", html.as_bytes());
    for k in n.saturating_sub(4)..=n {
        write(
            dir,
            &asset(k)[1..],
            format!(
                "/* built for deploy {k} */ body {{ --deploy: {k}; }}\n{}",
                CSS.repeat(5)
            )
            .as_bytes(),
        );
    }
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = s.find(a)? + a.len();
    let j = s[i..].find(b)? + i;
    Some(&s[i..j])
}

#[derive(Default)]
struct Tally {
    loads: AtomicU64,
    errors: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_deploys_under_constant_load_never_mix_or_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = Store::open(&data).unwrap();
    store
        .put_site(
            "load",
            &SiteConfig {
                hosts: vec!["load.test".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let tok = tmp.path().join("op.token");
    std::fs::write(&tok, OP).unwrap();
    let mut cfg = config(&data);
    cfg.api.operator_token_file = Some(tok);
    cfg.api.keep_deploys = 10;
    let run = start(cfg).await;
    let popts = || {
        let mut o = PublishOptions::new(&format!("http://{}", run.admin), "load", OP);
        o.retries = 0;
        o
    };
    let quiet: Arc<dyn Fn(qpage_edge::client::Progress) + Send + Sync> = Arc::new(|_| {});

    let mut ids: HashMap<u64, String> = HashMap::new();
    let d0 = tmp.path().join("d0");
    write_deploy(&d0, 0);
    let rep = publish(&d0, &popts(), quiet.clone()).await.unwrap();
    ids.insert(0, rep.deploy.to_string());

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut readers = Vec::new();
    for r in 0..READERS {
        let stop = stop.clone();
        let tally = tally.clone();
        let addr = run.addr;
        readers.push(tokio::spawn(async move {
            let client: Client<HttpConnector, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            let fetch = |path: String| {
                let client = client.clone();
                async move {
                    let req = http::Request::get(format!("http://{addr}{path}"))
                        .header("host", "load.test")
                        .body(Empty::new())
                        .unwrap();
                    let resp = client.request(req).await.map_err(|e| e.to_string())?;
                    let status = resp.status();
                    let tag = resp
                        .headers()
                        .get("cache-tag")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    if status != 200 {
                        return Err(format!("{path}: status {status}"));
                    }
                    Ok::<_, String>((tag, String::from_utf8_lossy(&body).into_owned()))
                }
            };
            let mut seen: Vec<(u64, String)> = Vec::new();
            let mut problems: Vec<String> = Vec::new();
            let mut last = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let page = fetch("/".into()).await;
                let outcome = match page {
                    Err(e) => Err(e),
                    Ok((tag, html)) => {
                        let n: Option<u64> =
                            between(&html, "data-deploy=\"", "\"").and_then(|s| s.parse().ok());
                        let css = between(&html, "href=\"", "\"").map(str::to_string);
                        let deploy =
                            between(&format!("{tag},"), "deploy-", ",").map(str::to_string);
                        match (n, css, deploy) {
                            (Some(n), Some(css), Some(deploy)) => match fetch(css.clone()).await {
                                Err(e) => Err(format!("deploy {n}: {e}")),
                                Ok((_, sheet)) => {
                                    if !sheet.contains(&format!("built for deploy {n} ")) {
                                        Err(format!(
                                            "page of deploy {n} got stylesheet {css}: {}",
                                            &sheet[..40]
                                        ))
                                    } else if n < last {
                                        Err(format!(
                                            "reader {r} went back from deploy {last} to {n}"
                                        ))
                                    } else {
                                        last = n;
                                        seen.push((n, deploy));
                                        Ok(())
                                    }
                                }
                            },
                            _ => Err(format!(
                                "malformed page: {tag} {}",
                                &html[..html.len().min(80)]
                            )),
                        }
                    }
                };
                tally.loads.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = outcome {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                    if problems.len() < 5 {
                        problems.push(e);
                    }
                }
            }
            (seen, problems)
        }));
    }

    for n in 1..=DEPLOYS {
        let dir = tmp.path().join(format!("d{n}"));
        write_deploy(&dir, n);
        let rep = publish(&dir, &popts(), quiet.clone()).await.unwrap();
        assert!(rep.live);
        ids.insert(n, rep.deploy.to_string());
        // Back-to-back deploys, with a reader load or two between most of them.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The last deploy is served: wait until every reader has seen it (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tally.loads.load(Ordering::Relaxed) < 200 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut all_seen = Vec::new();
    let mut problems = Vec::new();
    for r in readers {
        let (seen, p) = r.await.unwrap();
        all_seen.extend(seen);
        problems.extend(p);
    }
    let loads = tally.loads.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    assert_eq!(
        errors, 0,
        "{errors} failed page loads of {loads}: {problems:?}"
    );
    assert!(loads >= 200, "only {loads} page loads");
    // Each page's Cache-Tag is the deploy the publisher got for that page's number.
    for (n, deploy) in &all_seen {
        assert_eq!(
            ids.get(n),
            Some(deploy),
            "page of deploy {n} was tagged {deploy}"
        );
    }
    let distinct: std::collections::BTreeSet<u64> = all_seen.iter().map(|(n, _)| *n).collect();
    assert!(
        distinct.len() >= 20,
        "readers saw only {} of the {DEPLOYS} deploys: the load did not overlap the swaps",
        distinct.len()
    );
    assert!(distinct.contains(&DEPLOYS));
    assert_eq!(
        store.live("load").unwrap().map(|d| d.to_string()),
        ids.get(&DEPLOYS).cloned()
    );
    assert!(store.deploys("load").unwrap().len() <= 10);
    run.stop().await;
}
