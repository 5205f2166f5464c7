//! AI content bundles: the example bundle ingests and builds; every kind of invalid
//! bundle is refused at the right JSON path and writes nothing; hostile text survives
//! the trip into front matter and HTML; the schema stays usable as an LLM
//! structured-output schema.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use qpage_generator::BuildOptions;
use qpage_generator::bundle::{self, BundleError, IngestOptions, Problem};
use serde_json::{Value, json};

const EXAMPLE: &str = include_str!("../../docs/examples/bundle.json");

fn example() -> Value {
    serde_json::from_str(EXAMPLE).expect("the example bundle is JSON")
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
}

fn opts() -> IngestOptions {
    IngestOptions {
        force: false,
        today: Some(today()),
    }
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Ingests `bundle` into a fresh folder and expects failure: returns the problems
/// after checking that nothing at all was written.
fn problems_of(bundle: Value) -> Vec<Problem> {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let err = bundle::ingest(bundle, &site, &opts()).expect_err("the bundle must be refused");
    assert!(!site.exists(), "an invalid bundle wrote {}", site.display());
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "temporary files were left behind: {left:?}"
    );
    match err {
        BundleError::Invalid { problems, .. } => problems,
        other => panic!("expected an invalid bundle, got {other}"),
    }
}

/// The text between the first `open` and the `close` after it.
fn inner<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html.find(open).unwrap_or_else(|| panic!("no {open}")) + open.len();
    let end = html[start..]
        .find(close)
        .unwrap_or_else(|| panic!("no {close}"));
    &html[start..start + end]
}

/// Decodes the character references HTML writers use for text.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&middot;", "\u{b7}")
        .replace("&amp;", "&")
}

/// The one problem at `pointer` (fails listing all problems when there is none).
fn at<'a>(problems: &'a [Problem], pointer: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.pointer == pointer)
        .unwrap_or_else(|| panic!("no problem at {pointer}; got: {problems:#?}"))
}

