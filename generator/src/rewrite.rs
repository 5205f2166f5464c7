//! One streaming pass over each HTML page (lol_html): heading anchor links, `rel` on
//! external links, lazy images below the first, fingerprinted asset URLs; it also
//! turns each `<img>` of a processed image into a responsive `<picture>` and gives
//! `og:image` its dimensions; it also collects the page's images for the sitemap, and
//! the ones that name no file of the site. Minification follows (minify-html).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use lol_html::html_content::{ContentType, Element};
use lol_html::{HtmlRewriter, Settings, element};

use crate::config::SiteConfig;
use crate::images::{PictureOptions, picture_html};
use crate::imageset::{SiteImages, VARIANT_PREFIX, resolve_src};

/// Attribute a template puts on an `<img>` to choose its `sizes` (the `image()` template
/// function does); the pass consumes it.
pub const SIZES_ATTR: &str = "data-qp-sizes";

/// Attributes of an author's `<img>` carried over to the `<img>` of its `<picture>`.
const KEPT_IMG_ATTRS: [&str; 4] = ["class", "id", "title", "fetchpriority"];

/// What the pass needs to know about the site.
pub struct Rewriter<'a> {
    config: &'a SiteConfig,
    host: String,
    /// Asset site path -> fingerprinted site path.
    assets: &'a HashMap<String, String>,
    /// Processed images, and the site paths of every published file (to find `<img>`s
    /// that point nowhere).
    images: Option<(&'a SiteImages, &'a HashSet<String>)>,
}

/// The rewritten page and what was found in it.
#[derive(Debug, Default)]
pub struct Rewritten {
    /// The new HTML.
    pub html: Vec<u8>,
    /// Site paths or URLs of the images on the page, in order.
    pub images: Vec<String>,
    /// `src`s of images that name no file of the site.
    pub missing_images: Vec<String>,
    /// Site paths of every image looked up (`<img>`, `og:image`), processed or not:
    /// what the page depends on.
    pub sources: Vec<String>,
}

impl<'a> Rewriter<'a> {
    /// A rewriter for one site.
    pub fn new(config: &'a SiteConfig, assets: &'a HashMap<String, String>) -> Self {
        let host = host_of(&config.base_url).unwrap_or_default();
        Rewriter {
            config,
            host,
            assets,
            images: None,
        }
    }

    /// Also turns `<img>`s of `images` into `<picture>`s and reports those whose file is
    /// not among `published` (site paths).
    pub fn with_images(mut self, images: &'a SiteImages, published: &'a HashSet<String>) -> Self {
        self.images = Some((images, published));
        self
    }

