//! After rendering: fingerprints CSS and JS (content-hash names, originals not emitted),
//! runs the rewriting pass and minification over every HTML page in parallel, and
//! writes the indexes built from the result: sitemaps, feeds and robots.txt.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::config::SiteConfig;
use crate::error::Diagnostic;
use crate::feed::{self, Feed, Item};
use crate::imageset::{SiteImages, resolve_src};
use crate::output::OutFile;
use crate::render::Rendered;
use crate::rewrite::{self, Rewriter};
use crate::site::Site;
use crate::sitemap::{self, Entry};

/// Static files as the output will hold them, after fingerprinting.
pub struct Statics {
    /// (output path, file).
    pub files: Vec<(String, OutFile)>,
    /// Site path of each fingerprinted asset -> its new site path.
    pub renamed: HashMap<String, String>,
}

/// Gives every `.css` and `.js` file a content-hash name (`style.css` ->
/// `style.1a2b3c4d.css`) so it can be cached forever.
pub fn fingerprint(files: Vec<(String, OutFile)>) -> Statics {
    let mut renamed = HashMap::new();
    let files = files
        .into_iter()
        .map(|(path, file)| {
            let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
            if matches!(ext.as_deref(), Some("css" | "js")) {
                let hash = hex::encode(&Sha256::digest(&file.bytes)[..4]);
                let (stem, ext) = path.rsplit_once('.').unwrap_or((&path, ""));
                let new = format!("{stem}.{hash}.{ext}");
                renamed.insert(format!("/{path}"), format!("/{new}"));
                (new, file)
            } else {
                (path, file)
            }
        })
        .collect();
    Statics { files, renamed }
}

/// A page after rewriting, with the images found on it.
pub struct Finished {
    /// The page.
    pub page: Rendered,
    /// Site paths or URLs of its images.
    pub images: Vec<String>,
    /// `src`s of its images that name no file of the site.
    pub missing_images: Vec<String>,
    /// Site paths of the images it looked up (processed or not).
    pub image_sources: Vec<String>,
}

/// Rewrites (and minifies) every HTML page; with `images` (the processed images and the
/// site paths of every published file), `<img>`s become `<picture>`s.
pub fn rewrite_pages(
    config: &SiteConfig,
    renamed: &HashMap<String, String>,
    images: Option<(&SiteImages, &HashSet<String>)>,
    pages: Vec<Rendered>,
) -> Result<Vec<Finished>, Vec<Diagnostic>> {
    let mut rewriter = Rewriter::new(config, renamed);
    if let Some((images, published)) = images {
        rewriter = rewriter.with_images(images, published);
    }
    let results: Vec<Result<Finished, Diagnostic>> = pages
        .into_par_iter()
        .map(|mut page| {
            if !page.out.ends_with(".html") {
                return Ok(Finished {
                    page,
                    images: Vec::new(),
                    missing_images: Vec::new(),
                    image_sources: Vec::new(),
                });
            }
            let r = rewriter
                .rewrite(&page.bytes, &page_dir(&page.out))
                .map_err(|e| {
                    Diagnostic::file(
                        &page.origin,
                        format!("cannot rewrite the rendered HTML: {e}"),
                    )
                })?;
            page.bytes = if config.minify {
                rewrite::minify(&r.html)
            } else {
                r.html
            };
            Ok(Finished {
                page,
                images: r.images,
                missing_images: r.missing_images,
                image_sources: r.sources,
            })
        })
        .collect();
    let mut out = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(f) => out.push(f),
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The URL folder of an output page: `blog/post/index.html` -> `/blog/post/`.
fn page_dir(out: &str) -> String {
    match out.rsplit_once('/') {
        Some((dir, _)) => format!("/{dir}/"),
        None => "/".to_string(),
    }
}

/// Warnings about the images of the finished pages: each `<img>` naming no file (on its
/// page), each original that could not be processed (naming the pages showing it).
pub fn image_warnings(
    config: &SiteConfig,
    images: &SiteImages,
    pages: &[Finished],
) -> Vec<Diagnostic> {
    let mut shown_on: HashMap<String, Vec<PathBuf>> = HashMap::new();
    let mut out = Vec::new();
    for f in pages {
        for src in &f.missing_images {
            out.push(
                Diagnostic::file(
                    &f.page.origin,
                    format!("<img src=\"{src}\">: no such file in the site"),
                )
                .help(
                    "put the image in static/ or beside the page (a page bundle), or fix its path",
                ),
            );
        }
        let dir = page_dir(&f.page.out);
        for src in &f.images {
            if let Some(path) = resolve_src(src, &dir, &config.base_url)
                && images.failed(&path)
            {
                let pages = shown_on.entry(path).or_default();
                if !pages.contains(&f.page.origin) {
                    pages.push(f.page.origin.clone());
                }
            }
        }
    }
    out.extend(images.warnings(&shown_on));
    out
}

/// Sitemap files for the finished pages.
pub fn sitemap_files(config: &SiteConfig, pages: &[Finished]) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<Entry> = pages
        .iter()
        .filter_map(|f| {
            let (path, lastmod) = f.page.sitemap.as_ref()?;
            let mut images: Vec<String> = f.images.iter().map(|i| config.permalink(i)).collect();
            images.dedup();
            Some(Entry {
                loc: config.permalink(path),
                lastmod: *lastmod,
                images,
                alternates: f
                    .page
                    .alternates
                    .iter()
                    .map(|(lang, path)| (lang.clone(), config.permalink(path)))
                    .collect(),
            })
        })
        .collect();
    entries.sort_by(|a, b| a.loc.cmp(&b.loc));
    sitemap::sitemaps(config, &entries, sitemap::Limits::default())
}

