//! The page rules and the site-wide link rules.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use url::Url;

use super::page::{Page, collapse};
use super::{CheckConfig, Raw, jsonld};
use crate::config::SiteConfig;

/// The built site as the rules see it.
pub(crate) struct SiteView<'a> {
    pub base: Url,
    pub config: &'a SiteConfig,
    pub check: &'a CheckConfig,
    /// Every file of dist, relative.
    pub files: BTreeSet<String>,
    pub pages: Vec<Page>,
    by_file: HashMap<String, usize>,
    /// Source paths of `_redirects` rules (a trailing `*` matches any rest).
    redirect_rules: Vec<String>,
    pub dist: &'a Path,
}

/// Where an internal URL points.
pub(crate) struct Target {
    /// Decoded site path, e.g. `/a/`.
    pub path: String,
    /// Decoded fragment, when there is one.
    pub fragment: Option<String>,
    /// The dist file it resolves to.
    pub file: Option<String>,
}

impl<'a> SiteView<'a> {
    pub fn new(
        dist: &'a Path,
        base: Url,
        config: &'a SiteConfig,
        check: &'a CheckConfig,
        files: BTreeSet<String>,
        pages: Vec<Page>,
    ) -> SiteView<'a> {
        let by_file = pages
            .iter()
            .enumerate()
            .map(|(i, p)| (p.file.clone(), i))
            .collect();
        let redirect_rules = std::fs::read_to_string(dist.join("_redirects"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                (!l.starts_with('#')).then(|| l.split_whitespace().next())?
            })
            .map(str::to_string)
            .collect();
        SiteView {
            base,
            config,
            check,
            files,
            pages,
            by_file,
            redirect_rules,
            dist,
        }
    }

    /// The page written to a dist file.
    pub fn page(&self, file: &str) -> Option<&Page> {
        self.by_file.get(file).map(|&i| &self.pages[i])
    }

    /// The absolute URL of a page.
    pub fn url_of(&self, page: &Page) -> Url {
        self.base
            .join(page.path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base.clone())
    }

    /// Resolves a URL written on `page` (None for `page` means the site root); None
    /// when it leaves the site (other host, mailto:, data:, ...).
    pub fn internal(&self, page: Option<&Page>, href: &str) -> Option<Target> {
        let from = page.map_or_else(|| self.base.clone(), |p| self.url_of(p));
        let u = from.join(href).ok()?;
        self.internal_url(&u)
    }

    /// The site path and file of an absolute URL, when it is on this site.
    pub fn internal_url(&self, u: &Url) -> Option<Target> {
        if !matches!(u.scheme(), "http" | "https") || u.host_str() != self.base.host_str() {
            return None;
        }
        let rest = u.path().strip_prefix(self.base.path())?;
        let path = format!("/{}", percent_decode(rest));
        let file = self.resolve(&path);
        Some(Target {
            fragment: u.fragment().map(percent_decode),
            path,
            file,
        })
    }

    /// The dist file a site path is served from, with clean URLs: `/a/` ->
    /// `a/index.html`, and `/a` -> `a` or `a/index.html`. `_redirects` sources count
    /// as existing (reported as the path itself).
    pub fn resolve(&self, path: &str) -> Option<String> {
        let rel = path.trim_start_matches('/');
        let candidates = if rel.is_empty() || rel.ends_with('/') {
            vec![format!("{rel}index.html")]
        } else {
            vec![rel.to_string(), format!("{rel}/index.html")]
        };
        if let Some(f) = candidates.into_iter().find(|c| self.files.contains(c)) {
            return Some(f);
        }
        self.redirect_rules
            .iter()
            .any(|r| match r.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => r == path || r.trim_end_matches('/') == path.trim_end_matches('/'),
            })
            .then(|| path.to_string())
    }

    /// Whether the canonical of a page is the page itself (or absent).
    pub fn canonical_is_self(&self, p: &Page) -> bool {
        match p.canonicals.first() {
            None => true,
            Some(c) => self
                .internal(Some(p), c)
                .and_then(|t| t.file)
                .is_some_and(|f| f == p.file),
        }
    }

    /// Pages search engines should index: not a redirect, not noindex, not the 404
    /// page, canonical to itself.
    pub fn indexable(&self, p: &Page) -> bool {
        !p.is_redirect() && !p.noindex && !is_404(p) && self.canonical_is_self(p)
    }

    /// Taxonomy and paginated listing pages (not expected to have much text).
    pub fn is_listing(&self, p: &Page) -> bool {
        let segs: Vec<&str> = p.path.split('/').filter(|s| !s.is_empty()).collect();
        let paginated = segs
            .windows(2)
            .any(|w| w[0] == "page" && w[1].parse::<u32>().is_ok());
        let taxonomy = segs
            .first()
            .is_some_and(|s| self.config.taxonomies.iter().any(|t| t == s));
        paginated || taxonomy
    }
}

pub(crate) fn is_404(p: &Page) -> bool {
    p.file == "404.html"
}

