//! Incremental rebuilds: after every edit of a sequence (page text, title, tags, a new
//! page, a removed page, a template, a stylesheet, an image, data, a broken and then
//! fixed front matter), the session's output folder is byte-for-byte the folder a
//! fresh full build with the same options writes; and the edits that can be scoped
//! are rebuilt incrementally, rendering a handful of pages, not all of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qpage_generator::incremental::{Mode, Session, Update};
use qpage_generator::{BuildOptions, build};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../content")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.expect("walk");
        let rel = e.path().strip_prefix(from).expect("prefix");
        let dest = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path()
                    .strip_prefix(dir)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    site: PathBuf,
    fresh: PathBuf,
    opts: BuildOptions,
    session: Session,
    /// Pages the first build rendered.
    total: usize,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        Fixture::with(Some(name), &[])
    }

    /// The example `name` (or an empty folder) with more files (path, text) written
    /// into it first.
    fn with(name: Option<&str>, more: &[(String, String)]) -> Fixture {
        let tmp = tempfile::tempdir().expect("tmp");
        let site = tmp.path().join("site");
        std::fs::create_dir_all(&site).expect("mkdir");
        if let Some(name) = name {
            copy_dir(&example(name), &site);
        }
        for (rel, text) in more {
            let p = site.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        let opts = BuildOptions {
            site_dir: site.clone(),
            output: Some(tmp.path().join("dev-out")),
            dev: true,
            today: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
            ..Default::default()
        };
        let (session, first) = Session::start(opts.clone()).expect("start");
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        let fresh = tmp.path().join("fresh");
        let f = Fixture {
            _tmp: tmp,
            site,
            fresh,
            opts,
            session,
            total: first.rendered,
        };
        f.assert_same_as_full_build("first build");
        f
    }

    fn write(&mut self, rel: &str, text: &str) -> Update {
        let p = self.site.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        self.session.update(&[PathBuf::from(rel)])
    }

    fn edit(&mut self, rel: &str, from: &str, to: &str) -> Update {
        let text = std::fs::read_to_string(self.site.join(rel)).expect("read");
        assert!(text.contains(from), "{rel} lacks {from:?}");
        self.write(rel, &text.replacen(from, to, 1))
    }

    fn remove(&mut self, rel: &str) -> Update {
        std::fs::remove_file(self.site.join(rel)).expect("rm");
        self.session.update(&[PathBuf::from(rel)])
    }

    fn assert_same_as_full_build(&self, step: &str) {
        let _ = std::fs::remove_dir_all(&self.fresh);
        let opts = BuildOptions {
            output: Some(self.fresh.clone()),
            ..self.opts.clone()
        };
        if let Err(e) = build(&opts) {
            panic!("{step}: the full build failed: {e}");
        }
        let full = tree(&self.fresh);
        let inc = tree(self.session.output());
        let only_full: Vec<&String> = full.keys().filter(|k| !inc.contains_key(*k)).collect();
        let only_inc: Vec<&String> = inc.keys().filter(|k| !full.contains_key(*k)).collect();
        assert!(
            only_full.is_empty() && only_inc.is_empty(),
            "{step}: files only in the full build: {only_full:?}; only in the incremental one: {only_inc:?}"
        );
        for (k, v) in &full {
            if inc[k] != *v {
                let (a, b) = (String::from_utf8_lossy(v), String::from_utf8_lossy(&inc[k]));
                let a_lines: Vec<&str> = a.lines().collect();
                let b_lines: Vec<&str> = b.lines().collect();
                let first = (0..a_lines.len().max(b_lines.len()))
                    .find(|&i| a_lines.get(i) != b_lines.get(i))
                    .unwrap_or(0);
                let from = first.saturating_sub(3);
                panic!(
                    "{step}: {k} differs from line {}\n--- full build:\n{}\n--- incremental:\n{}",
                    first + 1,
                    a_lines[from.min(a_lines.len())..(first + 3).min(a_lines.len())].join("\n"),
                    b_lines[from.min(b_lines.len())..(first + 3).min(b_lines.len())].join("\n"),
                );
            }
        }
    }
}

