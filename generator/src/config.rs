//! Site configuration: `site.toml`, parsed with located errors and defaults that work.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::{Diagnostic, line_col};

/// The parsed `site.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Absolute base URL, e.g. `https://example.com`.
    pub base_url: String,
    /// Site title.
    pub title: String,
    /// Site description.
    #[serde(default)]
    pub description: String,
    /// Language code for `<html lang>`.
    #[serde(default = "default_language")]
    pub language: String,
    /// Theme name: `default` (embedded) or a folder under `SITE/themes/`.
    #[serde(default = "default_theme")]
    pub theme: String,
    /// Site author.
    #[serde(default)]
    pub author: String,
    /// Default page size of section and taxonomy-term listings.
    #[serde(default = "default_paginate_by")]
    pub paginate_by: usize,
    /// Taxonomy names.
    #[serde(default = "default_taxonomies")]
    pub taxonomies: Vec<String>,
    /// Highlight fenced code blocks.
    #[serde(default = "default_true")]
    pub highlight_code: bool,
    /// Menus by name.
    #[serde(default)]
    pub menus: IndexMap<String, Vec<MenuItem>>,
    /// Data collections by name (a collection with a template generates pages).
    #[serde(default)]
    pub collections: IndexMap<String, CollectionConfig>,
    /// Title pattern for `<title>` and social tags: `{title}` and `{site}` are replaced.
    #[serde(default = "default_title_pattern")]
    pub title_pattern: String,
    /// Logo for Organization JSON-LD and social cards (site path or URL).
    #[serde(default)]
    pub logo: Option<String>,
    /// Default social-card image (site path or URL).
    #[serde(default)]
    pub image: Option<String>,
    /// Other languages the site is translated into (the main one is `language`).
    #[serde(default)]
    pub languages: Vec<String>,
    /// Keep raw HTML in Markdown as written instead of sanitizing it.
    #[serde(default)]
    pub unsafe_html: bool,
    /// Feeds.
    #[serde(default)]
    pub feeds: FeedConfig,
    /// robots.txt.
    #[serde(default)]
    pub robots: RobotsConfig,
    /// Link rewriting.
    #[serde(default)]
    pub links: LinkConfig,
    /// Minify HTML output.
    #[serde(default = "default_true")]
    pub minify: bool,
    /// `qpage check` thresholds (read by the `check` module).
    #[serde(default)]
    pub check: serde_json::Map<String, serde_json::Value>,
    /// Image pipeline settings (read by the `images` module).
    #[serde(default)]
    pub images: serde_json::Map<String, serde_json::Value>,
    /// Free-form values for templates.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One menu entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuItem {
    /// Label.
    pub name: String,
    /// Target URL or site path.
    pub url: String,
    /// Order (lower first).
    #[serde(default)]
    pub weight: i64,
}

/// How a data collection becomes pages.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// Template rendering one record; no template means data only.
    pub template: Option<String>,
    /// URL pattern with `{slug}`, default `/NAME/{slug}/`.
    pub path: Option<String>,
    /// Record field to sort by.
    pub sort_by: Option<String>,
    /// schema.org type of each record's page (`Product`, `LocalBusiness` or a subtype
    /// such as `Bakery`, `Review`); default from the template name.
    pub schema: Option<String>,
}

/// Which feeds to write.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// Write Atom feeds (`atom.xml`).
    pub atom: bool,
    /// Write RSS 2.0 feeds (`rss.xml`).
    pub rss: bool,
    /// A feed per section too.
    pub sections: bool,
    /// A feed per taxonomy term too.
    pub taxonomies: bool,
    /// Full content instead of the summary.
    pub full_content: bool,
    /// Entries per feed.
    pub limit: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            atom: true,
            rss: true,
            sections: true,
            taxonomies: false,
            full_content: false,
            limit: 20,
        }
    }
}

/// robots.txt rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RobotsConfig {
    /// Paths disallowed for every user agent.
    pub disallow: Vec<String>,
    /// Lines appended as written (other user agents, crawl-delay...).
    pub extra: String,
}

/// How links are rewritten.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// Hosts whose links get `rel="sponsored"` (affiliate links).
    pub sponsored: Vec<String>,
    /// Hosts whose links get `rel="nofollow"`.
    pub nofollow: Vec<String>,
    /// Add `rel="nofollow"` to every external link.
    pub nofollow_all: bool,
}

fn default_title_pattern() -> String {
    "{title} · {site}".into()
}

fn default_language() -> String {
    "en".into()
}
fn default_theme() -> String {
    "default".into()
}
fn default_paginate_by() -> usize {
    10
}
fn default_taxonomies() -> Vec<String> {
    vec!["tags".into(), "categories".into()]
}
fn default_true() -> bool {
    true
}

/// The config file's name inside a site.
pub const CONFIG_FILE: &str = "site.toml";

impl SiteConfig {
    /// Reads and validates `SITE/site.toml`.
    pub fn load(site_dir: &Path) -> Result<SiteConfig, Diagnostic> {
        let path = site_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Diagnostic::file(&path, "no site.toml here")
                    .help("run qpage in a site folder, or create one with `qpage new NAME`")
            } else {
                Diagnostic::io(&path, &e)
            }
        })?;
        Self::parse(&text, &path)
    }

    /// Parses config text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<SiteConfig, Diagnostic> {
        let mut config: SiteConfig = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            Diagnostic::at(path, line, col, e.message().trim().to_string())
                .help("see docs/content.md for the fields of site.toml")
        })?;
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(Diagnostic::file(
                path,
                format!(
                    "base_url `{}` is not an absolute http(s) URL",
                    config.base_url
                ),
            )
            .help("set base_url = \"https://example.com\""));
        }
        while config.base_url.ends_with('/') {
            config.base_url.pop();
        }
        if config.paginate_by == 0 {
            return Err(Diagnostic::file(path, "paginate_by must be at least 1"));
        }
        for name in config.taxonomies.iter() {
            if slug::slugify(name) != *name {
                return Err(Diagnostic::file(
                    path,
                    format!("taxonomy name `{name}` is not a URL slug"),
                )
                .help("use lowercase letters, digits and dashes"));
            }
        }
        Ok(config)
    }

    /// The absolute URL of a site path (`/blog/` -> `https://example.com/blog/`).
    pub fn permalink(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        if path.starts_with('/') {
            format!("{}{}", self.base_url, path)
        } else {
            format!("{}/{}", self.base_url, path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in() {
        let c = SiteConfig::parse("base_url='https://a.test/'\ntitle='A'", Path::new("s.toml"))
            .expect("valid");
        assert_eq!(c.base_url, "https://a.test");
        assert_eq!(c.taxonomies, vec!["tags", "categories"]);
        assert_eq!(c.permalink("/x/"), "https://a.test/x/");
    }

    #[test]
    fn unknown_field_is_located() {
        let e = SiteConfig::parse(
            "base_url='https://a.test'\ntitle='A'\ntitel='x'",
            Path::new("s.toml"),
        )
        .expect_err("unknown field");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("titel"), "{}", e.message);
    }
}
