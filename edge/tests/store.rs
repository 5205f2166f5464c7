//! The store: importing dist/ (with and without the generator's manifest), precompressed
//! variants, shared blobs, import errors, site and host checks.

mod common;

use common::*;
use qpage_edge::{EdgeError, SiteConfig, Store, WwwPolicy};
use sha2::{Digest, Sha256};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn site(store: &Store, name: &str, host: &str) {
    store
        .put_site(
            name,
            &SiteConfig {
                hosts: vec![host.into()],
                aliases: vec![],
                www: WwwPolicy::Apex,
                https: Default::default(),
            },
        )
        .unwrap();
}

#[test]
fn import_uses_the_generator_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    let html = page("hello");
    write(&dist, "index.html", html.as_bytes());
    write(&dist, "feed", b"<rss/>");
    let manifest = format!(
        r#"{{"version":1,"files":{{"/index.html":{{"sha256":"{}","size":{},"content_type":"text/html; charset=utf-8"}},"/feed":{{"sha256":"{}","size":6,"content_type":"application/rss+xml"}}}}}}"#,
        hex(&Sha256::digest(html.as_bytes())),
        html.len(),
        hex(&Sha256::digest(b"<rss/>")),
    );
    write(&dist, ".qpage/manifest.json", manifest.as_bytes());
    // A file the manifest does not list is not imported.
    write(&dist, "stray.txt", b"not in the manifest");
    let store = Store::open(tmp.path().join("data")).unwrap();
    site(&store, "s", "s.test");
    let id = store.import_dir("s", &dist).unwrap();
    let d = store.deploy("s", &id).unwrap();
    assert_eq!(d.files.len(), 2);
    assert_eq!(d.files["/feed"].content_type, "application/rss+xml");
    assert!(!d.files.contains_key("/stray.txt"));
    let e = &d.files["/index.html"];
    assert!(e.br.unwrap() < e.size && e.gz.unwrap() < e.size);
    assert!(d.files["/feed"].br.is_none(), "too small to compress");
    // Variants sit beside the blob.
    let blob = tmp
        .path()
        .join("data/blobs")
        .join(&e.sha256[..2])
        .join(&e.sha256);
    assert!(blob.exists());
    assert!(blob.with_extension("br").exists());
    assert!(blob.with_extension("gz").exists());
    assert_eq!(std::fs::read(&blob).unwrap(), html.as_bytes());
    // Not live until activated.
    assert_eq!(store.live("s").unwrap(), None);
    store.activate("s", &id).unwrap();
    assert_eq!(store.live("s").unwrap(), Some(id.clone()));
    // Same files, same deploy.
    assert_eq!(store.import_dir("s", &dist).unwrap(), id);
    write(&dist, "feed", b"<rss></rss>");
    std::fs::remove_file(dist.join(".qpage/manifest.json")).unwrap();
    let id2 = store.import_dir("s", &dist).unwrap();
    let ids: Vec<_> = store
        .deploys("s")
        .unwrap()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&id) && ids.contains(&id2));
}

#[test]
fn import_refuses_a_manifest_that_does_not_match() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    write(&dist, "index.html", b"changed after the build");
    write(
        &dist,
        ".qpage/manifest.json",
        format!(r#"{{"version":1,"files":{{"/index.html":{{"sha256":"{}","size":3,"content_type":"text/html"}}}}}}"#, "0".repeat(64)).as_bytes(),
    );
    let store = Store::open(tmp.path().join("data")).unwrap();
    site(&store, "s", "s.test");
    let e = store.import_dir("s", &dist).unwrap_err();
    assert!(matches!(e, EdgeError::Manifest(_)), "{e}");
    // A manifest naming a path outside dist/ is refused too.
    write(
        &dist,
        ".qpage/manifest.json",
        format!(
            r#"{{"version":1,"files":{{"/../x":{{"sha256":"{}","size":3}}}}}}"#,
            "0".repeat(64)
        )
        .as_bytes(),
    );
    let e = store.import_dir("s", &dist).unwrap_err();
    assert!(e.to_string().contains("bad path"), "{e}");
}

