//! `sitemap.xml` (a sitemap index with numbered children past 50,000 URLs or 50 MB),
//! with `lastmod`, image entries and hreflang alternates, written with an XML writer;
//! and `robots.txt` pointing at it.

use chrono::NaiveDate;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::config::SiteConfig;

/// One URL of the sitemap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// Absolute URL.
    pub loc: String,
    /// Last modification.
    pub lastmod: Option<NaiveDate>,
    /// Absolute URLs of images on the page.
    pub images: Vec<String>,
    /// Translations: (language, absolute URL), including this page's own.
    pub alternates: Vec<(String, String)>,
}

/// Limits of one sitemap file, per the sitemaps.org protocol.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// URLs per file.
    pub urls: usize,
    /// Bytes per file.
    pub bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            urls: 50_000,
            bytes: 50 * 1024 * 1024,
        }
    }
}

const NS: &str = "http://www.sitemaps.org/schemas/sitemap/0.9";
const NS_IMAGE: &str = "http://www.google.com/schemas/sitemap-image/1.1";
const NS_XHTML: &str = "http://www.w3.org/1999/xhtml";

/// Sitemap files to write: (path in output, bytes). `sitemap.xml` is a plain sitemap
/// when everything fits in one file, otherwise an index of `sitemap1.xml`, ...
pub fn sitemaps(config: &SiteConfig, entries: &[Entry], limits: Limits) -> Vec<(String, Vec<u8>)> {
    let chunks = chunk(entries, limits);
    if chunks.len() <= 1 {
        return vec![("sitemap.xml".into(), urlset(entries))];
    }
    let mut files = Vec::new();
    let mut index_entries = Vec::new();
    for (i, range) in chunks.iter().enumerate() {
        let name = format!("sitemap{}.xml", i + 1);
        let part = &entries[range.clone()];
        let lastmod = part.iter().filter_map(|e| e.lastmod).max();
        index_entries.push((config.permalink(&format!("/{name}")), lastmod));
        files.push((name, urlset(part)));
    }
    files.insert(0, ("sitemap.xml".into(), index(&index_entries)));
    files
}

/// Splits entries into ranges that respect the limits.
fn chunk(entries: &[Entry], limits: Limits) -> Vec<std::ops::Range<usize>> {
    let overhead = 400;
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = overhead;
    for (i, e) in entries.iter().enumerate() {
        let size = entry_size(e);
        if i > start && (i - start >= limits.urls || bytes + size > limits.bytes) {
            out.push(start..i);
            start = i;
            bytes = overhead;
        }
        bytes += size;
    }
    if start < entries.len() || out.is_empty() {
        out.push(start..entries.len());
    }
    out
}

/// An upper estimate of an entry's bytes in the file.
fn entry_size(e: &Entry) -> usize {
    let escaped = |s: &str| s.len() * 2;
    60 + escaped(&e.loc)
        + e.lastmod.map_or(0, |_| 30)
        + e.images.iter().map(|i| 60 + escaped(i)).sum::<usize>()
        + e.alternates
            .iter()
            .map(|(l, u)| 80 + l.len() + escaped(u))
            .sum::<usize>()
}

/// An XML writer with the UTF-8 declaration written (shared with the feeds).
pub(crate) fn writer() -> Writer<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    w
}

