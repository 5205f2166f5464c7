//! Every feature of the generator core, on small sites made in temp folders. Templates
//! here are the site's own overrides, so the assertions read plain output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qpage_generator::{BuildOptions, BuildReport, build, build_sites, new_site};

const CONFIG: &str = r#"base_url = "https://t.example"
title = "T"
paginate_by = 2
taxonomies = ["tags", "categories", "authors"]
minify = false
"#;

/// Compact templates that print what the tests look for.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "templates/page.html",
        "PAGE {{ page.title }} [{{ page.date }}] {{ page.path }} {{ page.permalink }}\n{% for t in page.taxonomies.tags | default(value=[]) %}tag:{{ t.slug }} {% endfor %}\nlower={{ page.lower.path | default(value='-') }} higher={{ page.higher.path | default(value='-') }}\n{% for a in page.ancestors %}anc:{{ a.path }} {% endfor %}\nTOC{% for h in page.toc %} {{ h.level }}#{{ h.id }}{% endfor %}\n{{ page.content | safe }}",
    ),
    (
        "templates/section.html",
        "SECTION {{ section.title }} {{ current_path }} page {{ paginator.current_index }}/{{ paginator.total_pages }} prev={{ paginator.previous | default(value='-') }} next={{ paginator.next | default(value='-') }}\n{% for p in paginator.pages %}item:{{ p.path }} {% endfor %}\n{% for s in section.subsections %}sub:{{ s.path }} {% endfor %}",
    ),
    (
        "templates/index.html",
        "HOME {{ config.title }} {% for p in paginator.pages %}item:{{ p.path }} {% endfor %}{% for s in sections %}top:{{ s.path }} {% endfor %}\n{% for p in data.products | default(value=[]) %}product:{{ p.slug }}={{ p.price }} {% endfor %}\n{% for f in data.faqs | default(value=[]) %}faq:{{ f.question }} {% endfor %}{% for l in data.places | default(value=[]) %}place:{{ l.city }} {% endfor %}",
    ),
    (
        "templates/taxonomy_list.html",
        "TAXLIST {{ taxonomy.name }} {% for t in taxonomy.terms %}{{ t.slug }}({{ t.count }}) {% endfor %}",
    ),
    (
        "templates/taxonomy_term.html",
        "TERM {{ taxonomy.name }}/{{ term.slug }} {{ paginator.current_index }}/{{ paginator.total_pages }} {% for p in paginator.pages %}item:{{ p.path }} {% endfor %}",
    ),
    (
        "templates/product.html",
        "PRODUCT {{ record.name }} {{ record.path }} {{ record.permalink }} {{ collection }} {{ record.description | markdown | safe }}",
    ),
    ("templates/404.html", "NOT FOUND"),
    (
        "templates/shortcodes/note.html",
        "<aside class=\"note-{{ kind }}\">{{ body | safe }}</aside>",
    ),
    (
        "templates/shortcodes/hello.html",
        "<b>hello {{ name }} {{ n + 1 }}</b>",
    ),
];

struct Site {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Site {
    fn new(files: &[(&str, &str)]) -> Site {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("site");
        let site = Site { _tmp: tmp, dir };
        site.write("site.toml", CONFIG);
        for (p, t) in TEMPLATES {
            site.write(p, t);
        }
        for (p, t) in files {
            site.write(p, t);
        }
        site
    }

    fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    fn opts(&self) -> BuildOptions {
        BuildOptions {
            site_dir: self.dir.clone(),
            today: chrono::NaiveDate::from_ymd_opt(2025, 6, 1),
            ..Default::default()
        }
    }

    fn build(&self) -> BuildReport {
        self.build_with(self.opts())
    }

    fn build_with(&self, opts: BuildOptions) -> BuildReport {
        match build(&opts) {
            Ok(r) => r,
            Err(e) => panic!("build failed:\n{e}"),
        }
    }

    fn errors(&self) -> Vec<String> {
        match build(&self.opts()) {
            Ok(_) => panic!("build should fail"),
            Err(e) => e.diagnostics.iter().map(ToString::to_string).collect(),
        }
    }