fn ok(u: &Update, step: &str) {
    assert!(u.errors.is_empty(), "{step}: {:?}", u.errors);
}

fn changed(u: &Update) -> Vec<&str> {
    u.changed.iter().map(|(p, _)| p.as_str()).collect()
}

#[test]
fn blog_edits_match_a_full_build() {
    let mut f = Fixture::new("blog");
    let post = "content/blog/ipv6-on-a-small-server.md";

    // Body text: the page and the pages listing it, not the whole site.
    let u = f.edit(post, "\n\n", "\n\nA sentence added while previewing.\n\n");
    ok(&u, "body edit");
    assert_eq!(u.mode, Mode::Incremental, "body edit");
    assert!(
        u.rendered > 0 && u.rendered < 30,
        "body edit rendered {}",
        u.rendered
    );
    let paths = changed(&u);
    assert!(
        paths.contains(&"blog/ipv6-on-a-small-server/index.html"),
        "{paths:?}"
    );
    assert!(paths.contains(&"blog/atom.xml"), "{paths:?}");
    assert!(!paths.contains(&"about/index.html"), "{paths:?}");
    let page = std::fs::read_to_string(
        f.session
            .output()
            .join("blog/ipv6-on-a-small-server/index.html"),
    )
    .expect("page");
    assert!(page.contains("A sentence added while previewing."));
    f.assert_same_as_full_build("body edit");

    // A post the feeds do not show (older than the newest 20): the feeds stay as
    // they were; the rest as a full build.
    let site_feed = std::fs::read_to_string(f.session.output().join("atom.xml")).expect("feed");
    let old_post = std::fs::read_dir(f.site.join("content/blog"))
        .expect("posts")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".md").map(str::to_string))
        .filter(|stem| !stem.starts_with('_'))
        .find(|stem| !site_feed.contains(&format!("/blog/{stem}/")))
        .expect("a post older than the feeds' newest 20");
    let u = f.edit(
        &format!("content/blog/{old_post}.md"),
        "\n\n",
        "\n\nAn old post, edited.\n\n",
    );
    ok(&u, "old post");
    assert_eq!(u.mode, Mode::Incremental, "old post");
    let paths = changed(&u);
    assert!(
        paths.contains(&format!("blog/{old_post}/index.html").as_str()),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.ends_with(".xml")),
        "no feed or sitemap shows the edited text: {paths:?}"
    );
    f.assert_same_as_full_build("old post");

    // An image added to the text: the page's sitemap entry lists it, so the sitemap is
    // made again (in place, with the page).
    let u = f.edit(post, "\n\n", "\n\n![A rocket](/images/rocket.jpg)\n\n");
    ok(&u, "image in the text");
    assert_eq!(u.mode, Mode::Incremental, "image in the text");
    assert!(changed(&u).contains(&"sitemap.xml"), "{:?}", changed(&u));
    f.assert_same_as_full_build("image in the text");

    // Title: listings, neighbours and term pages show it.
    let text = std::fs::read_to_string(f.site.join(post)).expect("read");
    let title_line = text
        .lines()
        .find(|l| l.starts_with("title"))
        .expect("title line")
        .to_string();
    let u = f.edit(post, &title_line, "title = \"IPv6 on one small server\"");
    ok(&u, "title edit");
    assert_eq!(u.mode, Mode::Incremental, "title edit");
    f.assert_same_as_full_build("title edit");

    // Nothing changed in the bytes: nothing written.
    let u = f.edit(post, "IPv6 on one small server", "IPv6 on one small server");
    ok(&u, "same bytes");
    assert!(u.changed.is_empty(), "{:?}", changed(&u));

    // A new page, then its tags, then removing it: the model changes.
    let new_post = "content/blog/a-new-post.md";
    let u = f.write(
        new_post,
        "+++\ntitle = \"A new post\"\ndate = 2025-12-30\n[taxonomies]\ntags = [\"ipv6\", \"brand-new-tag\"]\n+++\n\nFresh words.\n",
    );
    ok(&u, "new page");
    assert_eq!(u.mode, Mode::Incremental, "new page");
    assert!(changed(&u).contains(&"blog/a-new-post/index.html"));
    assert!(changed(&u).contains(&"tags/brand-new-tag/index.html"));
    f.assert_same_as_full_build("new page");
    let u = f.edit(new_post, "\"brand-new-tag\"", "\"another-tag\"");
    ok(&u, "tags edit");
    f.assert_same_as_full_build("tags edit");
    let u = f.remove(new_post);
    ok(&u, "removed page");
    assert!(
        u.changed
            .iter()
            .any(|(p, b)| p == "blog/a-new-post/index.html" && b.is_none()),
        "{:?}",
        changed(&u)
    );
    f.assert_same_as_full_build("removed page");

    // A broken front matter: an error naming the file and line, the last good page
    // kept; fixing it clears the error.
    let good = std::fs::read_to_string(f.site.join(post)).expect("read");
    let u = f.write(post, &good.replacen("title =", "title = = ", 1));
    assert_eq!(u.errors.len(), 1, "{:?}", u.errors);
    let e = &u.errors[0];
    assert!(e.file.ends_with("ipv6-on-a-small-server.md"), "{e}");
    assert!(e.line.is_some(), "{e}");
    assert!(
        f.session
            .output()
            .join("blog/ipv6-on-a-small-server/index.html")
            .is_file()
    );
    let u = f.write(post, &good);
    ok(&u, "fixed front matter");
    assert!(f.session.errors().is_empty());
    f.assert_same_as_full_build("fixed front matter");

    // A template override: the pages using it (here, every content page).
    let page_tpl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes/default/templates/page.html"),
    )
    .expect("theme page.html");
    let u = f.write(
        "templates/page.html",
        &page_tpl.replacen(
            "{% block content %}",
            "{% block content %}<p>Overridden template</p>",
            1,
        ),
    );
    ok(&u, "template");
    assert_eq!(u.mode, Mode::Incremental);
    assert!(changed(&u).contains(&"blog/ipv6-on-a-small-server/index.html"));
    assert!(
        !changed(&u).contains(&"tags/index.html"),
        "{:?}",
        changed(&u)
    );
    f.assert_same_as_full_build("template");

    // A broken template: an error with the template's file and line.
    let u = f.write("templates/page.html", "{% if %}\n");
    assert!(!u.errors.is_empty());
    assert!(
        u.errors.iter().any(|e| e.file.ends_with("page.html")),
        "{:?}",
        u.errors
    );
    std::fs::remove_file(f.site.join("templates/page.html")).expect("rm");
    let u = f.session.update(&[PathBuf::from("templates/page.html")]);
    ok(&u, "template removed");
    f.assert_same_as_full_build("template removed");

    // A stylesheet: only the stylesheet changes (the browser swaps it).
    let u = f.write("static/style.css", "body { color: #123456 }\n");
    ok(&u, "stylesheet");
    assert!(u.css_only, "{:?}", changed(&u));
    assert_eq!(changed(&u), vec!["style.css"]);
    f.assert_same_as_full_build("stylesheet");

    // An image: processed again; the pages showing it change.
    let img = std::fs::read(f.site.join("static/images/rocket.jpg")).expect("img");
    let decoded = image_of(&img);
    std::fs::write(f.site.join("static/images/rocket.jpg"), decoded).expect("write img");
    let u = f
        .session
        .update(&[PathBuf::from("static/images/rocket.jpg")]);
    ok(&u, "image");
    assert!(
        changed(&u).contains(&"images/rocket.jpg"),
        "{:?}",
        changed(&u)
    );
    f.assert_same_as_full_build("image");
}