    /// Rewrites one page; `page_dir` is its URL folder (`/blog/post/`), against which
    /// relative image sources resolve.
    pub fn rewrite(&self, html: &[u8], page_dir: &str) -> Result<Rewritten, String> {
        let mut out = Vec::with_capacity(html.len());
        let images = RefCell::new(Vec::new());
        let sources = RefCell::new(Vec::new());
        let missing = RefCell::new(Vec::new());
        let img_count = Cell::new(0usize);
        let in_picture = Rc::new(Cell::new(false));
        let in_picture_start = Rc::clone(&in_picture);
        let mut rewriter = HtmlRewriter::new(
            Settings::new()
                .append_element_content_handler(element!("h2[id], h3[id], h4[id]", |el| {
                        let id = el.get_attribute("id").unwrap_or_default();
                        if !id.starts_with("qp-") {
                            let link = format!(
                                "<a class=\"anchor\" href=\"#{}\" aria-label=\"Link to this section\">#</a>",
                                crate::markdown::escape_attr(&id)
                            );
                            el.append(&link, ContentType::Html);
                        }
                        Ok(())
                    }))
                .append_element_content_handler(element!("a[href]", |el| {
                        self.link(el);
                        Ok(())
                    }))
                .append_element_content_handler(element!("picture", |el| {
                        in_picture_start.set(true);
                        let flag = Rc::clone(&in_picture_start);
                        if let Some(handlers) = el.end_tag_handlers() {
                            let clear: lol_html::EndTagHandler<'static> = Box::new(move |_end| {
                                flag.set(false);
                                Ok(())
                            });
                            handlers.push(clear);
                        }
                        Ok(())
                    }))
                .append_element_content_handler(element!("img", |el| {
                        let n = img_count.get();
                        img_count.set(n + 1);
                        let sizes = el.get_attribute(SIZES_ATTR);
                        el.remove_attribute(SIZES_ATTR);
                        if !in_picture.get()
                            && let Some(src) = el.get_attribute("src")
                            && let Some(url) = self.picture(el, &src, sizes.as_deref(), n == 0, page_dir, (&missing, &sources))
                        {
                            images.borrow_mut().push(url);
                            return Ok(());
                        }
                        if n > 0 {
                            if !el.has_attribute("loading") {
                                el.set_attribute("loading", "lazy")?;
                            }
                            if !el.has_attribute("decoding") {
                                el.set_attribute("decoding", "async")?;
                            }
                        }
                        if let Some(src) = el.get_attribute("src")
                            && !src.starts_with("data:") {
                                images.borrow_mut().push(src);
                            }
                        Ok(())
                    }))
                .append_element_content_handler(element!(r#"meta[property="og:image"]"#, |el| {
                        self.og_image(el, &sources);
                        Ok(())
                    }))
                .append_element_content_handler(element!("link[href], script[src]", |el| {
                        let attr = if el.tag_name() == "link" { "href" } else { "src" };
                        if let Some(v) = el.get_attribute(attr)
                            && let Some(new) = self.assets.get(&v) {
                                el.set_attribute(attr, new)?;
                            }
                        Ok(())
                    })),
            |c: &[u8]| out.extend_from_slice(c),
        );
        rewriter.write(html).map_err(|e| e.to_string())?;
        rewriter.end().map_err(|e| e.to_string())?;
        Ok(Rewritten {
            html: out,
            images: images.into_inner(),
            missing_images: missing.into_inner(),
            sources: sources.into_inner(),
        })
    }

    /// Replaces an `<img>` of a processed image by its `<picture>`, returning the URL
    /// of the fallback; notes a `src` that names no published file.
    fn picture(
        &self,
        el: &mut Element,
        src: &str,
        sizes: Option<&str>,
        first: bool,
        page_dir: &str,
        (missing, sources): (&RefCell<Vec<String>>, &RefCell<Vec<String>>),
    ) -> Option<String> {
        let (images, published) = self.images?;
        let site_path = resolve_src(src, page_dir, &self.config.base_url)?;
        sources.borrow_mut().push(site_path.clone());
        let Some(processed) = images.get(&site_path) else {
            if !published.contains(&site_path) && !images.failed(&site_path) {
                missing.borrow_mut().push(src.to_string());
            }
            return None;
        };
        let alt = el.get_attribute("alt");
        let eager = match el.get_attribute("loading").as_deref() {
            Some(l) => l.eq_ignore_ascii_case("eager"),
            None => first,
        };
        let kept: Vec<(&str, String)> = KEPT_IMG_ATTRS
            .iter()
            .filter_map(|name| Some((*name, el.get_attribute(name)?)))
            .filter(|(name, _)| !(eager && *name == "fetchpriority"))
            .collect();
        let html = picture_html(
            processed,
            &PictureOptions {
                alt: alt.as_deref(),
                sizes,
                url_prefix: VARIANT_PREFIX,
                eager,
                attrs: kept.iter().map(|(n, v)| (*n, v.as_str())).collect(),
            },
        );
        el.replace(&html, ContentType::Html);
        Some(format!(
            "{VARIANT_PREFIX}{}",
            processed.fallback().file_name
        ))
    }

    /// Points `og:image` at a published file of a processed image and adds its
    /// `og:image:width` / `og:image:height`.
    fn og_image(&self, el: &mut Element, sources: &RefCell<Vec<String>>) {
        let Some((images, _)) = self.images else {
            return;
        };
        let Some(content) = el.get_attribute("content") else {
            return;
        };
        let Some(site_path) = resolve_src(&content, "/", &self.config.base_url) else {
            return;
        };
        sources.borrow_mut().push(site_path.clone());
        let Some((url, width, height)) = images.published(&site_path) else {
            return;
        };
        let _ = el.set_attribute("content", &self.config.permalink(&url));
        el.after(
            &format!(
                r#"<meta property="og:image:width" content="{width}"><meta property="og:image:height" content="{height}">"#
            ),
            ContentType::Html,
        );
    }

    fn link(&self, el: &mut Element) {
        let Some(href) = el.get_attribute("href") else {
            return;
        };
        let Some(host) = host_of(&href) else {
            return;
        };
        if host == self.host {
            return;
        }
        let links = &self.config.links;
        let mut rel: Vec<String> = el
            .get_attribute("rel")
            .map(|r| r.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut add = |token: &str| {
            if !rel.iter().any(|t| t.eq_ignore_ascii_case(token)) {
                rel.push(token.to_string());
            }
        };
        add("noopener");
        let matches = |list: &[String]| {
            list.iter()
                .any(|d| host == *d || host.ends_with(&format!(".{d}")))
        };
        if matches(&links.sponsored) {
            add("sponsored");
        }
        if links.nofollow_all || matches(&links.nofollow) {
            add("nofollow");
        }
        let _ = el.set_attribute("rel", &rel.join(" "));
    }
}