fn build_example(bundle: Value, out: &Path) -> bundle::BundleBuild {
    let opts = BuildOptions {
        today: Some(today()),
        ..Default::default()
    };
    bundle::build_bundle_with(bundle, out, &opts).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn example_bundle_ingests_into_a_site_in_qpage_format() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let report = bundle::ingest(example(), &site, &opts()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.site_dir, site);
    assert_eq!(
        (
            report.pages,
            report.products,
            report.reviews,
            report.business
        ),
        (4, 3, 2, true)
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let paths: Vec<String> = report
        .files
        .iter()
        .map(|f| f.path.to_string_lossy().replace('\\', "/"))
        .collect();
    for expected in [
        "site.toml",
        "content/_index.md",
        "content/blog/_index.md",
        "content/blog/how-we-roast.md",
        "content/blog/spring-brewing-classes-2025.md",
        "content/faq.md",
        "content/about.md",
        "content/products/_index.md",
        "data/products/ethiopia-guji-natural.json",
        "data/products/riverside-house-espresso.json",
        "data/products/colombia-huila-decaf.json",
        "data/business.json",
        "data/reviews.json",
    ] {
        assert!(
            paths.contains(&expected.to_string()),
            "{expected} missing from {paths:?}"
        );
        assert!(site.join(expected).is_file(), "{expected} not on disk");
    }
    assert_eq!(paths.len(), 13, "{paths:?}");
    assert_eq!(
        report.source_of(Path::new("content/faq.md")),
        Some("/pages/2")
    );

    // site.toml is a valid qpage config with the products collection.
    let config = qpage_generator::config::SiteConfig::load(&site).unwrap();
    assert_eq!(config.title, "Copper Kettle Coffee Roasters");
    assert_eq!(config.language, "en-US");
    let products = &config.collections["products"];
    assert_eq!(products.template.as_deref(), Some("product.html"));
    assert_eq!(products.path.as_deref(), Some("/products/{slug}/"));
    assert_eq!(config.extra["business_type"], json!("CafeOrCoffeeShop"));
    assert_eq!(config.taxonomies, vec!["tags", "categories"]);

    // The FAQ page: faq.html with [[extra.faqs]], read back by qpage's own parser.
    let faq = read(site.join("content/faq.md"));
    let split = qpage_generator::frontmatter::split(&faq, Path::new("faq.md")).unwrap();
    assert_eq!(split.front.template.as_deref(), Some("faq.html"));
    let faqs = split.front.extra["faqs"].as_array().unwrap();
    assert_eq!(faqs.len(), 4);
    assert_eq!(
        faqs[1]["question"],
        json!("Can you grind the beans for me?")
    );
    assert!(faq.contains("[[extra.faqs]]"), "{faq}");

    // An article: TOML date, taxonomies, the image after the body.
    let article = read(site.join("content/blog/how-we-roast.md"));
    let split = qpage_generator::frontmatter::split(&article, Path::new("a.md")).unwrap();
    assert_eq!(
        split.front.date.as_ref().unwrap().to_date().unwrap(),
        NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()
    );
    assert_eq!(
        split.front.taxonomies["tags"],
        vec!["roasting", "freshness"]
    );
    assert!(split.body.contains(
        "![Roasted coffee beans being stirred in the cooling tray of the roaster](<https://images.example.com/copper-kettle/cooling-tray.jpg>)"
    ));

    // Data: nulls dropped, slug set, business type recorded.
    let decaf: Value =
        serde_json::from_str(&read(site.join("data/products/colombia-huila-decaf.json"))).unwrap();
    assert_eq!(decaf["slug"], json!("colombia-huila-decaf"));
    assert_eq!(decaf["availability"], json!("PreOrder"));
    assert!(decaf.get("image").is_none() && decaf.get("rating").is_none());
    let business: Value = serde_json::from_str(&read(site.join("data/business.json"))).unwrap();
    assert_eq!(business["type"], json!("CafeOrCoffeeShop"));
    assert_eq!(business["address"]["locality"], json!("Asheville"));
    let reviews: Value = serde_json::from_str(&read(site.join("data/reviews.json"))).unwrap();
    assert_eq!(
        reviews[0]["product_path"],
        json!("/products/ethiopia-guji-natural/")
    );
    assert!(reviews[1].get("product").is_none());
}

#[test]
fn example_bundle_builds_with_the_default_theme() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dist");
    let done = build_example(example(), &out);
    assert_eq!(done.ingest.pages, 4);
    assert_eq!(done.build.records, 3, "one page per product");
    // The temporary site is gone; the output stays.
    assert!(!done.ingest.site_dir.exists());

    let home = read(out.join("index.html"));
    assert!(home.contains("Copper Kettle Coffee Roasters"));
    assert!(
        home.contains("48 Riverside Drive"),
        "business on the home page"
    );
    assert!(
        home.contains("Roasted in small batches"),
        "home_body rendered"
    );

    let article = read(out.join("blog/how-we-roast/index.html"));
    assert!(article.contains("How We Roast: Light, Even and Twice a Week"));
    assert!(article.contains("Resting before brewing"));
    assert!(article.contains("Roasted coffee beans being stirred in the cooling tray"));
    assert!(article.contains("Every batch cools for four minutes"));

    let classes = read(out.join("blog/spring-brewing-classes-2025/index.html"));
    assert!(
        classes.contains("Do I need to bring anything?"),
        "article FAQs shown"
    );

    let faq = read(out.join("faq/index.html"));
    for q in [
        "When was my coffee roasted?",
        "Can you grind the beans for me?",
        "How much does shipping cost?",
        "Do you sell wholesale?",
    ] {
        assert!(faq.contains(q), "FAQ page lacks {q:?}");
    }

    let about = read(out.join("about/index.html"));
    assert!(about.contains("About Copper Kettle"));

    let guji = read(out.join("products/ethiopia-guji-natural/index.html"));
    assert!(guji.contains("Ethiopia Guji Natural"));
    assert!(guji.contains("19.00"));
    assert!(guji.contains("Tastes like blueberries, really"));
    let decaf = read(out.join("products/colombia-huila-decaf/index.html"));
    assert!(decaf.contains("pre-order"), "availability shown");

    let listing = read(out.join("products/index.html"));
    assert!(listing.contains("Riverside House Espresso"));
    assert!(out.join("blog/index.html").is_file());
    assert!(out.join("tags/roasting/index.html").is_file());
}

#[test]
fn build_bundle_reads_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/bundle.json");
    let out = tmp.path().join("out");
    let done = bundle::build_bundle(&path, &out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.build.output, out);
    assert!(out.join("faq/index.html").is_file());
}