/// The same photo, slightly changed (so it gets new variants).
fn image_of(jpeg: &[u8]) -> Vec<u8> {
    // Flip one byte well inside the entropy-coded data: still a decodable JPEG with
    // different pixels.
    let mut out = jpeg.to_vec();
    let at = out.len() / 2;
    out[at] = out[at].wrapping_add(1);
    out
}

#[test]
fn data_edits_match_a_full_build() {
    let mut f = Fixture::new("local");
    let data: Vec<PathBuf> = walkdir::WalkDir::new(f.site.join("data"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(&f.site)
                .expect("prefix")
                .to_path_buf()
        })
        .collect();
    let file = data
        .iter()
        .find(|p| p.ends_with("business.toml"))
        .expect("data/business.toml")
        .clone();
    let rel = file.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(f.site.join(&file)).expect("read");
    // Change the first string value that looks like prose.
    let word = text
        .split('"')
        .skip(1)
        .step_by(2)
        .find(|s| s.len() > 12 && s.contains(' '))
        .expect("a text value")
        .to_string();
    let u = f.edit(&rel, &word, &format!("{word} (edited)"));
    ok(&u, "data edit");
    assert!(
        !u.changed.is_empty(),
        "the data edit of {rel} ({word:?}) changed no file: {:?}, {} rendered",
        u.mode,
        u.rendered
    );
    f.assert_same_as_full_build("data edit");
}

