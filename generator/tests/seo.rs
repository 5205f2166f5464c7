//! Search-ready output on the example sites and on small made-up sites: JSON-LD per page
//! type, meta tags, sitemap, feeds, robots.txt, rewriting, fingerprinting, sanitizing.

use std::path::{Path, PathBuf};

use qpage_generator::{BuildOptions, BuildReport, build};
use serde_json::Value;

fn build_to(site: &Path, out: &Path) -> BuildReport {
    build(&BuildOptions {
        site_dir: site.to_path_buf(),
        output: Some(out.to_path_buf()),
        today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../content")
        .join(name)
}

fn read(out: &Path, rel: &str) -> String {
    std::fs::read_to_string(out.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every JSON-LD node of a page (parsed, so invalid JSON fails the test).
fn nodes(html: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("application/ld+json") {
        let start = rest[i..].find('>').expect("tag end") + i + 1;
        let end = rest[start..].find("</script>").expect("closed") + start;
        let doc: Value = serde_json::from_str(&rest[start..end]).expect("valid JSON-LD");
        out.extend(doc["@graph"].as_array().cloned().unwrap_or_default());
        rest = &rest[end..];
    }
    out
}

fn of_type<'a>(nodes: &'a [Value], t: &str) -> &'a Value {
    nodes
        .iter()
        .find(|n| n["@type"] == t)
        .unwrap_or_else(|| panic!("no {t} in {nodes:#?}"))
}

#[test]
fn blog_pages_carry_article_breadcrumbs_meta_and_feeds() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("dist");
    build_to(&example("blog"), &out);
    let home = read(&out, "index.html");
    let n = nodes(&home);
    assert_eq!(of_type(&n, "WebSite")["url"], "https://blog.example.com/");
    assert_eq!(of_type(&n, "Organization")["name"], "Fast Pages");
    let post = read(&out, "blog/content-hashing-for-immutable-assets/index.html");
    let n = nodes(&post);
    let article = of_type(&n, "BlogPosting");
    assert_eq!(article["headline"], "Content Hashing for Immutable Assets");
    assert_eq!(article["datePublished"], "2025-08-09");
    let crumbs = of_type(&n, "BreadcrumbList")["itemListElement"]
        .as_array()
        .expect("items")
        .clone();
    assert_eq!(
        crumbs.first().expect("home")["item"],
        "https://blog.example.com/"
    );
    assert_eq!(
        crumbs.last().expect("self")["item"],
        "https://blog.example.com/blog/content-hashing-for-immutable-assets/"
    );
    for needle in [
        "<title>Content Hashing for Immutable Assets · Fast Pages</title>",
        "<link href=https://blog.example.com/blog/content-hashing-for-immutable-assets/ rel=canonical>",
        "content=article property=og:type",
        "name=twitter:card",
        "href=https://blog.example.com/atom.xml",
    ] {
        assert!(post.contains(needle), "missing {needle}");
    }
    // Second page of a listing stays out of the index and the sitemap.
    assert!(
        read(&out, "blog/page/2/index.html").contains("content=\"noindex, follow\" name=robots")
    );
    let sitemap = read(&out, "sitemap.xml");
    assert!(sitemap.contains(
        "<loc>https://blog.example.com/blog/content-hashing-for-immutable-assets/</loc>"
    ));
    assert!(!sitemap.contains("/page/2/"));
    assert!(!sitemap.contains("404"));
    let atom = read(&out, "atom.xml");
    assert!(
        atom.contains(
            "<id>https://blog.example.com/blog/content-hashing-for-immutable-assets/</id>"
        )
    );
    assert!(read(&out, "blog/rss.xml").contains("<rss version=\"2.0\""));
    assert!(read(&out, "robots.txt").contains("Sitemap: https://blog.example.com/sitemap.xml"));
    // The 404 page is not indexed and has no canonical.
    let nf = read(&out, "404.html");
    assert!(nf.contains("noindex") && !nf.contains("rel=canonical"));
}

#[test]
fn shop_products_have_offers_ratings_and_reviews() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("dist");
    let report = build_to(&example("shop"), &out);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let dir = std::fs::read_dir(out.join("products")).expect("products");
    let mut checked = 0;
    for entry in dir.filter_map(Result::ok) {
        let page = entry.path().join("index.html");
        if !page.is_file() {
            continue;
        }
        let html = std::fs::read_to_string(&page).expect("read");
        let n = nodes(&html);
        let p = of_type(&n, "Product");
        assert!(p["name"].is_string());
        assert!(p["offers"]["price"].is_string(), "{p:#}");
        assert_eq!(p["offers"]["priceCurrency"], "EUR");
        assert!(
            p["offers"]["availability"]
                .as_str()
                .expect("availability")
                .starts_with("https://schema.org/")
        );
        assert!(
            p["aggregateRating"]["ratingValue"].is_string()
                || p["aggregateRating"]["ratingValue"].is_number()
        );
        assert!(!p["review"].as_array().expect("reviews").is_empty());
        assert!(html.contains("content=product property=og:type"));
        checked += 1;
    }
    assert_eq!(checked, 12);
    let faq = nodes(&read(&out, "shipping/index.html"));
    assert!(
        !of_type(&faq, "FAQPage")["mainEntity"]
            .as_array()
            .expect("questions")
            .is_empty()
    );
}