#[test]
fn wrong_type_is_reported_at_its_path_and_nothing_is_written() {
    let mut b = example();
    b["pages"][1]["title"] = json!(42);
    b["products"][0]["rating"]["count"] = json!("lots");
    let problems = problems_of(b);
    let p = at(&problems, "/pages/1/title");
    assert!(
        p.message.contains("expected a string, found a number (42)"),
        "{p}"
    );
    let p = at(&problems, "/products/0/rating/count");
    assert!(p.message.contains("expected an integer"), "{p}");
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

#[test]
fn missing_required_property_points_at_the_property() {
    let mut b = example();
    b["products"][0].as_object_mut().unwrap().remove("price");
    b["pages"][0].as_object_mut().unwrap().remove("tags");
    b.as_object_mut().unwrap().remove("business");
    let problems = problems_of(b);
    let p = at(&problems, "/products/0/price");
    assert!(p.message.contains("missing"), "{p}");
    assert!(
        p.message.contains("use null"),
        "nullable fields say so: {p}"
    );
    let p = at(&problems, "/pages/0/tags");
    assert!(p.message.contains("use []"), "{p}");
    at(&problems, "/business");
}

#[test]
fn unknown_property_is_named_with_the_allowed_ones() {
    let mut b = example();
    b["pages"][0]["author"] = json!("Someone");
    b["business"]["address"]["city"] = json!("Asheville");
    let problems = problems_of(b);
    let p = at(&problems, "/pages/0/author");
    assert!(p.message.contains("unknown property `author`"), "{p}");
    assert!(
        p.message.contains("slug"),
        "lists the allowed properties: {p}"
    );
    let p = at(&problems, "/business/address/city");
    assert!(p.message.contains("locality"), "{p}");
}

#[test]
fn bad_enum_value_lists_the_choices() {
    let mut b = example();
    b["products"][2]["availability"] = json!("Sold out");
    b["pages"][3]["kind"] = json!("landing");
    b["business"]["opening_hours"][0]["days"][1] = json!("Wed");
    let problems = problems_of(b);
    let p = at(&problems, "/products/2/availability");
    assert!(p.message.contains("\"Sold out\" is not allowed"), "{p}");
    assert!(
        p.message.contains("InStock") && p.message.contains("PreOrder"),
        "{p}"
    );
    at(&problems, "/pages/3/kind");
    let p = at(&problems, "/business/opening_hours/0/days/1");
    assert!(p.message.contains("Wednesday"), "{p}");
}

#[test]
fn pattern_and_range_violations_are_explained() {
    let mut b = example();
    b["products"][0]["price"] = json!("$19");
    b["products"][0]["rating"]["value"] = json!(7);
    b["site"]["base_url"] = json!("copperkettle.example.com");
    b["pages"][0]["images"][0]["src"] = json!("javascript:alert(1)");
    let problems = problems_of(b);
    let p = at(&problems, "/products/0/price");
    assert!(
        p.message.contains("\"$19\" is not in the expected form"),
        "{p}"
    );
    assert!(
        p.message.contains("decimal string"),
        "says what is expected: {p}"
    );
    let p = at(&problems, "/products/0/rating/value");
    assert!(p.message.contains("maximum 5"), "{p}");
    at(&problems, "/site/base_url");
    at(&problems, "/pages/0/images/0/src");
}

#[test]
fn duplicate_urls_name_both_records() {
    let mut b = example();
    b["pages"][3]["slug"] = json!("FAQ"); // normalises to the FAQ page's slug
    b["products"][1]["slug"] = json!("Ethiopia Guji Natural");
    let problems = problems_of(b);
    let p = at(&problems, "/pages/3/slug");
    assert!(p.message.contains("/faq/"), "{p}");
    assert!(
        p.message.contains("/pages/2/slug"),
        "names the other record: {p}"
    );
    let p = at(&problems, "/products/1/slug");
    assert!(p.message.contains("/products/0/slug"), "{p}");
    assert!(
        p.message.contains("/products/ethiopia-guji-natural/"),
        "{p}"
    );
}

#[test]
fn slugs_that_clash_with_generated_sections_or_say_nothing_are_refused() {
    let mut b = example();
    b["pages"][3]["slug"] = json!("blog");
    b["pages"][2]["slug"] = json!("???");
    let problems = problems_of(b);
    let p = at(&problems, "/pages/3/slug");
    assert!(p.message.contains("blog section"), "{p}");
    let p = at(&problems, "/pages/2/slug");
    assert!(p.message.contains("no letters or digits"), "{p}");
}

#[test]
fn bad_dates_are_refused() {
    // Not even shaped like a date: the schema's pattern.
    let mut b = example();
    b["pages"][1]["date"] = json!("March 28, 2025");
    let problems = problems_of(b);
    let p = at(&problems, "/pages/1/date");
    assert!(p.message.contains("not in the expected form"), "{p}");
    assert!(p.message.contains("YYYY-MM-DD"), "{p}");
    // Shaped like one but not on the calendar.
    let mut b = example();
    b["pages"][0]["date"] = json!("2025-02-30");
    b["products"][0]["reviews"][0]["date"] = json!("2025-13-01");
    b["reviews"][1]["date"] = json!("2024-00-10");
    let problems = problems_of(b);
    let p = at(&problems, "/pages/0/date");
    assert!(
        p.message
            .contains("`2025-02-30` is not a real calendar date"),
        "{p}"
    );
    at(&problems, "/products/0/reviews/0/date");
    at(&problems, "/reviews/1/date");
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

#[test]
fn broken_references_and_missing_alt_text_are_refused() {
    let mut b = example();
    b["reviews"][0]["product"] = json!("kenya-aa");
    b["products"][1]["image_alt"] = Value::Null;
    b["products"][1]["currency"] = Value::Null;
    b["pages"][2]["faqs"] = json!([]);
    b["business"]["opening_hours"][1]["closes"] = json!("07:00");
    let problems = problems_of(b);
    let p = at(&problems, "/reviews/0/product");
    assert!(
        p.message
            .contains("`kenya-aa` is not the slug of any product"),
        "{p}"
    );
    at(&problems, "/products/1/image_alt");
    at(&problems, "/products/1/currency");
    at(&problems, "/pages/2/faqs");
    at(&problems, "/business/opening_hours/1/closes");
}

#[test]
fn schema_errors_come_before_meaning_and_all_at_once() {
    let mut b = example();
    // A schema error and a semantic one: only the schema's are reported (the meaning is
    // checked on a valid document), but every schema error is.
    b["pages"][0]["date"] = json!("2025-02-30");
    b["pages"][1]["kind"] = json!("post");
    b["pages"][2]["title"] = json!(null);
    b["products"][0]["extra"] = json!(1);
    let problems = problems_of(b);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems.iter().all(|p| p.pointer != "/pages/0/date"));
}

#[test]
fn invalid_json_is_reported_with_its_position() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bundle.json");
    std::fs::write(&path, "{\n  \"site\": {,\n}").unwrap();
    let site = tmp.path().join("site");
    let err = bundle::ingest(&path, &site, &opts()).unwrap_err();
    let lines = err.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{}: not valid JSON at line 2", path.display())));
    assert!(!site.exists());
}