pub(crate) use crate::imageset::percent_decode;

/// Runs every page rule and the site-wide link rules.
pub(crate) fn run(site: &SiteView<'_>, out: &mut Vec<Raw>) {
    for p in &site.pages {
        if p.is_redirect() {
            continue;
        }
        page_rules(site, p, out);
        links(site, p, out);
    }
    images(site, out);
    duplicates(site, out);
    orphans(site, out);
    redirects(site, out);
}

/// Image files that are too heavy or too wide, and `<img>`s served far wider than shown.
fn images(site: &SiteView<'_>, out: &mut Vec<Raw>) {
    let c = site.check;
    // (bytes, width) of each raster file, read once.
    let mut seen: HashMap<String, Option<(u64, u32)>> = HashMap::new();
    let mut facts = |file: &str| -> Option<(u64, u32)> {
        *seen.entry(file.to_string()).or_insert_with(|| {
            if !crate::imageset::is_raster(file) {
                return None;
            }
            let path = site.dist.join(file);
            let bytes = std::fs::metadata(&path).ok()?.len();
            let (w, _) = image::ImageReader::open(&path)
                .ok()?
                .with_guessed_format()
                .ok()?
                .into_dimensions()
                .ok()?;
            Some((bytes, w))
        })
    };
    let mut reported: HashSet<String> = HashSet::new();
    for p in site.pages.iter().filter(|p| !p.is_redirect()) {
        for img in &p.imgs {
            let Some(file) = site.internal(Some(p), &img.src).and_then(|t| t.file) else {
                continue;
            };
            let Some((bytes, width)) = facts(&file) else {
                continue;
            };
            if (bytes > c.image_max_bytes || width > c.image_max_width)
                && reported.insert(file.clone())
            {
                out.push((
                    "img-oversized",
                    p.path.clone(),
                    format!(
                        "/{file} is {} KB and {width} px wide (max {} KB, {} px): resize it, or let qpage's image pipeline serve it",
                        bytes / 1000,
                        c.image_max_bytes / 1000,
                        c.image_max_width
                    ),
                ));
            }
            if let Some(shown) = img.width
                && !img.responsive
                && shown > 0
                && width > shown.saturating_mul(2)
            {
                out.push((
                    "img-larger-than-displayed",
                    p.path.clone(),
                    format!(
                        "<img src=\"{}\"> is {width} px wide but shown at {shown} px: serve a smaller file or add srcset",
                        img.src
                    ),
                ));
            }
        }
    }
}

fn page_rules(site: &SiteView<'_>, p: &Page, out: &mut Vec<Raw>) {
    let c = site.check;
    let mut push = |rule: &'static str, msg: String| out.push((rule, p.path.clone(), msg));
    match p.title.as_deref() {
        None => push("title-missing", "no <title>".into()),
        Some("") => push("title-missing", "the <title> is empty".into()),
        Some(t) => {
            let n = t.chars().count();
            if n > c.title_max {
                push(
                    "title-too-long",
                    format!("title has {n} characters (max {}): `{t}`", c.title_max),
                );
            }
        }
    }
    match p.description.as_deref() {
        None => push(
            "description-missing",
            "no <meta name=\"description\">".into(),
        ),
        Some("") => push("description-missing", "the description is empty".into()),
        Some(d) => {
            let n = d.chars().count();
            if n > c.description_max {
                push(
                    "description-too-long",
                    format!("description has {n} characters (max {})", c.description_max),
                );
            } else if n < c.description_min {
                push(
                    "description-too-short",
                    format!(
                        "description has {n} characters (min {}): `{d}`",
                        c.description_min
                    ),
                );
            }
        }
    }
    let h1 = p.headings.iter().filter(|&&l| l == 1).count();
    if h1 == 0 {
        push("h1-missing", "no <h1>".into());
    } else if h1 > 1 {
        push("h1-multiple", format!("{h1} <h1> elements (want one)"));
    }
    for w in p.headings.windows(2) {
        if w[1] > w[0] + 1 {
            push(
                "heading-skip",
                format!("<h{}> follows <h{}> (skips a level)", w[1], w[0]),
            );
        }
    }
    for src in &p.imgs_without_alt {
        push(
            "img-alt-missing",
            format!("<img src=\"{src}\"> has no alt attribute (use alt=\"\" if decorative)"),
        );
    }
    if !p.noindex && !is_404(p) && p.canonicals.is_empty() {
        push("canonical-missing", "no <link rel=\"canonical\">".into());
    }
    for canon in &p.canonicals {
        let absolute =
            Url::parse(canon).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !absolute {
            push(
                "canonical-not-absolute",
                format!("canonical `{canon}` is not an absolute http(s) URL"),
            );
        }
    }
    if !p.noindex && !is_404(p) && !site.is_listing(p) && p.words < c.min_words {
        push(
            "thin-page",
            format!("{} words of main text (min {})", p.words, c.min_words),
        );
    }
    let many = p.jsonld.len() > 1;
    for (i, script) in p.jsonld.iter().enumerate() {
        for (rule, msg) in jsonld::check(script) {
            let msg = if many {
                format!("JSON-LD script {}: {msg}", i + 1)
            } else {
                format!("JSON-LD: {msg}")
            };
            push(rule, msg);
        }
    }
}