/// A generated post: its file and text.
fn post(n: usize, date: &str, tags: &[&str]) -> (String, String) {
    let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
    (
        format!("content/blog/generated-{n:03}.md"),
        format!(
            "+++\ntitle = \"Generated post {n}\"\ndescription = \"Post number {n}.\"\ndate = {date}\n[taxonomies]\ntags = [{}]\ncategories = [\"{}\"]\n+++\n\nThe text of post {n}.\n",
            tags.join(", "),
            ["Notes", "Essays", "Links", "Talks"][n % 4],
        ),
    )
}

/// Edits that move pages (new, removed, re-dated, renamed, re-tagged, drafted) change
/// the site's shape; they re-render the pages that show the moved page, not the whole
/// site, and the output still matches a full build byte for byte.
#[test]
fn structural_edits_are_scoped_and_match_a_full_build() {
    // A site of 160 posts (5 per listing page), tagged, plus a subsection and a page.
    let tags = ["alpha", "beta", "gamma", "delta", "epsilon"];
    let mut files: Vec<(String, String)> = (0..160)
        .map(|n| {
            let date = format!("20{}-{:02}-{:02}", 20 + n % 4, n % 12 + 1, n % 28 + 1);
            post(n, &date, &[tags[n % 5], tags[(n / 5) % 5]])
        })
        .collect();
    let file = |p: &str, t: &str| (p.to_string(), t.to_string());
    files.extend([
        file(
            "site.toml",
            "base_url = \"https://moves.example.com\"\ntitle = \"Moves\"\ndescription = \"Pages that move.\"\nlanguage = \"en\"\npaginate_by = 5\ntaxonomies = [\"tags\", \"categories\"]\n",
        ),
        file("content/_index.md", "+++\ntitle = \"Home\"\n+++\n"),
        file("content/about.md", "+++\ntitle = \"About\"\n+++\n\nAbout this site.\n"),
        file(
            "content/blog/_index.md",
            "+++\ntitle = \"Blog\"\nsort_by = \"date\"\n+++\n",
        ),
        file(
            "content/blog/guides/_index.md",
            "+++\ntitle = \"Guides\"\nsort_by = \"weight\"\n+++\n",
        ),
        file(
            "content/blog/guides/one.md",
            "+++\ntitle = \"Guide one\"\nweight = 1\ndate = 2022-05-05\n+++\n\nFirst.\n",
        ),
        file(
            "content/blog/guides/two.md",
            "+++\ntitle = \"Guide two\"\nweight = 2\ndate = 2022-06-06\n+++\n\nSecond.\n",
        ),
    ]);
    let mut f = Fixture::with(None, &files);
    assert!(f.total > 250, "the test site renders {} pages", f.total);
    // An edit that fell back to rendering everything would render f.total pages.
    let small = |f: &Fixture, u: &Update, step: &str, at_most: usize| {
        ok(u, step);
        assert_eq!(u.mode, Mode::Incremental, "{step}");
        assert!(
            u.rendered > 0 && u.rendered <= at_most && u.rendered * 3 < f.total,
            "{step}: rendered {} of {} pages (at most {at_most} expected)",
            u.rendered,
            f.total
        );
    };
    let out = |f: &Fixture, p: &str| f.session.output().join(p);

    // A new page, dated among the others, with a term no other page has: its page,
    // the term's page (new), the listings it enters and shifts.
    let (_, text) = post(500, "2023-06-15", &["alpha", "brand-new-term"]);
    let new_post = "content/blog/new-post.md";
    let u = f.write(new_post, &text);
    small(&f, &u, "new page", 70);
    assert!(changed(&u).contains(&"blog/new-post/index.html"));
    assert!(changed(&u).contains(&"tags/brand-new-term/index.html"));
    assert!(changed(&u).contains(&"sitemap.xml"), "{:?}", changed(&u));
    f.assert_same_as_full_build("new page");

    // Its date: it moves in its listings (and their later pages shift).
    let u = f.edit(new_post, "date = 2023-06-15", "date = 2021-01-03");
    small(&f, &u, "date", 60);
    f.assert_same_as_full_build("date");
    let u = f.edit(new_post, "date = 2021-01-03", "date = 2026-01-01");
    small(&f, &u, "date to the newest", 70);
    f.assert_same_as_full_build("date to the newest");

    // Its URL: the old one is gone.
    let u = f.edit(
        new_post,
        "+++\ntitle",
        "+++\nslug = \"renamed-post\"\ntitle",
    );
    small(&f, &u, "slug", 15);
    assert!(
        u.changed
            .iter()
            .any(|(p, b)| p == "blog/new-post/index.html" && b.is_none()),
        "{:?}",
        changed(&u)
    );
    assert!(!out(&f, "blog/new-post").exists());
    assert!(out(&f, "blog/renamed-post/index.html").is_file());
    f.assert_same_as_full_build("slug");

    // Its terms: one added (its page made), one dropped (its page gone).
    let u = f.edit(new_post, "\"brand-new-term\"", "\"beta\", \"another-term\"");
    small(&f, &u, "terms", 30);
    assert!(out(&f, "tags/another-term/index.html").is_file());
    assert!(!out(&f, "tags/brand-new-term").exists());
    f.assert_same_as_full_build("terms");

    // Its title, in a section sorted by date: the listings showing it.
    let u = f.edit(new_post, "Generated post 500", "A renamed post");
    small(&f, &u, "title", 50);
    f.assert_same_as_full_build("title");

    // A draft leaves the site (builds here do not show drafts), and comes back.
    let u = f.edit(new_post, "+++\nslug", "+++\ndraft = true\nslug");
    small(&f, &u, "draft", 80);
    assert!(!out(&f, "blog/renamed-post").exists());
    assert!(!out(&f, "tags/another-term").exists());
    f.assert_same_as_full_build("draft");
    let u = f.edit(new_post, "draft = true\n", "");
    small(&f, &u, "draft undone", 80);
    assert!(out(&f, "blog/renamed-post/index.html").is_file());
    f.assert_same_as_full_build("draft undone");

    // Another post moves to the oldest place; a guide changes places by weight.
    let u = f.edit(
        "content/blog/generated-007.md",
        "date = 2023-08-08",
        "date = 2019-02-22",
    );
    small(&f, &u, "old post's date", 70);
    f.assert_same_as_full_build("old post's date");
    let u = f.edit("content/blog/guides/one.md", "weight = 1", "weight = 3");
    small(&f, &u, "weight", 10);
    f.assert_same_as_full_build("weight");

    // Removed pages: the new one, then a generated one.
    let u = f.remove(new_post);
    small(&f, &u, "removed page", 80);
    assert!(!out(&f, "blog/renamed-post").exists());
    f.assert_same_as_full_build("removed page");
    let u = f.remove("content/blog/generated-042.md");
    small(&f, &u, "removed generated page", 70);
    f.assert_same_as_full_build("removed generated page");

    // Two structural edits in one batch.
    let (p1, t1) = post(600, "2024-03-03", &["gamma"]);
    let (p2, t2) = post(601, "2022-03-03", &["zeta"]);
    std::fs::write(f.site.join(&p1), t1).expect("write");
    std::fs::write(f.site.join(&p2), t2).expect("write");
    let u = f.session.update(&[PathBuf::from(&p1), PathBuf::from(&p2)]);
    small(&f, &u, "two new pages", 90);
    f.assert_same_as_full_build("two new pages");
}