#[test]
fn local_business_home_has_address_hours_and_geo() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("dist");
    let report = build_to(&example("local"), &out);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let n = nodes(&read(&out, "index.html"));
    let b = n
        .iter()
        .find(|n| n.get("address").is_some())
        .expect("business node");
    assert_eq!(b["name"], "Linden Street Bakery");
    assert!(b["address"]["streetAddress"].is_string());
    assert!(b["geo"]["latitude"].is_number());
    assert!(
        !b["openingHoursSpecification"]
            .as_array()
            .expect("hours")
            .is_empty()
    );
}

fn small_site(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("site");
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    (tmp, dir)
}

#[test]
fn records_missing_required_properties_warn_with_file_and_property() {
    let (_tmp, dir) = small_site(&[
        (
            "site.toml",
            "base_url = 'https://s.test'\ntitle = 'S'\n[collections.products]\ntemplate = 'product.html'\n",
        ),
        (
            "data/products/bare.json",
            "{\"slug\": \"bare\", \"description\": \"x\"}",
        ),
        (
            "data/products/ok.json",
            "{\"name\": \"Ok\", \"price\": \"1.00\", \"currency\": \"EUR\"}",
        ),
    ]);
    let report = build_to(&dir, &dir.join("dist"));
    let w: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.iter()
            .any(|m| m.starts_with("data/products/bare.json: Product is missing `name`")),
        "{w:#?}"
    );
    assert!(
        w.iter().any(|m| m.starts_with("data/products/bare.json")
            && m.contains("price (offers), rating or reviews")),
        "{w:#?}"
    );
    assert!(!w.iter().any(|m| m.contains("ok.json")), "{w:#?}");
}

#[test]
fn hostile_content_cannot_escape_json_ld_and_raw_html_is_sanitized() {
    let (_tmp, dir) = small_site(&[
        // Unminified, so escaping done by the templates is visible as written.
        (
            "site.toml",
            "base_url = 'https://s.test'\ntitle = 'S'\nminify = false\n",
        ),
        (
            "content/x.md",
            "+++\ntitle = \"</script><script>alert(1)</script>\"\ndate = 2025-01-01\n+++\nHello <img src=\"/a.png\" alt=\"a\" onerror=\"steal()\"> <a href=\"javascript:alert(1)\">x</a>\n\n<script>bad()</script>\n\n<iframe src=\"https://evil.test\"></iframe>\n",
        ),
    ]);
    let report = build_to(&dir, &dir.join("dist"));
    assert_eq!(
        report.sanitized, 4,
        "script, iframe, onerror, javascript: URL"
    );
    let html = read(&dir.join("dist"), "x/index.html");
    assert!(
        !html.contains("<script>alert(1)"),
        "JSON-LD broke out of its script"
    );
    assert!(
        !html.contains("bad()")
            && !html.contains("onerror")
            && !html.contains("javascript:")
            && !html.contains("evil.test")
    );
    let n = nodes(&html);
    assert_eq!(
        of_type(&n, "BlogPosting")["headline"],
        "</script><script>alert(1)</script>"
    );
}

