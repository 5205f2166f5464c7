//! Atom and RSS 2.0 feeds for the site, its sections and its taxonomy terms, with
//! absolute URLs (relative links in entry HTML are made absolute).

use chrono::NaiveDate;
use quick_xml::events::BytesText;

use crate::config::SiteConfig;

/// One feed entry.
#[derive(Debug, Clone)]
pub struct Item {
    /// Title.
    pub title: String,
    /// Absolute URL.
    pub url: String,
    /// Published.
    pub date: NaiveDate,
    /// Updated.
    pub updated: Option<NaiveDate>,
    /// HTML (summary or full content).
    pub html: String,
    /// Category names.
    pub categories: Vec<String>,
}

/// One feed: where it is, what it is about, and its items (newest first).
#[derive(Debug, Clone)]
pub struct Feed {
    /// Site path of the page the feed follows (`/`, `/blog/`, `/tags/rust/`).
    pub page_path: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Items, newest first.
    pub items: Vec<Item>,
}

/// Makes `href`/`src` values starting with `/` absolute.
pub fn absolutize(html: &str, base_url: &str) -> String {
    use lol_html::{RewriteStrSettings, element, rewrite_str};
    let fix = |el: &mut lol_html::html_content::Element, attr: &str| {
        if let Some(v) = el.get_attribute(attr)
            && v.starts_with('/')
            && !v.starts_with("//")
        {
            let _ = el.set_attribute(attr, &format!("{base_url}{v}"));
        }
    };
    rewrite_str(
        html,
        RewriteStrSettings::new().append_element_content_handler(element!("[href], [src]", |el| {
            fix(el, "href");
            fix(el, "src");
            Ok(())
        })),
    )
    .unwrap_or_else(|_| html.to_string())
}

fn rfc3339(d: NaiveDate) -> String {
    format!("{d}T00:00:00Z")
}

fn rfc2822(d: NaiveDate) -> String {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().to_rfc2822())
        .unwrap_or_default()
}

/// An Atom 1.0 document; `self_path` is the feed's own site path.
pub fn atom(config: &SiteConfig, feed: &Feed, self_path: &str) -> Vec<u8> {
    let mut w = crate::sitemap::writer();
    let page_url = config.permalink(&feed.page_path);
    let updated = feed
        .items
        .iter()
        .map(|i| i.updated.unwrap_or(i.date).max(i.date))
        .max();
    let _ = w
        .create_element("feed")
        .with_attribute(("xmlns", "http://www.w3.org/2005/Atom"))
        .with_attribute(("xml:lang", config.language.as_str()))
        .write_inner_content(|w| {
            w.create_element("title")
                .write_text_content(BytesText::new(&feed.title))?;
            if !feed.description.is_empty() {
                w.create_element("subtitle")
                    .write_text_content(BytesText::new(&feed.description))?;
            }
            w.create_element("link")
                .with_attribute(("rel", "self"))
                .with_attribute(("type", "application/atom+xml"))
                .with_attribute(("href", config.permalink(self_path).as_str()))
                .write_empty()?;
            w.create_element("link")
                .with_attribute(("rel", "alternate"))
                .with_attribute(("type", "text/html"))
                .with_attribute(("href", page_url.as_str()))
                .write_empty()?;
            w.create_element("id")
                .write_text_content(BytesText::new(&page_url))?;
            w.create_element("updated")
                .write_text_content(BytesText::new(
                    &updated
                        .map(rfc3339)
                        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into()),
                ))?;
            if !config.author.is_empty() {
                w.create_element("author").write_inner_content(|w| {
                    w.create_element("name")
                        .write_text_content(BytesText::new(&config.author))?;
                    Ok(())
                })?;
            }
            w.create_element("generator")
                .write_text_content(BytesText::new("qpage"))?;
            for item in &feed.items {
                w.create_element("entry").write_inner_content(|w| {
                    w.create_element("title")
                        .write_text_content(BytesText::new(&item.title))?;
                    w.create_element("link")
                        .with_attribute(("rel", "alternate"))
                        .with_attribute(("href", item.url.as_str()))
                        .write_empty()?;
                    w.create_element("id")
                        .write_text_content(BytesText::new(&item.url))?;
                    w.create_element("published")
                        .write_text_content(BytesText::new(&rfc3339(item.date)))?;
                    w.create_element("updated")
                        .write_text_content(BytesText::new(&rfc3339(
                            item.updated.unwrap_or(item.date).max(item.date),
                        )))?;
                    for c in &item.categories {
                        w.create_element("category")
                            .with_attribute(("term", c.as_str()))
                            .write_empty()?;
                    }
                    w.create_element("content")
                        .with_attribute(("type", "html"))
                        .write_text_content(BytesText::new(&absolutize(
                            &item.html,
                            &config.base_url,
                        )))?;
                    Ok(())
                })?;
            }
            Ok(())
        });
    crate::sitemap::finish(w)
}

