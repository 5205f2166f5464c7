//! One HTML page of the output, read once (html5ever via scraper) into the facts the
//! rules need.

use std::collections::HashSet;
use std::sync::LazyLock;

use scraper::{ElementRef, Html, Node, Selector};

/// What the rules need to know about one page.
#[derive(Debug, Clone, Default)]
pub(crate) struct Page {
    /// File in dist, e.g. `blog/a/index.html`.
    pub file: String,
    /// Site path, e.g. `/blog/a/`.
    pub path: String,
    /// `<title>` text (whitespace collapsed); None without a title element.
    pub title: Option<String>,
    /// `<meta name="description">` content (whitespace collapsed).
    pub description: Option<String>,
    /// `<link rel="canonical">` href values.
    pub canonicals: Vec<String>,
    /// A robots meta says noindex (or none).
    pub noindex: bool,
    /// Target of `<meta http-equiv="refresh" content="N; url=...">`.
    pub refresh: Option<String>,
    /// Heading levels (1..=6), in document order.
    pub headings: Vec<u8>,
    /// `src` of each `<img>` without an alt attribute.
    pub imgs_without_alt: Vec<String>,
    /// Every `<img>` with a `src`.
    pub imgs: Vec<Img>,
    /// Element ids (and `<a name>`), the targets of `#fragments`.
    pub ids: HashSet<String>,
    /// URLs the page refers to.
    pub links: Vec<Link>,
    /// Text of each `<script type="application/ld+json">`.
    pub jsonld: Vec<String>,
    /// Words of main text (`<main>`, else `<body>`).
    pub words: usize,
}

/// An `<img>` of a page.
#[derive(Debug, Clone)]
pub(crate) struct Img {
    /// `src` as written.
    pub src: String,
    /// The `width` attribute (CSS pixels), when it is a number.
    pub width: Option<u32>,
    /// Whether it (or its `<picture>`) offers a `srcset`.
    pub responsive: bool,
}

/// A URL in a page.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// The attribute value as written (entities decoded).
    pub href: String,
    /// Element and attribute, e.g. `a href`.
    pub from: &'static str,
    /// A navigational link (`<a>`, `<area>`): counts against orphans.
    pub nav: bool,
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap_or_else(|e| panic!("selector {s}: {e:?}"))
}

static TITLE: LazyLock<Selector> = LazyLock::new(|| sel("head title"));
static META: LazyLock<Selector> = LazyLock::new(|| sel("meta"));
static LINK: LazyLock<Selector> = LazyLock::new(|| sel("link[href]"));
static HEADINGS: LazyLock<Selector> = LazyLock::new(|| sel("h1, h2, h3, h4, h5, h6"));
static IMG: LazyLock<Selector> = LazyLock::new(|| sel("img"));
static IDS: LazyLock<Selector> = LazyLock::new(|| sel("[id], a[name]"));
static SCRIPT: LazyLock<Selector> = LazyLock::new(|| sel("script"));
static MAIN: LazyLock<Selector> = LazyLock::new(|| sel("main"));
static BODY: LazyLock<Selector> = LazyLock::new(|| sel("body"));
/// Elements with URL attributes: (selector, attribute, label, navigational).
static URL_ATTRS: LazyLock<Vec<(Selector, &'static str, &'static str, bool)>> =
    LazyLock::new(|| {
        vec![
            (sel("a[href]"), "href", "a href", true),
            (sel("area[href]"), "href", "area href", true),
            (sel("img[src]"), "src", "img src", false),
            (sel("script[src]"), "src", "script src", false),
            (sel("source[src]"), "src", "source src", false),
            (sel("iframe[src]"), "src", "iframe src", false),
            (sel("video[src]"), "src", "video src", false),
            (sel("audio[src]"), "src", "audio src", false),
            (sel("video[poster]"), "poster", "video poster", false),
            (sel("track[src]"), "src", "track src", false),
        ]
    });
static SRCSET: LazyLock<Selector> = LazyLock::new(|| sel("img[srcset], source[srcset]"));

/// Collapses runs of whitespace to one space and trims.
pub(crate) fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The site path a dist file is served at: `a/index.html` -> `/a/`.
pub(crate) fn site_path(file: &str) -> String {
    if file == "index.html" {
        "/".into()
    } else if let Some(dir) = file.strip_suffix("/index.html") {
        format!("/{dir}/")
    } else {
        format!("/{file}")
    }
}

