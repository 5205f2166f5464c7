//! Translated sites: `foo.fr.md` beside `foo.md`, or a `content/fr/` folder, give
//! language-prefixed URLs, `<html lang>`, hreflang alternates in the head and in the
//! sitemap, and feeds per language.

use std::path::Path;

use qpage_generator::{BuildOptions, build};

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn page(title: &str, date: Option<&str>) -> String {
    let date = date.map_or(String::new(), |d| format!("date = {d}\n"));
    format!(
        "+++\ntitle = \"{title}\"\ndescription = \"{title}: a page long enough to have a real description for search.\"\n{date}+++\n\n{title} body text.\n"
    )
}

fn read(dist: &Path, rel: &str) -> String {
    std::fs::read_to_string(dist.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The hreflang links of a page, in order.
fn hreflangs(html: &str) -> Vec<String> {
    html.match_indices("hreflang=\"")
        .map(|(i, _)| {
            let rest = &html[i..];
            let end = rest.find('>').expect("tag end");
            rest[..end].to_string()
        })
        .collect()
}

#[test]
fn translated_pages_link_each_other() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = tmp.path();
    write(
        site,
        "site.toml",
        "base_url = \"https://t.example\"\ntitle = \"T\"\nlanguage = \"en\"\nlanguages = [\"fr\"]\nminify = false\ntaxonomies = []\n",
    );
    write(site, "content/_index.md", &page("Home", None));
    write(site, "content/_index.fr.md", &page("Accueil", None));
    write(site, "content/about.md", &page("About", None));
    write(site, "content/about.fr.md", &page("À propos", None));
    write(site, "content/contact.md", &page("Contact", None));
    write(site, "content/blog/_index.md", &page("Blog", None));
    write(
        site,
        "content/blog/hello.md",
        &page("Hello", Some("2025-01-02")),
    );
    // Folder style for the French blog.
    write(site, "content/fr/blog/_index.md", &page("Journal", None));
    write(
        site,
        "content/fr/blog/hello.md",
        &page("Bonjour", Some("2025-01-03")),
    );
    let report = build(&BuildOptions {
        site_dir: site.to_path_buf(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("build: {e}"));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let dist = site.join("dist");

    let en = read(&dist, "about/index.html");
    let fr = read(&dist, "fr/about/index.html");
    assert!(en.contains("<html lang=\"en\">"), "{en}");
    assert!(fr.contains("<html lang=\"fr\">"), "{fr}");
    let want = vec![
        r#"hreflang="en" href="https://t.example/about/""#.to_string(),
        r#"hreflang="fr" href="https://t.example/fr/about/""#.to_string(),
        r#"hreflang="x-default" href="https://t.example/about/""#.to_string(),
    ];
    assert_eq!(hreflangs(&en), want, "{en}");
    assert_eq!(hreflangs(&fr), want, "{fr}");
    assert!(
        fr.contains(r#"<meta property="og:locale" content="fr">"#),
        "{fr}"
    );
    assert!(
        fr.contains(r#"<meta property="og:locale:alternate" content="en">"#),
        "{fr}"
    );
    assert!(
        fr.contains(r#"<link rel="canonical" href="https://t.example/fr/about/">"#),
        "{fr}"
    );

    // Folder style pairs with the main language's page of the same place and name.
    let hello_fr = read(&dist, "fr/blog/hello/index.html");
    assert_eq!(
        hreflangs(&hello_fr),
        vec![
            r#"hreflang="en" href="https://t.example/blog/hello/""#.to_string(),
            r#"hreflang="fr" href="https://t.example/fr/blog/hello/""#.to_string(),
            r#"hreflang="x-default" href="https://t.example/blog/hello/""#.to_string(),
        ]
    );
    // Sections and home pages too.
    assert_eq!(hreflangs(&read(&dist, "fr/blog/index.html")).len(), 3);
    assert_eq!(hreflangs(&read(&dist, "fr/index.html")).len(), 3);
    assert_eq!(hreflangs(&read(&dist, "index.html")).len(), 3);
    // No translation, no hreflang.
    assert!(hreflangs(&read(&dist, "contact/index.html")).is_empty());

    // The sitemap lists the alternates of translated pages.
    let sitemap = read(&dist, "sitemap.xml");
    assert!(sitemap.contains("xmlns:xhtml"), "{sitemap}");
    let about = sitemap
        .split("<url>")
        .find(|u| u.contains("<loc>https://t.example/about/</loc>"))
        .expect("about in sitemap");
    assert!(
        about.contains(r#"hreflang="fr" href="https://t.example/fr/about/""#),
        "{about}"
    );
    assert!(
        about.contains(r#"hreflang="en" href="https://t.example/about/""#),
        "{about}"
    );

    // The site feed is the main language's; the French blog has its own.
    let atom = read(&dist, "atom.xml");
    assert!(atom.contains("https://t.example/blog/hello/"), "{atom}");
    assert!(!atom.contains("/fr/"), "{atom}");
    let fr_feed = read(&dist, "fr/blog/atom.xml");
    assert!(
        fr_feed.contains("https://t.example/fr/blog/hello/"),
        "{fr_feed}"
    );
}

#[test]
fn a_language_not_declared_is_part_of_the_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let site = tmp.path();
    write(
        site,
        "site.toml",
        "base_url = \"https://t.example\"\ntitle = \"T\"\nlanguages = [\"fr\"]\nminify = false\ntaxonomies = []\n",
    );
    write(site, "content/_index.md", &page("Home", None));
    write(site, "content/notes.de.md", &page("Notes", None));
    build(&BuildOptions {
        site_dir: site.to_path_buf(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("build: {e}"));
    let dist = site.join("dist");
    assert!(
        dist.join("notes-de/index.html").is_file() || dist.join("notes.de/index.html").is_file()
    );
    assert!(!dist.join("de").exists());
}
