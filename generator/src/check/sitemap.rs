//! Sitemaps (urlset and sitemap index) against the pages of dist, and robots.txt
//! against the sitemap's URLs.

use std::collections::HashSet;

use quick_xml::events::Event;
use url::Url;

use super::Raw;
use super::robots::Robots;
use super::rules::SiteView;

/// What one sitemap file holds.
#[derive(Debug, PartialEq)]
pub(crate) enum Sitemap {
    /// `<urlset>`: page URLs.
    Urls(Vec<String>),
    /// `<sitemapindex>`: child sitemap URLs.
    Index(Vec<String>),
}

/// Parses a sitemap file: the `<loc>` of each `<url>` or `<sitemap>`.
pub(crate) fn parse(text: &str) -> Result<Sitemap, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut root: Option<String> = None;
    let mut locs = Vec::new();
    let mut loc: Option<String> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "not well-formed XML at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if root.is_none() {
                    if name != "urlset" && name != "sitemapindex" {
                        return Err(format!(
                            "root element is <{name}>, not <urlset> or <sitemapindex>"
                        ));
                    }
                    root = Some(name.clone());
                }
                if name == "loc"
                    && stack.len() == 2
                    && matches!(stack[1].as_str(), "url" | "sitemap")
                {
                    loc = Some(String::new());
                }
                stack.push(name);
            }
            Event::End(_) => {
                if stack.pop().as_deref() == Some("loc")
                    && let Some(raw) = loc.take()
                {
                    let text = quick_xml::escape::unescape(&raw)
                        .map_err(|e| format!("bad entity in <loc>{raw}</loc>: {e}"))?;
                    locs.push(text.trim().to_string());
                }
            }
            Event::Text(t) => {
                if let Some(l) = loc.as_mut() {
                    l.push_str(&t);
                }
            }
            Event::CData(t) => {
                if let Some(l) = loc.as_mut() {
                    l.push_str(&quick_xml::escape::escape(&*t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(l) = loc.as_mut() {
                    l.push('&');
                    l.push_str(&r.into_inner());
                    l.push(';');
                }
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(format!("the document ends inside <{open}>"));
                }
                break;
            }
            _ => {}
        }
    }
    match root.as_deref() {
        Some("urlset") => Ok(Sitemap::Urls(locs)),
        Some(_) => Ok(Sitemap::Index(locs)),
        None => Err("empty document: no <urlset> or <sitemapindex>".into()),
    }
}

