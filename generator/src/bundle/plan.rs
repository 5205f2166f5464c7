//! From a schema-valid bundle to the files of a site: the checks the schema cannot
//! express (slugs, URLs, dates, references), then every file composed in memory.
//!
//! Front matter is serialised with the `toml` crate and then read back with qpage's
//! own front-matter parser, so no title or answer can break out of its `+++` header.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::model::{Bundle, Image, Kind, Page};
use super::{ComposedFile, Problem, WrittenFile};

/// The files of the site, with counts and warnings.
pub struct Plan {
    /// Relative path, the bundle value it came from, and its bytes; in path order.
    pub files: Vec<ComposedFile>,
    pub pages: usize,
    pub products: usize,
    pub reviews: usize,
    pub business: bool,
    pub warnings: Vec<Problem>,
}

/// Where each URL came from, to report collisions naming both records.
#[derive(Default)]
struct Urls {
    seen: HashMap<String, (String, String)>,
}

impl Urls {
    /// Claims `url` for the value at `pointer` (described as `what`); on a collision,
    /// the error names both.
    fn claim(&mut self, url: &str, pointer: &str, what: &str, errors: &mut Vec<Problem>) {
        if let Some((other, other_what)) = self.seen.get(url) {
            let message = if other.is_empty() || other == "/site" {
                format!("URL {url} is taken by {other_what}; choose another slug for {what}")
            } else {
                format!(
                    "two records have the URL {url}: {other} ({other_what}) and {pointer} ({what}); give one of them another slug"
                )
            };
            errors.push(Problem::new(pointer, message));
        } else {
            self.seen
                .insert(url.to_string(), (pointer.to_string(), what.to_string()));
        }
    }
}

/// Normalises a slug; an error when nothing is left.
fn normalise_slug(
    raw: &str,
    pointer: &str,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<String> {
    let s = slug::slugify(raw);
    if s.is_empty() {
        errors.push(Problem::new(
            pointer,
            format!(
                "`{raw}` has no letters or digits to make a URL from; expected lowercase words joined by dashes, e.g. opening-hours"
            ),
        ));
        return None;
    }
    if s == "index" {
        errors.push(Problem::new(
            pointer,
            "`index` is reserved (it would be the folder's own page); choose another slug",
        ));
        return None;
    }
    if s != raw {
        warnings.push(Problem::new(
            pointer,
            format!("slug `{raw}` was normalised to `{s}`"),
        ));
    }
    Some(s)
}

fn check_date(value: Option<&str>, pointer: &str, errors: &mut Vec<Problem>) -> Option<NaiveDate> {
    let text = value?;
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(Problem::new(
                pointer,
                format!(
                    "`{text}` is not a real calendar date; expected YYYY-MM-DD, e.g. 2025-05-16"
                ),
            ));
            None
        }
    }
}

