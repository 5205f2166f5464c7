//! Search-ready `<head>`: the title from the site's pattern, description, canonical,
//! robots, OpenGraph and Twitter tags, feed and hreflang links, and schema.org JSON-LD
//! built from the model (never from template strings). Records that miss a property
//! Google requires for their type produce a warning naming the file and the property.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::config::SiteConfig;
use crate::error::Diagnostic;
use crate::markdown::escape_attr;
use crate::templates::script_safe;

/// What kind of output page the head is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The home page.
    Home,
    /// A dated article.
    Article,
    /// An undated page.
    Page,
    /// A section, taxonomy or term listing.
    Listing,
    /// A page generated from a data record.
    Record,
    /// The 404 page.
    NotFound,
}

/// Everything the head needs to know about one output page.
#[derive(Debug, Clone)]
pub struct PageInfo<'a> {
    /// Kind.
    pub kind: Kind,
    /// Page title (without the site pattern).
    pub title: String,
    /// Description (plain text).
    pub description: String,
    /// Site path.
    pub path: String,
    /// Published.
    pub date: Option<chrono::NaiveDate>,
    /// Updated.
    pub updated: Option<chrono::NaiveDate>,
    /// Social image (site path or URL) and its alt text.
    pub image: Option<(String, String)>,
    /// Breadcrumb trail from home to the parent: (title, path).
    pub crumbs: Vec<(String, String)>,
    /// Keywords (tags).
    pub keywords: Vec<String>,
    /// Word count.
    pub word_count: usize,
    /// Exclude from search engines (drafts, paginated duplicates).
    pub noindex: bool,
    /// Feeds about this page: (type, site path).
    pub feeds: Vec<(&'static str, String)>,
    /// Translations: (language, site path), this page's own included.
    pub alternates: Vec<(String, String)>,
    /// Language, when not the site's main one.
    pub lang: Option<String>,
    /// FAQ items: (question, answer HTML).
    pub faqs: Vec<(String, String)>,
    /// A data record this page presents, its schema.org type and source file.
    pub record: Option<(&'a Map<String, Value>, String, &'a Path)>,
}

/// The computed head: values for templates plus the HTML to insert.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Head {
    /// `<title>` text.
    pub title: String,
    /// The page's language (`<html lang>`).
    pub lang: String,
    /// Meta description.
    pub description: String,
    /// Absolute canonical URL (none for the 404 page).
    pub canonical: Option<String>,
    /// `noindex` when the page must stay out of search results.
    pub robots: Option<String>,
    /// Meta, link and JSON-LD tags (safe HTML).
    pub html: String,
}

/// Longest `<title>` the pattern may make (longer ones drop the site name).
pub const TITLE_MAX: usize = 60;