/// A shortcode's template edit re-reads only the documents that call it (and those
/// that failed, which may call a shortcode that now exists), not every document.
#[test]
fn a_shortcode_edit_rereads_only_the_documents_calling_it() {
    let mut f = Fixture::new("blog");
    let theme_note = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../themes/default/templates/shortcodes/note.html"),
    )
    .expect("the theme's note shortcode");
    assert!(theme_note.contains("note-title"));

    // The site overrides the theme's `note` shortcode with a changed one.
    let u = f.write(
        "templates/shortcodes/note.html",
        &theme_note.replace("note-title", "note-heading"),
    );
    ok(&u, "shortcode edit");
    assert_eq!(u.mode, Mode::Incremental, "shortcode edit");
    // Four posts call `note`; they and the listings, term pages and feeds showing them
    // are made again (26 of 61 pages when written), not every page.
    assert!(
        u.rendered > 0 && u.rendered * 3 < f.total * 2,
        "shortcode edit: rendered {} of {} pages",
        u.rendered,
        f.total
    );
    let pages: Vec<&str> = changed(&u)
        .into_iter()
        .filter(|p| p.ends_with(".html"))
        .collect();
    assert!(!pages.is_empty(), "no page changed");
    let with_note = pages
        .iter()
        .filter(|p| {
            std::fs::read_to_string(f.session.output().join(p))
                .is_ok_and(|t| t.contains("note-heading"))
        })
        .count();
    assert!(
        with_note > 0,
        "no changed page shows the new shortcode: {pages:?}"
    );
    f.assert_same_as_full_build("shortcode edit");

    // A page calling a shortcode that does not exist yet is an error; adding the
    // shortcode's template clears it and renders the page.
    let u = f.write(
        "content/blog/a-badge.md",
        "+++\ntitle = \"A badge\"\ndate = 2025-01-01\n+++\n\nNew: {{ badge(text=\"fresh\") }}\n",
    );
    assert!(
        u.errors.iter().any(|d| d.to_string().contains("badge")),
        "an unknown shortcode is reported: {:?}",
        u.errors
    );
    let u = f.write(
        "templates/shortcodes/badge.html",
        "<span class=\"badge\">{{ text }}</span>",
    );
    ok(&u, "shortcode added");
    let page = std::fs::read_to_string(f.session.output().join("blog/a-badge/index.html"))
        .expect("the page is rendered once its shortcode exists");
    assert!(page.contains("<span class=badge>fresh</span>"), "{page}");
    f.assert_same_as_full_build("shortcode added");
}