/// Checks the bundle and composes the site's files.
pub fn plan(raw: &Value, b: &Bundle, today: NaiveDate) -> Result<Plan, Vec<Problem>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut urls = Urls::default();

    // Which generated sections and taxonomies exist.
    let has_articles = b.pages.iter().any(|p| p.kind == Kind::Article);
    let has_review_pages = b.pages.iter().any(|p| p.kind == Kind::Review);
    let has_products = !b.products.is_empty();
    let uses_tags = b.pages.iter().any(|p| !p.tags.is_empty());
    let uses_categories = b.pages.iter().any(|p| !p.categories.is_empty());
    urls.claim("/", "/site", "the home page", &mut errors);
    if has_articles {
        urls.claim(
            "/blog/",
            "/site",
            "the blog section listing the articles",
            &mut errors,
        );
    }
    if has_review_pages {
        urls.claim(
            "/reviews/",
            "/site",
            "the section listing the review pages",
            &mut errors,
        );
    }
    if has_products {
        urls.claim(
            "/products/",
            "/site",
            "the section listing the products",
            &mut errors,
        );
    }
    if uses_tags {
        urls.claim("/tags/", "/site", "the list of tags", &mut errors);
    }
    if uses_categories {
        urls.claim(
            "/categories/",
            "/site",
            "the list of categories",
            &mut errors,
        );
    }

    // Pages: slugs, URLs, dates and per-kind requirements.
    let mut page_slugs = Vec::with_capacity(b.pages.len());
    for (i, p) in b.pages.iter().enumerate() {
        let at = format!("/pages/{i}");
        let slug = normalise_slug(&p.slug, &format!("{at}/slug"), &mut errors, &mut warnings);
        if let Some(s) = &slug {
            let url = page_url(p.kind, s);
            urls.claim(&url, &format!("{at}/slug"), kind_name(p.kind), &mut errors);
        }
        page_slugs.push(slug);
        let date = check_date(p.date.as_deref(), &format!("{at}/date"), &mut errors);
        if let Some(d) = date
            && d > today
        {
            warnings.push(Problem::new(
                format!("{at}/date"),
                format!("{d} is in the future: the page is left out of builds until that day"),
            ));
        }
        if p.kind == Kind::Article && p.date.is_none() {
            warnings.push(Problem::new(
                format!("{at}/date"),
                "article without a date: it is listed last and has no datePublished",
            ));
        }
        if p.kind == Kind::Faq && p.faqs.is_empty() {
            errors.push(Problem::new(
                format!("{at}/faqs"),
                "a page of kind faq needs at least one {question, answer} in faqs",
            ));
        }
        if p.kind == Kind::Review && p.review.is_none() {
            errors.push(Problem::new(
                format!("{at}/review"),
                "a page of kind review needs review: {item, rating, author}",
            ));
        }
        for (field, terms) in [("tags", &p.tags), ("categories", &p.categories)] {
            for (j, t) in terms.iter().enumerate() {
                if slug::slugify(t).is_empty() {
                    errors.push(Problem::new(
                        format!("{at}/{field}/{j}"),
                        format!("`{t}` has no letters or digits to make a URL from"),
                    ));
                }
            }
        }
        if let Err(e) = crate::shortcode::extract(&p.body) {
            for (line, col, msg) in e {
                errors.push(Problem::new(
                    format!("{at}/body"),
                    format!(
                        "line {line}, column {col}: {msg} (`{{{{ name(...) }}}}` and `{{% name(...) %}}` call shortcodes; put literal braces in `code`)"
                    ),
                ));
            }
        }
    }

    // Products.
    let mut product_slugs = Vec::with_capacity(b.products.len());
    for (i, p) in b.products.iter().enumerate() {
        let at = format!("/products/{i}");
        let slug = normalise_slug(&p.slug, &format!("{at}/slug"), &mut errors, &mut warnings);
        if let Some(s) = &slug {
            urls.claim(
                &format!("/products/{s}/"),
                &format!("{at}/slug"),
                "a product",
                &mut errors,
            );
        }
        product_slugs.push(slug);
        if p.image.is_some() && p.image_alt.is_none() {
            errors.push(Problem::new(
                format!("{at}/image_alt"),
                "the product has an image but no alternative text; describe the image in image_alt",
            ));
        }
        if p.price.is_some() && p.currency.is_none() {
            errors.push(Problem::new(
                format!("{at}/currency"),
                "the product has a price but no currency; expected an ISO 4217 code such as EUR or USD",
            ));
        }
        for (j, r) in p.reviews.iter().enumerate() {
            check_date(
                r.date.as_deref(),
                &format!("{at}/reviews/{j}/date"),
                &mut errors,
            );
        }
    }

    // Business.
    if let Some(biz) = &b.business {
        if biz.image.is_some() && biz.image_alt.is_none() {
            errors.push(Problem::new(
                "/business/image_alt",
                "the business has an image but no alternative text; describe the image in image_alt",
            ));
        }
        for (i, oh) in biz.opening_hours.iter().enumerate() {
            if oh.closes <= oh.opens {
                errors.push(Problem::new(
                    format!("/business/opening_hours/{i}/closes"),
                    format!(
                        "closes at {} but opens at {}; closing must be after opening (use 23:59 for midnight)",
                        oh.closes, oh.opens
                    ),
                ));
            }
        }
    }
    if b.business.is_none() && b.site.business_type.is_some() {
        warnings.push(Problem::new(
            "/site/business_type",
            "business_type is set but business is null; it is kept in site.toml only",
        ));
    }

    // Site-wide reviews.
    for (i, r) in b.reviews.iter().enumerate() {
        let at = format!("/reviews/{i}");
        check_date(r.date.as_deref(), &format!("{at}/date"), &mut errors);
        if let Some(p) = &r.product {
            let s = slug::slugify(p);
            if !product_slugs.iter().flatten().any(|x| *x == s) {
                errors.push(Problem::new(
                    format!("{at}/product"),
                    format!(
                        "`{p}` is not the slug of any product; expected one of products[].slug, or null for a review of the business"
                    ),
                ));
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }

    let mut files = Files::default();
    let site = &b.site;

    // site.toml
    files.toml("site.toml", "/site", &site_toml(b))?;

    // Home.
    let mut home_extra = Map::new();
    if let Some(img) = &site.hero_image {
        home_extra.insert("hero_image".into(), json!(img.src));
        home_extra.insert("hero_alt".into(), json!(img.alt));
    }
    if has_products {
        let featured: Vec<&String> = product_slugs.iter().flatten().take(6).collect();
        home_extra.insert("featured".into(), json!(featured));
        home_extra.insert("featured_collection".into(), json!("products"));
        home_extra.insert("featured_title".into(), json!("Products"));
    }
    let home = Front {
        title: &site.title,
        description: &site.description,
        template: b.business.as_ref().map(|_| "business.html"),
        extra: home_extra,
        ..Front::default()
    };
    files.markdown(
        "content/_index.md",
        "/site",
        &home,
        site.home_body.as_deref().unwrap_or(""),
    )?;

    // Sections.
    if has_articles {
        let front = Front {
            title: "Blog",
            description: &format!("Articles from {}", site.title),
            sort_by: Some("date"),
            ..Front::default()
        };
        files.markdown("content/blog/_index.md", "/site", &front, "")?;
    }
    if has_review_pages {
        let front = Front {
            title: "Reviews",
            description: &format!("Reviews from {}", site.title),
            sort_by: Some("date"),
            ..Front::default()
        };
        files.markdown("content/reviews/_index.md", "/site", &front, "")?;
    }
    if has_products {
        let mut extra = Map::new();
        extra.insert("collection".into(), json!("products"));
        let front = Front {
            title: "Products",
            description: &format!("All products from {}", site.title),
            extra,
            ..Front::default()
        };
        files.markdown("content/products/_index.md", "/site", &front, "")?;
    }

    // Pages.
    for (i, (p, slug)) in b.pages.iter().zip(&page_slugs).enumerate() {
        let slug = slug.as_deref().expect("checked above");
        let rel = match p.kind {
            Kind::Article => format!("content/blog/{slug}.md"),
            Kind::Review => format!("content/reviews/{slug}.md"),
            Kind::Page | Kind::Faq => format!("content/{slug}.md"),
        };
        let (front, body) = page_front(p, site.author.as_deref());
        files.markdown(&rel, &format!("/pages/{i}"), &front, &body)?;
    }

    // Data.
    for (i, slug) in product_slugs.iter().enumerate() {
        let slug = slug.as_deref().expect("checked above");
        let mut record = raw["products"][i].clone();
        record["slug"] = json!(slug);
        strip_nulls(&mut record);
        files.json(
            &format!("data/products/{slug}.json"),
            &format!("/products/{i}"),
            &record,
        )?;
    }
    if b.business.is_some() {
        let mut record = raw["business"].clone();
        if let Some(t) = &site.business_type {
            record["type"] = json!(t);
        }
        strip_nulls(&mut record);
        files.json("data/business.json", "/business", &record)?;
    }
    if !b.reviews.is_empty() {
        let mut records = raw["reviews"].clone();
        if let Some(list) = records.as_array_mut() {
            for r in list {
                if let Some(p) = r.get("product").and_then(Value::as_str) {
                    let s = slug::slugify(p);
                    r["product"] = json!(s);
                    r["product_path"] = json!(format!("/products/{s}/"));
                }
            }
        }
        strip_nulls(&mut records);
        files.json("data/reviews.json", "/reviews", &records)?;
    }

    Ok(Plan {
        files: files.into_sorted(),
        pages: b.pages.len(),
        products: b.products.len(),
        reviews: b.reviews.len(),
        business: b.business.is_some(),
        warnings,
    })
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Article => "an article",
        Kind::Page => "a page",
        Kind::Faq => "an FAQ page",
        Kind::Review => "a review page",
    }
}

