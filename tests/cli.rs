//! The `qpage` binary end to end: exit codes, messages and files of `new` and `build`.

use std::path::Path;
use std::process::{Command, Output};

fn qpage(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qpage"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("run qpage")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn new_then_build_then_rebuild_identically() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = qpage(&["new", "site"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let o = qpage(&["build", "site"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("built 2 pages"), "{}", text(&o));
    let first = std::fs::read(tmp.path().join("site/dist/.qpage/manifest.json")).expect("manifest");
    let o = qpage(&["build", "site", "--output", "out2"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let second = std::fs::read(tmp.path().join("out2/.qpage/manifest.json")).expect("manifest");
    assert_eq!(first, second);
    let o = qpage(&["new", "site"], tmp.path());
    assert!(!o.status.success());
    assert!(text(&o).contains("not empty"), "{}", text(&o));
}

#[test]
fn build_errors_exit_non_zero_with_location() {
    let tmp = tempfile::tempdir().expect("tmp");
    assert!(qpage(&["new", "site"], tmp.path()).status.success());
    std::fs::write(
        tmp.path().join("site/content/about.md"),
        "+++\ntitle = \"About\"\ndate = = 1\n+++\n",
    )
    .expect("write");
    std::fs::write(
        tmp.path().join("site/content/other.md"),
        "---\ntitle: [x\n---\n",
    )
    .expect("write");
    let o = qpage(&["build", "site"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("content/about.md:3:"), "{t}");
    assert!(t.contains("content/other.md:2:"), "{t}");
    assert!(
        t.contains("build failed with 2 errors; nothing was written"),
        "{t}"
    );
    assert!(!tmp.path().join("site/dist").exists());
}

#[test]
fn missing_site_says_what_to_do() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = qpage(&["build", "nowhere"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no site.toml here"), "{}", text(&o));
    assert!(text(&o).contains("qpage new"), "{}", text(&o));
}

#[test]
fn many_sites_build_report_and_fail_together() {
    let tmp = tempfile::tempdir().expect("tmp");
    let sites = tmp.path().join("sites");
    std::fs::create_dir(&sites).expect("mkdir");
    for name in ["a", "b", "c"] {
        assert!(
            qpage(&["new", &format!("sites/{name}")], tmp.path())
                .status
                .success()
        );
    }
    let o = qpage(&["build", "--sites", "sites"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("built 3 of 3 sites"), "{}", text(&o));
    std::fs::write(sites.join("b/site.toml"), "title = 1\n").expect("write");
    let o = qpage(&["build", "--sites", "sites"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("built 2 of 3 sites") && t.contains("1 failed"),
        "{t}"
    );
    assert!(t.contains("b/site.toml"), "{t}");
}

#[test]
fn build_straight_from_a_bundle() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bundle = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/bundle.json");
    let bundle = bundle.to_string_lossy().into_owned();
    let o = qpage(
        &["build", "--bundle", &bundle, "--output", "out"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(tmp.path().join("out/index.html").is_file());
    assert!(tmp.path().join("out/sitemap.xml").is_file());
    std::fs::write(tmp.path().join("bad.json"), "{\"site\": 1}").expect("write");
    let o = qpage(
        &["build", "--bundle", "bad.json", "--output", "out2"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("bad.json"), "{}", text(&o));
    assert!(!tmp.path().join("out2").exists());
}