/// A section's `_index.md` edited in its text only re-renders that section's listing
/// pages (and pages that look the section up); a change to its header still
/// re-renders everything it can reach.
#[test]
fn a_section_text_edit_rerenders_its_listing_pages() {
    let mut f = Fixture::new("blog");
    let index = "content/blog/_index.md";
    let u = f.edit(
        index,
        "Every article, newest first.",
        "Every article we wrote, newest first.",
    );
    ok(&u, "section text");
    assert_eq!(u.mode, Mode::Incremental, "section text");
    assert!(
        u.rendered > 0 && u.rendered * 4 < f.total,
        "section text: rendered {} of {} pages",
        u.rendered,
        f.total
    );
    assert!(
        changed(&u).contains(&"blog/index.html"),
        "{:?}",
        changed(&u)
    );
    let listing =
        std::fs::read_to_string(f.session.output().join("blog/index.html")).expect("read");
    assert!(
        listing.contains("Every article we wrote"),
        "the listing shows the new text"
    );
    f.assert_same_as_full_build("section text");

    // Its title reaches every page of the section (breadcrumbs): all are rendered.
    let u = f.edit(index, "title = \"Blog\"", "title = \"Articles\"");
    ok(&u, "section title");
    assert!(
        matches!(u.mode, Mode::Rerender(_) | Mode::Full(_)),
        "section title: {:?}",
        u.mode
    );
    f.assert_same_as_full_build("section title");
}