fn page_url(kind: Kind, slug: &str) -> String {
    match kind {
        Kind::Article => format!("/blog/{slug}/"),
        Kind::Review => format!("/reviews/{slug}/"),
        Kind::Page | Kind::Faq => format!("/{slug}/"),
    }
}

/// A page's front matter and Markdown body.
fn page_front<'a>(p: &'a Page, site_author: Option<&'a str>) -> (Front<'a>, String) {
    let mut extra = Map::new();
    if !p.faqs.is_empty() {
        extra.insert("faqs".into(), to_json(&p.faqs));
    }
    if !p.images.is_empty() {
        extra.insert("images".into(), to_json(&p.images));
    }
    if let Some(r) = &p.review {
        let mut v = to_json(r);
        if r.author.is_none()
            && let Some(a) = site_author
        {
            v["author"] = json!(a);
        }
        extra.insert("review".into(), v);
    }
    if p.kind == Kind::Article
        && let Some(a) = site_author
    {
        extra.insert("author".into(), json!(a));
    }
    let mut taxonomies = IndexMap::new();
    if !p.tags.is_empty() {
        taxonomies.insert("tags", p.tags.clone());
    }
    if !p.categories.is_empty() {
        taxonomies.insert("categories", p.categories.clone());
    }
    let front = Front {
        title: &p.title,
        description: &p.description,
        date: p.date.as_deref().and_then(|d| d.parse().ok()),
        template: (p.kind == Kind::Faq).then_some("faq.html"),
        taxonomies,
        extra,
        ..Front::default()
    };
    let mut body = p.body.replace("\r\n", "\n");
    for img in &p.images {
        body.push_str(&image_markdown(img));
    }
    (front, body)
}

