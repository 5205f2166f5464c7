//! Front matter: splits a content file into its TOML (`+++`) or YAML (`---`) header and
//! its Markdown body, and parses the header with errors located in the original file.

use std::path::Path;

use chrono::NaiveDate;
use indexmap::IndexMap;
use serde::Deserialize;

use crate::error::{Diagnostic, line_col};

/// The header of a page or section file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub title: Option<String>,
    #[serde(default)]
    pub description: String,
    pub date: Option<DateValue>,
    pub updated: Option<DateValue>,
    #[serde(default)]
    pub draft: bool,
    pub slug: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub weight: i64,
    pub template: Option<String>,
    #[serde(default)]
    pub taxonomies: IndexMap<String, Vec<String>>,
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    // Section-only keys.
    pub sort_by: Option<SortBy>,
    pub paginate_by: Option<usize>,
    pub page_template: Option<String>,
}

/// How a section orders its pages.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// Newest first.
    #[default]
    Date,
    /// Lowest weight first.
    Weight,
    /// Alphabetical.
    Title,
}

/// A date as TOML writes it natively or as a string.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DateValue {
    Toml(toml::value::Datetime),
    Text(String),
}

impl DateValue {
    /// The calendar date, or a message saying what is wrong.
    pub fn to_date(&self) -> Result<NaiveDate, String> {
        let text = match self {
            DateValue::Toml(d) => d.to_string(),
            DateValue::Text(s) => s.clone(),
        };
        let head = text.get(..10).unwrap_or(&text);
        NaiveDate::parse_from_str(head, "%Y-%m-%d")
            .map_err(|_| format!("`{text}` is not a date (expected YYYY-MM-DD or RFC 3339)"))
    }
}

/// A content file split into header and body.
pub struct Split<'a> {
    /// The parsed header.
    pub front: FrontMatter,
    /// The Markdown after the header.
    pub body: &'a str,
    /// 1-based line of the body's first line in the file.
    pub body_line: usize,
}

/// Splits and parses a content file. `path` names the file in errors.
pub fn split<'a>(text: &'a str, path: &Path) -> Result<Split<'a>, Diagnostic> {
    let text_nobom = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (fence, is_toml) = if text_nobom.starts_with("+++") {
        ("+++", true)
    } else if text_nobom.starts_with("---") {
        ("---", false)
    } else {
        return Err(Diagnostic::at(path, 1, 1, "missing front matter")
            .help("start the file with a `+++` line, TOML keys (title = \"...\"), and a closing `+++` line"));
    };
    let first_nl = match text_nobom.find('\n') {
        Some(i) => i + 1,
        None => text_nobom.len(),
    };
    if text_nobom[fence.len()..first_nl].trim() != "" {
        return Err(Diagnostic::at(
            path,
            1,
            4,
            format!("the opening `{fence}` must be alone on its line"),
        ));
    }
    let rest = &text_nobom[first_nl..];
    let mut offset = 0;
    let mut close = None;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == fence {
            close = Some((offset, offset + line.len()));
            break;
        }
        offset += line.len();
    }
    let Some((header_end, body_start)) = close else {
        return Err(Diagnostic::at(
            path,
            1,
            1,
            format!("front matter opened with `{fence}` is never closed"),
        )
        .help(format!(
            "add a line with only `{fence}` after the last front matter key"
        )));
    };
    let header = &rest[..header_end];
    let body = &rest[body_start..];
    let body_line = 2 + header.matches('\n').count() + 1;
    let front = if is_toml {
        parse_toml(header, path)?
    } else {
        parse_yaml(header, path)?
    };
    Ok(Split {
        front,
        body,
        body_line,
    })
}

fn parse_toml(header: &str, path: &Path) -> Result<FrontMatter, Diagnostic> {
    let mut front: FrontMatter = toml::from_str(header).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(header, s.start));
        Diagnostic::at(
            path,
            line + 1,
            col,
            format!("front matter: {}", e.message().trim()),
        )
        .help("front matter between `+++` lines is TOML: key = \"value\"; see docs/content.md")
    })?;
    for v in front.extra.values_mut() {
        crate::data::untoml(v);
    }
    Ok(front)
}

fn parse_yaml(header: &str, path: &Path) -> Result<FrontMatter, Diagnostic> {
    if header.trim().is_empty() {
        return Ok(FrontMatter::default());
    }
    serde_saphyr::from_str(header).map_err(|e| {
        let (line, col) = e
            .location()
            .map_or((1, 1), |l| (l.line() as usize, l.column() as usize));
        let msg = e.to_string();
        let msg = msg.lines().next().unwrap_or("invalid YAML").to_string();
        Diagnostic::at(path, line + 1, col.max(1), format!("front matter: {msg}"))
            .help("front matter between `---` lines is YAML: `key: value`; see docs/content.md")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_front_matter() {
        let s = split(
            "+++\ntitle = \"Hi\"\ndate = 2024-05-01\n[extra]\nwhen = 2024-01-02\n+++\nBody\n",
            Path::new("a.md"),
        )
        .expect("valid");
        assert_eq!(s.front.title.as_deref(), Some("Hi"));
        assert_eq!(
            s.front.date.expect("date").to_date(),
            Ok(NaiveDate::from_ymd_opt(2024, 5, 1).expect("date"))
        );
        assert_eq!(s.front.extra["when"], "2024-01-02");
        assert_eq!(s.body, "Body\n");
        assert_eq!(s.body_line, 7);
    }

    #[test]
    fn yaml_front_matter() {
        let s = split(
            "---\ntitle: Hi\ndate: 2024-05-01\ntaxonomies:\n  tags: [a, b]\n---\nX",
            Path::new("a.md"),
        )
        .expect("valid");
        assert_eq!(s.front.taxonomies["tags"], vec!["a", "b"]);
        assert!(s.front.date.expect("date").to_date().is_ok());
    }

    #[test]
    fn toml_error_points_into_file() {
        let e = split("+++\ntitle = \"Hi\"\ndate = = 3\n+++\n", Path::new("a.md"))
            .err()
            .expect("error");
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn yaml_error_points_into_file() {
        let e = split("---\ntitle: Hi\ntags: [a, b\n---\n", Path::new("a.md"))
            .err()
            .expect("error");
        assert!(e.line.expect("line") >= 3, "{e}");
    }

    #[test]
    fn unclosed_and_missing() {
        assert!(split("+++\ntitle = 'x'\n", Path::new("a.md")).is_err());
        assert!(split("# Just markdown", Path::new("a.md")).is_err());
    }
}
