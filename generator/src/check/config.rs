//! The `[check]` table of site.toml: thresholds and per-rule severities, with defaults.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::Severity;
use crate::config::{CONFIG_FILE, SiteConfig};
use crate::error::Diagnostic;

/// `qpage check` settings (`[check]` in site.toml). Every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// Longest title, in characters (`title-too-long`).
    pub title_max: usize,
    /// Shortest description, in characters (`description-too-short`).
    pub description_min: usize,
    /// Longest description, in characters (`description-too-long`).
    pub description_max: usize,
    /// Fewest words of main text (`thin-page`).
    pub min_words: usize,
    /// Heaviest image file, in bytes (`img-oversized`).
    pub image_max_bytes: u64,
    /// Widest image file, in pixels (`img-oversized`).
    pub image_max_width: u32,
    /// User agents whose robots.txt rules must allow every sitemap URL.
    pub robots_agents: Vec<String>,
    /// Site path prefixes not audited (they still count as link targets).
    pub ignore: Vec<String>,
    /// Severity overrides by rule id: `"error"`, `"warn"` or `"off"`.
    pub rules: BTreeMap<String, Level>,
}

/// A severity override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Report as an error.
    Error,
    /// Report as a warning.
    Warn,
    /// Do not report.
    Off,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            title_max: 60,
            description_min: 50,
            description_max: 160,
            min_words: 100,
            image_max_bytes: 500_000,
            image_max_width: 2560,
            robots_agents: vec!["*".into(), "Googlebot".into(), "Bingbot".into()],
            ignore: Vec::new(),
            rules: BTreeMap::new(),
        }
    }
}

impl CheckConfig {
    /// Reads the `[check]` table of a parsed site.toml; errors name site.toml and, when
    /// it can be found, the line of the offending key.
    pub fn from_site(config: &SiteConfig, site_dir: &Path) -> Result<CheckConfig, Diagnostic> {
        let value = serde_json::Value::Object(config.check.clone());
        let locate = |key: Option<&str>, message: String| {
            let text = std::fs::read_to_string(site_dir.join(CONFIG_FILE)).unwrap_or_default();
            let line = key.and_then(|k| find_key_line(&text, k));
            let d = match line {
                Some(l) => Diagnostic::at(CONFIG_FILE, l, 1, message),
                None => Diagnostic::file(CONFIG_FILE, message),
            };
            d.help("see docs/check.md for the settings of [check]")
        };
        let parsed: CheckConfig = serde_json::from_value(value).map_err(|e| {
            let msg = e.to_string();
            let key = msg
                .split('`')
                .nth(1)
                .filter(|_| msg.starts_with("unknown field") || msg.starts_with("unknown variant"));
            locate(key, format!("[check]: {msg}"))
        })?;
        let known = super::rule_ids();
        for id in parsed.rules.keys() {
            if !known.contains(id.as_str()) {
                return Err(locate(
                    Some(id),
                    format!("[check.rules]: unknown rule `{id}`"),
                ));
            }
        }
        Ok(parsed)
    }

    /// The severity of a rule after overrides; None when it is off.
    pub(crate) fn severity(&self, rule: &str) -> Option<Severity> {
        match self.rules.get(rule) {
            Some(Level::Off) => None,
            Some(Level::Error) => Some(Severity::Error),
            Some(Level::Warn) => Some(Severity::Warn),
            None => super::RULES
                .iter()
                .find(|r| r.0 == rule)
                .map(|r| r.1)
                .or(Some(Severity::Error)),
        }
    }

    /// Whether a site path is excluded from the audit.
    pub(crate) fn ignored(&self, url: &str) -> bool {
        self.ignore.iter().any(|p| url.starts_with(p.as_str()))
    }
}

/// The 1-based line of `key = ...` in the `[check]` part of site.toml.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let mut in_check = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_check = t.starts_with("[check");
            continue;
        }
        let k = t.split('=').next().unwrap_or("").trim().trim_matches('"');
        if in_check && k == key {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<CheckConfig, Diagnostic> {
        let c = SiteConfig::parse(
            &format!("base_url='https://a.test'\ntitle='A'\n{toml}"),
            Path::new("site.toml"),
        )
        .expect("site.toml");
        CheckConfig::from_site(&c, Path::new("/nonexistent"))
    }

    #[test]
    fn defaults_and_overrides() {
        let c = parse("[check]\nmin_words = 20\n[check.rules]\norphan-page = 'off'").expect("ok");
        assert_eq!(c.min_words, 20);
        assert_eq!(c.title_max, 60);
        assert_eq!(c.severity("orphan-page"), None);
        assert_eq!(c.severity("link-broken"), Some(Severity::Error));
    }

    #[test]
    fn unknown_keys_name_site_toml() {
        let e = parse("[check]\nmin_word = 20").expect_err("unknown");
        assert_eq!(e.file, Path::new("site.toml"));
        assert!(e.message.contains("min_word"), "{}", e.message);
        let e = parse("[check.rules]\nno-such-rule = 'warn'").expect_err("unknown rule");
        assert!(e.message.contains("no-such-rule"), "{}", e.message);
        let e = parse("[check.rules]\nthin-page = 'loud'").expect_err("bad level");
        assert!(e.message.contains("loud"), "{}", e.message);
    }

    #[test]
    fn key_line_is_found_in_check_table() {
        let text = "title='x'\nmin_words=1\n[check]\ntitle_max = 3\nmin_words = 2\n";
        assert_eq!(find_key_line(text, "min_words"), Some(5));
    }
}
