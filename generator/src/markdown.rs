//! Markdown to HTML: pulldown-cmark with the GitHub-style extensions, heading ids and a
//! table of contents, syntax highlighting of fenced code (syntect, CSS classes), the
//! summary, and a word count. Shortcodes are expanded by [`crate::shortcode`] first.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::OnceLock;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde::Serialize;
use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

/// A table-of-contents entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TocEntry {
    /// Heading level, 1 to 6.
    pub level: u8,
    /// The heading's id.
    pub id: String,
    /// The heading's text.
    pub title: String,
}

/// The HTML of one Markdown document and what was learned rendering it.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The whole document.
    pub html: String,
    /// The part before `<!-- more -->`, or the first paragraph.
    pub summary: String,
    /// Headings in order.
    pub toc: Vec<TocEntry>,
    /// Words of text (code excluded).
    pub word_count: usize,
    /// The Markdown held raw HTML (which may need sanitizing).
    pub raw_html: bool,
    /// Names of the shortcodes the document calls, sorted (set by the caller that
    /// expands them), so that `qpage dev` re-reads only these documents when a
    /// shortcode's template changes.
    pub shortcodes: Vec<String>,
}

const MORE_MARK: &str = "<!--qpage-more-->";

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_SMART_PUNCTUATION
}

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// Renders Markdown to HTML. `highlight` turns syntax highlighting of code blocks on.
pub fn render(markdown: &str, highlight: bool) -> Rendered {
    let events: Vec<Event> = Parser::new_ext(markdown, options()).collect();
    let mut out: Vec<Event> = Vec::with_capacity(events.len());
    let mut toc = Vec::new();
    let mut ids = HashSet::new();
    let mut word_count = 0;
    let mut raw_html = false;
    let mut i = 0;
    while i < events.len() {
        match &events[i] {
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs,
            }) => {
                let end = events[i..]
                    .iter()
                    .position(|e| matches!(e, Event::End(TagEnd::Heading(_))))
                    .map_or(events.len(), |p| i + p);
                let inner = &events[i + 1..end];
                let title = plain_text(inner);
                word_count += count_words(&title);
                let id = unique_id(
                    id.as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| slug::slugify(&title)),
                    &mut ids,
                );
                toc.push(TocEntry {
                    level: heading_number(*level),
                    id: id.clone(),
                    title,
                });
                out.push(Event::Start(Tag::Heading {
                    level: *level,
                    id: Some(CowStr::from(id)),
                    classes: classes.clone(),
                    attrs: attrs.clone(),
                }));
                out.extend(inner.iter().cloned());
                if end < events.len() {
                    out.push(events[end].clone());
                }
                i = end + 1;
                continue;
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .next()
                        .unwrap_or("")
                        .to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                let mut code = String::new();
                let mut j = i + 1;
                while j < events.len() {
                    match &events[j] {
                        Event::Text(t) => code.push_str(t),
                        Event::End(TagEnd::CodeBlock) => break,
                        _ => {}
                    }
                    j += 1;
                }
                out.push(Event::Html(CowStr::from(code_block(
                    &code, &lang, highlight,
                ))));
                i = j + 1;
                continue;
            }
            Event::Html(h) | Event::InlineHtml(h) if h.trim() == "<!-- more -->" => {
                out.push(Event::Html(CowStr::from(MORE_MARK)));
            }
            Event::Text(t) => {
                word_count += count_words(t);
                out.push(events[i].clone());
            }
            Event::Html(_) | Event::InlineHtml(_) => {
                raw_html = true;
                out.push(events[i].clone());
            }
            other => out.push(other.clone()),
        }
        i += 1;
    }
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, out.into_iter());
    let summary = match html.find(MORE_MARK) {
        Some(pos) => {
            let s = html[..pos].trim_end().to_string();
            html.replace_range(pos..pos + MORE_MARK.len(), "");
            s
        }
        None => first_paragraph(&html),
    };
    Rendered {
        html,
        summary,
        toc,
        word_count,
        raw_html,
        shortcodes: Vec::new(),
    }
}