fn links(site: &SiteView<'_>, p: &Page, out: &mut Vec<Raw>) {
    for l in &p.links {
        if l.href.is_empty() {
            continue;
        }
        let Some(t) = site.internal(Some(p), &l.href) else {
            continue;
        };
        let Some(file) = &t.file else {
            out.push((
                "link-broken",
                p.path.clone(),
                format!("{} `{}`: nothing at {} in dist", l.from, l.href, t.path),
            ));
            continue;
        };
        let Some(frag) = t.fragment.as_deref() else {
            continue;
        };
        if frag.is_empty() || frag.eq_ignore_ascii_case("top") {
            continue;
        }
        if let Some(target) = site.page(file)
            && !target.ids.contains(frag)
        {
            let where_ = if target.file == p.file {
                "this page".to_string()
            } else {
                target.path.clone()
            };
            out.push((
                "anchor-broken",
                p.path.clone(),
                format!("{} `{}`: no id `{frag}` on {where_}", l.from, l.href),
            ));
        }
    }
}

fn duplicates(site: &SiteView<'_>, out: &mut Vec<Raw>) {
    let mut titles: BTreeMap<&str, Vec<&Page>> = BTreeMap::new();
    let mut descs: BTreeMap<&str, Vec<&Page>> = BTreeMap::new();
    for p in site.pages.iter().filter(|p| site.indexable(p)) {
        if let Some(t) = p.title.as_deref().filter(|t| !t.is_empty()) {
            titles.entry(t).or_default().push(p);
        }
        if let Some(d) = p.description.as_deref().filter(|d| !d.is_empty()) {
            descs.entry(d).or_default().push(p);
        }
    }
    for (rule, what, groups) in [
        ("title-duplicate", "title", titles),
        ("description-duplicate", "description", descs),
    ] {
        for (text, pages) in groups.into_iter().filter(|(_, v)| v.len() > 1) {
            for p in &pages {
                let others: Vec<&str> = pages
                    .iter()
                    .filter(|o| o.file != p.file)
                    .map(|o| o.path.as_str())
                    .collect();
                let shown = others
                    .iter()
                    .take(5)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = if others.len() > 5 {
                    format!(" and {} more", others.len() - 5)
                } else {
                    String::new()
                };
                out.push((
                    rule,
                    p.path.clone(),
                    format!("same {what} as {shown}{more}: `{}`", collapse(text)),
                ));
            }
        }
    }
}

fn orphans(site: &SiteView<'_>, out: &mut Vec<Raw>) {
    let mut linked: HashSet<String> = HashSet::new();
    for p in site.pages.iter().filter(|p| !p.is_redirect()) {
        for l in p.links.iter().filter(|l| l.nav) {
            if let Some(f) = site.internal(Some(p), &l.href).and_then(|t| t.file)
                && f != p.file
            {
                linked.insert(f);
            }
        }
    }
    for p in &site.pages {
        if p.file == "index.html" || is_404(p) || p.noindex || p.is_redirect() {
            continue;
        }
        if !linked.contains(&p.file) {
            out.push((
                "orphan-page",
                p.path.clone(),
                "no other page links here".into(),
            ));
        }
    }
}

fn redirects(site: &SiteView<'_>, out: &mut Vec<Raw>) {
    for p in site.pages.iter().filter(|p| p.is_redirect()) {
        let Some(target) = p.refresh.as_deref() else {
            continue;
        };
        let Some(t) = site.internal(Some(p), target) else {
            continue;
        };
        let Some(file) = t.file else {
            out.push((
                "redirect-broken",
                p.path.clone(),
                format!("redirects to {}, which has no file in dist", t.path),
            ));
            continue;
        };
        let mut chain = vec![p.path.clone()];
        let mut seen = HashSet::from([p.file.clone()]);
        let mut next = site.page(&file);
        let mut looped = false;
        while let Some(n) = next {
            chain.push(n.path.clone());
            if !n.is_redirect() {
                break;
            }
            if !seen.insert(n.file.clone()) {
                looped = true;
                break;
            }
            next = n
                .refresh
                .as_deref()
                .and_then(|r| site.internal(Some(n), r))
                .and_then(|t| t.file)
                .and_then(|f| site.page(&f));
        }
        if chain.len() > 2 {
            let kind = if looped {
                "redirect loop"
            } else {
                "redirect chain"
            };
            out.push((
                "redirect-chain",
                p.path.clone(),
                format!(
                    "{kind}: {} (point {} straight at the final page)",
                    chain.join(" -> "),
                    p.path
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/caf%C3%A9/"), "/café/");
        assert_eq!(percent_decode("/a%2"), "/a%2");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
