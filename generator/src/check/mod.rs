//! `qpage check`: an SEO audit of a built site (`SITE/dist/`).
//!
//! [`audit`] reads every HTML page of the output in parallel ([`page`]), then runs the
//! per-page rules (titles, descriptions, headings, images, canonical, thin content,
//! JSON-LD in [`jsonld`]) and the site-wide ones (duplicates, broken links and anchors,
//! orphans, redirect chains, sitemaps and robots.txt in [`sitemap`]). Every finding has a
//! stable rule id from [`RULES`]; thresholds and per-rule severities come from the
//! `[check]` table of `site.toml` ([`CheckConfig`]). See docs/check.md.

mod config;
mod jsonld;
mod page;
mod robots;
mod rules;
mod sitemap;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::build::{BuildOptions, build};
use crate::config::SiteConfig;
use crate::error::{BuildError, Diagnostic};

pub use config::CheckConfig;

/// How serious a finding is. Errors make `qpage check` exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something is broken or missing for search engines.
    Error,
    /// Worth fixing, but nothing is broken.
    Warn,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "ERROR",
            Severity::Warn => "WARN",
        })
    }
}

/// Every rule: id, default severity, what it reports.
pub const RULES: &[(&str, Severity, &str)] = &[
    (
        "title-missing",
        Severity::Error,
        "no <title>, or an empty one",
    ),
    (
        "title-duplicate",
        Severity::Warn,
        "the same title on more than one indexable page",
    ),
    (
        "title-too-long",
        Severity::Warn,
        "title longer than title_max",
    ),
    (
        "description-missing",
        Severity::Error,
        "no <meta name=\"description\">, or an empty one",
    ),
    (
        "description-duplicate",
        Severity::Warn,
        "the same description on more than one indexable page",
    ),
    (
        "description-too-long",
        Severity::Warn,
        "description longer than description_max",
    ),
    (
        "description-too-short",
        Severity::Warn,
        "description shorter than description_min",
    ),
    ("h1-missing", Severity::Error, "no <h1>"),
    ("h1-multiple", Severity::Warn, "more than one <h1>"),
    (
        "heading-skip",
        Severity::Warn,
        "a heading more than one level below the one before it (h2 -> h4)",
    ),
    (
        "img-alt-missing",
        Severity::Error,
        "<img> without an alt attribute",
    ),
    (
        "img-oversized",
        Severity::Warn,
        "an image file heavier than `image_max_bytes` or wider than `image_max_width`",
    ),
    (
        "img-larger-than-displayed",
        Severity::Warn,
        "an <img> without srcset whose file is over twice as wide as its width attribute",
    ),
    (
        "canonical-missing",
        Severity::Error,
        "no <link rel=\"canonical\">",
    ),
    (
        "canonical-not-absolute",
        Severity::Error,
        "canonical URL that is not an absolute http(s) URL",
    ),
    (
        "thin-page",
        Severity::Warn,
        "main text shorter than min_words",
    ),
    (
        "link-broken",
        Severity::Error,
        "internal link or resource URL with no file in dist",
    ),
    (
        "anchor-broken",
        Severity::Error,
        "#fragment with no element of that id on the target page",
    ),
    (
        "orphan-page",
        Severity::Warn,
        "no link from any other page points to this page",
    ),
    (
        "redirect-chain",
        Severity::Error,
        "a redirect page pointing to another redirect page",
    ),
    (
        "redirect-broken",
        Severity::Error,
        "a redirect page pointing to a path with no file in dist",
    ),
    (
        "jsonld-invalid",
        Severity::Error,
        "<script type=\"application/ld+json\"> that is not valid JSON",
    ),
    (
        "jsonld-missing-property",
        Severity::Error,
        "JSON-LD item without a property its @type requires",
    ),
    (
        "sitemap-missing",
        Severity::Error,
        "no sitemap.xml (nor a sitemap named in robots.txt)",
    ),
    (
        "sitemap-invalid",
        Severity::Error,
        "a sitemap that is not a well-formed urlset or sitemapindex",
    ),
    (
        "sitemap-page-missing",
        Severity::Error,
        "an indexable page that no sitemap lists",
    ),
    (
        "sitemap-url-missing",
        Severity::Error,
        "a sitemap URL with no file in dist (or outside base_url)",
    ),
    (
        "sitemap-url-not-indexable",
        Severity::Warn,
        "a sitemap URL of a noindex, redirect or canonicalized-away page",
    ),
    (
        "robots-blocks-sitemap-url",
        Severity::Error,
        "robots.txt disallows a URL the sitemap lists",
    ),
];

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Stable rule id, one of [`RULES`].
    pub rule: &'static str,
    /// Site path of the page (or file) concerned, e.g. `/blog/hello/`.
    pub url: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}: {}",
            self.severity, self.url, self.rule, self.message
        )
    }
}