#[test]
fn malformed_rule_files_fail_the_import_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    write(&dist, "index.html", b"x");
    write(&dist, "_redirects", b"/a /b 301\n\n/c /d 299\n");
    let store = Store::open(tmp.path().join("data")).unwrap();
    site(&store, "s", "s.test");
    let e = store.import_dir("s", &dist).unwrap_err().to_string();
    assert!(e.starts_with("_redirects:3:"), "{e}");
    assert!(e.contains("299"), "{e}");
    let deploys = std::fs::read_dir(tmp.path().join("data/sites/s/deploys"))
        .unwrap()
        .count();
    assert_eq!(deploys, 0, "nothing half-written");
    write(&dist, "_redirects", b"/a /b 301\n");
    write(&dist, "_headers", b"/*\n  X-Ok: 1\n  broken header line\n");
    let e = store.import_dir("s", &dist).unwrap_err().to_string();
    assert!(e.starts_with("_headers:3:"), "{e}");
    write(&dist, "_redirects", b"/a /b 301 Country=us\n");
    let e = store.import_dir("s", &dist).unwrap_err().to_string();
    assert!(
        e.starts_with("_redirects:1:") && e.contains("not supported"),
        "{e}"
    );
}

#[test]
fn blobs_are_shared_between_sites() {
    let f = fixture();
    let a = f
        .store
        .deploy("alpha", &f.store.live("alpha").unwrap().unwrap())
        .unwrap();
    let b = f
        .store
        .deploy("beta", &f.store.live("beta").unwrap().unwrap())
        .unwrap();
    let css = "/assets/app.3f2a9c1b.css";
    assert_eq!(a.files[css].sha256, b.files[css].sha256);
    let dir = f.data.join("blobs").join(&a.files[css].sha256[..2]);
    let copies = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(&a.files[css].sha256)
        })
        .count();
    assert_eq!(copies, 3, "one blob, one .br, one .gz");
    assert!(a.files["/img/logo.png"].br.is_none());
}