#[test]
fn error_lines_are_bundle_pointer_message() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.json");
    let mut b = example();
    b["pages"][3]["slug"] = json!(7);
    std::fs::write(&path, serde_json::to_string(&b).unwrap()).unwrap();
    let err = bundle::ingest(&path, &tmp.path().join("site"), &opts()).unwrap_err();
    let lines = err.lines();
    assert_eq!(
        lines,
        vec![format!(
            "{}: /pages/3/slug: expected a string, found a number (7) (The last part of the page's URL: lowercase words joined by dashes, e.g. opening-hours. Other text is normalised (Opening Hours -> opening-hours). Must be unique within the same URL space.)",
            path.display()
        )]
    );
}

#[test]
fn hostile_text_round_trips_into_front_matter_and_html() {
    let title = r#"+++ Break "out" ''' """ \ [extra] title = 'x' +++ </title><script>alert(1)</script> &amp;"#;
    let answer = "First line.\n+++\ntitle = \"pwned\"\n+++\n\"\"\" ''' done";
    let mut b = example();
    b["pages"][3]["title"] = json!(title);
    b["pages"][3]["description"] = json!("Quotes \" and ''' and +++ too");
    b["pages"][2]["faqs"][0]["answer"] = json!(answer);
    b["pages"][1]["faqs"][0]["answer"] = json!(answer); // a dated article

    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    bundle::ingest(b.clone(), &site, &opts()).unwrap_or_else(|e| panic!("{e}"));
    let about = read(site.join("content/about.md"));
    let split = qpage_generator::frontmatter::split(&about, Path::new("about.md")).unwrap();
    assert_eq!(split.front.title.as_deref(), Some(title));
    assert_eq!(split.front.description, "Quotes \" and ''' and +++ too");
    assert!(split.body.starts_with("Copper Kettle started in 2017"));
    let faq = read(site.join("content/faq.md"));
    let split = qpage_generator::frontmatter::split(&faq, Path::new("faq.md")).unwrap();
    assert_eq!(
        split.front.title.as_deref(),
        Some("Frequently Asked Questions")
    );
    let got = split.front.extra["faqs"][0]["answer"].as_str().unwrap();
    // The only change: a line that is exactly `+++` gets a leading space.
    assert_eq!(got, answer.replace("\n+++\n", "\n +++\n"));
    assert!(!split.front.extra.contains_key("title"));
    let article = read(site.join("content/blog/spring-brewing-classes-2025.md"));
    let split = qpage_generator::frontmatter::split(&article, Path::new("a.md")).unwrap();
    assert_eq!(
        split.front.date.as_ref().unwrap().to_date().unwrap(),
        NaiveDate::from_ymd_opt(2025, 3, 28).unwrap()
    );
    assert_eq!(
        split.front.extra["faqs"][0]["answer"].as_str().unwrap(),
        answer.replace("\n+++\n", "\n +++\n")
    );

    let out = tmp.path().join("dist");
    build_example(b, &out);
    let html = read(out.join("about/index.html"));
    // The <title> holds the whole title as text: nothing ended it early.
    assert_eq!(html.matches("<title>").count(), 1);
    let head_title = unescape(inner(&html, "<title>", "</title>"));
    assert_eq!(
        head_title,
        format!("{title} \u{b7} Copper Kettle Coffee Roasters")
    );
    // So does the page's only <h1>, with its markup escaped.
    assert_eq!(html.matches("<h1").count(), 1);
    let h1 = inner(&html, "<h1", "</h1>");
    let h1 = &h1[h1.find('>').unwrap() + 1..];
    assert!(h1.contains("&lt;/title>&lt;script>"), "{h1}");
    assert_eq!(unescape(h1), title);
    let faq_html = read(out.join("faq/index.html"));
    assert!(faq_html.contains("title = "), "the answer text survives");
}