/// The result of an audit.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// HTML pages read.
    pub pages: usize,
    /// Findings, sorted by URL, then rule.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warn)
    }

    fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            pages: usize,
            errors: usize,
            warnings: usize,
            findings: &'a [Finding],
        }
        serde_json::to_string_pretty(&Out {
            pages: self.pages,
            errors: self.errors(),
            warnings: self.warnings(),
            findings: &self.findings,
        })
        .unwrap_or_default()
    }

    /// One line summing the report up.
    pub fn summary(&self) -> String {
        let (e, w) = (self.errors(), self.warnings());
        format!(
            "checked {} page{}: {e} error{}, {w} warning{}",
            self.pages,
            plural(self.pages),
            plural(e),
            plural(w)
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What to audit and how.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Build the site first even when its output exists.
    pub build: bool,
    /// The built site to audit; default `SITE/dist`. A build writes there.
    pub dist: Option<PathBuf>,
}

/// Why an audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// site.toml (or its `[check]` table) is invalid, or the output cannot be read.
    #[error("{0}")]
    Invalid(Diagnostic),
    /// The build that had to run first failed.
    #[error("{0}")]
    Build(BuildError),
}

impl CheckError {
    /// Every diagnostic, for printing.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            CheckError::Invalid(d) => vec![d.clone()],
            CheckError::Build(e) => e.diagnostics.clone(),
        }
    }
}

/// Audits the built site of `site_dir`, building it first when its output is missing or
/// `opts.build` is set.
pub fn audit(site_dir: &Path, opts: &CheckOptions) -> Result<Report, CheckError> {
    let config = SiteConfig::load(site_dir).map_err(CheckError::Invalid)?;
    let check = CheckConfig::from_site(&config, site_dir).map_err(CheckError::Invalid)?;
    let dist = opts.dist.clone().unwrap_or_else(|| site_dir.join("dist"));
    if opts.build || !dist.join("index.html").is_file() {
        build(&BuildOptions {
            site_dir: site_dir.to_path_buf(),
            output: opts.dist.clone(),
            ..Default::default()
        })
        .map_err(CheckError::Build)?;
    }
    audit_dist(&dist, &config, &check)
}

/// Audits an already built `dist` folder with the given settings.
pub fn audit_dist(
    dist: &Path,
    config: &SiteConfig,
    check: &CheckConfig,
) -> Result<Report, CheckError> {
    let files = list_files(dist)?;
    let html: Vec<&String> = files
        .iter()
        .filter(|f| f.ends_with(".html") || f.ends_with(".htm"))
        .collect();
    let base = url::Url::parse(&format!("{}/", config.base_url)).map_err(|e| {
        CheckError::Invalid(Diagnostic::file(
            crate::config::CONFIG_FILE,
            format!("base_url `{}` is not a valid URL: {e}", config.base_url),
        ))
    })?;
    let pages: Vec<page::Page> = html
        .par_iter()
        .map(|rel| {
            let path = dist.join(rel);
            let bytes =
                std::fs::read(&path).map_err(|e| CheckError::Invalid(Diagnostic::io(&path, &e)))?;
            Ok(page::Page::parse(rel, &String::from_utf8_lossy(&bytes)))
        })
        .collect::<Result<_, CheckError>>()?;
    let site = rules::SiteView::new(dist, base, config, check, files, pages);
    let mut findings = Vec::new();
    rules::run(&site, &mut findings);
    sitemap::run(&site, &mut findings);
    let mut findings: Vec<Finding> = findings
        .into_iter()
        .filter(|(_, url, _)| !check.ignored(url))
        .filter_map(|(rule, url, message)| {
            check.severity(rule).map(|severity| Finding {
                severity,
                rule,
                url,
                message,
            })
        })
        .collect();
    findings.sort_by(|a, b| (&a.url, a.rule, &a.message).cmp(&(&b.url, b.rule, &b.message)));
    findings.dedup();
    Ok(Report {
        pages: site.pages.len(),
        findings,
    })
}

/// A finding before severities apply: rule, url, message.
pub(crate) type Raw = (&'static str, String, String);

/// Every file of `dist` (relative, `/`-separated), except qpage's own `.qpage/`.
fn list_files(dist: &Path) -> Result<BTreeSet<String>, CheckError> {
    if !dist.is_dir() {
        return Err(CheckError::Invalid(
            Diagnostic::file(dist, "no built site here")
                .help("build it with `qpage build`, or run `qpage check --build`"),
        ));
    }
    let mut out = BTreeSet::new();
    for entry in walkdir::WalkDir::new(dist).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            CheckError::Invalid(Diagnostic::file(
                e.path().unwrap_or(dist),
                format!("cannot read: {e}"),
            ))
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(dist) else {
            continue;
        };
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if rel.first().is_some_and(|c| c == ".qpage") {
            continue;
        }
        out.insert(rel.join("/"));
    }
    Ok(out)
}

/// Known rule ids.
pub(crate) fn rule_ids() -> HashSet<&'static str> {
    RULES.iter().map(|r| r.0).collect()
}