/// An RSS 2.0 document; `self_path` is the feed's own site path.
pub fn rss(config: &SiteConfig, feed: &Feed, self_path: &str) -> Vec<u8> {
    let mut w = crate::sitemap::writer();
    let page_url = config.permalink(&feed.page_path);
    let _ = w
        .create_element("rss")
        .with_attribute(("version", "2.0"))
        .with_attribute(("xmlns:atom", "http://www.w3.org/2005/Atom"))
        .write_inner_content(|w| {
            w.create_element("channel").write_inner_content(|w| {
                w.create_element("title")
                    .write_text_content(BytesText::new(&feed.title))?;
                w.create_element("link")
                    .write_text_content(BytesText::new(&page_url))?;
                let description = if feed.description.is_empty() {
                    &feed.title
                } else {
                    &feed.description
                };
                w.create_element("description")
                    .write_text_content(BytesText::new(description))?;
                w.create_element("language")
                    .write_text_content(BytesText::new(&config.language))?;
                w.create_element("generator")
                    .write_text_content(BytesText::new("qpage"))?;
                w.create_element("atom:link")
                    .with_attribute(("href", config.permalink(self_path).as_str()))
                    .with_attribute(("rel", "self"))
                    .with_attribute(("type", "application/rss+xml"))
                    .write_empty()?;
                if let Some(newest) = feed.items.iter().map(|i| i.date).max() {
                    w.create_element("lastBuildDate")
                        .write_text_content(BytesText::new(&rfc2822(newest)))?;
                }
                for item in &feed.items {
                    w.create_element("item").write_inner_content(|w| {
                        w.create_element("title")
                            .write_text_content(BytesText::new(&item.title))?;
                        w.create_element("link")
                            .write_text_content(BytesText::new(&item.url))?;
                        w.create_element("guid")
                            .with_attribute(("isPermaLink", "true"))
                            .write_text_content(BytesText::new(&item.url))?;
                        w.create_element("pubDate")
                            .write_text_content(BytesText::new(&rfc2822(item.date)))?;
                        for c in &item.categories {
                            w.create_element("category")
                                .write_text_content(BytesText::new(c))?;
                        }
                        w.create_element("description")
                            .write_text_content(BytesText::new(&absolutize(
                                &item.html,
                                &config.base_url,
                            )))?;
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            Ok(())
        });
    crate::sitemap::finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (SiteConfig, Feed) {
        let config = SiteConfig::parse(
            "base_url = 'https://a.test'\ntitle = 'A & B'\nauthor = 'Ann'",
            std::path::Path::new("site.toml"),
        )
        .expect("config");
        let feed = Feed {
            page_path: "/blog/".into(),
            title: "Blog <of> A".into(),
            description: "News".into(),
            items: vec![Item {
                title: "Post & more".into(),
                url: "https://a.test/blog/post/".into(),
                date: NaiveDate::from_ymd_opt(2025, 3, 4).expect("date"),
                updated: None,
                html: "<p>See <a href=\"/about/\">about</a> and <img src=\"/i.png\" alt=\"\"></p>"
                    .into(),
                categories: vec!["rust".into()],
            }],
        };
        (config, feed)
    }

    #[test]
    fn atom_is_escaped_and_absolute() {
        let (c, f) = sample();
        let xml = String::from_utf8(atom(&c, &f, "/blog/atom.xml")).expect("utf8");
        assert!(xml.contains("<title>Blog &lt;of&gt; A</title>"), "{xml}");
        assert!(xml.contains("href=\"https://a.test/blog/atom.xml\""));
        assert!(xml.contains("<updated>2025-03-04T00:00:00Z</updated>"));
        assert!(xml.contains("https://a.test/about/"), "{xml}");
        assert!(xml.contains("https://a.test/i.png"));
        assert!(xml.contains("<category term=\"rust\"/>"));
    }

    #[test]
    fn rss_has_dates_and_guid() {
        let (c, f) = sample();
        let xml = String::from_utf8(rss(&c, &f, "/blog/rss.xml")).expect("utf8");
        assert!(
            xml.contains("<pubDate>Tue, 4 Mar 2025 00:00:00 +0000</pubDate>"),
            "{xml}"
        );
        assert!(xml.contains("<guid isPermaLink=\"true\">https://a.test/blog/post/</guid>"));
        assert!(xml.contains("<title>Post &amp; more</title>"));
    }
}