#[test]
fn existing_site_is_refused_without_force_and_replaced_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir_all(site.join("content")).unwrap();
    std::fs::create_dir_all(site.join("static")).unwrap();
    std::fs::write(site.join("content/old.md"), "+++\ntitle = \"Old\"\n+++\n").unwrap();
    std::fs::write(site.join("static/logo.svg"), "<svg/>").unwrap();

    let err = bundle::ingest(example(), &site, &opts()).unwrap_err();
    assert!(matches!(err, BundleError::NotEmpty { .. }), "{err}");
    assert!(err.to_string().contains("--force"));
    assert!(site.join("content/old.md").is_file());
    assert!(!site.join("site.toml").exists());

    // An invalid bundle with --force changes nothing either.
    let mut bad = example();
    bad["pages"][0]["slug"] = json!(null);
    let force = IngestOptions {
        force: true,
        ..opts()
    };
    assert!(bundle::ingest(bad, &site, &force).is_err());
    assert!(site.join("content/old.md").is_file());

    let report = bundle::ingest(example(), &site, &force).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.replaced);
    assert!(
        !site.join("content/old.md").exists(),
        "old content replaced"
    );
    assert!(site.join("content/faq.md").is_file());
    assert_eq!(read(site.join("static/logo.svg")), "<svg/>", "static/ kept");
    let names: Vec<PathBuf> = std::fs::read_dir(&site)
        .unwrap()
        .map(|e| e.unwrap().file_name().into())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.to_string_lossy().starts_with(".qpage")),
        "staging folder removed: {names:?}"
    );
}

#[test]
fn empty_existing_folder_is_filled() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    std::fs::create_dir(&site).unwrap();
    let report = bundle::ingest(example(), &site, &opts()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!report.replaced);
    assert!(site.join("site.toml").is_file());
}