/// An image as Markdown after the body: `![alt](<src>)` and an emphasised caption, with
/// every ASCII punctuation character of the text escaped so none of it is syntax.
fn image_markdown(img: &Image) -> String {
    let mut out = String::from("\n\n");
    out.push_str(&format!("![{}](<{}>)\n", md_escape(&img.alt), img.src));
    if let Some(c) = &img.caption {
        let c = c.split_whitespace().collect::<Vec<_>>().join(" ");
        if !c.is_empty() {
            out.push_str(&format!("\n*{}*\n", md_escape(&c)));
        }
    }
    out
}

fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn to_json(v: &impl Serialize) -> Value {
    let mut v = serde_json::to_value(v).unwrap_or(Value::Null);
    strip_nulls(&mut v);
    v
}

/// Removes nulls (TOML has none, and templates treat absent and null alike).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => {
            a.retain(|x| !x.is_null());
            a.iter_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}

/// Front matter as written; field names are qpage's (docs/content.md).
#[derive(Serialize, Default)]
struct Front<'a> {
    title: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<toml::value::Datetime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_by: Option<&'a str>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    taxonomies: IndexMap<&'static str, Vec<String>>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    extra: Map<String, Value>,
}

#[derive(Serialize)]
struct SiteToml<'a> {
    base_url: &'a str,
    title: &'a str,
    description: &'a str,
    language: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<&'a str>,
    taxonomies: Vec<&'static str>,
    menus: IndexMap<&'static str, Vec<MenuItem>>,
    collections: IndexMap<&'static str, Collection>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    extra: Map<String, Value>,
}

#[derive(Serialize)]
struct MenuItem {
    name: String,
    url: String,
    weight: i64,
}

#[derive(Serialize, Default)]
struct Collection {
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_by: Option<&'static str>,
}

fn site_toml(b: &Bundle) -> SiteToml<'_> {
    let s = &b.site;
    let mut taxonomies = Vec::new();
    if b.pages.iter().any(|p| !p.tags.is_empty()) {
        taxonomies.push("tags");
    }
    if b.pages.iter().any(|p| !p.categories.is_empty()) {
        taxonomies.push("categories");
    }
    let mut main = vec![MenuItem {
        name: "Home".into(),
        url: "/".into(),
        weight: 1,
    }];
    let mut add = |name: &str, url: String| {
        let weight = main.len() as i64 + 1;
        main.push(MenuItem {
            name: name.into(),
            url,
            weight,
        });
    };
    if !b.products.is_empty() {
        add("Products", "/products/".into());
    }
    if b.pages.iter().any(|p| p.kind == Kind::Article) {
        add("Blog", "/blog/".into());
    }
    if b.pages.iter().any(|p| p.kind == Kind::Review) {
        add("Reviews", "/reviews/".into());
    }
    for p in &b.pages {
        if matches!(p.kind, Kind::Page | Kind::Faq) {
            add(&p.title, format!("/{}/", slug::slugify(&p.slug)));
        }
    }
    let mut menus = IndexMap::new();
    menus.insert("main", main);
    let mut collections = IndexMap::new();
    if !b.products.is_empty() {
        collections.insert(
            "products",
            Collection {
                template: Some("product.html"),
                path: Some("/products/{slug}/"),
                sort_by: Some("name"),
            },
        );
    }
    if b.business.is_some() {
        collections.insert("business", Collection::default());
    }
    if !b.reviews.is_empty() {
        collections.insert(
            "reviews",
            Collection {
                sort_by: Some("date"),
                ..Collection::default()
            },
        );
    }
    let mut extra = Map::new();
    if let Some(t) = &s.business_type {
        extra.insert("business_type".into(), json!(t));
    }
    if let Some(c) = b.products.iter().find_map(|p| p.currency.as_ref()) {
        extra.insert("currency".into(), json!(c));
    }
    SiteToml {
        base_url: &s.base_url,
        title: &s.title,
        description: &s.description,
        language: &s.language,
        author: s.author.as_deref(),
        taxonomies,
        menus,
        collections,
        extra,
    }
}

