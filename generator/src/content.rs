//! Content loading: walks `content/`, reads every Markdown file in parallel, parses its
//! front matter and renders its Markdown (with shortcodes). Produces unlinked pages and
//! sections; [`crate::site`] links them into the site model.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::error::{Diagnostic, line_col};
use crate::frontmatter::{self, FrontMatter};
use crate::markdown::{self, Rendered};
use crate::shortcode;

/// Renders one shortcode call to HTML (the site's templates do this).
pub trait ShortcodeRenderer: Sync {
    /// Renders `call` (whose body, if any, is already HTML) or says what went wrong.
    fn render(&self, call: &shortcode::Call, body_html: Option<&str>) -> Result<String, String>;
}

/// How Markdown bodies are rendered.
#[derive(Debug, Clone, Copy)]
pub struct MdOptions {
    /// Highlight fenced code.
    pub highlight: bool,
    /// Sanitize raw HTML (untrusted content).
    pub sanitize: bool,
}

/// A Markdown file as read: a page (`foo.md`, `foo/index.md`) or a section (`_index.md`).
#[derive(Debug, Clone)]
pub struct Document {
    /// Path relative to the site, e.g. `content/blog/hello.md`.
    pub file: PathBuf,
    /// Folders from `content/` to the document's section folder, e.g. `["blog"]`.
    pub dirs: Vec<String>,
    /// Section (`_index.md`) or page.
    pub is_section: bool,
    /// For a page bundle (`foo/index.md`): its folder, relative to `content/`.
    pub bundle: Option<PathBuf>,
    /// File stem used as the default slug.
    pub stem: String,
    /// Parsed header.
    pub front: FrontMatter,
    /// Parsed dates.
    pub date: Option<NaiveDate>,
    /// Last update.
    pub updated: Option<NaiveDate>,
    /// Rendered body (shared: documents are cloned whole when `qpage dev` rebuilds the
    /// model).
    pub rendered: std::sync::Arc<Rendered>,
    /// Dangerous HTML pieces removed by sanitizing.
    pub sanitized: usize,
}

/// What `content/` holds.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Markdown documents, in path order.
    pub documents: Vec<Document>,
    /// Other files (relative to `content/`), copied beside the pages.
    pub assets: Vec<PathBuf>,
}