    fn read(&self, rel: &str) -> String {
        let p = self.dir.join("dist").join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn exists(&self, rel: &str) -> bool {
        self.dir.join("dist").join(rel).exists()
    }
}

fn post(title: &str, date: &str, extra: &str) -> String {
    format!("+++\ntitle = \"{title}\"\ndate = {date}\n{extra}\n+++\nBody of {title}.\n")
}

#[test]
fn front_matter_toml_and_yaml_drafts_and_future() {
    let s = Site::new(&[
        ("content/blog/_index.md", "+++\ntitle = \"Blog\"\n+++\n"),
        ("content/blog/a.md", &post("A", "2025-01-01", "")),
        (
            "content/blog/b.md",
            "---\ntitle: B yaml\ndate: 2025-02-01\nslug: Bee Custom\ntaxonomies:\n  tags: [Rust Lang]\n---\nYAML *body*\n",
        ),
        (
            "content/blog/draft.md",
            &post("Draft", "2025-01-02", "draft = true"),
        ),
        ("content/blog/future.md", &post("Future", "2030-01-01", "")),
    ]);
    s.build();
    assert!(
        s.read("blog/a/index.html")
            .contains("PAGE A [2025-01-01] /blog/a/ https://t.example/blog/a/")
    );
    let b = s.read("blog/bee-custom/index.html");
    assert!(b.contains("PAGE B yaml"), "{b}");
    assert!(b.contains("tag:rust-lang"), "{b}");
    assert!(b.contains("<em>body</em>"));
    assert!(!s.exists("blog/draft/index.html"));
    assert!(!s.exists("blog/future/index.html"));
    s.build_with(BuildOptions {
        drafts: true,
        future: true,
        ..s.opts()
    });
    assert!(s.exists("blog/draft/index.html"));
    assert!(s.exists("blog/future/index.html"));
}

#[test]
fn sections_nest_sort_and_paginate_with_clean_urls() {
    let s = Site::new(&[
        ("content/_index.md", "+++\ntitle = \"Home\"\n+++\n"),
        (
            "content/blog/_index.md",
            "+++\ntitle = \"Blog\"\nsort_by = \"date\"\n+++\n",
        ),
        ("content/blog/one.md", &post("One", "2025-01-01", "")),
        ("content/blog/two.md", &post("Two", "2025-01-02", "")),
        ("content/blog/three.md", &post("Three", "2025-01-03", "")),
        (
            "content/blog/deep/_index.md",
            "+++\ntitle = \"Deep\"\nsort_by = \"weight\"\n+++\n",
        ),
        (
            "content/blog/deep/x.md",
            &post("X", "2025-01-01", "weight = 2"),
        ),
        (
            "content/blog/deep/y.md",
            &post("Y", "2025-01-01", "weight = 1"),
        ),
        (
            "content/docs/_index.md",
            "+++\ntitle = \"Docs\"\nsort_by = \"title\"\npaginate_by = 5\n+++\n",
        ),
        ("content/docs/zeta.md", &post("Zeta", "2025-01-01", "")),
        ("content/docs/alpha.md", &post("alpha", "2025-01-01", "")),
    ]);
    s.build();
    let p1 = s.read("blog/index.html");
    assert!(p1.contains("page 1/2 prev= next=/blog/page/2/"), "{p1}");
    assert!(p1.contains("item:/blog/three/ item:/blog/two/ \n"), "{p1}");
    assert!(p1.contains("sub:/blog/deep/"));
    let p2 = s.read("blog/page/2/index.html");
    assert!(p2.contains("page 2/2 prev=/blog/ next=\n"), "{p2}");
    assert!(p2.contains("item:/blog/one/"));
    let deep = s.read("blog/deep/index.html");
    assert!(
        deep.contains("item:/blog/deep/y/ item:/blog/deep/x/"),
        "{deep}"
    );
    let docs = s.read("docs/index.html");
    assert!(
        docs.contains("item:/docs/alpha/ item:/docs/zeta/"),
        "{docs}"
    );
    // Neighbours and ancestors.
    let two = s.read("blog/two/index.html");
    assert!(
        two.contains("lower=/blog/one/ higher=/blog/three/"),
        "{two}"
    );
    let x = s.read("blog/deep/x/index.html");
    assert!(x.contains("anc:/ anc:/blog/ anc:/blog/deep/"), "{x}");
    assert!(s.read("index.html").contains("top:/blog/ top:/docs/"));
}

#[test]
fn taxonomies_have_list_and_paginated_term_pages() {
    let s = Site::new(&[
        (
            "content/a.md",
            &post(
                "A",
                "2025-01-01",
                "[taxonomies]\ntags = [\"Rust\", \"web\"]\nauthors = [\"Ann\"]",
            ),
        ),
        (
            "content/b.md",
            &post("B", "2025-01-02", "[taxonomies]\ntags = [\"rust\"]"),
        ),
        (
            "content/c.md",
            &post(
                "C",
                "2025-01-03",
                "[taxonomies]\ntags = [\"Rust\"]\ncategories = [\"News\"]",
            ),
        ),
    ]);
    s.build();
    let list = s.read("tags/index.html");
    assert!(list.contains("rust(3) web(1)"), "{list}");
    let t1 = s.read("tags/rust/index.html");
    assert!(t1.contains("TERM tags/rust 1/2 item:/c/ item:/b/"), "{t1}");
    assert!(s.read("tags/rust/page/2/index.html").contains("item:/a/"));
    assert!(s.read("authors/ann/index.html").contains("item:/a/"));
    assert!(s.read("categories/news/index.html").contains("item:/c/"));
}

#[test]
fn undeclared_taxonomy_is_an_error() {
    let s = Site::new(&[(
        "content/a.md",
        &post("A", "2025-01-01", "[taxonomies]\nflavors = [\"x\"]"),
    )]);
    let errs = s.errors();
    assert!(
        errs[0].contains("content/a.md") && errs[0].contains("unknown taxonomy `flavors`"),
        "{errs:?}"
    );
}

#[test]
fn data_in_every_format_and_pages_per_record() {
    let s = Site::new(&[
        ("content/_index.md", "+++\ntitle = \"Home\"\n+++\n"),
        (
            "data/products/tea.json",
            r#"{"name": "Green Tea", "price": "3.50", "description": "Fresh *green* tea."}"#,
        ),
        (
            "data/products/mug.toml",
            "name = \"Big Mug\"\nprice = \"9.00\"\ndescription = \"A mug.\"\n",
        ),
        (
            "data/products/pot.yaml",
            "name: Tea Pot\nslug: pot\nprice: '20.00'\ndescription: A pot.\n",
        ),
        ("data/faqs.yaml", "- question: Why?\n  answer: Because.\n"),
        ("data/places.csv", "name,city\nShop,Oslo\n"),
    ]);
    s.write("site.toml", &format!("{CONFIG}\n[collections.products]\ntemplate = \"product.html\"\npath = \"/shop/{{slug}}/\"\nsort_by = \"name\"\n"));
    let report = s.build();
    assert_eq!(report.records, 3);
    let home = s.read("index.html");
    assert!(
        home.contains("product:big-mug=9.00 product:green-tea=3.50 product:pot=20.00"),
        "{home}"
    );
    assert!(home.contains("faq:Why?"));
    assert!(home.contains("place:Oslo"));
    let tea = s.read("shop/green-tea/index.html");
    assert!(
        tea.contains(
            "PRODUCT Green Tea /shop/green-tea/ https://t.example/shop/green-tea/ products"
        ),
        "{tea}"
    );
    assert!(tea.contains("<em>green</em>"), "{tea}");
}

#[test]
fn missing_collection_data_is_an_error() {
    let s = Site::new(&[]);
    s.write(
        "site.toml",
        &format!("{CONFIG}\n[collections.products]\ntemplate = \"product.html\"\n"),
    );
    let errs = s.errors();
    assert!(
        errs.iter().any(|e| e.contains("site.toml")
            && e.contains("collection `products` has no data")
            && e.contains("data/products")),
        "{errs:?}"
    );
}

#[test]
fn markdown_extensions_shortcodes_and_highlighting() {
    let s = Site::new(&[(
        "content/md.md",
        "+++\ntitle = \"MD\"\n+++\n## Intro\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ \"smart\"\n\n- [x] done\n\nNote[^1].\n\n[^1]: Foot.\n\n{{ hello(name=\"Ann\", n=41) }}\n\n{% note(kind=\"tip\") %}\nInside **bold**\n{% end %}\n\n```rust\nfn main() {}\n```\n\n```\n{{ hello(name=\"not expanded\") }}\n```\n",
    )]);
    s.build();
    let md = s.read("md/index.html");
    for needle in [
        "<h2 id=\"intro\">",
        "<table>",
        "<del>old</del>",
        "“smart”",
        "type=\"checkbox\"",
        "footnote-definition",
        "<b>hello Ann 42</b>",
        "<aside class=\"note-tip\"><p>Inside <strong>bold</strong></p>\n</aside>",
        "data-lang=\"rust\"",
        "class=\"hl-",
        "{{ hello(name=&quot;not expanded&quot;) }}",
        "TOC 2#intro",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
}

#[test]
fn shortcode_errors_name_file_and_line() {
    let s = Site::new(&[
        (
            "content/a.md",
            "+++\ntitle = \"A\"\n+++\nline 4\n{{ nosuch(x=1) }}\n",
        ),
        (
            "content/b.md",
            "+++\ntitle = \"B\"\n+++\n\n\n{{ hello(name=) }}\n",
        ),
    ]);
    let errs = s.errors();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("content/a.md:5:1: unknown shortcode `nosuch`"),
        "{errs:?}"
    );
    assert!(errs[1].starts_with("content/b.md:6:"), "{errs:?}");
}

#[test]
fn site_templates_override_the_theme_and_theme_is_used_otherwise() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("plain");
    std::fs::create_dir_all(dir.join("content")).expect("mkdir");
    std::fs::write(dir.join("site.toml"), CONFIG).expect("write");
    std::fs::write(dir.join("content/a.md"), post("Plain", "2025-01-01", "")).expect("write");
    build(&BuildOptions {
        site_dir: dir.clone(),
        ..Default::default()
    })
    .expect("build with the theme");
    let html = std::fs::read_to_string(dir.join("dist/a/index.html")).expect("page");
    assert!(
        html.contains("<html lang=\"en\">"),
        "default theme not used: {html}"
    );
    let css = std::fs::read_dir(dir.join("dist"))
        .expect("dist")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .any(|n| n.starts_with("style.") && n.ends_with(".css") && n != "style.css");
    assert!(css, "theme static files are copied, CSS fingerprinted");
    std::fs::create_dir_all(dir.join("templates")).expect("mkdir");
    std::fs::write(dir.join("templates/page.html"), "OVERRIDE {{ page.title }}").expect("write");
    build(&BuildOptions {
        site_dir: dir.clone(),
        ..Default::default()
    })
    .expect("build with override");
    assert_eq!(
        std::fs::read_to_string(dir.join("dist/a/index.html")).expect("page"),
        "OVERRIDE Plain"
    );
}

#[test]
fn static_files_bundles_aliases_404_and_manifest() {
    let s = Site::new(&[
        ("static/robots.txt", "User-agent: *\n"),
        (
            "static/img/logo.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
        ),
        (
            "content/post/index.md",
            &post(
                "Bundle",
                "2025-01-01",
                "aliases = [\"/old/post\", \"legacy.html\"]",
            ),
        ),
        ("content/post/photo.txt", "asset"),
    ]);
    s.build();
    assert_eq!(s.read("robots.txt"), "User-agent: *\n");
    assert_eq!(s.read("post/photo.txt"), "asset");
    assert!(s.read("post/index.html").contains("PAGE Bundle"));
    let alias = s.read("old/post/index.html");
    assert!(
        alias.contains("url=https://t.example/post/") && alias.contains("rel=\"canonical\""),
        "{alias}"
    );
    assert!(s.read("legacy.html").contains("https://t.example/post/"));
    assert_eq!(s.read("404.html"), "NOT FOUND");
    let manifest: serde_json::Value =
        serde_json::from_str(&s.read(".qpage/manifest.json")).expect("json");
    let entry = &manifest["files"]["/robots.txt"];
    assert_eq!(entry["size"], 14);
    assert_eq!(entry["content_type"], "text/plain; charset=utf-8");
    assert_eq!(entry["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(
        manifest["files"]["/post/index.html"]["content_type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(
        manifest["files"]["/img/logo.svg"]["content_type"],
        "image/svg+xml; charset=utf-8"
    );
}

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(e.path()).expect("read"))
        })
        .collect()
}