/// Builds the head of one page; warnings are pushed for records missing required
/// properties.
pub fn head(config: &SiteConfig, info: &PageInfo, warnings: &mut Vec<Diagnostic>) -> Head {
    let canonical = config.permalink(&info.path);
    let title = if info.kind == Kind::Home && (info.title.is_empty() || info.title == config.title)
    {
        config.title.clone()
    } else {
        let full = config
            .title_pattern
            .replace("{title}", &info.title)
            .replace("{site}", &config.title);
        // Search results cut titles near 60 characters, and what they cut is the site
        // name: a long page title goes alone rather than truncated.
        if full.chars().count() > TITLE_MAX && info.title.chars().count() <= TITLE_MAX {
            info.title.clone()
        } else {
            full
        }
    };
    let description = if info.description.trim().is_empty() {
        config.description.clone()
    } else {
        clip_words(info.description.trim(), 160)
    };
    let robots =
        (info.noindex || info.kind == Kind::NotFound).then(|| "noindex, follow".to_string());
    let mut html = String::new();
    let mut meta = |attr: &str, name: &str, content: &str| {
        let _ = writeln!(
            html,
            "<meta {attr}=\"{name}\" content=\"{}\">",
            escape_attr(content)
        );
    };
    if let Some(r) = &robots {
        meta("name", "robots", r);
    }
    let og_type = match info.kind {
        Kind::Article => "article",
        Kind::Record if info.record.as_ref().is_some_and(|r| r.1 == "Product") => "product",
        _ => "website",
    };
    meta("property", "og:type", og_type);
    meta("property", "og:title", &title);
    if !description.is_empty() {
        meta("property", "og:description", &description);
    }
    meta("property", "og:url", &canonical);
    meta("property", "og:site_name", &config.title);
    let lang = info.lang.clone().unwrap_or_else(|| config.language.clone());
    meta("property", "og:locale", &lang.replace('-', "_"));
    for (other, _) in info.alternates.iter().filter(|(l, _)| *l != lang) {
        meta("property", "og:locale:alternate", &other.replace('-', "_"));
    }
    let image = info
        .image
        .clone()
        .or_else(|| config.image.clone().map(|i| (i, config.title.clone())));
    if let Some((src, alt)) = &image {
        meta("property", "og:image", &config.permalink(src));
        if !alt.is_empty() {
            meta("property", "og:image:alt", alt);
        }
    }
    if let (Kind::Article, Some(d)) = (info.kind, info.date) {
        meta("property", "article:published_time", &d.to_string());
        if let Some(u) = info.updated {
            meta("property", "article:modified_time", &u.to_string());
        }
    }
    meta(
        "name",
        "twitter:card",
        if image.is_some() {
            "summary_large_image"
        } else {
            "summary"
        },
    );
    meta("name", "twitter:title", &title);
    if !description.is_empty() {
        meta("name", "twitter:description", &description);
    }
    if let Some((src, _)) = &image {
        meta("name", "twitter:image", &config.permalink(src));
    }
    for (kind, path) in &info.feeds {
        let _ = writeln!(
            html,
            "<link rel=\"alternate\" type=\"{kind}\" title=\"{}\" href=\"{}\">",
            escape_attr(&config.title),
            escape_attr(&config.permalink(path))
        );
    }
    if info.alternates.len() > 1 {
        for (lang, path) in &info.alternates {
            let _ = writeln!(
                html,
                "<link rel=\"alternate\" hreflang=\"{}\" href=\"{}\">",
                escape_attr(lang),
                escape_attr(&config.permalink(path))
            );
        }
        if let Some((_, path)) = info.alternates.iter().find(|(l, _)| *l == config.language) {
            let _ = writeln!(
                html,
                "<link rel=\"alternate\" hreflang=\"x-default\" href=\"{}\">",
                escape_attr(&config.permalink(path))
            );
        }
    }
    if info.kind != Kind::NotFound {
        let graph = graph(
            config,
            info,
            &title,
            &description,
            &canonical,
            image.as_ref(),
            warnings,
        );
        let doc = json!({"@context": "https://schema.org", "@graph": graph});
        let text = serde_json::to_string(&doc).unwrap_or_default();
        let _ = writeln!(
            html,
            "<script type=\"application/ld+json\">{}</script>",
            script_safe(&text)
        );
    }
    Head {
        title,
        lang,
        description,
        canonical: (info.kind != Kind::NotFound).then_some(canonical),
        robots,
        html,
    }
}

fn organization(config: &SiteConfig) -> Value {
    let mut org = json!({
        "@type": "Organization",
        "@id": config.permalink("/#organization"),
        "name": config.title,
        "url": config.permalink("/"),
    });
    if let Some(logo) = &config.logo {
        org["logo"] = json!(config.permalink(logo));
    }
    org
}