#[test]
fn slugs_are_normalised_with_a_warning_and_future_dates_warned() {
    let mut b = example();
    b["pages"][3]["slug"] = json!("About Us!");
    b["pages"][1]["date"] = json!("2030-01-01");
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    let report = bundle::ingest(b, &site, &opts()).unwrap_or_else(|e| panic!("{e}"));
    assert!(site.join("content/about-us.md").is_file());
    let w = report
        .warnings
        .iter()
        .find(|w| w.pointer == "/pages/3/slug")
        .expect("a warning for the normalised slug");
    assert!(w.message.contains("`about-us`"), "{w}");
    assert!(report.warnings.iter().any(|w| w.pointer == "/pages/1/date"));
    let config = read(site.join("site.toml"));
    assert!(
        config.contains("url = \"/about-us/\""),
        "menu uses the normalised slug"
    );
}

#[test]
fn shortcode_syntax_errors_in_bodies_are_found_before_writing() {
    let mut b = example();
    b["pages"][3]["body"] = json!("Intro\n\n{{ youtube(id=) }}\n");
    let problems = problems_of(b);
    let p = at(&problems, "/pages/3/body");
    assert!(p.message.contains("line 3"), "{p}");
}

/// The schema keeps to what LLM structured-output APIs accept: every object closed
/// and fully required, a description on every property, only plain keywords.
#[test]
fn schema_is_usable_as_an_llm_structured_output_schema() {
    let schema: Value = serde_json::from_str(bundle::SCHEMA).unwrap();
    let on_disk = read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bundle.schema.json"));
    assert_eq!(bundle::SCHEMA, on_disk, "one source of truth");
    assert_eq!(
        schema["$schema"],
        json!("https://json-schema.org/draft/2020-12/schema")
    );
    let allowed = [
        "type",
        "enum",
        "properties",
        "required",
        "items",
        "description",
        "pattern",
        "minimum",
        "maximum",
        "additionalProperties",
    ];
    let mut objects = 0;
    fn walk(s: &Value, at: &str, allowed: &[&str], objects: &mut usize, root: bool) {
        let m = s
            .as_object()
            .unwrap_or_else(|| panic!("{at}: not a schema"));
        for k in m.keys() {
            let meta = root && ["$schema", "title"].contains(&k.as_str());
            assert!(allowed.contains(&k.as_str()) || meta, "{at}: keyword {k}");
        }
        assert!(
            m.get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty()),
            "{at}: no description"
        );
        let types: Vec<&str> = match &m["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().map(|t| t.as_str().unwrap()).collect(),
            other => panic!("{at}: type {other}"),
        };
        if let Some(e) = m.get("enum") {
            assert_eq!(
                e.as_array().unwrap().contains(&Value::Null),
                types.contains(&"null"),
                "{at}: a nullable enum lists null"
            );
        }
        if types.contains(&"object") {
            *objects += 1;
            assert_eq!(m["additionalProperties"], json!(false), "{at}");
            let props = m["properties"].as_object().unwrap();
            let mut required: Vec<&str> = m["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            required.sort_unstable();
            let mut keys: Vec<&str> = props.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(required, keys, "{at}: every property required");
            for (k, v) in props {
                walk(v, &format!("{at}/{k}"), allowed, objects, false);
            }
        }
        if types.contains(&"array") {
            walk(&m["items"], &format!("{at}/items"), allowed, objects, false);
        }
    }
    walk(&schema, "", &allowed, &mut objects, true);
    assert!(objects >= 14, "walked {objects} objects");
    // Every documented top-level part is there.
    let mut top: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    top.sort_unstable();
    assert_eq!(top, ["business", "pages", "products", "reviews", "site"]);
    let kinds = &schema["properties"]["pages"]["items"]["properties"]["kind"]["enum"];
    assert_eq!(kinds, &json!(["article", "page", "faq", "review"]));
}

#[test]
fn a_minimal_bundle_is_enough() {
    let b = json!({
        "site": {
            "title": "Tiny", "base_url": "https://tiny.example.com", "description": "A tiny site.",
            "language": "en", "author": null, "business_type": null, "home_body": null,
            "hero_image": null
        },
        "pages": [], "products": [], "business": null, "reviews": []
    });
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dist");
    let done = build_example(b, &out);
    let paths: Vec<_> = done.ingest.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            PathBuf::from("content/_index.md"),
            PathBuf::from("site.toml")
        ]
    );
    assert!(read(out.join("index.html")).contains("Tiny"));
}
