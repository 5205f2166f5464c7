//! `qpage check`: small sites built into temp folders, each seeded with one kind of
//! defect, must report exactly that defect under the right rule id; a clean site reports
//! nothing; the example sites report no errors.
//!
//! The sites' templates print a whole page from `extra.html` in the front matter, so
//! each test writes exactly the HTML it means to audit. sitemap.xml and robots.txt are
//! written into dist/ after the build, so the tests do not depend on what the generator
//! emits for them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use qpage_generator::check::{self, CheckError, CheckOptions, Report, Severity};
use qpage_generator::{BuildOptions, build};

const BASE: &str = "https://c.example";

/// One page of a test site.
#[derive(Clone)]
struct P {
    /// Site path without slashes: "" is the home page, "about" is /about/.
    slug: &'static str,
    title: Option<String>,
    description: Option<String>,
    canonical: Option<String>,
    /// Extra <head> HTML.
    head: String,
    /// Everything inside <main>.
    body: String,
    /// The home page links here.
    linked: bool,
    /// The sitemap lists it.
    in_sitemap: bool,
    aliases: Vec<&'static str>,
}

/// `n` words, different for each `seed`.
fn words(seed: &str, n: usize) -> String {
    const W: &[&str] = &[
        "bread", "oven", "crust", "flour", "water", "salt", "proof", "shape", "bake", "cool",
        "slice", "share", "morning", "market", "butter", "honey", "grain", "rye", "spelt", "wheat",
    ];
    let s = seed.bytes().map(usize::from).sum::<usize>();
    (0..n)
        .map(|i| W[(i * 7 + s) % W.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

impl P {
    fn new(slug: &'static str) -> P {
        let name = if slug.is_empty() { "home" } else { slug };
        P {
            slug,
            title: Some(format!("The {name} page of Check")),
            description: Some(format!(
                "What the {name} page is about, told in one sentence long enough for a search snippet."
            )),
            canonical: Some(Self::url(slug)),
            head: String::new(),
            body: format!(
                "<h1>The {name} page</h1><p>{} {name}.</p>",
                words(name, 120)
            ),
            linked: true,
            in_sitemap: true,
            aliases: Vec::new(),
        }
    }

    fn url(slug: &str) -> String {
        if slug.is_empty() {
            format!("{BASE}/")
        } else {
            format!("{BASE}/{slug}/")
        }
    }

    fn path(&self) -> String {
        if self.slug.is_empty() {
            "/".into()
        } else {
            format!("/{}/", self.slug)
        }
    }

    fn html(&self, nav: &str) -> String {
        let mut h =
            String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        if let Some(t) = &self.title {
            h += &format!("<title>{t}</title>\n");
        }
        if let Some(d) = &self.description {
            h += &format!("<meta name=\"description\" content=\"{d}\">\n");
        }
        if let Some(c) = &self.canonical {
            h += &format!("<link rel=\"canonical\" href=\"{c}\">\n");
        }
        h += &self.head;
        h += &format!(
            "\n</head>\n<body>\n<header><a href=\"/\">Check</a></header>\n<main id=\"main\">\n{}\n{nav}\n</main>\n</body>\n</html>\n",
            self.body
        );
        h
    }
}

/// A test site: pages, then sitemap.xml and robots.txt.
struct Site {
    pages: Vec<P>,
    /// Extra site.toml text (e.g. a `[check]` table).
    config: String,
    /// robots.txt; None writes none.
    robots: Option<String>,
    /// sitemap.xml; None generates one from the pages, Some("") writes none.
    sitemap: Option<String>,
    /// Files written into dist after the build.
    dist_files: Vec<(&'static str, String)>,
}

/// The clean site: every rule passes.
fn clean() -> Site {
    let mut home = P::new("");
    home.head = format!(
        r#"<script type="application/ld+json">[{{"@context":"https://schema.org","@type":"WebSite","name":"Check","url":"{BASE}/"}},{{"@context":"https://schema.org","@type":"Organization","name":"Check Inc.","url":"{BASE}/","logo":"{BASE}/pic.png"}}]</script>"#
    );
    home.body += r##"<p><img src="/pic.png" alt="A loaf"> <img src="/pic.png" alt=""> <a href="/guide/#setup">Setup</a> <a href="#main">top of main</a> <a href="https://other.example/x/">elsewhere</a> <a href="mailto:a@c.example">mail</a></p>"##;
    let about = P::new("about");
    let mut guide = P::new("guide");
    guide.aliases = vec!["/old-guide/"];
    guide.head = format!(
        r#"<script type="application/ld+json">{{"@context":"https://schema.org","@type":"BlogPosting","headline":"The guide","author":{{"@type":"Person","name":"A"}},"publisher":{{"@type":"Organization","name":"Check Inc."}}}}</script>
<script type="application/ld+json">{{"@context":"https://schema.org","@type":"BreadcrumbList","itemListElement":[{{"@type":"ListItem","position":1,"name":"Home","item":"{BASE}/"}},{{"@type":"ListItem","position":2,"name":"Guide"}}]}}</script>"#
    );
    guide.body += r#"<h2 id="setup">Setup</h2><h3>Details</h3><h2>More</h2><p><a href="/about/">About</a> <a href="/about">About without slash</a> <a href="../about/#main">About, relative</a></p>"#;
    let mut shop = P::new("shop");
    shop.head = format!(
        r#"<script type="application/ld+json">{{"@context":"https://schema.org","@graph":[{{"@type":"Product","name":"Loaf","url":"{BASE}/shop/","offers":{{"@type":"Offer","price":"4.50","priceCurrency":"EUR"}},"aggregateRating":{{"@type":"AggregateRating","ratingValue":4.5,"reviewCount":3}}}},{{"@type":"Bakery","name":"Check Bakery","address":{{"@type":"PostalAddress","streetAddress":"1 Main St"}}}},{{"@type":"FAQPage","mainEntity":[{{"@type":"Question","name":"Q?","acceptedAnswer":{{"@type":"Answer","text":"A."}}}}]}}]}}</script>"#
    );
    Site {
        pages: vec![home, about, guide, shop],
        config: String::new(),
        robots: Some(format!(
            "User-agent: *\nDisallow: /private/\n\nUser-agent: GPTBot\nDisallow: /\n\nSitemap: {BASE}/sitemap.xml\n"
        )),
        sitemap: None,
        dist_files: Vec::new(),
    }
}

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

struct Built {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

impl Site {
    fn page(&mut self, slug: &str) -> &mut P {
        self.pages
            .iter_mut()
            .find(|p| p.slug == slug)
            .unwrap_or_else(|| panic!("no page {slug}"))
    }

    fn add(&mut self, p: P) -> &mut P {
        self.pages.push(p);
        self.pages.last_mut().expect("pushed")
    }

    /// Writes the site, builds it, then writes sitemap.xml and robots.txt into dist.
    fn build(&self) -> Built {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("site");
        let w = |rel: &str, text: &str| write(&dir.join(rel), text.as_bytes());
        w(
            "site.toml",
            &format!(
                "base_url = \"{BASE}\"\ntitle = \"Check\"\ntaxonomies = []\npaginate_by = 100\n{}",
                self.config
            ),
        );
        w("templates/index.html", "{{ section.extra.html | safe }}");
        w("templates/page.html", "{{ page.extra.html | safe }}");
        w(
            "templates/404.html",
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title><meta name=\"description\" content=\"There is no page at this address on the Check site, sorry about that.\"><meta name=\"robots\" content=\"noindex\"></head><body><main><h1>Not found</h1><p><a href=\"/\">Home</a></p></main></body></html>",
        );
        write(&dir.join("static/pic.png"), PNG);
        let nav: String = self
            .pages
            .iter()
            .filter(|p| p.linked && !p.slug.is_empty())
            .map(|p| format!("<a href=\"{}\">{}</a>\n", p.path(), p.slug))
            .collect();
        for p in &self.pages {
            let html = p.html(if p.slug.is_empty() {
                &nav
            } else {
                "<p><a href=\"/\">Home</a></p>"
            });
            assert!(!html.contains("'''"), "HTML cannot hold '''");
            let aliases = p
                .aliases
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let front = format!(
                "+++\ntitle = \"{}\"\naliases = [{aliases}]\n[extra]\nhtml = '''\n{html}'''\n+++\n",
                if p.slug.is_empty() { "home" } else { p.slug }
            );
            let file = if p.slug.is_empty() {
                "content/_index.md".to_string()
            } else {
                format!("content/{}.md", p.slug)
            };
            let front = if p.slug.is_empty() {
                front.replace("aliases = []\n", "")
            } else {
                front
            };
            w(&file, &front);
        }
        if let Err(e) = build(&BuildOptions {
            site_dir: dir.clone(),
            ..Default::default()
        }) {
            panic!("build failed:\n{e}");
        }
        let dist = dir.join("dist");
        let _ = std::fs::remove_file(dist.join("sitemap.xml"));
        let _ = std::fs::remove_file(dist.join("robots.txt"));
        match &self.sitemap {
            Some(s) if s.is_empty() => {}
            Some(s) => write(&dist.join("sitemap.xml"), s.as_bytes()),
            None => {
                let urls: String = self
                    .pages
                    .iter()
                    .filter(|p| p.in_sitemap)
                    .map(|p| format!("<url><loc>{}</loc></url>\n", P::url(p.slug)))
                    .collect();
                write(
                    &dist.join("sitemap.xml"),
                    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n{urls}</urlset>\n").as_bytes(),
                );
            }
        }
        if let Some(r) = &self.robots {
            write(&dist.join("robots.txt"), r.as_bytes());
        }
        for (rel, text) in &self.dist_files {
            write(&dist.join(rel), text.as_bytes());
        }
        Built { _tmp: tmp, dir }
    }

    fn audit(&self) -> Report {
        let b = self.build();
        b.audit()
    }
}

impl Built {
    fn audit(&self) -> Report {
        check::audit(&self.dir, &CheckOptions::default()).unwrap_or_else(|e| {
            panic!("audit failed: {e}");
        })
    }
}

/// (rule, url) of every finding.
fn found(r: &Report) -> BTreeSet<(String, String)> {
    r.findings
        .iter()
        .map(|f| (f.rule.to_string(), f.url.clone()))
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Asserts the audit found exactly these (rule, url) pairs.
fn assert_found(r: &Report, want: &[(&str, &str)]) {
    let got = found(r);
    let lines: Vec<String> = r.findings.iter().map(ToString::to_string).collect();
    assert_eq!(got, set(want), "findings:\n{}", lines.join("\n"));
}

#[test]
fn clean_site_has_no_findings() {
    let r = clean().audit();
    assert_found(&r, &[]);
    // home, about, guide, shop, the alias page and 404.html.
    assert_eq!(r.pages, 6);
    assert_eq!(r.errors(), 0);
    assert!(
        r.summary()
            .contains("checked 6 pages: 0 errors, 0 warnings"),
        "{}",
        r.summary()
    );
}

#[test]
fn titles() {
    let mut s = clean();
    s.add(P::new("untitled")).title = None;
    s.add(P::new("empty-title")).title = Some("  ".into());
    s.add(P::new("long-title")).title = Some("x".repeat(61));
    s.add(P::new("sixty")).title = Some("y".repeat(60));
    s.add(P::new("twin-a")).title = Some("Twins".into());
    s.add(P::new("twin-b")).title = Some("Twins".into());
    // A noindex page may share a title: it is not in the index.
    let p = s.add(P::new("twin-noindex"));
    p.title = Some("Twins".into());
    p.head = "<meta name=\"robots\" content=\"noindex\">".into();
    p.in_sitemap = false;
    let r = s.audit();
    assert_found(
        &r,
        &[
            ("title-missing", "/untitled/"),
            ("title-missing", "/empty-title/"),
            ("title-too-long", "/long-title/"),
            ("title-duplicate", "/twin-a/"),
            ("title-duplicate", "/twin-b/"),
        ],
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.url == "/twin-a/")
        .expect("twin-a");
    assert!(f.message.contains("/twin-b/"), "{}", f.message);
    assert_eq!(f.severity, Severity::Warn);
}

#[test]
fn descriptions() {
    let mut s = clean();
    s.add(P::new("nodesc")).description = None;
    s.add(P::new("emptydesc")).description = Some(String::new());
    s.add(P::new("longdesc")).description = Some("d".repeat(161));
    s.add(P::new("shortdesc")).description = Some("Too short.".into());
    let same = "The same description on two pages, long enough to pass the length rule.";
    s.add(P::new("same-a")).description = Some(same.into());
    s.add(P::new("same-b")).description = Some(same.into());
    assert_found(
        &s.audit(),
        &[
            ("description-missing", "/nodesc/"),
            ("description-missing", "/emptydesc/"),
            ("description-too-long", "/longdesc/"),
            ("description-too-short", "/shortdesc/"),
            ("description-duplicate", "/same-a/"),
            ("description-duplicate", "/same-b/"),
        ],
    );
}

#[test]
fn headings_and_images() {
    let mut s = clean();
    let body = |b: &str| format!("{b}<p>{}</p>", words("h", 120));
    s.add(P::new("no-h1")).body = body("<h2>Only an h2</h2>");
    s.add(P::new("two-h1")).body = body("<h1>One</h1><h1>Two</h1>");
    s.add(P::new("skip")).body = body("<h1>T</h1><h2>a</h2><h4>skipped h3</h4>");
    s.add(P::new("no-skip")).body = body("<h1>T</h1><h2>a</h2><h3>b</h3><h2>c</h2><h3>d</h3>");
    s.add(P::new("no-alt")).body =
        body("<h1>T</h1><img src=\"/pic.png\"><img src=\"/pic.png\" alt=\"\">");
    let r = s.audit();
    assert_found(
        &r,
        &[
            ("h1-missing", "/no-h1/"),
            ("h1-multiple", "/two-h1/"),
            ("heading-skip", "/skip/"),
            ("img-alt-missing", "/no-alt/"),
        ],
    );
    let skip = r
        .findings
        .iter()
        .find(|f| f.rule == "heading-skip")
        .expect("skip");
    assert!(
        skip.message.contains("<h4> follows <h2>"),
        "{}",
        skip.message
    );
    // One <img> lacks alt: one finding, not two.
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.rule == "img-alt-missing")
            .count(),
        1
    );
}

#[test]
fn image_weight_and_display_size() {
    let mut s = clean();
    let body = |b: &str| format!("<h1>T</h1>{b}<p>{}</p>", words("i", 120));
    s.add(P::new("heavy")).body = body(r#"<img src="/big.png" alt="Big">"#);
    s.add(P::new("shown-small")).body = body(r#"<img src="/wide.png" alt="Wide" width="100">"#);
    s.add(P::new("responsive")).body =
        body(r#"<img src="/wide.png" srcset="/wide.png 800w" sizes="100px" alt="" width="100">"#);
    s.add(P::new("fits")).body = body(r#"<img src="/wide.png" alt="Wide" width="400">"#);
    let built = s.build();
    // Written after the build, so the image pipeline leaves them as they are.
    let dist = built.dir.join("dist");
    image::RgbImage::from_pixel(3000, 4, image::Rgb([200, 100, 50]))
        .save(dist.join("big.png"))
        .expect("big.png");
    image::RgbImage::from_pixel(800, 4, image::Rgb([20, 100, 50]))
        .save(dist.join("wide.png"))
        .expect("wide.png");
    let r = built.audit();
    assert_found(
        &r,
        &[
            ("img-oversized", "/heavy/"),
            ("img-larger-than-displayed", "/shown-small/"),
        ],
    );
    let msg = |rule: &str| {
        r.findings
            .iter()
            .find(|f| f.rule == rule)
            .map(|f| f.message.clone())
            .unwrap_or_default()
    };
    assert!(
        msg("img-oversized").contains("3000 px wide"),
        "{}",
        msg("img-oversized")
    );
    assert!(
        msg("img-larger-than-displayed").contains("800 px wide but shown at 100 px"),
        "{}",
        msg("img-larger-than-displayed")
    );
}

#[test]
fn canonical() {
    let mut s = clean();
    s.add(P::new("no-canonical")).canonical = None;
    s.add(P::new("relative-canonical")).canonical = Some("/relative-canonical/".into());
    // A noindex page needs no canonical.
    let p = s.add(P::new("noindex-no-canonical"));
    p.canonical = None;
    p.head = "<meta name=\"robots\" content=\"noindex,follow\">".into();
    p.in_sitemap = false;
    assert_found(
        &s.audit(),
        &[
            ("canonical-missing", "/no-canonical/"),
            ("canonical-not-absolute", "/relative-canonical/"),
        ],
    );
}

#[test]
fn thin_pages() {
    let mut s = clean();
    s.add(P::new("thin")).body = format!("<h1>Thin</h1><p>{}</p>", words("t", 90));
    // Words outside <main>, in scripts or in nav do not count.
    s.add(P::new("padded")).body = format!(
        "<h1>Padded</h1><p>{}</p><nav>{}</nav><script>{}</script>",
        words("p", 50),
        words("n", 100),
        words("s", 100)
    );
    let p = s.add(P::new("thin-noindex"));
    p.body = "<h1>Thin but noindex</h1>".into();
    p.head = "<meta name=\"robots\" content=\"noindex\">".into();
    p.in_sitemap = false;
    let r = s.audit();
    assert_found(&r, &[("thin-page", "/thin/"), ("thin-page", "/padded/")]);
    let thin = r.findings.iter().find(|f| f.url == "/thin/").expect("thin");
    // 90 words, the <h1> and the Home link.
    assert!(thin.message.starts_with("92 words"), "{}", thin.message);

    // The threshold comes from site.toml.
    s.config = "[check]\nmin_words = 60\n".into();
    assert_found(&s.audit(), &[("thin-page", "/padded/")]);
}

#[test]
fn broken_links_and_anchors() {
    let mut s = clean();
    s.page("about").body += concat!(
        "<p><a href=\"/nowhere/\">a</a> <a href=\"missing.html\">b</a>",
        " <a href=\"https://c.example/gone/\">c</a>",
        " <a href=\"#no-such-id\">d</a> <a href=\"/guide/#nope\">e</a>",
        " <a href=\"/guide/#setup\">fine</a> <a href=\"#main\">fine</a> <a href=\"#\">fine</a>",
        " <img src=\"/missing.png\" alt=\"m\"></p>",
    );
    let r = s.audit();
    assert_found(
        &r,
        &[("link-broken", "/about/"), ("anchor-broken", "/about/")],
    );
    let msgs: Vec<&str> = r.findings.iter().map(|f| f.message.as_str()).collect();
    for want in [
        "`/nowhere/`",
        "`missing.html`",
        "`https://c.example/gone/`",
        "no id `no-such-id` on this page",
        "no id `nope` on /guide/",
        "img src `/missing.png`",
    ] {
        assert!(
            msgs.iter().any(|m| m.contains(want)),
            "{want} not in {msgs:#?}"
        );
    }
    assert_eq!(r.errors(), 6);
}

#[test]
fn links_resolve_through_redirects_file() {
    let mut s = clean();
    s.page("about").body += "<p><a href=\"/shortcut/\">x</a> <a href=\"/docs/anything\">y</a></p>";
    s.dist_files = vec![(
        "_redirects",
        "/shortcut/ /guide/ 301\n/docs/* /guide/ 302\n".into(),
    )];
    assert_found(&s.audit(), &[]);
}

#[test]
fn orphan_pages() {
    let mut s = clean();
    s.add(P::new("lonely")).linked = false;
    // Linking only to itself does not count.
    let p = s.add(P::new("selfish"));
    p.linked = false;
    p.body += "<a href=\"/selfish/\">me</a>";
    let p = s.add(P::new("hidden"));
    p.linked = false;
    p.head = "<meta name=\"robots\" content=\"noindex\">".into();
    p.in_sitemap = false;
    assert_found(
        &s.audit(),
        &[("orphan-page", "/lonely/"), ("orphan-page", "/selfish/")],
    );
}

#[test]
fn redirect_chains_and_broken_redirects() {
    let mut s = clean();
    // /hop/ -> /old-guide/ (the alias page of /guide/) -> /guide/.
    let p = s.add(P::new("hop"));
    p.head = format!("<meta http-equiv=\"refresh\" content=\"0; url={BASE}/old-guide/\">");
    p.linked = false;
    p.in_sitemap = false;
    let p = s.add(P::new("dead-end"));
    p.head = "<meta http-equiv=\"Refresh\" content=\"0;URL='/gone/'\">".into();
    p.linked = false;
    p.in_sitemap = false;
    let r = s.audit();
    assert_found(
        &r,
        &[
            ("redirect-chain", "/hop/"),
            ("redirect-broken", "/dead-end/"),
        ],
    );
    let chain = r
        .findings
        .iter()
        .find(|f| f.rule == "redirect-chain")
        .expect("chain");
    assert!(
        chain.message.contains("/hop/ -> /old-guide/ -> /guide/"),
        "{}",
        chain.message
    );
}

#[test]
fn json_ld() {
    let mut s = clean();
    let ld = |json: &str| format!("<script type=\"application/ld+json\">{json}</script>");
    s.add(P::new("bad-json")).head = ld("{\"@type\": \"Product\",}");
    s.add(P::new("product")).head = ld(r#"{"@type":"Product","name":"Loaf"}"#);
    s.add(P::new("post")).head = ld(r#"{"@type":"BlogPosting","author":"A"}"#);
    s.add(P::new("business")).head = ld(r#"{"@type":"LocalBusiness","name":"B"}"#);
    s.add(P::new("faq")).head = ld(r#"{"@type":"FAQPage"}"#);
    s.add(P::new("crumbs")).head = ld(r#"{"@type":"BreadcrumbList","itemListElement":[]}"#);
    s.add(P::new("org")).head = ld(r#"{"@type":"Organization","url":"https://c.example/"}"#);
    s.add(P::new("website")).head = ld(r#"{"@type":"WebSite","name":"W"}"#);
    let r = s.audit();
    assert_found(
        &r,
        &[
            ("jsonld-invalid", "/bad-json/"),
            ("jsonld-missing-property", "/product/"),
            ("jsonld-missing-property", "/post/"),
            ("jsonld-missing-property", "/business/"),
            ("jsonld-missing-property", "/faq/"),
            ("jsonld-missing-property", "/crumbs/"),
            ("jsonld-missing-property", "/org/"),
            ("jsonld-missing-property", "/website/"),
        ],
    );
    let msg = |url: &str| {
        r.findings
            .iter()
            .find(|f| f.url == url)
            .map(|f| f.message.clone())
            .unwrap_or_default()
    };
    assert!(msg("/product/").contains("offers or review or aggregateRating"));
    assert!(msg("/post/").contains("headline"));
    assert!(msg("/business/").contains("address"));
    assert!(msg("/faq/").contains("mainEntity"));
    assert!(msg("/crumbs/").contains("itemListElement"));
    assert!(msg("/org/").contains("Organization has no name"));
    assert!(msg("/website/").contains("WebSite has no url"));
}

#[test]
fn sitemap_missing() {
    let mut s = clean();
    s.sitemap = Some(String::new());
    s.robots = Some("User-agent: *\nDisallow:\n".into());
    let r = s.audit();
    assert_found(&r, &[("sitemap-missing", "/sitemap.xml")]);
    assert_eq!(r.errors(), 1);
}

#[test]
fn sitemap_contents() {
    let mut s = clean();
    s.page("shop").in_sitemap = false;
    let urls: String = ["", "about", "guide", "ghost", "old-guide"]
        .iter()
        .map(|p| format!("<url><loc>{}</loc></url>", P::url(p)))
        .collect();
    s.sitemap = Some(format!(
        "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{urls}<url><loc>https://elsewhere.example/</loc></url></urlset>"
    ));
    assert_found(
        &s.audit(),
        &[
            ("sitemap-page-missing", "/shop/"),
            ("sitemap-url-missing", "/ghost/"),
            ("sitemap-url-missing", "/sitemap.xml"),
            ("sitemap-url-not-indexable", "/old-guide/"),
        ],
    );
}

#[test]
fn sitemap_index_is_followed() {
    let mut s = clean();
    let urls: String = ["", "about", "guide", "shop"]
        .iter()
        .map(|p| format!("<url><loc>{}</loc></url>", P::url(p)))
        .collect();
    s.sitemap = Some(format!(
        "<sitemapindex><sitemap><loc>{BASE}/sitemap-1.xml</loc></sitemap><sitemap><loc>{BASE}/sitemap-2.xml</loc></sitemap></sitemapindex>"
    ));
    s.dist_files = vec![("sitemap-1.xml", format!("<urlset>{urls}</urlset>"))];
    assert_found(&s.audit(), &[("sitemap-url-missing", "/sitemap-2.xml")]);
    // Without the index's first child, every page is missing from the sitemap.
    s.dist_files = vec![("sitemap-1.xml", "<urlset><url><loc>".into())];
    let r = s.audit();
    assert!(found(&r).contains(&("sitemap-invalid".into(), "/sitemap-1.xml".into())));
    assert!(found(&r).contains(&("sitemap-page-missing".into(), "/about/".into())));
}

#[test]
fn robots_blocking_sitemap_urls() {
    let mut s = clean();
    s.robots = Some(format!(
        "User-agent: *\nDisallow: /guide\nAllow: /guide/$\nDisallow: /shop/\n\nUser-agent: Googlebot\nDisallow: /about/\n\nSitemap: {BASE}/sitemap.xml\n"
    ));
    let r = s.audit();
    // /guide/ is allowed by the longer Allow; Googlebot obeys only its own group.
    assert_found(
        &r,
        &[
            ("robots-blocks-sitemap-url", "/shop/"),
            ("robots-blocks-sitemap-url", "/about/"),
        ],
    );
    let shop = r.findings.iter().find(|f| f.url == "/shop/").expect("shop");
    assert!(shop.message.contains("for *") && shop.message.contains("for Bingbot"));
    assert!(!shop.message.contains("Googlebot"), "{}", shop.message);
}

#[test]
fn severities_and_ignores_come_from_site_toml() {
    let mut s = clean();
    s.add(P::new("lonely")).linked = false;
    s.add(P::new("untitled")).title = None;
    s.config =
        "[check]\nignore = [\"/untitled/\"]\n[check.rules]\norphan-page = \"error\"\n".into();
    let r = s.audit();
    assert_found(&r, &[("orphan-page", "/lonely/")]);
    assert_eq!(r.errors(), 1);
    s.config = "[check.rules]\norphan-page = \"off\"\ntitle-missing = \"warn\"\n".into();
    let r = s.audit();
    assert_found(&r, &[("title-missing", "/untitled/")]);
    assert_eq!((r.errors(), r.warnings()), (0, 1));
}

#[test]
fn unknown_check_settings_are_errors_naming_site_toml() {
    let mut s = clean();
    s.config = "[check]\ntitle_max = 50\nmax_title = 50\n".into();
    let b = s.build();
    match check::audit(&b.dir, &CheckOptions::default()) {
        Err(CheckError::Invalid(d)) => {
            assert_eq!(d.file, Path::new("site.toml"));
            assert_eq!(d.line, Some(7), "{d}");
            assert!(d.message.contains("max_title"), "{d}");
        }
        other => panic!("expected an invalid-config error, got {other:?}"),
    }
}

#[test]
fn builds_when_dist_is_missing_or_asked() {
    let b = clean().build();
    let dist = b.dir.join("dist");
    std::fs::remove_dir_all(&dist).expect("rm dist");
    // Built from scratch: the generator's own sitemap/robots (if any) are audited, so
    // only the page rules are asserted here.
    let r = b.audit();
    assert_eq!(r.pages, 6);
    assert!(dist.join("index.html").is_file());
    let page_rules: Vec<_> = r
        .findings
        .iter()
        .filter(|f| !f.rule.starts_with("sitemap") && !f.rule.starts_with("robots"))
        .collect();
    assert!(page_rules.is_empty(), "{page_rules:#?}");
    // --build rebuilds into another folder when asked.
    let out = b.dir.join("out");
    let r = check::audit(
        &b.dir,
        &CheckOptions {
            build: true,
            dist: Some(out.clone()),
        },
    )
    .expect("audit");
    assert!(out.join("guide/index.html").is_file());
    assert_eq!(r.pages, 6);
}

#[test]
fn json_output_is_machine_readable() {
    let mut s = clean();
    s.add(P::new("untitled")).title = None;
    let r = s.audit();
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
    assert_eq!(v["errors"], 1);
    assert_eq!(v["findings"][0]["rule"], "title-missing");
    assert_eq!(v["findings"][0]["severity"], "error");
    assert_eq!(v["findings"][0]["url"], "/untitled/");
    assert_eq!(
        r.findings[0].to_string(),
        "ERROR /untitled/ title-missing: no <title>"
    );
}

/// The example sites, built into temp folders, have no ERROR findings.
fn example_errors(name: &str) -> Vec<String> {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../content")
        .join(name);
    let r = check::audit(
        &site,
        &CheckOptions {
            build: true,
            dist: Some(tmp.path().join("dist")),
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(r.pages > 5, "{name}: {} pages", r.pages);
    for f in &r.findings {
        eprintln!("{name}: {f}");
    }
    r.findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn example_blog_has_no_errors() {
    let e = example_errors("blog");
    assert!(e.is_empty(), "{}", e.join("\n"));
}

#[test]
fn example_shop_has_no_errors() {
    let e = example_errors("shop");
    assert!(e.is_empty(), "{}", e.join("\n"));
}

#[test]
fn example_local_has_no_errors() {
    let e = example_errors("local");
    assert!(e.is_empty(), "{}", e.join("\n"));
}
