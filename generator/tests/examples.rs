//! The example sites in `content/` build without errors, completely and deterministically.

use std::path::{Path, PathBuf};

use qpage_generator::{BuildOptions, build};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../content")
        .join(name)
}

fn build_example(name: &str, out: &Path) -> qpage_generator::BuildReport {
    let opts = BuildOptions {
        site_dir: example(name),
        output: Some(out.to_path_buf()),
        today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
        ..Default::default()
    };
    match build(&opts) {
        Ok(r) => r,
        Err(e) => panic!("{name} failed to build:\n{e}"),
    }
}

#[test]
fn blog_builds() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("dist");
    let report = build_example("blog", &out);
    assert!(report.pages >= 30, "blog has {} pages", report.pages);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let index = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    assert!(index.contains("<html lang=\"en\""), "{index}");
    assert!(out.join("404.html").is_file());
    assert!(out.join("tags/index.html").is_file());
    assert!(out.join("blog/page/2/index.html").is_file());
    assert!(out.join(".qpage/manifest.json").is_file());
}