/// Reads and renders every document under `SITE/content`.
pub fn load(
    site_dir: &Path,
    md: MdOptions,
    shortcodes: &dyn ShortcodeRenderer,
) -> Result<Loaded, Vec<Diagnostic>> {
    let content_dir = site_dir.join("content");
    let mut md_files = Vec::new();
    let mut assets = Vec::new();
    if content_dir.is_dir() {
        for entry in walkdir::WalkDir::new(&content_dir).sort_by_file_name() {
            let entry = entry.map_err(|e| {
                vec![Diagnostic::file(
                    &content_dir,
                    format!("cannot walk content: {e}"),
                )]
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(&content_dir)
                .unwrap_or(entry.path())
                .to_path_buf();
            if entry.path().extension().is_some_and(|e| e == "md") {
                md_files.push(rel);
            } else {
                assets.push(rel);
            }
        }
    }
    let results: Vec<Result<Document, Vec<Diagnostic>>> = md_files
        .par_iter()
        .map(|rel| read_document(site_dir, rel, md, shortcodes))
        .collect();
    let mut documents = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(d) => documents.push(d),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(Loaded { documents, assets })
    } else {
        Err(errors)
    }
}

/// Reads and renders one Markdown file (`rel` is relative to `content/`).
pub fn read_document(
    site_dir: &Path,
    rel: &Path,
    md: MdOptions,
    shortcodes: &dyn ShortcodeRenderer,
) -> Result<Document, Vec<Diagnostic>> {
    let file = Path::new("content").join(rel);
    let bytes = std::fs::read(site_dir.join(&file)).map_err(|e| vec![Diagnostic::io(&file, &e)])?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let (line, col) = line_col(&prefix, valid);
            return Err(vec![
                Diagnostic::at(&file, line, col, "the file is not valid UTF-8")
                    .help("save it as UTF-8 (for example `iconv -f latin1 -t utf-8`)"),
            ]);
        }
    };
    let split = frontmatter::split(&text, &file).map_err(|d| vec![d])?;
    let mut errors = Vec::new();
    let front = split.front;
    let date = match front.date.as_ref().map(frontmatter::DateValue::to_date) {
        Some(Err(msg)) => {
            errors.push(Diagnostic::file(
                &file,
                format!("front matter `date`: {msg}"),
            ));
            None
        }
        Some(Ok(d)) => Some(d),
        None => None,
    };
    let updated = match front.updated.as_ref().map(frontmatter::DateValue::to_date) {
        Some(Err(msg)) => {
            errors.push(Diagnostic::file(
                &file,
                format!("front matter `updated`: {msg}"),
            ));
            None
        }
        Some(Ok(d)) => Some(d),
        None => None,
    };
    let file_name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let is_section = file_name == "_index.md";
    let is_bundle = file_name == "index.md";
    let parent = rel.parent().unwrap_or(Path::new(""));
    let mut dirs: Vec<String> = parent
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let stem = if is_bundle {
        dirs.pop().unwrap_or_default()
    } else {
        rel.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string()
    };
    if !is_section && front.title.as_deref().is_none_or(|t| t.trim().is_empty()) {
        errors.push(
            Diagnostic::at(&file, 2, 1, "the page has no `title`")
                .help("add title = \"...\" to the front matter"),
        );
    }
    let (rendered, sanitized) = render_body(split.body, split.body_line, &file, md, shortcodes)
        .unwrap_or_else(|mut e| {
            errors.append(&mut e);
            (Rendered::default(), 0)
        });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Document {
        bundle: is_bundle.then(|| parent.to_path_buf()),
        file,
        dirs,
        is_section,
        stem,
        front,
        date,
        updated,
        rendered: std::sync::Arc::new(rendered),
        sanitized,
    })
}

/// Renders a Markdown body with its shortcodes.
fn render_body(
    body: &str,
    body_line: usize,
    file: &Path,
    md: MdOptions,
    shortcodes: &dyn ShortcodeRenderer,
) -> Result<(Rendered, usize), Vec<Diagnostic>> {
    let extracted = shortcode::extract(body).map_err(|errs| {
        errs.into_iter()
            .map(|(line, col, msg)| {
                Diagnostic::at(file, body_line + line - 1, col, msg).help(
                    "shortcodes look like {{ name(key=\"value\") }} or {% name() %}...{% end %}",
                )
            })
            .collect::<Vec<_>>()
    })?;
    let mut rendered = markdown::render(&extracted.markdown, md.highlight);
    rendered.shortcodes = extracted.calls.iter().map(|c| c.name.clone()).collect();
    rendered.shortcodes.sort();
    rendered.shortcodes.dedup();
    let mut sanitized = 0;
    if md.sanitize && rendered.raw_html {
        let (html, removed) = crate::sanitize::clean(&rendered.html);
        rendered.html = html;
        rendered.summary = crate::sanitize::clean(&rendered.summary).0;
        sanitized = removed;
    }
    if extracted.calls.is_empty() {
        return Ok((rendered, sanitized));
    }
    let mut outputs = Vec::with_capacity(extracted.calls.len());
    let mut errors = Vec::new();
    for call in &extracted.calls {
        let body_html = call.body.as_ref().map(|b| {
            let html = markdown::render(b, md.highlight).html;
            if md.sanitize {
                crate::sanitize::clean(&html).0
            } else {
                html
            }
        });
        match shortcodes.render(call, body_html.as_deref()) {
            Ok(html) => outputs.push(html),
            Err(msg) => {
                errors.push(Diagnostic::at(file, body_line + call.line - 1, 1, msg));
                outputs.push(String::new());
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    shortcode::restore(&mut rendered.html, &outputs);
    shortcode::restore(&mut rendered.summary, &outputs);
    Ok((rendered, sanitized))
}