/// The files being composed.
#[derive(Default)]
struct Files {
    files: BTreeMap<PathBuf, (String, Vec<u8>)>,
}

impl Files {
    fn into_sorted(self) -> Vec<ComposedFile> {
        self.files
            .into_iter()
            .map(|(path, (source, bytes))| (WrittenFile { path, source }, bytes))
            .collect()
    }

    fn add(&mut self, rel: &str, source: &str, bytes: Vec<u8>) {
        self.files
            .insert(PathBuf::from(rel), (source.to_string(), bytes));
    }

    fn toml(&mut self, rel: &str, source: &str, v: &impl Serialize) -> Result<(), Vec<Problem>> {
        let text = toml::to_string(v).map_err(|e| internal(source, rel, e))?;
        self.add(rel, source, text.into_bytes());
        Ok(())
    }

    fn json(&mut self, rel: &str, source: &str, v: &Value) -> Result<(), Vec<Problem>> {
        let mut text = serde_json::to_string_pretty(v).map_err(|e| internal(source, rel, e))?;
        text.push('\n');
        self.add(rel, source, text.into_bytes());
        Ok(())
    }

    /// A Markdown file: TOML front matter from the serializer, then the body. The result
    /// is read back with qpage's parser and must give the same title and body.
    fn markdown(
        &mut self,
        rel: &str,
        source: &str,
        front: &Front<'_>,
        body: &str,
    ) -> Result<(), Vec<Problem>> {
        let mut header = toml::to_string(front).map_err(|e| internal(source, rel, e))?;
        // A multi-line string (an answer, a description) could hold a line that is just
        // `+++`, which would end the header early: such lines are indented by a space,
        // which changes nothing in Markdown.
        if header.lines().any(|l| l.trim_end() == "+++") {
            let mut front_value =
                serde_json::to_value(front).map_err(|e| internal(source, rel, e))?;
            guard_fences(&mut front_value);
            if let Some(d) = front.date {
                front_value["date"] = json!(d.to_string());
            }
            header = toml::to_string(&front_value).map_err(|e| internal(source, rel, e))?;
        }
        let mut text = String::with_capacity(header.len() + body.len() + 16);
        text.push_str("+++\n");
        text.push_str(&header);
        if !header.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("+++\n");
        text.push_str(body);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let split = crate::frontmatter::split(&text, Path::new(rel))
            .map_err(|d| internal(source, rel, d))?;
        let title_ok = split.front.title.as_deref() == Some(front.title);
        let body_ok = split.body.trim_end() == body.trim_end();
        if !title_ok || !body_ok {
            return Err(internal(
                source,
                rel,
                "the front matter did not read back as written",
            ));
        }
        self.add(rel, source, text.into_bytes());
        Ok(())
    }
}

/// Indents every line that is exactly `+++` inside the strings of `v`.
fn guard_fences(v: &mut Value) {
    match v {
        Value::String(s) if s.lines().any(|l| l.trim_end() == "+++") => {
            *s = s
                .split('\n')
                .map(|l| {
                    if l.trim_end() == "+++" {
                        format!(" {l}")
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        Value::Array(a) => a.iter_mut().for_each(guard_fences),
        Value::Object(m) => m.values_mut().for_each(guard_fences),
        _ => {}
    }
}

fn internal(source: &str, rel: &str, e: impl std::fmt::Display) -> Vec<Problem> {
    vec![Problem::new(
        source,
        format!("cannot write {rel}: {e} (a qpage bug: please report it with the bundle)"),
    )]
}