impl Page {
    /// Reads one page.
    pub fn parse(file: &str, text: &str) -> Page {
        let doc = Html::parse_document(text);
        let mut p = Page {
            file: file.to_string(),
            path: site_path(file),
            title: doc
                .select(&TITLE)
                .next()
                .map(|t| collapse(&t.text().collect::<String>())),
            ..Page::default()
        };
        for m in doc.select(&META) {
            let v = m.value();
            if let Some(name) = v.attr("name") {
                let name = name.trim().to_ascii_lowercase();
                let content = v.attr("content").unwrap_or("");
                if name == "description" && p.description.is_none() {
                    p.description = Some(collapse(content));
                }
                if (name == "robots" || name == "googlebot")
                    && content
                        .split(',')
                        .map(|t| t.trim().to_ascii_lowercase())
                        .any(|t| t == "noindex" || t == "none")
                {
                    p.noindex = true;
                }
            }
            if v.attr("http-equiv")
                .is_some_and(|h| h.trim().eq_ignore_ascii_case("refresh"))
            {
                p.refresh = v.attr("content").and_then(refresh_target);
            }
        }
        for l in doc.select(&LINK) {
            let rel = l.value().attr("rel").unwrap_or("").to_ascii_lowercase();
            let rels: Vec<&str> = rel.split_whitespace().collect();
            let href = l.value().attr("href").unwrap_or("").trim().to_string();
            if rels.contains(&"canonical") {
                p.canonicals.push(href.clone());
            }
            if rels
                .iter()
                .any(|r| matches!(*r, "preconnect" | "dns-prefetch"))
            {
                continue;
            }
            p.links.push(Link {
                href,
                from: if rels.contains(&"canonical") {
                    "link rel=canonical"
                } else {
                    "link href"
                },
                nav: false,
            });
        }
        p.headings = doc
            .select(&HEADINGS)
            .filter_map(|h| h.value().name()[1..].parse().ok())
            .collect();
        for img in doc.select(&IMG) {
            if img.value().attr("alt").is_none() {
                p.imgs_without_alt
                    .push(img.value().attr("src").unwrap_or("").to_string());
            }
            if let Some(src) = img.value().attr("src") {
                let in_picture = img
                    .parent()
                    .and_then(ElementRef::wrap)
                    .is_some_and(|e| e.value().name() == "picture");
                p.imgs.push(Img {
                    src: src.to_string(),
                    width: img
                        .value()
                        .attr("width")
                        .and_then(|w| w.trim().parse().ok()),
                    responsive: img.value().attr("srcset").is_some() || in_picture,
                });
            }
        }
        for e in doc.select(&IDS) {
            for a in ["id", "name"] {
                if let Some(id) = e.value().attr(a)
                    && (a == "id" || e.value().name() == "a")
                {
                    p.ids.insert(id.to_string());
                }
            }
        }
        for (s, attr, from, nav) in URL_ATTRS.iter() {
            for e in doc.select(s) {
                if let Some(v) = e.value().attr(attr) {
                    p.links.push(Link {
                        href: v.trim().to_string(),
                        from,
                        nav: *nav,
                    });
                }
            }
        }
        for e in doc.select(&SRCSET) {
            for candidate in e.value().attr("srcset").unwrap_or("").split(',') {
                if let Some(url) = candidate.split_whitespace().next() {
                    p.links.push(Link {
                        href: url.to_string(),
                        from: "srcset",
                        nav: false,
                    });
                }
            }
        }
        for s in doc.select(&SCRIPT) {
            let ty = s.value().attr("type").unwrap_or("").trim();
            if ty.eq_ignore_ascii_case("application/ld+json") {
                p.jsonld.push(s.text().collect());
            }
        }
        let root = doc
            .select(&MAIN)
            .next()
            .or_else(|| doc.select(&BODY).next());
        if let Some(root) = root {
            let mut text = String::new();
            main_text(root, &mut text);
            p.words = text
                .split_whitespace()
                .filter(|w| w.chars().any(char::is_alphanumeric))
                .count();
        }
        p
    }

    /// Whether this page only redirects elsewhere.
    pub fn is_redirect(&self) -> bool {
        self.refresh.is_some()
    }
}

/// Text of an element, skipping what is not prose; elements are separated by spaces.
fn main_text(el: ElementRef<'_>, out: &mut String) {
    for child in el.children() {
        match child.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                if matches!(
                    e.name(),
                    "script" | "style" | "noscript" | "template" | "svg" | "nav"
                ) {
                    continue;
                }
                if let Some(c) = ElementRef::wrap(child) {
                    out.push(' ');
                    main_text(c, out);
                    out.push(' ');
                }
            }
            _ => {}
        }
    }
}

/// The URL of a refresh meta's content (`0; url=/x/`), None when it only reloads.
fn refresh_target(content: &str) -> Option<String> {
    let (_, rest) = content.split_once([';', ','])?;
    let rest = rest.trim();
    let rest = if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("url") {
        rest[3..].trim_start().strip_prefix('=')?.trim()
    } else {
        rest
    };
    let url = rest.trim_matches(|c| c == '\'' || c == '"').trim();
    (!url.is_empty()).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_facts() {
        let p = Page::parse(
            "a/index.html",
            r#"<!doctype html><html><head><title> A  &amp; B </title>
            <meta name="description" content="Desc">
            <meta name="robots" content="noindex, follow">
            <link rel="canonical" href="https://x.test/a/">
            <script type="application/ld+json">{"@type":"Thing"}</script></head>
            <body><nav>menu words here</nav><main><h1 id="t">T</h1><h3>x</h3>
            <p>one two <b>three</b>four</p><img src="/i.png"><img src="/j.png" alt="">
            <script>var not_words = 1;</script>
            <a href="/b/#c" name="n">b</a></main></body></html>"#,
        );
        assert_eq!(p.path, "/a/");
        assert_eq!(p.title.as_deref(), Some("A & B"));
        assert_eq!(p.description.as_deref(), Some("Desc"));
        assert!(p.noindex);
        assert_eq!(p.canonicals, vec!["https://x.test/a/"]);
        assert_eq!(p.headings, vec![1, 3]);
        assert_eq!(p.imgs_without_alt, vec!["/i.png"]);
        assert!(p.ids.contains("t") && p.ids.contains("n"));
        assert_eq!(p.jsonld.len(), 1);
        // T, x, one, two, three, four, b
        assert_eq!(p.words, 7);
        assert!(p.links.iter().any(|l| l.href == "/b/#c" && l.nav));
        assert!(!p.is_redirect());
    }

    #[test]
    fn refresh_targets() {
        assert_eq!(refresh_target("0; url=/x/").as_deref(), Some("/x/"));
        assert_eq!(refresh_target("0;URL='/y/'").as_deref(), Some("/y/"));
        assert_eq!(refresh_target("5"), None);
        assert_eq!(site_path("index.html"), "/");
        assert_eq!(site_path("404.html"), "/404.html");
        assert_eq!(site_path("a/b/index.html"), "/a/b/");
    }
}