fn graph(
    config: &SiteConfig,
    info: &PageInfo,
    title: &str,
    description: &str,
    canonical: &str,
    image: Option<&(String, String)>,
    warnings: &mut Vec<Diagnostic>,
) -> Vec<Value> {
    let mut nodes = Vec::new();
    let name = if info.title.is_empty() {
        title
    } else {
        info.title.as_str()
    };
    match info.kind {
        Kind::Home => {
            nodes.push(json!({
                "@type": "WebSite",
                "@id": config.permalink("/#website"),
                "name": config.title,
                "url": config.permalink("/"),
                "description": description,
                "inLanguage": config.language,
                "publisher": {"@id": config.permalink("/#organization")},
            }));
            nodes.push(organization(config));
        }
        Kind::Article => {
            let mut post = json!({
                "@type": "BlogPosting",
                "headline": truncate(name, 110),
                "description": description,
                "url": canonical,
                "mainEntityOfPage": canonical,
                "inLanguage": config.language,
                "publisher": organization(config),
                "wordCount": info.word_count,
            });
            if let Some(d) = info.date {
                post["datePublished"] = json!(d.to_string());
                post["dateModified"] = json!(info.updated.unwrap_or(d).max(d).to_string());
            }
            if !config.author.is_empty() {
                post["author"] = json!({"@type": "Person", "name": config.author});
            } else {
                post["author"] = organization(config);
            }
            if let Some((src, _)) = image {
                post["image"] = json!([config.permalink(src)]);
            }
            if !info.keywords.is_empty() {
                post["keywords"] = json!(info.keywords.join(", "));
            }
            nodes.push(post);
        }
        Kind::Page => nodes.push(json!({
            "@type": "WebPage", "name": name, "url": canonical, "description": description, "inLanguage": config.language,
        })),
        Kind::Listing => nodes.push(json!({
            "@type": "CollectionPage", "name": name, "url": canonical, "description": description, "inLanguage": config.language,
        })),
        Kind::Record | Kind::NotFound => {}
    }
    if let Some((fields, schema, file)) = &info.record
        && let Some(node) = record_node(config, fields, schema, canonical, file, warnings)
    {
        nodes.push(node);
    }
    if !info.faqs.is_empty() {
        nodes.push(json!({
            "@type": "FAQPage",
            "url": canonical,
            "mainEntity": info.faqs.iter().map(|(q, a)| json!({
                "@type": "Question",
                "name": q,
                "acceptedAnswer": {"@type": "Answer", "text": a},
            })).collect::<Vec<_>>(),
        }));
    }
    if info.kind != Kind::Home {
        let mut items: Vec<Value> = info
            .crumbs
            .iter()
            .enumerate()
            .map(|(i, (t, p))| json!({"@type": "ListItem", "position": i + 1, "name": t, "item": config.permalink(p)}))
            .collect();
        items.push(json!({"@type": "ListItem", "position": items.len() + 1, "name": name, "item": canonical}));
        nodes.push(json!({"@type": "BreadcrumbList", "itemListElement": items}));
    }
    nodes
}