#[test]
fn unsafe_html_opt_out_keeps_raw_html() {
    let (_tmp, dir) = small_site(&[
        (
            "site.toml",
            "base_url = 'https://s.test'\ntitle = 'S'\nunsafe_html = true\nminify = false\n",
        ),
        (
            "content/x.md",
            "+++\ntitle = \"X\"\n+++\n<div onclick=\"go()\">kept</div>\n",
        ),
    ]);
    let report = build_to(&dir, &dir.join("dist"));
    assert_eq!(report.sanitized, 0);
    assert!(read(&dir.join("dist"), "x/index.html").contains("<div onclick=\"go()\">kept</div>"));
}

#[test]
fn assets_are_fingerprinted_links_get_rel_and_images_lazy() {
    let (_tmp, dir) = small_site(&[
        (
            "site.toml",
            "base_url = 'https://s.test'\ntitle = 'S'\nminify = false\n[links]\nsponsored = ['shop.example']\n",
        ),
        ("static/app.js", "console.log(1)"),
        (
            "templates/page.html",
            "<html><head><link rel=\"stylesheet\" href=\"/style.css\"><script src=\"/app.js\"></script></head><body>{{ page.content | safe }}</body></html>",
        ),
        (
            "content/x.md",
            "+++\ntitle = \"X\"\n+++\n## Part one\n\n[ext](https://other.example/) [aff](https://shop.example/p) [in](/x/)\n\n![a](/a.png)\n\n![b](/b.png)\n",
        ),
    ]);
    build_to(&dir, &dir.join("dist"));
    let out = dir.join("dist");
    let html = read(&out, "x/index.html");
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("dist")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let css = names
        .iter()
        .find(|n| n.starts_with("style.") && n.ends_with(".css"))
        .expect("fingerprinted css");
    let js = names
        .iter()
        .find(|n| n.starts_with("app.") && n.ends_with(".js"))
        .expect("fingerprinted js");
    assert!(
        css.len() == "style.12345678.css".len() && js.len() == "app.12345678.js".len(),
        "{names:?}"
    );
    assert!(
        !names.contains(&"style.css".to_string()) && !names.contains(&"app.js".to_string()),
        "originals not emitted: {names:?}"
    );
    assert!(
        html.contains(&format!("href=\"/{css}\"")) && html.contains(&format!("src=\"/{js}\"")),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://other.example/\" rel=\"noopener\">"),
        "{html}"
    );
    assert!(html.contains("rel=\"noopener sponsored\""), "{html}");
    assert!(html.contains("<a href=\"/x/\">in</a>"));
    assert!(
        html.contains("<h2 id=\"part-one\">Part one<a class=\"anchor\" href=\"#part-one\""),
        "{html}"
    );
    assert!(html.contains("<img src=\"/a.png\" alt=\"a\" />"), "{html}");
    assert!(
        html.contains("<img src=\"/b.png\" alt=\"b\" loading=\"lazy\" decoding=\"async\" />"),
        "{html}"
    );
    let sitemap = read(&out, "sitemap.xml");
    assert!(
        sitemap.contains("<image:loc>https://s.test/b.png</image:loc>"),
        "{sitemap}"
    );
}

#[test]
fn robots_and_feeds_follow_config() {
    let (_tmp, dir) = small_site(&[
        (
            "site.toml",
            "base_url = 'https://s.test'\ntitle = 'S'\n[robots]\ndisallow = ['/private/']\n[feeds]\nrss = false\ntaxonomies = true\nfull_content = true\n",
        ),
        ("content/blog/_index.md", "+++\ntitle = 'Blog'\n+++\n"),
        (
            "content/blog/a.md",
            "+++\ntitle = 'A'\ndate = 2025-01-01\n[taxonomies]\ntags = ['rust']\n+++\nFirst.\n\nSecond [link](/blog/).\n",
        ),
    ]);
    build_to(&dir, &dir.join("dist"));
    let out = dir.join("dist");
    assert!(read(&out, "robots.txt").contains("Disallow: /private/"));
    assert!(!out.join("rss.xml").exists());
    let term = read(&out, "tags/rust/atom.xml");
    assert!(term.contains("Second"), "full content: {term}");
    assert!(
        term.contains("https://s.test/blog/"),
        "absolute links: {term}"
    );
    assert!(read(&out, "blog/atom.xml").contains("<title>A</title>"));
}
