//! The example sites in `content/` build without errors or warnings, completely.

use std::path::{Path, PathBuf};

use qpage_generator::{BuildOptions, BuildReport, build};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../content")
        .join(name)
}

fn build_example(name: &str, out: &Path) -> BuildReport {
    let opts = BuildOptions {
        site_dir: example(name),
        output: Some(out.to_path_buf()),
        today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
        ..Default::default()
    };
    let report = match build(&opts) {
        Ok(r) => r,
        Err(e) => panic!("{name} failed to build:\n{e}"),
    };
    assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    report
}

fn read(out: &Path, rel: &str) -> String {
    std::fs::read_to_string(out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn blog_builds() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("dist");
    let report = build_example("blog", &out);
    assert!(report.pages >= 30, "blog has {} pages", report.pages);
    let index = read(&out, "index.html");
    assert!(index.contains("<html lang=en>"), "{index}");
    for f in [
        "404.html",
        "tags/index.html",
        "categories/index.html",
        "blog/page/2/index.html",
        "blog/guides/index.html",
        "sitemap.xml",
        "atom.xml",
        "robots.txt",
        ".qpage/manifest.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn shop_builds_a_page_per_product() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("dist");
    let report = build_example("shop", &out);
    assert_eq!(report.records, 12);
    let products: Vec<_> = std::fs::read_dir(out.join("products"))
        .expect("products")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("index.html").is_file())
        .collect();
    assert_eq!(products.len(), 12);
}

#[test]
fn local_business_builds() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("dist");
    build_example("local", &out);
    let home = read(&out, "index.html");
    assert!(home.contains("Linden Street Bakery"), "{home}");
    assert!(out.join("news/index.html").is_file());
    assert!(out.join("faq/index.html").is_file());
}