/// Shortens text to at most `max` characters at a word boundary, ending in `…`.
fn clip_words(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out = String::new();
    for word in s.split_whitespace() {
        if out.chars().count() + word.chars().count() + 2 > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.trim_end_matches([',', ';', ':', '.']).to_string() + "…"
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}

fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    match fields.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Plain text of a Markdown field.
pub fn plain(markdown: &str) -> String {
    strip_tags(&crate::markdown::render(markdown, false).html)
}

/// Text content of HTML (tags dropped, common entities decoded, spaces folded).
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn warn(warnings: &mut Vec<Diagnostic>, file: &Path, schema: &str, property: &str) {
    warnings.push(
        Diagnostic::file(
            file,
            format!("{schema} is missing `{property}`, which Google requires for rich results"),
        )
        .help(format!("add `{property}` to the record")),
    );
}

const AVAILABILITY: [&str; 6] = [
    "InStock",
    "OutOfStock",
    "PreOrder",
    "BackOrder",
    "Discontinued",
    "LimitedAvailability",
];

fn record_node(
    config: &SiteConfig,
    f: &Map<String, Value>,
    schema: &str,
    url: &str,
    file: &Path,
    warnings: &mut Vec<Diagnostic>,
) -> Option<Value> {
    let image = text(f, "image").map(|i| json!([config.permalink(&i)]));
    let description = text(f, "description").map(|d| plain(&d));
    match schema {
        "Product" => {
            let mut p = json!({"@type": "Product", "url": url});
            match text(f, "name") {
                Some(n) => p["name"] = json!(n),
                None => warn(warnings, file, "Product", "name"),
            }
            if let Some(d) = description {
                p["description"] = json!(d);
            }
            if let Some(i) = image {
                p["image"] = i;
            }
            for key in ["sku", "gtin", "mpn"] {
                if let Some(v) = text(f, key) {
                    p[key] = json!(v);
                }
            }
            if let Some(b) = text(f, "brand") {
                p["brand"] = json!({"@type": "Brand", "name": b});
            }
            let mut has_offer = false;
            if let Some(price) = text(f, "price") {
                has_offer = true;
                let mut offer = json!({"@type": "Offer", "price": price, "url": url, "itemCondition": "https://schema.org/NewCondition"});
                match text(f, "currency") {
                    Some(c) => offer["priceCurrency"] = json!(c),
                    None => warn(warnings, file, "Product offer", "currency"),
                }
                let availability = text(f, "availability").unwrap_or_else(|| "InStock".into());
                if AVAILABILITY.contains(&availability.as_str()) {
                    offer["availability"] = json!(format!("https://schema.org/{availability}"));
                } else {
                    warnings.push(Diagnostic::file(
                        file,
                        format!(
                            "availability `{availability}` is not one of {}",
                            AVAILABILITY.join(", ")
                        ),
                    ));
                }
                p["offers"] = offer;
            }
            let mut has_rating = false;
            if let Some(Value::Object(r)) = f.get("rating")
                && let (Some(v), Some(c)) = (text(r, "value"), text(r, "count"))
            {
                has_rating = true;
                p["aggregateRating"] = json!({"@type": "AggregateRating", "ratingValue": v, "reviewCount": c, "bestRating": 5, "worstRating": 1});
            }
            let reviews: Vec<Value> = match f.get("reviews") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_object)
                    .map(review_json)
                    .collect(),
                _ => Vec::new(),
            };
            if !reviews.is_empty() {
                p["review"] = json!(reviews);
            }
            if !has_offer && !has_rating && reviews.is_empty() {
                warn(
                    warnings,
                    file,
                    "Product",
                    "price (offers), rating or reviews",
                );
            }
            Some(p)
        }
        "Review" => {
            let mut r = review_json(f);
            r["url"] = json!(url);
            match text(f, "item")
                .or_else(|| text(f, "product"))
                .or_else(|| text(f, "item_reviewed"))
            {
                Some(item) => r["itemReviewed"] = json!({"@type": "Thing", "name": item}),
                None => warn(warnings, file, "Review", "item (itemReviewed)"),
            }
            if text(f, "author").is_none() {
                warn(warnings, file, "Review", "author");
            }
            if text(f, "rating").is_none() {
                warn(warnings, file, "Review", "rating");
            }
            Some(r)
        }
        "" | "Thing" | "WebPage" => None,
        business => Some(local_business(config, f, business, url, file, warnings)),
    }
}

fn review_json(r: &Map<String, Value>) -> Value {
    let mut v = json!({"@type": "Review"});
    if let Some(a) = text(r, "author") {
        v["author"] = json!({"@type": "Person", "name": a});
    }
    if let Some(rating) = text(r, "rating") {
        v["reviewRating"] =
            json!({"@type": "Rating", "ratingValue": rating, "bestRating": 5, "worstRating": 1});
    }
    if let Some(d) = text(r, "date") {
        v["datePublished"] = json!(d);
    }
    if let Some(t) = text(r, "title") {
        v["name"] = json!(t);
    }
    if let Some(b) = text(r, "body") {
        v["reviewBody"] = json!(plain(&b));
    }
    v
}