fn urlset(entries: &[Entry]) -> Vec<u8> {
    let mut w = writer();
    let has_images = entries.iter().any(|e| !e.images.is_empty());
    let has_alternates = entries.iter().any(|e| !e.alternates.is_empty());
    let mut root = w.create_element("urlset").with_attribute(("xmlns", NS));
    if has_images {
        root = root.with_attribute(("xmlns:image", NS_IMAGE));
    }
    if has_alternates {
        root = root.with_attribute(("xmlns:xhtml", NS_XHTML));
    }
    let _ = root.write_inner_content(|w| {
        for e in entries {
            w.create_element("url").write_inner_content(|w| {
                w.create_element("loc")
                    .write_text_content(BytesText::new(&e.loc))?;
                if let Some(d) = e.lastmod {
                    w.create_element("lastmod")
                        .write_text_content(BytesText::new(&d.to_string()))?;
                }
                for (lang, href) in &e.alternates {
                    w.create_element("xhtml:link")
                        .with_attribute(("rel", "alternate"))
                        .with_attribute(("hreflang", lang.as_str()))
                        .with_attribute(("href", href.as_str()))
                        .write_empty()?;
                }
                for img in &e.images {
                    w.create_element("image:image").write_inner_content(|w| {
                        w.create_element("image:loc")
                            .write_text_content(BytesText::new(img))?;
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        }
        Ok(())
    });
    finish(w)
}

fn index(entries: &[(String, Option<NaiveDate>)]) -> Vec<u8> {
    let mut w = writer();
    let _ = w
        .create_element("sitemapindex")
        .with_attribute(("xmlns", NS))
        .write_inner_content(|w| {
            for (loc, lastmod) in entries {
                w.create_element("sitemap").write_inner_content(|w| {
                    w.create_element("loc")
                        .write_text_content(BytesText::new(loc))?;
                    if let Some(d) = lastmod {
                        w.create_element("lastmod")
                            .write_text_content(BytesText::new(&d.to_string()))?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        });
    finish(w)
}

/// The document's bytes, ending in a newline.
pub(crate) fn finish(w: Writer<Vec<u8>>) -> Vec<u8> {
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

/// `robots.txt`: every agent allowed except the configured paths, and the sitemap.
pub fn robots(config: &SiteConfig) -> Vec<u8> {
    let mut s = String::from("User-agent: *\n");
    if config.robots.disallow.is_empty() {
        s.push_str("Allow: /\n");
    }
    for d in &config.robots.disallow {
        s.push_str(&format!("Disallow: {}\n", d.trim()));
    }
    if !config.robots.extra.trim().is_empty() {
        s.push('\n');
        s.push_str(config.robots.extra.trim_end());
        s.push('\n');
    }
    s.push_str(&format!(
        "\nSitemap: {}\n",
        config.permalink("/sitemap.xml")
    ));
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SiteConfig {
        SiteConfig::parse(
            "base_url = 'https://a.test'\ntitle = 'A'",
            std::path::Path::new("site.toml"),
        )
        .expect("config")
    }

    fn entry(i: usize) -> Entry {
        Entry {
            loc: format!("https://a.test/p{i}/?a=1&b=2"),
            lastmod: NaiveDate::from_ymd_opt(2025, 1, 1 + (i % 28) as u32),
            images: if i == 0 {
                vec!["https://a.test/i.jpg".into()]
            } else {
                vec![]
            },
            alternates: if i == 0 {
                vec![("fr".into(), "https://a.test/fr/p0/".into())]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn one_file_with_images_and_alternates() {
        let entries: Vec<Entry> = (0..3).map(entry).collect();
        let files = sitemaps(&config(), &entries, Limits::default());
        assert_eq!(files.len(), 1);
        let xml = String::from_utf8(files[0].1.clone()).expect("utf8");
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(
            xml.contains("<loc>https://a.test/p1/?a=1&amp;b=2</loc>"),
            "{xml}"
        );
        assert!(xml.contains("<lastmod>2025-01-02</lastmod>"));
        assert!(xml.contains("<image:loc>https://a.test/i.jpg</image:loc>"));
        assert!(
            xml.contains(
                "<xhtml:link rel=\"alternate\" hreflang=\"fr\" href=\"https://a.test/fr/p0/\"/>"
            ),
            "{xml}"
        );
        assert!(xml.contains("xmlns:image=") && xml.contains("xmlns:xhtml="));
    }

    #[test]
    fn index_past_the_url_limit() {
        let entries: Vec<Entry> = (0..7).map(entry).collect();
        let files = sitemaps(
            &config(),
            &entries,
            Limits {
                urls: 3,
                bytes: usize::MAX,
            },
        );
        let names: Vec<_> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "sitemap.xml",
                "sitemap1.xml",
                "sitemap2.xml",
                "sitemap3.xml"
            ]
        );
        let index = String::from_utf8(files[0].1.clone()).expect("utf8");
        assert!(index.contains("<sitemapindex"), "{index}");
        assert!(index.contains("<loc>https://a.test/sitemap3.xml</loc>"));
        let last = String::from_utf8(files[3].1.clone()).expect("utf8");
        assert_eq!(last.matches("<url>").count(), 1);
    }

    #[test]
    fn index_past_the_byte_limit() {
        let entries: Vec<Entry> = (0..10).map(entry).collect();
        let files = sitemaps(
            &config(),
            &entries,
            Limits {
                urls: 50_000,
                bytes: 1200,
            },
        );
        assert!(files.len() > 2, "{}", files.len());
        for (name, bytes) in &files[1..] {
            assert!(bytes.len() <= 1200, "{name} is {} bytes", bytes.len());
        }
    }

    #[test]
    fn robots_points_at_sitemap() {
        let mut c = config();
        c.robots.disallow = vec!["/private/".into()];
        let r = String::from_utf8(robots(&c)).expect("utf8");
        assert!(r.contains("Disallow: /private/\n"));
        assert!(r.ends_with("Sitemap: https://a.test/sitemap.xml\n"));
    }
}