/// Runs the sitemap and robots.txt rules.
pub(crate) fn run(site: &SiteView<'_>, out: &mut Vec<Raw>) {
    let robots = site
        .files
        .contains("robots.txt")
        .then(|| std::fs::read_to_string(site.dist.join("robots.txt")).ok())
        .flatten()
        .map(|t| Robots::parse(&t))
        .unwrap_or_default();
    // The sitemaps to read: /sitemap.xml and those robots.txt names.
    let mut queue: Vec<(String, String)> = Vec::new(); // (file, named by)
    if site.files.contains("sitemap.xml") {
        queue.push(("sitemap.xml".into(), "the site root".into()));
    }
    for s in &robots.sitemaps {
        match Url::parse(s).ok().and_then(|u| site.internal_url(&u)) {
            Some(t) => match t.file.filter(|f| site.files.contains(f)) {
                Some(f) => queue.push((f, "robots.txt".into())),
                None => out.push((
                    "sitemap-url-missing",
                    "/robots.txt".into(),
                    format!("robots.txt names sitemap {s}, which has no file in dist"),
                )),
            },
            None => out.push((
                "sitemap-url-missing",
                "/robots.txt".into(),
                format!("robots.txt names sitemap {s}, which is not under base_url"),
            )),
        }
    }
    if queue.is_empty() {
        out.push((
            "sitemap-missing",
            "/sitemap.xml".into(),
            "no sitemap.xml in dist and no Sitemap: line in robots.txt".into(),
        ));
        return;
    }
    let mut read: HashSet<String> = HashSet::new();
    let mut listed: HashSet<String> = HashSet::new();
    while let Some((file, named_by)) = queue.pop() {
        if !read.insert(file.clone()) {
            continue;
        }
        let shown = format!("/{file}");
        if file.ends_with(".gz") {
            continue; // compressed sitemaps are not read
        }
        let text = match std::fs::read_to_string(site.dist.join(&file)) {
            Ok(t) => t,
            Err(e) => {
                out.push(("sitemap-invalid", shown, format!("cannot read: {e}")));
                continue;
            }
        };
        let sitemap = match parse(&text) {
            Ok(s) => s,
            Err(e) => {
                out.push((
                    "sitemap-invalid",
                    shown,
                    format!("{e} (named by {named_by})"),
                ));
                continue;
            }
        };
        match sitemap {
            Sitemap::Index(children) => {
                for loc in children {
                    match Url::parse(&loc).ok().and_then(|u| site.internal_url(&u)) {
                        Some(t) => match t.file.filter(|f| site.files.contains(f)) {
                            Some(f) => queue.push((f, shown.clone())),
                            None => out.push((
                                "sitemap-url-missing",
                                t.path,
                                format!(
                                    "sitemap index {shown} lists {loc}, which has no file in dist"
                                ),
                            )),
                        },
                        None => out.push((
                            "sitemap-url-missing",
                            shown.clone(),
                            format!("sitemap index lists {loc}, which is not under base_url"),
                        )),
                    }
                }
            }
            Sitemap::Urls(locs) => {
                for loc in locs {
                    let Some((u, t)) = Url::parse(&loc)
                        .ok()
                        .and_then(|u| site.internal_url(&u).map(|t| (u, t)))
                    else {
                        out.push((
                            "sitemap-url-missing",
                            shown.clone(),
                            format!("{loc} is not an absolute URL under base_url {}", site.base),
                        ));
                        continue;
                    };
                    let Some(f) = t.file.clone() else {
                        out.push((
                            "sitemap-url-missing",
                            t.path.clone(),
                            format!("listed in {shown} as {loc}, but no file in dist"),
                        ));
                        continue;
                    };
                    if let Some(p) = site.page(&f)
                        && !site.indexable(p)
                    {
                        let why = if p.is_redirect() {
                            "a redirect"
                        } else if p.noindex {
                            "noindex"
                        } else if super::rules::is_404(p) {
                            "the 404 page"
                        } else {
                            "canonical to another URL"
                        };
                        out.push((
                            "sitemap-url-not-indexable",
                            t.path.clone(),
                            format!("listed in {shown}, but the page is {why}"),
                        ));
                    }
                    listed.insert(f);
                    let path = match u.query() {
                        Some(q) => format!("{}?{q}", u.path()),
                        None => u.path().to_string(),
                    };
                    let blocked: Vec<String> = site
                        .check
                        .robots_agents
                        .iter()
                        .filter_map(|a| {
                            robots
                                .blocked_by(a, &path)
                                .map(|r| format!("`Disallow: {r}` for {a}"))
                        })
                        .collect();
                    if !blocked.is_empty() {
                        out.push((
                            "robots-blocks-sitemap-url",
                            t.path.clone(),
                            format!(
                                "listed in {shown}, but robots.txt blocks it: {}",
                                blocked.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    for p in site.pages.iter().filter(|p| site.indexable(p)) {
        if !listed.contains(&p.file) {
            out.push((
                "sitemap-page-missing",
                p.path.clone(),
                "indexable page that no sitemap lists".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlset_and_index() {
        let s = parse(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
<url><loc>https://x.test/a/?q=1&amp;r=2</loc><image:image><image:loc>https://x.test/i.png</image:loc></image:image></url>
<url><loc> https://x.test/b/ </loc><lastmod>2025-01-01</lastmod></url>
</urlset>"#,
        );
        assert_eq!(
            s,
            Ok(Sitemap::Urls(vec![
                "https://x.test/a/?q=1&r=2".into(),
                "https://x.test/b/".into()
            ]))
        );
        let s = parse(
            "<sitemapindex><sitemap><loc>https://x.test/s1.xml</loc></sitemap></sitemapindex>",
        );
        assert_eq!(s, Ok(Sitemap::Index(vec!["https://x.test/s1.xml".into()])));
        assert!(parse("<html></html>").is_err());
        assert!(parse("<urlset><url><loc>x</url></urlset>").is_err());
        assert!(parse("").is_err());
    }
}