#[test]
fn two_builds_are_byte_identical() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../content/blog");
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for out in [&a, &b] {
        build(&BuildOptions {
            site_dir: example.clone(),
            output: Some(out.clone()),
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
            ..Default::default()
        })
        .expect("build");
    }
    let (ta, tb) = (tree(&a), tree(&b));
    assert!(ta.len() > 50);
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (k, v) in &ta {
        assert!(v == &tb[k], "{k} differs between builds");
    }
}

#[test]
fn malformed_front_matter_is_located_and_every_error_is_reported() {
    let s = Site::new(&[
        ("content/good.md", &post("Good", "2025-01-01", "")),
        (
            "content/toml.md",
            "+++\ntitle = \"T\"\ndate = 2025-01-01\ntags = [\"a\"\n+++\nx\n",
        ),
        (
            "content/yaml.md",
            "---\ntitle: Y\ndescription: [unclosed\n---\nx\n",
        ),
        ("content/notitle.md", "+++\ndescription = \"d\"\n+++\nx\n"),
        ("content/unclosed.md", "+++\ntitle = \"U\"\n"),
        (
            "content/baddate.md",
            "+++\ntitle = \"D\"\ndate = \"yesterday\"\n+++\n",
        ),
    ]);
    let errs = s.errors();
    assert_eq!(errs.len(), 5, "{errs:#?}");
    let find = |f: &str| {
        errs.iter()
            .find(|e| e.starts_with(f))
            .unwrap_or_else(|| panic!("no error for {f}: {errs:#?}"))
    };
    assert!(
        find("content/toml.md:").starts_with("content/toml.md:4:"),
        "{errs:#?}"
    );
    assert!(find("content/toml.md:").contains("help:"));
    assert!(
        find("content/yaml.md:").starts_with("content/yaml.md:3:")
            || find("content/yaml.md:").starts_with("content/yaml.md:4:"),
        "{errs:#?}"
    );
    assert!(find("content/notitle.md").contains("no `title`"));
    assert!(find("content/unclosed.md").contains("never closed"));
    assert!(find("content/baddate.md").contains("not a date"));
    assert!(
        !s.dir.join("dist").exists(),
        "nothing may be written on failure"
    );
}