/// Feed files: the site's, each section's and each taxonomy term's (as configured).
pub fn feed_files(site: &Site) -> Vec<(String, Vec<u8>)> {
    feed_files_for(site, None)
}

/// The feed files of the listings at `only` (site paths: `/` for the site's feed, a
/// section's or term's path), or of all of them.
pub fn feed_files_for(site: &Site, only: Option<&HashSet<String>>) -> Vec<(String, Vec<u8>)> {
    listing_feeds(site, only)
        .into_iter()
        .flat_map(|l| l.files)
        .collect()
}

/// The feeds of one listing.
pub struct ListingFeeds {
    /// The listing's site path (`/`, a section's or a term's path).
    pub listing: String,
    /// The pages the feeds show (indexes into the site's pages), newest first.
    pub pages: Vec<usize>,
    /// The feed files (Atom, RSS, as configured); none when no page is dated.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The feeds of the listings at `only` (as for [`feed_files_for`]), or of all of them,
/// with the pages each shows.
pub fn listing_feeds(site: &Site, only: Option<&HashSet<String>>) -> Vec<ListingFeeds> {
    let config = &site.config;
    let wanted = |path: &str| only.is_none_or(|o| o.contains(path));
    let item = |pi: usize| {
        let p = &site.pages[pi];
        let date = p.doc.date?;
        Some(Item {
            title: p.doc.front.title.clone().unwrap_or_default(),
            url: config.permalink(&p.path),
            date,
            updated: p.doc.updated,
            html: if config.feeds.full_content {
                p.doc.rendered.html.clone()
            } else {
                p.doc.rendered.summary.clone()
            },
            categories: p.terms.values().flatten().map(|t| t.name.clone()).collect(),
        })
    };
    // Newest first (then by URL); only the kept ones are built.
    let items_of = |pages: &mut dyn Iterator<Item = usize>| {
        let mut dated: Vec<(chrono::NaiveDate, String, usize)> = pages
            .filter_map(|pi| {
                let p = &site.pages[pi];
                Some((p.doc.date?, config.permalink(&p.path), pi))
            })
            .collect();
        dated.sort_by(|a, b| (b.0, &a.1).cmp(&(a.0, &b.1)));
        dated.truncate(config.feeds.limit.max(1));
        dated
            .into_iter()
            .filter_map(|(_, _, pi)| Some((pi, item(pi)?)))
            .unzip::<usize, Item, Vec<usize>, Vec<Item>>()
    };
    let mut pages: Vec<Vec<usize>> = Vec::new();
    let mut feed = |page_path: String,
                    title: String,
                    description: String,
                    (shown, items): (Vec<usize>, Vec<Item>)| {
        pages.push(shown);
        Feed {
            page_path,
            title,
            description,
            items,
        }
    };
    let mut feeds: Vec<Feed> = Vec::new();
    if wanted("/") {
        feeds.push(feed(
            "/".into(),
            config.title.clone(),
            config.description.clone(),
            // The site feed is the main language's; translations have their sections' feeds.
            items_of(&mut (0..site.pages.len()).filter(|&pi| site.pages[pi].lang.is_none())),
        ));
    }
    if config.feeds.sections {
        for s in site.sections.iter().skip(1).filter(|s| wanted(&s.path)) {
            feeds.push(feed(
                s.path.clone(),
                format!("{} · {}", s.title, config.title),
                s.doc
                    .as_ref()
                    .map_or(String::new(), |d| d.front.description.clone()),
                items_of(&mut s.pages.iter().copied()),
            ));
        }
    }
    if config.feeds.taxonomies {
        for t in &site.taxonomies {
            for (slug, term) in &t.terms {
                let page_path = format!("/{}/{slug}/", t.name);
                if !wanted(&page_path) {
                    continue;
                }
                feeds.push(feed(
                    page_path,
                    format!("{} · {}", term.name, config.title),
                    String::new(),
                    items_of(&mut term.pages.iter().copied()),
                ));
            }
        }
    }
    feeds
        .into_iter()
        .zip(pages)
        .map(|(f, pages)| {
            let mut files = Vec::new();
            if !f.items.is_empty() {
                let base = f.page_path.trim_start_matches('/');
                if config.feeds.atom {
                    let path = format!("{base}atom.xml");
                    files.push((path.clone(), feed::atom(config, &f, &format!("/{path}"))));
                }
                if config.feeds.rss {
                    let path = format!("{base}rss.xml");
                    files.push((path.clone(), feed::rss(config, &f, &format!("/{path}"))));
                }
            }
            ListingFeeds {
                listing: f.page_path,
                pages,
                files,
            }
        })
        .collect()
}

/// An output file made by qpage itself.
pub fn generated(bytes: Vec<u8>, what: &str) -> OutFile {
    OutFile {
        bytes: Arc::from(bytes),
        origin: PathBuf::from(format!("(generated {what})")),
    }
}
