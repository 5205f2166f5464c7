//! The example sites are what qpage promises: `qpage check` finds nothing on them, and
//! the Nu HTML Checker (vnu-jar, run with Java) finds no error in any page.
//!
//! The checker comes from `bash scripts/test.sh`, which installs it and exports
//! `QPAGE_VNU_JAR`; without it this test fails and says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use qpage_generator::check::{CheckConfig, audit_dist};
use qpage_generator::config::SiteConfig;
use qpage_generator::{BuildOptions, build};

const SITES: [&str; 3] = ["blog", "shop", "local"];

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../content")
        .join(name)
}

fn build_into(name: &str, out: &Path) {
    let opts = BuildOptions {
        site_dir: example(name),
        output: Some(out.to_path_buf()),
        today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
        ..Default::default()
    };
    if let Err(e) = build(&opts) {
        panic!("{name} failed to build:\n{e}");
    }
}

fn vnu_jar() -> PathBuf {
    let candidates = [
        std::env::var_os("QPAGE_VNU_JAR").map(PathBuf::from),
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/tools/npm/node_modules/vnu-jar/build/dist/vnu.jar"),
        ),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the Nu HTML Checker (vnu.jar) is missing: run `bash scripts/test.sh`, which installs it (npm vnu-jar, Java)"
            )
        })
}

#[test]
fn qpage_check_finds_nothing_on_the_examples() {
    let tmp = tempfile::tempdir().expect("tmp");
    for name in SITES {
        let out = tmp.path().join(name);
        build_into(name, &out);
        let config = SiteConfig::load(&example(name)).expect("site.toml");
        let check = CheckConfig::from_site(&config, &example(name)).expect("[check]");
        let report = audit_dist(&out, &config, &check).expect("audit");
        assert!(report.pages > 3, "{name}: {} pages audited", report.pages);
        let findings: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
        assert!(
            findings.is_empty(),
            "{name}: qpage check found:\n{}",
            findings.join("\n")
        );
    }
}

#[test]
fn nu_html_checker_finds_no_error_in_the_examples() {
    let jar = vnu_jar();
    let tmp = tempfile::tempdir().expect("tmp");
    let mut dirs = Vec::new();
    for name in SITES {
        let out = tmp.path().join(name);
        build_into(name, &out);
        dirs.push(out);
    }
    // A page the checker must reject, so a checker that accepts everything fails here.
    let control = tmp.path().join("control");
    std::fs::create_dir_all(&control).expect("mkdir");
    std::fs::write(
        control.join("bad.html"),
        "<!DOCTYPE html><html lang=\"en\"><head><title>x</title></head><body><p><div>nested</div></p><img src=\"a.png\"></body></html>",
    )
    .expect("write");
    let output = Command::new("java")
        .arg("-jar")
        .arg(&jar)
        .args(["--skip-non-html", "--errors-only", "--format", "json"])
        .args(&dirs)
        .arg(&control)
        .output()
        .unwrap_or_else(|e| panic!("cannot run java (install default-jre-headless): {e}"));
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    let start = text
        .find('{')
        .unwrap_or_else(|| panic!("no JSON from vnu: {text}"));
    let json: serde_json::Value = serde_json::from_str(text[start..].trim())
        .unwrap_or_else(|e| panic!("vnu output is not JSON ({e}): {text}"));
    let messages = json["messages"].as_array().expect("messages");
    let (control_msgs, site_msgs): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = messages
        .iter()
        .partition(|m| m["url"].as_str().is_some_and(|u| u.ends_with("/bad.html")));
    assert!(
        control_msgs.len() >= 2,
        "the checker missed the errors of the control page: {messages:?}"
    );
    let pages: usize = dirs
        .iter()
        .map(|d| {
            walkdir::WalkDir::new(d)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "html"))
                .count()
        })
        .sum();
    assert!(pages > 50, "{pages} pages checked");
    assert!(
        site_msgs.is_empty(),
        "Nu HTML Checker errors in the example sites:\n{}",
        site_msgs
            .iter()
            .map(|m| format!(
                "{}:{}: {}",
                m["url"].as_str().unwrap_or("?"),
                m["lastLine"],
                m["message"].as_str().unwrap_or("?")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