#[test]
fn invalid_utf8_is_located() {
    let s = Site::new(&[]);
    s.write_bytes(
        "content/latin1.md",
        b"+++\ntitle = \"L\"\n+++\nCaf\xe9 ok\n",
    );
    let errs = s.errors();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("content/latin1.md:4:4: the file is not valid UTF-8"),
        "{errs:?}"
    );
}

#[test]
fn unknown_template_and_template_errors_are_located() {
    let s = Site::new(&[
        (
            "content/a.md",
            &post("A", "2025-01-01", "template = \"nope.html\""),
        ),
        (
            "content/b.md",
            &post("B", "2025-01-01", "template = \"broken.html\""),
        ),
        (
            "templates/broken.html",
            "line one\n{{ no_such_variable.field }}\n",
        ),
    ]);
    let errs = s.errors();
    assert!(
        errs.iter()
            .any(|e| e.starts_with("content/a.md") && e.contains("template `nope.html` not found")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("templates/broken.html:2:") && e.contains("content/b.md")),
        "{errs:#?}"
    );
}

#[test]
fn template_syntax_errors_are_all_reported() {
    let s = Site::new(&[
        ("templates/one.html", "ok\n{% if %}\n"),
        ("templates/two.html", "{{ unclosed\n"),
    ]);
    let errs = s.errors();
    assert!(
        errs.iter().any(|e| e.starts_with("templates/one.html:2:")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with("templates/two.html:1:")),
        "{errs:#?}"
    );
}