/// The lowercase host of an absolute http(s) or protocol-relative URL.
fn host_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("//"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = host.split(':').next().unwrap_or(host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Minifies an HTML page. Keeps what validators and browsers need (closing tags of
/// `html`/`head`/`body` may go; everything stays valid HTML).
pub fn minify(html: &[u8]) -> Vec<u8> {
    let cfg = minify_html::Cfg {
        minify_css: true,
        minify_js: true,
        keep_closing_tags: true,
        keep_html_and_head_opening_tags: true,
        ..minify_html::Cfg::default()
    };
    minify_html::minify(html, &cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> SiteConfig {
        SiteConfig::parse(
            &format!("base_url = 'https://a.test'\ntitle = 'A'\n{extra}"),
            std::path::Path::new("site.toml"),
        )
        .expect("config")
    }

    #[test]
    fn links_images_headings_assets() {
        let c = config("[links]\nsponsored = ['shop.example']\nnofollow = ['spam.example']");
        let mut assets = HashMap::new();
        assets.insert("/style.css".to_string(), "/style.0123abcd.css".to_string());
        let r = Rewriter::new(&c, &assets);
        let html = br#"<link rel="stylesheet" href="/style.css"><h2 id="intro">Intro</h2><h2 id="qp-x">T</h2>
<a href="https://other.example/x">o</a><a href="https://a.test/in">i</a><a href="/rel">r</a>
<a href="https://www.shop.example/p" rel="external">s</a><a href="http://spam.example">n</a>
<img src="/a.png" alt="a"><img src="/b.png" alt="b"><img src="/c.png" alt="c" loading="eager">"#;
        let out = r.rewrite(html, "/").expect("rewrite");
        let s = String::from_utf8(out.html).expect("utf8");
        assert!(s.contains("href=\"/style.0123abcd.css\""), "{s}");
        assert!(
            s.contains("<h2 id=\"intro\">Intro<a class=\"anchor\" href=\"#intro\""),
            "{s}"
        );
        assert!(s.contains("<h2 id=\"qp-x\">T</h2>"));
        assert!(
            s.contains("<a href=\"https://other.example/x\" rel=\"noopener\">"),
            "{s}"
        );
        assert!(s.contains("<a href=\"https://a.test/in\">"));
        assert!(s.contains("<a href=\"/rel\">"));
        assert!(s.contains("rel=\"external noopener sponsored\""), "{s}");
        assert!(s.contains("rel=\"noopener nofollow\""), "{s}");
        assert!(
            s.contains("<img src=\"/a.png\" alt=\"a\">"),
            "first image stays eager: {s}"
        );
        assert!(
            s.contains("<img src=\"/b.png\" alt=\"b\" loading=\"lazy\" decoding=\"async\">"),
            "{s}"
        );
        assert!(s.contains("loading=\"eager\" decoding=\"async\""));
        assert_eq!(out.images, vec!["/a.png", "/b.png", "/c.png"]);
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("https://User@Ex.COM:8443/x").as_deref(),
            Some("ex.com")
        );
        assert_eq!(host_of("//cdn.test/a").as_deref(), Some("cdn.test"));
        assert_eq!(host_of("/local"), None);
        assert_eq!(host_of("mailto:a@b"), None);
    }

    #[test]
    fn minify_keeps_pre() {
        let out = minify(b"<!DOCTYPE html><html><head><title>t</title></head><body>\n  <p>a   b</p>\n<pre>  x\n   y</pre></body></html>");
        let s = String::from_utf8(out).expect("utf8");
        assert!(s.contains("<pre>  x\n   y</pre>"), "{s}");
        assert!(s.contains("<p>a b"), "{s}");
    }
}