#[test]
fn sites_and_hosts_are_checked() {
    let f = fixture();
    let cfg = |h: &str| SiteConfig {
        hosts: vec![h.into()],
        aliases: vec![],
        www: WwwPolicy::Apex,
        https: Default::default(),
    };
    let e = f.store.put_site("other", &cfg("ALPHA.test.")).unwrap_err();
    assert!(matches!(e, EdgeError::HostTaken { .. }), "{e}");
    for bad in ["Alpha", "a--b", "-a", "../x", "", "a_b"] {
        assert!(
            matches!(
                f.store.put_site(bad, &cfg("x.test")),
                Err(EdgeError::SiteName(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        f.store.put_site("ok", &cfg("bad/host")),
        Err(EdgeError::Host(_))
    ));
    let e = f.store.import_dir("missing", f.data.as_path()).unwrap_err();
    assert!(matches!(e, EdgeError::UnknownSite(_)), "{e}");
    let bogus = qpage_edge::DeployId::parse("0123456789abcdef").unwrap();
    assert!(matches!(
        f.store.activate("alpha", &bogus),
        Err(EdgeError::UnknownDeploy { .. })
    ));
    // Hosts are stored normalized.
    f.store.put_site("ok", &cfg("New.Test.")).unwrap();
    assert_eq!(f.store.site_config("ok").unwrap().hosts, vec!["new.test"]);
}

#[test]
fn config_defaults_and_validation() {
    let c = qpage_edge::EdgeConfig::from_toml("").unwrap();
    assert_eq!(c, qpage_edge::EdgeConfig::default());
    assert_eq!(c.listen, "127.0.0.1:8080");
    let c = qpage_edge::EdgeConfig::from_toml(
        "[cache]\nmax_bytes = 1024\n[routing]\npreview_domains = [\"p.example.net\"]\n",
    )
    .unwrap();
    assert_eq!(c.cache.max_bytes, 1024);
    assert_eq!(c.limits.max_headers, 64);
    assert!(
        qpage_edge::EdgeConfig::from_toml("listn = \"x\"").is_err(),
        "typos are errors"
    );
    assert!(qpage_edge::EdgeConfig::from_toml("[limits]\nmax_connections = 0").is_err());
    // The example shipped in deploy/ parses.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/edge.toml");
    let c = qpage_edge::EdgeConfig::from_file(&example).unwrap();
    assert_eq!(c.listen, "0.0.0.0:80");
    assert_eq!(c.http.cdn_max_age, 3600);
}

#[test]
fn symlinks_in_dist_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    write(&dist, "index.html", b"home");
    std::os::unix::fs::symlink("/etc/passwd", dist.join("passwd.txt")).unwrap();
    let store = Store::open(tmp.path().join("data")).unwrap();
    site(&store, "s", "s.test");
    let id = store.import_dir("s", &dist).unwrap();
    let d = store.deploy("s", &id).unwrap();
    assert!(d.files.contains_key("/index.html"));
    assert!(!d.files.contains_key("/passwd.txt"));
    // Named by a manifest, a symlink is an error.
    let passwd = std::fs::read("/etc/passwd").unwrap();
    write(
        &dist,
        ".qpage/manifest.json",
        format!(
            r#"{{"version":1,"files":{{"/passwd.txt":{{"sha256":"{}","size":{}}}}}}}"#,
            hex(&Sha256::digest(&passwd)),
            passwd.len()
        )
        .as_bytes(),
    );
    let e = store.import_dir("s", &dist).unwrap_err().to_string();
    assert!(e.contains("symlinks are not followed"), "{e}");
}

#[test]
fn host_claims_follow_site_changes_and_deletions() {
    let f = fixture();
    let cfg = |hosts: &[&str]| SiteConfig {
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        aliases: vec![],
        www: WwwPolicy::Apex,
        https: Default::default(),
    };
    let taken_by = |r: Result<(), EdgeError>| match r {
        Err(EdgeError::HostTaken { host, site }) => format!("{host} {site}"),
        other => format!("{other:?}"),
    };
    // An alias is claimed like a host.
    assert_eq!(
        taken_by(f.store.put_site("gamma", &cfg(&["www.alpha.test"]))),
        "www.alpha.test alpha"
    );
    // A refused site leaves none of its other hosts claimed.
    assert_eq!(
        taken_by(
            f.store
                .put_site("gamma", &cfg(&["fresh.test", "beta.test"]))
        ),
        "beta.test beta"
    );
    f.store.put_site("delta", &cfg(&["fresh.test"])).unwrap();
    // A host a site drops is free for another one.
    f.store.put_site("beta", &cfg(&["www.beta.test"])).unwrap();
    f.store.put_site("gamma", &cfg(&["beta.test"])).unwrap();
    assert_eq!(
        taken_by(f.store.put_site("epsilon", &cfg(&["beta.test"]))),
        "beta.test gamma"
    );
    // Deleting a site frees its hosts.
    f.store.delete_site("gamma").unwrap();
    f.store.put_site("epsilon", &cfg(&["beta.test"])).unwrap();

    // A store written before the index (no `hosts/`) gets it from the sites' files.
    std::fs::remove_dir_all(f.data.join("hosts")).unwrap();
    assert_eq!(
        taken_by(f.store.put_site("zeta", &cfg(&["alpha-alias.test"]))),
        "alpha-alias.test alpha"
    );
    assert_eq!(
        std::fs::read_to_string(f.data.join("hosts/fresh.test")).unwrap(),
        "delta"
    );

    // A claim whose site does not exist: taken over when old, refused (try again)
    // while it may be a site being created.
    let ghost = f.data.join("hosts/ghost.test");
    std::fs::write(&ghost, "ghost").unwrap();
    let e = f.store.put_site("zeta", &cfg(&["ghost.test"])).unwrap_err();
    assert!(matches!(e, EdgeError::Conflict(_)), "{e}");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&ghost)
        .unwrap()
        .set_modified(old)
        .unwrap();
    f.store.put_site("zeta", &cfg(&["ghost.test"])).unwrap();
    assert_eq!(std::fs::read_to_string(&ghost).unwrap(), "zeta");
}