#[test]
fn unknown_filters_in_templates_are_all_located() {
    let s = Site::new(&[
        ("templates/f1.html", "a\nb\n{{ x | no_such_filter }}"),
        ("templates/f2.html", "{{ no_such_function() }}"),
    ]);
    let errs = s.errors();
    assert!(
        errs.iter()
            .any(|e| e.starts_with("templates/f1.html:3:") && e.contains("no_such_filter")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("templates/f2.html:1:") && e.contains("no_such_function")),
        "{errs:#?}"
    );
}

#[test]
fn two_pages_claiming_one_url_is_an_error() {
    let s = Site::new(&[
        ("content/a.md", &post("A", "2025-01-01", "slug = \"same\"")),
        ("content/same.md", &post("Same", "2025-01-01", "")),
        (
            "content/b.md",
            &post("B", "2025-01-01", "aliases = [\"/same/\"]"),
        ),
    ]);
    let errs = s.errors();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs.iter()
            .all(|e| e.contains("URL /same/ is already taken")),
        "{errs:#?}"
    );
}

#[test]
fn missing_data_file_referenced_and_bad_data_are_located() {
    let s = Site::new(&[(
        "data/things.json",
        "[\n {\"name\": \"a\"},\n {\"name\": }\n]",
    )]);
    let errs = s.errors();
    assert!(errs[0].starts_with("data/things.json:3:"), "{errs:?}");
}