fn heading_number(level: HeadingLevel) -> u8 {
    level as u8
}

fn plain_text(events: &[Event]) -> String {
    let mut s = String::new();
    for e in events {
        match e {
            Event::Text(t) | Event::Code(t) => s.push_str(t),
            Event::SoftBreak | Event::HardBreak => s.push(' '),
            _ => {}
        }
    }
    s
}

fn unique_id(base: String, ids: &mut HashSet<String>) -> String {
    let base = if base.is_empty() {
        "section".to_string()
    } else {
        base
    };
    if ids.insert(base.clone()) {
        return base;
    }
    (1..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| ids.insert(candidate.clone()))
        .unwrap_or(base)
}

fn count_words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

fn first_paragraph(html: &str) -> String {
    match (html.find("<p>"), html.find("</p>")) {
        (Some(start), Some(end)) if start < end => html[start..end + 4].to_string(),
        _ => String::new(),
    }
}

/// One fenced code block as HTML, highlighted with CSS classes (`hl-*`) when the
/// language is known.
fn code_block(code: &str, lang: &str, highlight: bool) -> String {
    let mut out = String::with_capacity(code.len() * 2 + 64);
    out.push_str("<pre class=\"code\"");
    if !lang.is_empty() {
        let _ = write!(out, " data-lang=\"{}\"", escape_attr(lang));
    }
    out.push_str("><code>");
    let set = syntaxes();
    let syntax = if highlight && !lang.is_empty() {
        set.find_syntax_by_token(lang)
    } else {
        None
    };
    let highlighted = syntax.and_then(|syntax| {
        let mut generator = ClassedHTMLGenerator::new_with_class_style(
            syntax,
            set,
            ClassStyle::SpacedPrefixed { prefix: "hl-" },
        );
        for line in LinesWithEndings::from(code) {
            generator
                .parse_html_for_line_which_includes_newline(line)
                .ok()?;
        }
        Some(generator.finalize())
    });
    match highlighted {
        Some(h) => out.push_str(&h),
        None => pulldown_cmark_escape_html(&mut out, code),
    }
    out.push_str("</code></pre>\n");
    out
}

fn pulldown_cmark_escape_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape_attr(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    pulldown_cmark_escape_html(&mut s, text);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_are_on() {
        let r = render(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~ \"quoted\"\n\n- [x] done\n\nNote[^1].\n\n[^1]: Foot.\n",
            true,
        );
        assert!(r.html.contains("<table>"), "{}", r.html);
        assert!(r.html.contains("<del>gone</del>"));
        assert!(r.html.contains("“quoted”"));
        assert!(r.html.contains("type=\"checkbox\""));
        assert!(r.html.contains("footnote-definition"));
    }

    #[test]
    fn heading_ids_are_unique_and_custom_ids_kept() {
        let r = render("## Intro\n\n## Intro\n\n### Deep {#custom}\n", false);
        assert!(r.html.contains("<h2 id=\"intro\">"));
        assert!(r.html.contains("<h2 id=\"intro-1\">"));
        assert!(r.html.contains("<h3 id=\"custom\">"));
        assert_eq!(r.toc.len(), 3);
        assert_eq!(r.toc[2].level, 3);
    }

    #[test]
    fn code_is_highlighted_with_classes() {
        let r = render("```rust\nfn main() {}\n```\n", true);
        assert!(r.html.contains("data-lang=\"rust\""));
        assert!(r.html.contains("class=\"hl-"), "{}", r.html);
        let plain = render("```nosuchlang\n<x>\n```\n", true);
        assert!(plain.html.contains("&lt;x&gt;"));
    }

    #[test]
    fn summary_and_words() {
        let r = render("First para here.\n\n<!-- more -->\n\nSecond para.\n", false);
        assert_eq!(r.summary, "<p>First para here.</p>");
        assert!(!r.html.contains("qpage-more"));
        assert_eq!(r.word_count, 5);
        let r = render("One.\n\nTwo.\n", false);
        assert_eq!(r.summary, "<p>One.</p>");
    }
}