/// A LocalBusiness (or a declared subtype such as `Bakery`) from a business record.
pub fn local_business(
    config: &SiteConfig,
    f: &Map<String, Value>,
    schema: &str,
    url: &str,
    file: &Path,
    warnings: &mut Vec<Diagnostic>,
) -> Value {
    let schema = text(f, "type").unwrap_or_else(|| schema.to_string());
    let mut b = json!({"@type": schema, "@id": format!("{url}#business"), "url": url});
    match text(f, "name") {
        Some(n) => b["name"] = json!(n),
        None => warn(warnings, file, &schema, "name"),
    }
    if let Some(d) = text(f, "description") {
        b["description"] = json!(plain(&d));
    }
    if let Some(i) = text(f, "image") {
        b["image"] = json!([config.permalink(&i)]);
    }
    for (key, prop) in [
        ("telephone", "telephone"),
        ("email", "email"),
        ("price_range", "priceRange"),
    ] {
        if let Some(v) = text(f, key) {
            b[prop] = json!(v);
        }
    }
    match f.get("address") {
        Some(Value::Object(a)) => {
            let mut addr = json!({"@type": "PostalAddress"});
            for (key, prop) in [
                ("street", "streetAddress"),
                ("locality", "addressLocality"),
                ("region", "addressRegion"),
                ("postal_code", "postalCode"),
                ("country", "addressCountry"),
            ] {
                if let Some(v) = text(a, key) {
                    addr[prop] = json!(v);
                }
            }
            b["address"] = addr;
        }
        _ => warn(warnings, file, &schema, "address"),
    }
    if let Some(Value::Object(g)) = f.get("geo") {
        let num = |k: &str| g.get(k).and_then(Value::as_f64);
        if let (Some(lat), Some(lng)) = (num("lat"), num("lng").or_else(|| num("lon"))) {
            b["geo"] = json!({"@type": "GeoCoordinates", "latitude": lat, "longitude": lng});
        }
    }
    if let Some(Value::Array(hours)) = f.get("opening_hours") {
        let specs: Vec<Value> = hours
            .iter()
            .filter_map(Value::as_object)
            .map(|h| {
                let days: Vec<Value> = match h.get("days") {
                    Some(Value::Array(d)) => d.iter().filter_map(Value::as_str).map(|d| json!(d)).collect(),
                    Some(Value::String(d)) => vec![json!(d)],
                    _ => Vec::new(),
                };
                json!({"@type": "OpeningHoursSpecification", "dayOfWeek": days, "opens": text(h, "opens"), "closes": text(h, "closes")})
            })
            .collect();
        b["openingHoursSpecification"] = json!(specs);
    }
    if let Some(Value::Array(services)) = f.get("services") {
        let offers: Vec<Value> = services
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|s| {
                let name = text(s, "name")?;
                let mut o =
                    json!({"@type": "Offer", "itemOffered": {"@type": "Service", "name": name}});
                if let Some(d) = text(s, "description") {
                    o["itemOffered"]["description"] = json!(plain(&d));
                }
                Some(o)
            })
            .collect();
        if !offers.is_empty() {
            b["makesOffer"] = json!(offers);
        }
    }
    b
}