#[test]
fn failed_build_keeps_the_previous_output() {
    let s = Site::new(&[("content/a.md", &post("A", "2025-01-01", ""))]);
    s.build();
    assert!(s.read("a/index.html").contains("PAGE A"));
    s.write("content/b.md", "+++\ntitle = \n+++\n");
    let _ = s.errors();
    assert!(
        s.read("a/index.html").contains("PAGE A"),
        "old dist must survive a failed build"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&s.dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn many_sites_continue_past_a_failure() {
    let tmp = tempfile::tempdir().expect("tmp");
    for name in ["one", "two", "broken"] {
        let d = tmp.path().join(name);
        new_site(&d).expect("scaffold");
    }
    std::fs::write(
        tmp.path().join("broken/content/about.md"),
        "+++\ntitle = = 1\n+++\n",
    )
    .expect("write");
    let done = std::sync::atomic::AtomicUsize::new(0);
    let outcomes = build_sites(tmp.path(), &BuildOptions::default(), &|_| {
        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .expect("sites found");
    assert_eq!(outcomes.len(), 3);
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 3);
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| {
            o.site_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .collect();
    assert_eq!(failed, vec![Some("broken".to_string())]);
    assert!(
        tmp.path()
            .join("one/dist/blog/hello-world/index.html")
            .is_file()
    );
    assert!(tmp.path().join("two/dist/index.html").is_file());
    assert!(!tmp.path().join("broken/dist").exists());
}

#[test]
fn scaffolded_site_builds_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path().join("mysite");
    new_site(&d).expect("scaffold");
    let r = build(&BuildOptions {
        site_dir: d.clone(),
        ..Default::default()
    })
    .expect("builds");
    assert!(r.pages >= 2);
    assert!(new_site(&d).is_err());
}

#[test]
fn folder_theme_is_used_and_site_templates_win() {
    let s = Site::new(&[
        (
            "themes/mine/templates/page.html",
            "THEME PAGE {{ page.title }}",
        ),
        ("themes/mine/templates/index.html", "THEME HOME"),
        ("themes/mine/templates/404.html", "THEME 404"),
        ("themes/mine/static/theme.txt", "theme file"),
        ("content/a.md", &post("A", "2025-01-01", "")),
    ]);
    // The site's own templates/ (from TEMPLATES) override the folder theme's.
    std::fs::remove_file(s.dir.join("templates/page.html")).expect("rm");
    s.write("site.toml", &format!("{CONFIG}theme = \"mine\"\n"));
    s.build();
    assert_eq!(s.read("a/index.html"), "THEME PAGE A");
    assert_eq!(s.read("404.html"), "NOT FOUND");
    assert_eq!(s.read("theme.txt"), "theme file");
    s.write("site.toml", &format!("{CONFIG}theme = \"absent\"\n"));
    let errs = s.errors();
    assert!(
        errs[0].starts_with("themes/absent: theme folder not found"),
        "{errs:?}"
    );
}