/// The schema.org type of a collection's records: declared, or from its template.
pub fn record_schema(declared: Option<&str>, template: &str) -> String {
    if let Some(d) = declared {
        return d.to_string();
    }
    match template.trim_end_matches(".html") {
        "product" => "Product",
        "business" => "LocalBusiness",
        "review" => "Review",
        _ => "",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SiteConfig {
        SiteConfig::parse(
            "base_url = 'https://a.test'\ntitle = 'Site'\ndescription = 'About'",
            Path::new("site.toml"),
        )
        .expect("config")
    }

    fn info(kind: Kind) -> PageInfo<'static> {
        PageInfo {
            kind,
            title: "Hello".into(),
            description: "Desc".into(),
            path: "/blog/hello/".into(),
            date: chrono::NaiveDate::from_ymd_opt(2025, 1, 2),
            updated: None,
            image: None,
            crumbs: vec![
                ("Site".into(), "/".into()),
                ("Blog".into(), "/blog/".into()),
            ],
            keywords: vec![],
            word_count: 10,
            noindex: false,
            feeds: vec![],
            alternates: vec![],
            lang: None,
            faqs: vec![],
            record: None,
        }
    }

    fn jsonld(html: &str) -> Value {
        let start = html
            .find("<script type=\"application/ld+json\">")
            .expect("script")
            + 35;
        let end = html[start..].find("</script>").expect("end") + start;
        serde_json::from_str(&html[start..end]).expect("valid JSON-LD")
    }

    #[test]
    fn article_head() {
        let mut w = Vec::new();
        let h = head(&config(), &info(Kind::Article), &mut w);
        assert_eq!(h.title, "Hello · Site");
        assert_eq!(h.canonical.as_deref(), Some("https://a.test/blog/hello/"));
        assert!(
            h.html
                .contains("<meta property=\"og:type\" content=\"article\">")
        );
        let g = jsonld(&h.html);
        assert_eq!(g["@graph"][0]["@type"], "BlogPosting");
        assert_eq!(g["@graph"][0]["datePublished"], "2025-01-02");
        assert_eq!(g["@graph"][1]["@type"], "BreadcrumbList");
        assert_eq!(
            g["@graph"][1]["itemListElement"][2]["item"],
            "https://a.test/blog/hello/"
        );
        assert!(w.is_empty());
    }

    #[test]
    fn long_descriptions_are_clipped_at_a_word() {
        let mut i = info(Kind::Record);
        let long = "word ".repeat(60);
        i.description = long;
        let h = head(&config(), &i, &mut Vec::new());
        assert!(
            h.description.chars().count() <= 160,
            "{}",
            h.description.len()
        );
        assert!(h.description.ends_with("word…"), "{}", h.description);
    }

    #[test]
    fn script_cannot_be_closed_by_content() {
        let mut i = info(Kind::Article);
        i.title = "</script><script>alert(1)</script>".into();
        let h = head(&config(), &i, &mut Vec::new());
        let script = &h.html[h.html.find("application/ld+json").expect("script")..];
        assert_eq!(script.matches("</script>").count(), 1, "{script}");
        assert_eq!(
            jsonld(&h.html)["@graph"][0]["headline"],
            "</script><script>alert(1)</script>"
        );
    }

    #[test]
    fn product_and_missing_properties_warn() {
        let fields: Map<String, Value> = serde_json::from_value(json!({
            "name": "Tea", "price": "3.50", "currency": "EUR", "availability": "InStock",
            "rating": {"value": 4.5, "count": 12},
            "reviews": [{"author": "Ann", "rating": 5, "body": "*Great*"}]
        }))
        .expect("map");
        let mut i = info(Kind::Record);
        i.record = Some((
            &fields,
            "Product".into(),
            Path::new("data/products/tea.json"),
        ));
        let mut w = Vec::new();
        let g = jsonld(&head(&config(), &i, &mut w).html);
        let p = &g["@graph"][0];
        assert_eq!(p["@type"], "Product");
        assert_eq!(p["offers"]["availability"], "https://schema.org/InStock");
        assert_eq!(p["aggregateRating"]["ratingValue"], "4.5");
        assert_eq!(p["review"][0]["reviewBody"], "Great");
        assert!(w.is_empty(), "{w:?}");
        let bare: Map<String, Value> = serde_json::from_value(json!({"sku": "x"})).expect("map");
        i.record = Some((
            &bare,
            "Product".into(),
            Path::new("data/products/bare.json"),
        ));
        head(&config(), &i, &mut w);
        let msgs: Vec<String> = w.iter().map(ToString::to_string).collect();
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("data/products/bare.json: Product is missing `name`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("price (offers), rating or reviews")),
            "{msgs:?}"
        );
    }

    #[test]
    fn local_business_subtype() {
        let fields: Map<String, Value> = serde_json::from_value(json!({
            "name": "Bakery", "type": "Bakery", "telephone": "+1",
            "address": {"street": "1 Main", "locality": "Town", "postal_code": "1", "country": "US"},
            "geo": {"lat": 1.5, "lng": 2.5},
            "opening_hours": [{"days": ["Monday"], "opens": "07:00", "closes": "15:00"}]
        }))
        .expect("map");
        let mut w = Vec::new();
        let b = local_business(
            &config(),
            &fields,
            "LocalBusiness",
            "https://a.test/",
            Path::new("data/business.toml"),
            &mut w,
        );
        assert_eq!(b["@type"], "Bakery");
        assert_eq!(b["address"]["streetAddress"], "1 Main");
        assert_eq!(b["geo"]["longitude"], 2.5);
        assert_eq!(b["openingHoursSpecification"][0]["opens"], "07:00");
        assert!(w.is_empty());
    }
}
