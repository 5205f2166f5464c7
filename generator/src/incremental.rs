//! Incremental rebuilds for `qpage dev`: a [`Session`] builds the site once, keeps the
//! whole build in memory (documents, model, templates, rendered pages, images, output
//! files) with what each output page depends on (its template and the templates that
//! template reaches, the pages and sections it looked up, the pages it lists), and on
//! each batch of changed files re-renders only the pages that depend on them, then runs
//! the same rewriting pass on those pages and writes only the output files whose bytes
//! changed. Changes it cannot scope (`site.toml`, the theme's settings) fall back to a
//! full rebuild, and say so. The output after any sequence of updates is the output a
//! fresh full build with the same options writes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::build::{self, BuildOptions, IMAGE_CACHE_DIR, ThemeCache};
use crate::config::SiteConfig;
use crate::content::{Document, Loaded, MdOptions};
use crate::data::Collections;
use crate::error::{BuildError, Diagnostic};
use crate::finish;
use crate::images::{ImageCache, ImageSettings};
use crate::imageset::SiteImages;
use crate::output::{self, Manifest, ManifestEntry, OutFile, OutFiles};
use crate::render::{self, Job, RenderOptions, Renderer};
use crate::site::Site;
use crate::templates::{Templates, Theme};

mod restructure;

/// Output files (path, bytes) by what they belong to.
type FilesBy = BTreeMap<String, Vec<(String, Arc<[u8]>)>>;
/// A document read again: its file and the document (`None`: removed) or the errors.
type Reread = (PathBuf, Result<Option<Document>, Vec<Diagnostic>>);

/// How an update was carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Only the pages depending on the changed files were rendered.
    Incremental,
    /// The site model was rebuilt and every page rendered again (files were added or
    /// removed, or a page moved: its URL, date, order or terms changed); nothing was
    /// read again but the changed files, no image processed again.
    Rerender(String),
    /// Everything was built again from scratch; the reason says why.
    Full(String),
    /// Nothing to do (the changed files do not take part in the build).
    Nothing,
}

/// What one update did.
#[derive(Debug)]
pub struct Update {
    /// How.
    pub mode: Mode,
    /// Output pages rendered.
    pub rendered: usize,
    /// Output files written or removed: (site path without the leading `/`, new bytes
    /// or `None` when removed).
    pub changed: Vec<(String, Option<Arc<[u8]>>)>,
    /// True when every changed output file is a stylesheet (the browser can swap it
    /// without reloading the page).
    pub css_only: bool,
    /// Problems that stop parts of the site from building: while any remain, the pages
    /// they concern keep their last good output.
    pub errors: Vec<Diagnostic>,
    /// Time taken.
    pub took: Duration,
}

/// What a rendered output page depends on, and what it became.
struct PageOut {
    out: String,
    bytes: Arc<[u8]>,
    origin: PathBuf,
    sitemap: Option<(String, Option<chrono::NaiveDate>)>,
    alternates: Vec<(String, String)>,
    images: Vec<String>,
    missing_images: Vec<String>,
    image_sources: Vec<String>,
    reads: Vec<String>,
}

/// Everything a successful build left in memory.
struct State {
    config: SiteConfig,
    theme: Theme,
    templates: Templates,
    /// Template -> every template it reaches (itself included).
    closure: HashMap<String, BTreeSet<String>>,
    md: MdOptions,
    /// Documents as read (before the model moved translations), by file.
    docs: BTreeMap<PathBuf, Document>,
    data: Collections,
    site: Site,
    renderer: Renderer,
    /// Page index by source file and by site path.
    by_file: HashMap<PathBuf, usize>,
    by_path: HashMap<String, usize>,
    jobs: Vec<Job>,
    pages: HashMap<Job, PageOut>,
    /// The jobs whose last render looked up each page or section (`page:/path/`,
    /// `section:/path/`): the reverse of [`PageOut::reads`].
    readers: HashMap<String, HashSet<Job>>,
    /// Jobs whose last render failed (rendered again on the next update).
    failed: BTreeSet<Job>,
    image_settings: ImageSettings,
    images: SiteImages,
    /// Static files and content assets as collected (before image processing).
    statics_in: Vec<(String, OutFile)>,
    /// The same after image processing and fingerprinting.
    statics_out: Vec<(String, Arc<[u8]>, PathBuf)>,
    published: HashSet<String>,
    renamed: HashMap<String, String>,
    /// The sitemap files, and whether a page's entry changed since they were made.
    sitemap_files: Vec<(String, Arc<[u8]>)>,
    sitemap_stale: bool,
    /// Feed files by the listing they belong to.
    feeds: FilesBy,
    /// The pages each listing's feeds show.
    feed_pages: HashMap<String, Vec<usize>>,
    /// Every output file as written.
    files: BTreeMap<String, Arc<[u8]>>,
    manifest: Manifest,
}

/// A site being previewed: its last good build in memory, updated file by file.
pub struct Session {
    opts: BuildOptions,
    dest: PathBuf,
    image_cache: Arc<ImageCache>,
    state: Option<State>,
    /// Current problems by what raised them (a file, the templates, the model...).
    errors: BTreeMap<String, Vec<Diagnostic>>,
    /// Write `.qpage/manifest.json` on [`Session::flush`] instead of in each update.
    defer_manifest: bool,
    manifest_pending: bool,
}

/// What a changed path is to the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Config,
    Template,
    Static,
    Document,
    Asset,
    Data,
    Theme,
    Ignored,
}

impl Session {
    /// Builds the site in full and keeps the build. An error here (a broken site) still
    /// gives a session: the errors are reported, and the next update builds in full.
    pub fn start(opts: BuildOptions) -> Result<(Session, Update), BuildError> {
        let dest = opts
            .output
            .clone()
            .unwrap_or_else(|| opts.site_dir.join("dist"));
        let image_cache = match &opts.image_cache {
            Some(c) => Arc::clone(c),
            None => Arc::new(
                ImageCache::open(opts.site_dir.join(IMAGE_CACHE_DIR))
                    .map_err(|e| BuildError::one(e.to_diagnostic(None)))?,
            ),
        };
        let mut s = Session {
            opts,
            dest,
            image_cache,
            state: None,
            errors: BTreeMap::new(),
            defer_manifest: false,
            manifest_pending: false,
        };
        let update = s.full("first build".into(), Instant::now());
        Ok((s, update))
    }

    /// Where the site is written.
    pub fn output(&self) -> &Path {
        &self.dest
    }

    /// Every output file of the last good build (site path without `/`, bytes).
    pub fn files(&self) -> impl Iterator<Item = (&str, &Arc<[u8]>)> {
        self.state
            .iter()
            .flat_map(|s| s.files.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// Leaves the manifest (`.qpage/manifest.json`, the one file every update changes)
    /// to [`Session::flush`], so a caller can serve an update before writing it.
    pub fn defer_manifest(&mut self, on: bool) {
        self.defer_manifest = on;
    }

    /// Writes what an update left to write (the manifest, when deferred).
    pub fn flush(&mut self) {
        if !std::mem::take(&mut self.manifest_pending) {
            return;
        }
        if let Some(st) = &self.state {
            match write_manifest(&self.dest, &st.manifest) {
                Ok(()) => {
                    self.errors.remove("write");
                }
                Err(e) => {
                    self.errors.insert("write".into(), e);
                }
            }
        }
    }

    /// The current problems.
    pub fn errors(&self) -> Vec<Diagnostic> {
        self.errors.values().flatten().cloned().collect()
    }

    /// Takes in changed files (paths relative to the site folder, or absolute paths
    /// inside it): re-reads them, re-renders what depends on them and writes the output
    /// files whose bytes changed.
    pub fn update(&mut self, changed: &[PathBuf]) -> Update {
        let start = Instant::now();
        let mut kinds: BTreeMap<PathBuf, Kind> = BTreeMap::new();
        for p in changed {
            let rel = p
                .strip_prefix(&self.opts.site_dir)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| p.clone());
            let theme = self.state.as_ref().map(|s| s.config.theme.clone());
            let kind = classify(&rel, theme.as_deref(), &self.dest, &self.opts.site_dir);
            if kind != Kind::Ignored {
                kinds.insert(rel, kind);
            }
        }
        if kinds.is_empty() {
            return self.finish_update(Mode::Nothing, 0, Vec::new(), start);
        }
        if self.state.is_none() {
            return self.full("the last build failed".into(), start);
        }
        if let Some((p, _)) = kinds
            .iter()
            .find(|(_, k)| matches!(k, Kind::Config | Kind::Theme))
        {
            return self.full(format!("{} changed", p.display()), start);
        }
        match self.incremental(&kinds, start) {
            Ok(u) => u,
            Err(reason) => self.full(reason, start),
        }
    }

    fn full(&mut self, reason: String, start: Instant) -> Update {
        match full_build(&self.opts, &self.image_cache) {
            Ok(state) => {
                self.errors.clear();
                let old = self.state.take();
                let new_files = state.files.clone();
                let result = match &old {
                    // The first build writes the whole folder at once.
                    None => {
                        let files: OutFiles = state
                            .files
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    OutFile {
                                        bytes: v.clone(),
                                        origin: PathBuf::new(),
                                    },
                                )
                            })
                            .collect();
                        output::write(&self.dest, &files).map(|_| {
                            new_files
                                .iter()
                                .map(|(k, v)| (k.clone(), Some(v.clone())))
                                .collect()
                        })
                    }
                    Some(old) => write_changes(&self.dest, &old.files, &new_files)
                        .and_then(|c| write_manifest(&self.dest, &state.manifest).map(|()| c)),
                };
                let rendered = state.pages.len();
                self.state = Some(state);
                match result {
                    Ok(changed) => self.finish_update(Mode::Full(reason), rendered, changed, start),
                    Err(e) => {
                        self.errors.insert("output".into(), e);
                        self.finish_update(Mode::Full(reason), rendered, Vec::new(), start)
                    }
                }
            }
            Err(e) => {
                // Keep the last good build (if any) for serving; build in full next time.
                self.state = None;
                self.errors.clear();
                self.errors.insert("build".into(), e.diagnostics);
                self.finish_update(Mode::Full(reason), 0, Vec::new(), start)
            }
        }
    }

    fn finish_update(
        &self,
        mode: Mode,
        rendered: usize,
        changed: Vec<(String, Option<Arc<[u8]>>)>,
        start: Instant,
    ) -> Update {
        let css_only = !changed.is_empty()
            && changed
                .iter()
                .all(|(p, b)| b.is_some() && p.to_ascii_lowercase().ends_with(".css"));
        Update {
            mode,
            rendered,
            changed,
            css_only,
            errors: self.errors(),
            took: start.elapsed(),
        }
    }

    /// An update without a full rebuild; `Err(reason)` asks for one.
    fn incremental(
        &mut self,
        kinds: &BTreeMap<PathBuf, Kind>,
        start: Instant,
    ) -> Result<Update, String> {
        let site_dir = self.opts.site_dir.clone();
        let filter = build::filter_of(&self.opts);
        let dev = self.opts.dev;
        let Some(st) = self.state.as_mut() else {
            return Err("no build to update".into());
        };
        let errors = &mut self.errors;
        let mut dirty: BTreeSet<Job> = std::mem::take(&mut st.failed);
        let mut rerender: Option<String> = None;
        // Shortcodes whose template (or a template it includes) changed: the documents
        // calling them are read again.
        let mut changed_shortcodes: BTreeSet<String> = BTreeSet::new();
        let mut feeds: HashSet<String> = HashSet::new();
        // Output paths of jobs that a structural edit removed.
        let mut gone: Vec<String> = Vec::new();
        // Whether a structural edit can be scoped to what it reaches (not when templates,
        // shortcodes, data or a section's `_index.md` changed in the same batch).
        let mut scopable = !kinds.values().any(|k| *k == Kind::Template);

        // Templates first: documents render their shortcodes with them.
        if kinds.values().any(|k| *k == Kind::Template) {
            match build::load_templates(&site_dir, &st.config, &ThemeCache::default()) {
                Err(e) => {
                    errors.insert("templates".into(), e.diagnostics);
                }
                Ok((theme, templates)) => {
                    errors.remove("templates");
                    let mut names: BTreeSet<String> = st.closure.keys().cloned().collect();
                    let new_closure = templates.closure();
                    names.extend(new_closure.keys().cloned());
                    let changed: BTreeSet<String> = names
                        .into_iter()
                        .filter(|n| st.templates.source(n) != templates.source(n))
                        .collect();
                    let shortcode_name = |n: &str| {
                        n.strip_prefix("shortcodes/")
                            .and_then(|n| n.strip_suffix(".html"))
                            .map(str::to_string)
                    };
                    changed_shortcodes.extend(changed.iter().filter_map(|n| shortcode_name(n)));
                    changed_shortcodes.extend(new_closure.iter().filter_map(|(n, uses)| {
                        uses.iter()
                            .any(|t| changed.contains(t))
                            .then(|| shortcode_name(n))
                            .flatten()
                    }));
                    st.theme = theme;
                    st.templates = templates;
                    st.closure = new_closure;
                    st.renderer = Renderer::new(&st.site, &st.templates, RenderOptions { dev });
                    for job in &st.jobs {
                        let uses = render::job_template(&st.site, job)
                            .and_then(|t| st.closure.get(&t))
                            .is_some_and(|c| c.iter().any(|t| changed.contains(t)));
                        if uses {
                            dirty.insert(job.clone());
                        }
                    }
                }
            }
        }

        // Documents.
        let mut doc_changes: Vec<(PathBuf, Option<Document>)> = Vec::new();
        let mut doc_paths: BTreeSet<PathBuf> = kinds
            .iter()
            .filter(|(_, k)| **k == Kind::Document)
            .map(|(p, _)| p.clone())
            .collect();
        if !changed_shortcodes.is_empty() {
            // The documents that call a changed shortcode, and those that failed (one
            // may call a shortcode that now exists).
            doc_paths.extend(
                st.docs
                    .iter()
                    .filter(|(_, d)| {
                        d.rendered
                            .shortcodes
                            .iter()
                            .any(|n| changed_shortcodes.contains(n))
                    })
                    .map(|(p, _)| p.clone()),
            );
            doc_paths.extend(
                errors
                    .keys()
                    .filter_map(|k| k.strip_prefix("file:"))
                    .map(PathBuf::from),
            );
        }
        let doc_paths: Vec<PathBuf> = doc_paths.into_iter().collect();
        {
            use rayon::prelude::*;
            let read: Vec<Reread> = doc_paths
                .par_iter()
                .map(|file| {
                    let full = site_dir.join(file);
                    let rel = file.strip_prefix("content").unwrap_or(file);
                    let r = if full.is_file() {
                        crate::content::read_document(&site_dir, rel, st.md, &st.templates)
                            .map(Some)
                    } else {
                        Ok(None)
                    };
                    (file.clone(), r)
                })
                .collect();
            for (file, r) in read {
                let key = format!("file:{}", file.display());
                match r {
                    Ok(doc) => {
                        errors.remove(&key);
                        doc_changes.push((file, doc));
                    }
                    Err(d) => {
                        errors.insert(key, d);
                    }
                }
            }
        }
        let edited: HashSet<PathBuf> = doc_changes.iter().map(|(f, _)| f.clone()).collect();
        for (file, doc) in &doc_changes {
            // A section's `_index.md` whose header is unchanged (only its text) changes
            // the section's value alone, which the scoped path compares; any other
            // change to a section (new, removed, its title, sorting, pagination or
            // templates) reaches all its pages.
            let section_text_only = match (st.docs.get(file), doc) {
                (Some(old), Some(new)) => {
                    old.is_section && new.is_section && old.front == new.front
                }
                _ => false,
            };
            if !section_text_only
                && (st.docs.get(file).is_some_and(|d| d.is_section)
                    || doc.as_ref().is_some_and(|d| d.is_section))
            {
                scopable = false;
            }
            let same_shape = match (st.docs.get(file), doc) {
                (Some(old), Some(new)) => {
                    !old.is_section
                        && !new.is_section
                        && same_shape(old, new, &st.site)
                        && st.by_file.contains_key(file)
                }
                _ => false,
            };
            if !same_shape {
                let kept = |d: &Document| {
                    (filter.drafts || !d.front.draft)
                        && (filter.future
                            || match (d.date, filter.today) {
                                (Some(date), Some(today)) => date <= today,
                                _ => true,
                            })
                };
                // A page left out (draft, future) that stays out changes nothing.
                let out_before = st.docs.get(file).is_none_or(|d| !kept(d) && !d.is_section);
                let out_after = doc.as_ref().is_none_or(|d| !kept(d) && !d.is_section);
                if !(out_before && out_after) {
                    rerender.get_or_insert_with(|| {
                        format!(
                            "{} was added, removed or moved (URL, date, order, terms or section)",
                            file.display()
                        )
                    });
                }
            }
        }
        for (file, doc) in doc_changes {
            match doc {
                Some(d) => {
                    st.docs.insert(file, d);
                }
                None => {
                    st.docs.remove(&file);
                }
            }
        }

        // Data.
        let data_changed = kinds.values().any(|k| *k == Kind::Data);
        if data_changed {
            match crate::data::load(&site_dir) {
                Ok(d) => {
                    errors.remove("data");
                    st.data = d;
                }
                Err(e) => {
                    errors.insert("data".into(), e);
                }
            }
        }

        // Content assets added or removed change the model's list of them.
        let assets_changed = kinds.iter().any(|(p, k)| {
            *k == Kind::Asset
                && site_dir.join(p).is_file()
                    != st
                        .site
                        .assets
                        .iter()
                        .any(|a| Path::new("content").join(a) == *p)
        });
        if assets_changed {
            st.site.assets = list_assets(&site_dir);
        }

        if rerender.is_some() || (data_changed && !errors.contains_key("data")) {
            // The model again, from the documents in memory.
            let t_model = Instant::now();
            let loaded = Loaded {
                documents: st.docs.values().cloned().collect(),
                assets: st.site.assets.clone(),
            };
            let t_build = Instant::now();
            match Site::build(st.config.clone(), loaded, st.data.clone(), filter) {
                Err(e) => {
                    errors.insert("model".into(), e);
                    return Ok(finish_errors(errors, start));
                }
                Ok(site) => {
                    errors.remove("model");
                    let old_jobs = std::mem::take(&mut st.jobs);
                    let old_site = std::mem::replace(&mut st.site, site);
                    let t_renderer = Instant::now();
                    let scoped = rerender.is_some()
                        && scopable
                        && !data_changed
                        && restructure::same_frame(&old_site, &st.site);
                    let old_renderer = if scoped {
                        // The values of pages that did not change are kept.
                        let reuse = restructure::reusable(&old_site, &st.site, &edited);
                        Some(st.renderer.rebuild(
                            &old_site,
                            &st.site,
                            &reuse,
                            RenderOptions { dev },
                        ))
                    } else {
                        st.renderer = Renderer::new(&st.site, &st.templates, RenderOptions { dev });
                        None
                    };
                    let t_jobs = Instant::now();
                    st.jobs = render::jobs(&st.site);
                    index_pages(st);
                    if let Some(old_renderer) = old_renderer {
                        let t_carry = Instant::now();
                        // Only what the moved pages reach is made again.
                        let old_pages = std::mem::take(&mut st.pages);
                        let old_dirty = std::mem::take(&mut dirty);
                        let c = restructure::carry(
                            st,
                            &old_site,
                            &old_renderer,
                            old_pages,
                            old_dirty,
                            &edited,
                        );
                        dirty = c.dirty;
                        feeds = c.feeds;
                        gone = c.gone;
                        rerender = None;
                        tracing::debug!(
                            docs = ?(t_build - t_model),
                            model = ?(t_renderer - t_build),
                            renderer = ?(t_jobs - t_renderer),
                            jobs = ?(t_carry - t_jobs),
                            carry = ?t_carry.elapsed(),
                            "structural edit"
                        );
                        // The old model is large; it is freed off the update's path.
                        std::thread::spawn(move || drop((old_site, old_renderer, old_jobs)));
                    } else if rerender.is_some() {
                        dirty = st.jobs.iter().cloned().collect();
                        // Pages of the old model are replaced by the new ones.
                        st.pages.clear();
                        st.readers.clear();
                        drop(old_jobs);
                        feeds.insert("*".into());
                    } else {
                        // Edited pages (their place unchanged) and what shows them.
                        for (file, kind) in kinds {
                            if *kind == Kind::Document
                                && let Some(&pi) = st.by_file.get(file)
                            {
                                dependents_of_page(st, pi, &mut dirty, &mut feeds);
                            }
                        }
                        // Data: record pages, and pages whose templates read `data`.
                        let old: HashSet<Job> = old_jobs.into_iter().collect();
                        let records: Vec<Job> = st
                            .pages
                            .keys()
                            .filter(|j| matches!(j, Job::Record(_)))
                            .cloned()
                            .collect();
                        for job in records {
                            forget_page(st, &job);
                        }
                        st.sitemap_stale = true;
                        for job in &st.jobs {
                            let reads_data = render::job_template(&st.site, job)
                                .and_then(|t| st.closure.get(&t))
                                .is_some_and(|c| {
                                    c.iter()
                                        .any(|t| st.templates.source(t).is_some_and(mentions_data))
                                });
                            if reads_data || matches!(job, Job::Record(_)) || !old.contains(job) {
                                dirty.insert(job.clone());
                            }
                        }
                    }
                }
            }
        } else {
            // Pages whose shape did not change: swap the document in, re-render the
            // page and what shows it (the edited documents, and those calling a changed
            // shortcode).
            for file in &edited {
                if errors.contains_key(&format!("file:{}", file.display())) {
                    continue;
                }
                let Some(&pi) = st.by_file.get(file) else {
                    continue;
                };
                let Some(doc) = st.docs.get(file) else {
                    continue;
                };
                let mut doc = doc.clone();
                crate::site::assign_language(&mut doc, &st.site.config.languages);
                st.site.pages[pi].doc = doc;
                st.renderer.update_page(&st.site, pi);
                dependents_of_page(st, pi, &mut dirty, &mut feeds);
            }
        }

        // Static files, content assets and images.
        let statics_changed: Vec<&PathBuf> = kinds
            .iter()
            .filter(|(_, k)| matches!(k, Kind::Static | Kind::Asset))
            .map(|(p, _)| p)
            .collect();
        let mut renamed_changed = false;
        if !statics_changed.is_empty() {
            let theme = if kinds
                .iter()
                .any(|(p, k)| *k == Kind::Static && p.starts_with("themes"))
            {
                match build::load_templates(&site_dir, &st.config, &ThemeCache::default()) {
                    Ok((t, _)) => t,
                    Err(e) => {
                        errors.insert("statics".into(), e.diagnostics);
                        return Ok(finish_errors(errors, start));
                    }
                }
            } else {
                st.theme.clone()
            };
            st.theme = theme;
            match build::collect_statics(&site_dir, &st.theme, &st.site) {
                Err(e) => {
                    errors.insert("statics".into(), e.diagnostics);
                    return Ok(finish_errors(errors, start));
                }
                Ok(new) => {
                    errors.remove("statics");
                    let old: HashMap<&str, &OutFile> =
                        st.statics_in.iter().map(|(p, f)| (p.as_str(), f)).collect();
                    let new_map: HashMap<&str, &OutFile> =
                        new.iter().map(|(p, f)| (p.as_str(), f)).collect();
                    let mut changed_paths: Vec<String> = Vec::new();
                    for (p, f) in &new_map {
                        if old.get(p).is_none_or(|o| o.bytes != f.bytes) {
                            changed_paths.push((*p).to_string());
                        }
                    }
                    for p in old.keys() {
                        if !new_map.contains_key(p) {
                            changed_paths.push((*p).to_string());
                        }
                    }
                    let added_or_removed = changed_paths
                        .iter()
                        .any(|p| old.contains_key(p.as_str()) != new_map.contains_key(p.as_str()));
                    for p in &changed_paths {
                        if crate::imageset::is_raster(p) {
                            st.images.replace(
                                &self.image_cache,
                                &st.image_settings,
                                p,
                                new_map.get(p.as_str()).copied(),
                            );
                        }
                    }
                    let site_paths: HashSet<String> =
                        changed_paths.iter().map(|p| format!("/{p}")).collect();
                    for (job, out) in &st.pages {
                        if out.image_sources.iter().any(|i| site_paths.contains(i))
                            || (added_or_removed && !out.missing_images.is_empty())
                        {
                            dirty.insert(job.clone());
                        }
                    }
                    drop(old);
                    drop(new_map);
                    st.statics_in = new;
                    match statics_out(&st.images, &st.statics_in, dev) {
                        Err(d) => {
                            errors.insert("statics".into(), vec![d]);
                            return Ok(finish_errors(errors, start));
                        }
                        Ok((files, renamed, published)) => {
                            renamed_changed = renamed != st.renamed;
                            st.statics_out = files;
                            st.renamed = renamed;
                            st.published = published;
                        }
                    }
                }
            }
        }
        if renamed_changed {
            dirty.extend(st.jobs.iter().cloned());
        }

        // Render and rewrite what is dirty.
        let jobs: Vec<Job> = dirty.into_iter().collect();
        // When the set of output paths cannot have changed, the output table is patched
        // in place (only the re-made files compared and written); otherwise it is
        // assembled again from every source.
        let feeds_all = feeds.contains("*");
        let patchable = rerender.is_none()
            && !data_changed
            && statics_changed.is_empty()
            && !feeds_all
            && !errors.contains_key("output")
            && !st.files.is_empty();
        let before = patchable.then(|| Before::of(st, &jobs, &feeds, gone));
        let t_render = Instant::now();
        let rendered = render_jobs(st, &jobs, errors);
        let t_indexes = Instant::now();
        if feeds_all {
            refresh_feeds(st, None);
        } else if !feeds.is_empty() {
            refresh_feeds(st, Some(&feeds));
        }
        let sitemap_rebuilt = st.sitemap_stale;
        if st.sitemap_stale {
            st.sitemap_files = sitemaps(st);
            st.sitemap_stale = false;
        }
        let t_files = Instant::now();
        let patch = before.and_then(|b| b.patch(st, &jobs, &feeds, sitemap_rebuilt));
        let t_write;
        let written = match patch {
            Some(patch) => {
                t_write = Instant::now();
                write_patch(&self.dest, &mut st.files, patch)
            }
            None => {
                let files = match all_files(st) {
                    Ok(f) => f,
                    Err(e) => {
                        errors.insert("output".into(), e);
                        return Ok(finish_errors(errors, start));
                    }
                };
                errors.remove("output");
                t_write = Instant::now();
                write_changes(&self.dest, &st.files, &files).inspect(|_| st.files = files)
            }
        };
        let changed = match written {
            Ok(c) => c,
            Err(e) => {
                errors.insert("write".into(), e);
                return Ok(finish_errors(errors, start));
            }
        };
        errors.remove("write");
        apply_manifest(&mut st.manifest, &changed);
        let t_manifest = Instant::now();
        if self.defer_manifest {
            self.manifest_pending |= !changed.is_empty();
        } else if let Err(e) = write_manifest(&self.dest, &st.manifest) {
            errors.insert("write".into(), e);
        }
        tracing::debug!(
            prepare = ?(t_render - start),
            render = ?(t_indexes - t_render),
            indexes = ?(t_files - t_indexes),
            assemble = ?(t_write - t_files),
            write = ?(t_manifest - t_write),
            manifest = ?t_manifest.elapsed(),
            "update phases"
        );
        let mode = match rerender {
            Some(r) => Mode::Rerender(r),
            None if data_changed => Mode::Rerender("data changed".into()),
            None => Mode::Incremental,
        };
        Ok(self.finish_update(mode, rendered, changed, start))
    }
}

/// An update that stopped on errors: nothing written.
fn finish_errors(errors: &BTreeMap<String, Vec<Diagnostic>>, start: Instant) -> Update {
    Update {
        mode: Mode::Incremental,
        rendered: 0,
        changed: Vec::new(),
        css_only: false,
        errors: errors.values().flatten().cloned().collect(),
        took: start.elapsed(),
    }
}

/// Whether a template's source reads the site's data (`data.x`, `data["x"]`).
fn mentions_data(src: &str) -> bool {
    let b = src.as_bytes();
    src.match_indices("data").any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| b[j]);
        let after = b.get(i + 4).copied();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
            && matches!(after, Some(b'.' | b'[' | b' ' | b'|' | b'}' | b')'))
    })
}

/// Whether two versions of a page put it at the same place in the model: same URL,
/// section, date, order, terms, aliases, template and visibility.
fn same_shape(old: &Document, new: &Document, site: &Site) -> bool {
    let (a, b) = (&old.front, &new.front);
    let sorts_by_title = site.sections.iter().any(|s| {
        s.doc
            .as_ref()
            .and_then(|d| d.front.sort_by)
            .is_some_and(|x| x == crate::frontmatter::SortBy::Title)
    });
    old.date == new.date
        && old.updated == new.updated
        && old.dirs == new.dirs
        && old.stem == new.stem
        && a.draft == b.draft
        && a.slug == b.slug
        && a.aliases == b.aliases
        && a.weight == b.weight
        && a.template == b.template
        && a.taxonomies == b.taxonomies
        && (!sorts_by_title || a.title == b.title)
}

/// Marks the outputs showing page `pi` dirty, and the feeds listing it.
fn dependents_of_page(
    st: &State,
    pi: usize,
    dirty: &mut BTreeSet<Job>,
    feeds: &mut HashSet<String>,
) {
    let site = &st.site;
    let page = &site.pages[pi];
    let section = &site.sections[page.section];
    // The page, its neighbours (they link to it) and its translations.
    let mut hits: Vec<Job> = vec![Job::Page(pi)];
    hits.extend(page.lower.map(Job::Page));
    hits.extend(page.higher.map(Job::Page));
    hits.extend(
        page.translations
            .iter()
            .filter_map(|(_, p)| st.by_path.get(p).map(|&i| Job::Page(i))),
    );
    // The listing page (k) showing it; for a term, all of them when it is among the
    // first three (their descriptions name those).
    let k_of = |list: &[usize], per: usize| {
        list.iter()
            .position(|&p| p == pi)
            .map(|pos| (pos / per.max(1) + 1, pos < 3))
    };
    if let Some((k, _)) = k_of(&section.pages, render::per_page(site, page.section)) {
        hits.push(Job::Section(page.section, k));
    }
    let per = site.config.paginate_by.max(1);
    for (tax, refs) in &page.terms {
        let Some(ti) = site.taxonomies.iter().position(|t| t.name == *tax) else {
            continue;
        };
        for r in refs {
            let Some(term) = site.taxonomies[ti].terms.get(&r.slug) else {
                continue;
            };
            match k_of(&term.pages, per) {
                Some((_, true)) => {
                    let n = term.pages.len().div_ceil(per).max(1);
                    hits.extend((1..=n).map(|k| Job::Term(ti, r.slug.clone(), k)));
                }
                Some((k, false)) => hits.push(Job::Term(ti, r.slug.clone(), k)),
                None => {}
            }
        }
    }
    // Redirects (aliases) name the page's URL only, which did not change.
    for job in hits {
        if st.pages.contains_key(&job) || st.failed.contains(&job) {
            dirty.insert(job);
        }
    }
    // Pages whose templates looked it (or its section) up.
    for key in [
        format!("page:{}", page.path),
        format!("section:{}", section.path),
    ] {
        if let Some(jobs) = st.readers.get(&key) {
            dirty.extend(jobs.iter().cloned());
        }
    }
    let terms = page.terms.values().flatten().map(|t| t.path.clone());
    // The feeds showing it (a page's place in them did not change).
    let shown = |listing: &str| {
        st.feed_pages
            .get(listing)
            .is_some_and(|pages| pages.contains(&pi))
    };
    for listing in std::iter::once("/".to_string())
        .chain(std::iter::once(section.path.clone()))
        .chain(terms)
    {
        if shown(&listing) {
            feeds.insert(listing);
        }
    }
}

fn index_pages(st: &mut State) {
    st.by_file = st
        .site
        .pages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.doc.file.clone(), i))
        .collect();
    st.by_path = st
        .site
        .pages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.path.clone(), i))
        .collect();
}

/// Renders and rewrites `jobs`, replacing their outputs; failures are kept as errors
/// (their pages keep their last output) and rendered again next time.
fn render_jobs(
    st: &mut State,
    jobs: &[Job],
    errors: &mut BTreeMap<String, Vec<Diagnostic>>,
) -> usize {
    errors.retain(|k, _| !k.starts_with("render:"));
    let mut missing = render::check_templates(&st.site, &st.templates);
    if !missing.is_empty() {
        missing.dedup();
        errors.insert("render:templates".into(), missing);
    }
    let outputs = st.renderer.render(&st.site, jobs);
    let mut ok = Vec::with_capacity(outputs.len());
    let mut meta = Vec::with_capacity(outputs.len());
    for o in outputs {
        match o.result {
            Ok(r) => {
                meta.push((o.job, o.reads));
                ok.push(r);
            }
            Err(d) => {
                errors
                    .entry(format!("render:{:?}", o.job))
                    .or_default()
                    .push(d);
                st.failed.insert(o.job);
            }
        }
    }
    let n = ok.len();
    let finished = match finish::rewrite_pages(
        &st.site.config,
        &st.renamed,
        Some((&st.images, &st.published)),
        ok,
    ) {
        Ok(f) => f,
        Err(e) => {
            errors.insert("render:rewrite".into(), e);
            st.failed.extend(meta.into_iter().map(|(j, _)| j));
            return 0;
        }
    };
    for (f, (job, reads)) in finished.into_iter().zip(meta) {
        let same_entry = st.pages.get(&job).is_some_and(|o| {
            o.sitemap == f.page.sitemap && o.images == f.images && o.alternates == f.page.alternates
        });
        st.sitemap_stale |= !same_entry;
        forget_page(st, &job);
        for r in &reads {
            st.readers.entry(r.clone()).or_default().insert(job.clone());
        }
        st.pages.insert(
            job,
            PageOut {
                out: f.page.out,
                bytes: Arc::from(f.page.bytes),
                origin: f.page.origin,
                sitemap: f.page.sitemap,
                alternates: f.page.alternates,
                images: f.images,
                missing_images: f.missing_images,
                image_sources: f.image_sources,
                reads,
            },
        );
    }
    n
}

/// Removes a job's output and its entries in the lookup index.
fn forget_page(st: &mut State, job: &Job) {
    let Some(old) = st.pages.remove(job) else {
        return;
    };
    for r in &old.reads {
        if let Some(jobs) = st.readers.get_mut(r) {
            jobs.remove(job);
            if jobs.is_empty() {
                st.readers.remove(r);
            }
        }
    }
}

/// Makes the feeds of the listings at `only` (`/`, a section's or term's path), or of
/// all of them, again: their files and the pages they show replace the old ones.
fn refresh_feeds(st: &mut State, only: Option<&HashSet<String>>) {
    match only {
        None => {
            st.feeds.clear();
            st.feed_pages.clear();
        }
        Some(only) => {
            for listing in only {
                st.feeds.remove(listing);
                st.feed_pages.remove(listing);
            }
        }
    }
    for l in finish::listing_feeds(&st.site, only) {
        if !l.files.is_empty() {
            st.feeds.insert(
                l.listing.clone(),
                l.files
                    .into_iter()
                    .map(|(p, b)| (p, Arc::from(b)))
                    .collect(),
            );
        }
        st.feed_pages.insert(l.listing, l.pages);
    }
}

/// The output files of statics: images processed, CSS and JS fingerprinted unless
/// building for `qpage dev`. Also the renames and the published site paths.
#[allow(clippy::type_complexity)]
fn statics_out(
    images: &SiteImages,
    statics_in: &[(String, OutFile)],
    dev: bool,
) -> Result<
    (
        Vec<(String, Arc<[u8]>, PathBuf)>,
        HashMap<String, String>,
        HashSet<String>,
    ),
    Diagnostic,
> {
    let published: HashSet<String> = statics_in.iter().map(|(p, _)| format!("/{p}")).collect();
    let copy: Vec<(String, OutFile)> = statics_in
        .iter()
        .map(|(p, f)| {
            (
                p.clone(),
                OutFile {
                    bytes: f.bytes.clone(),
                    origin: f.origin.clone(),
                },
            )
        })
        .collect();
    let files = images.output_files(copy)?;
    let statics = if dev {
        finish::Statics {
            files,
            renamed: HashMap::new(),
        }
    } else {
        finish::fingerprint(files)
    };
    Ok((
        statics
            .files
            .into_iter()
            .map(|(p, f)| (p, f.bytes, f.origin))
            .collect(),
        statics.renamed,
        published,
    ))
}

/// Every output file, in the order a full build adds them (statics, pages, sitemaps
/// and feeds, robots.txt); two sources of one path are an error.
fn all_files(st: &State) -> Result<BTreeMap<String, Arc<[u8]>>, Vec<Diagnostic>> {
    let mut files: BTreeMap<String, (Arc<[u8]>, PathBuf)> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut add =
        |path: String, bytes: Arc<[u8]>, origin: PathBuf, errors: &mut Vec<Diagnostic>| {
            if let Some((_, existing)) = files.get(&path) {
                errors.push(
                    Diagnostic::file(
                        &origin,
                        format!(
                            "output file /{path} is also produced by {}",
                            existing.display()
                        ),
                    )
                    .help("rename one of them; two sources cannot write the same URL"),
                );
                return;
            }
            files.insert(path, (bytes, origin));
        };
    for (p, b, o) in &st.statics_out {
        add(p.clone(), b.clone(), o.clone(), &mut errors);
    }
    for job in &st.jobs {
        if let Some(out) = st.pages.get(job) {
            add(
                out.out.clone(),
                out.bytes.clone(),
                out.origin.clone(),
                &mut errors,
            );
        }
    }
    for (path, bytes) in &st.sitemap_files {
        add(
            path.clone(),
            bytes.clone(),
            PathBuf::from("(generated index)"),
            &mut errors,
        );
    }
    for list in st.feeds.values() {
        for (path, bytes) in list {
            add(
                path.clone(),
                bytes.clone(),
                PathBuf::from("(generated index)"),
                &mut errors,
            );
        }
    }
    if !files.contains_key("robots.txt") {
        files.insert(
            "robots.txt".into(),
            (
                Arc::from(crate::sitemap::robots(&st.site.config)),
                PathBuf::from("(generated robots.txt)"),
            ),
        );
    }
    if errors.is_empty() {
        Ok(files.into_iter().map(|(k, (b, _))| (k, b)).collect())
    } else {
        Err(errors)
    }
}

/// The sitemap files of the current pages.
fn sitemaps(st: &State) -> Vec<(String, Arc<[u8]>)> {
    let config = &st.site.config;
    let mut entries: Vec<crate::sitemap::Entry> = st
        .jobs
        .iter()
        .filter_map(|j| st.pages.get(j))
        .filter_map(|f| {
            let (path, lastmod) = f.sitemap.as_ref()?;
            let mut images: Vec<String> = f.images.iter().map(|i| config.permalink(i)).collect();
            images.dedup();
            Some(crate::sitemap::Entry {
                loc: config.permalink(path),
                lastmod: *lastmod,
                images,
                alternates: f
                    .alternates
                    .iter()
                    .map(|(lang, path)| (lang.clone(), config.permalink(path)))
                    .collect(),
            })
        })
        .collect();
    entries.sort_by(|a, b| a.loc.cmp(&b.loc));
    crate::sitemap::sitemaps(config, &entries, crate::sitemap::Limits::default())
        .into_iter()
        .map(|(p, b)| (p, Arc::from(b)))
        .collect()
}

/// The output paths of what an update is about to make again (the dirty jobs' pages,
/// the feeds of the listings refreshed, the sitemaps) or has dropped, taken before it
/// does.
struct Before {
    paths: HashSet<String>,
    sitemaps: Vec<String>,
}

/// The changes to the output table: files to write (when their bytes differ) and
/// files to remove.
struct Patch {
    write: Vec<(String, Arc<[u8]>)>,
    remove: Vec<String>,
}

impl Before {
    fn of(st: &State, jobs: &[Job], feeds: &HashSet<String>, gone: Vec<String>) -> Before {
        let mut paths: HashSet<String> = gone.into_iter().collect();
        paths.extend(
            jobs.iter()
                .filter_map(|j| st.pages.get(j).map(|o| o.out.clone())),
        );
        for l in feeds {
            paths.extend(feed_paths(st, l));
        }
        Before {
            paths,
            sitemaps: st.sitemap_files.iter().map(|(p, _)| p.clone()).collect(),
        }
    }

    /// The changes that take the output table from the old outputs of what was made
    /// again to the new ones; `None` when a new path is also another source's (the
    /// table is then assembled again, which reports the clash).
    fn patch(
        mut self,
        st: &State,
        jobs: &[Job],
        feeds: &HashSet<String>,
        sitemap_rebuilt: bool,
    ) -> Option<Patch> {
        let mut write: Vec<(String, Arc<[u8]>)> = Vec::new();
        for job in jobs {
            if let Some(o) = st.pages.get(job) {
                write.push((o.out.clone(), o.bytes.clone()));
            }
        }
        for listing in feeds {
            write.extend(st.feeds.get(listing).into_iter().flatten().cloned());
        }
        if sitemap_rebuilt {
            self.paths.extend(self.sitemaps);
            write.extend(st.sitemap_files.iter().cloned());
        }
        let mut new_paths: HashSet<&str> = HashSet::with_capacity(write.len());
        for (p, _) in &write {
            if !new_paths.insert(p.as_str())
                || (!self.paths.contains(p) && st.files.contains_key(p))
            {
                return None;
            }
        }
        let remove = self
            .paths
            .iter()
            .filter(|p| !new_paths.contains(p.as_str()))
            .cloned()
            .collect();
        Some(Patch { write, remove })
    }
}

fn feed_paths(st: &State, listing: &str) -> Vec<String> {
    st.feeds
        .get(listing)
        .map(|l| l.iter().map(|(p, _)| p.clone()).collect())
        .unwrap_or_default()
}

/// Writes the files of `patch` whose bytes differ from `files`, removes the files it
/// removes, and updates `files` in place; returns the files written or removed.
#[allow(clippy::type_complexity)]
fn write_patch(
    dest: &Path,
    files: &mut BTreeMap<String, Arc<[u8]>>,
    patch: Patch,
) -> Result<Vec<(String, Option<Arc<[u8]>>)>, Vec<Diagnostic>> {
    let mut changed = Vec::new();
    for (path, bytes) in patch.write {
        if let Some(slot) = files.get(&path)
            && (Arc::ptr_eq(slot, &bytes) || slot[..] == bytes[..])
        {
            continue;
        }
        write_file(dest, &path, &bytes)?;
        files.insert(path.clone(), bytes.clone());
        changed.push((path, Some(bytes)));
    }
    let mut removed = patch.remove;
    removed.sort();
    for path in removed {
        if files.remove(&path).is_some() {
            remove_file(dest, &path)?;
            changed.push((path, None));
        }
    }
    Ok(changed)
}

/// Writes one output file, replacing it by rename so a reader never sees half a file.
fn write_file(dest: &Path, path: &str, bytes: &[u8]) -> Result<(), Vec<Diagnostic>> {
    let full = dest.join(path);
    if let Some(dir) = full.parent() {
        std::fs::create_dir_all(dir).map_err(|e| vec![Diagnostic::io(dir, &e)])?;
    }
    let tmp = full.with_file_name(format!(
        ".{}.qpage-tmp",
        full.file_name().map_or("f".into(), |n| n.to_string_lossy())
    ));
    std::fs::write(&tmp, bytes).map_err(|e| vec![Diagnostic::io(&tmp, &e)])?;
    std::fs::rename(&tmp, &full).map_err(|e| vec![Diagnostic::io(&full, &e)])
}

/// Writes the files whose bytes differ and removes the ones gone; returns them.
#[allow(clippy::type_complexity)]
fn write_changes(
    dest: &Path,
    old: &BTreeMap<String, Arc<[u8]>>,
    new: &BTreeMap<String, Arc<[u8]>>,
) -> Result<Vec<(String, Option<Arc<[u8]>>)>, Vec<Diagnostic>> {
    let mut changed = Vec::new();
    for (path, bytes) in new {
        let same = old
            .get(path)
            .is_some_and(|o| Arc::ptr_eq(o, bytes) || o[..] == bytes[..]);
        if !same {
            write_file(dest, path, bytes)?;
            changed.push((path.clone(), Some(bytes.clone())));
        }
    }
    for path in old.keys() {
        if !new.contains_key(path) {
            remove_file(dest, path)?;
            changed.push((path.clone(), None));
        }
    }
    Ok(changed)
}

/// Removes one output file, and the folders it leaves empty (a fresh build would not
/// make them).
fn remove_file(dest: &Path, path: &str) -> Result<(), Vec<Diagnostic>> {
    let full = dest.join(path);
    match std::fs::remove_file(&full) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(vec![Diagnostic::io(&full, &e)]),
    }
    let mut dir = full.parent();
    while let Some(d) = dir {
        if d == dest || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}

fn apply_manifest(manifest: &mut Manifest, changed: &[(String, Option<Arc<[u8]>>)]) {
    for (path, bytes) in changed {
        let key = format!("/{path}");
        match bytes {
            Some(b) => {
                manifest.files.insert(key, manifest_entry(path, b));
            }
            None => {
                manifest.files.remove(&key);
            }
        }
    }
}

fn manifest_entry(path: &str, bytes: &[u8]) -> ManifestEntry {
    ManifestEntry {
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
        content_type: output::content_type(path),
    }
}

fn write_manifest(dest: &Path, manifest: &Manifest) -> Result<(), Vec<Diagnostic>> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| vec![Diagnostic::file(dest, e.to_string())])?;
    let path = dest.join(".qpage/manifest.json");
    let tmp = dest.join(".qpage/.manifest.json.qpage-tmp");
    std::fs::write(&tmp, json).map_err(|e| vec![Diagnostic::io(&tmp, &e)])?;
    std::fs::rename(&tmp, &path).map_err(|e| vec![Diagnostic::io(&path, &e)])
}

/// Non-Markdown files under `content/`, relative to it, in build order.
fn list_assets(site_dir: &Path) -> Vec<PathBuf> {
    let content = site_dir.join("content");
    walkdir::WalkDir::new(&content)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.path().extension().is_none_or(|x| x != "md"))
        .filter_map(|e| e.path().strip_prefix(&content).ok().map(Path::to_path_buf))
        .collect()
}

/// What a path (relative to the site) is to the build.
fn classify(rel: &Path, theme: Option<&str>, dest: &Path, site_dir: &Path) -> Kind {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") {
        return Kind::Ignored;
    }
    if dest
        .strip_prefix(site_dir)
        .is_ok_and(|d| rel.starts_with(d))
        || rel.starts_with(".qpage-cache")
    {
        return Kind::Ignored;
    }
    if rel == Path::new("site.toml") {
        return Kind::Config;
    }
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
    match parts.next().as_deref() {
        Some("templates") => Kind::Template,
        Some("static") => Kind::Static,
        Some("data") => Kind::Data,
        Some("content") => {
            if rel.extension().is_some_and(|e| e == "md") {
                Kind::Document
            } else {
                Kind::Asset
            }
        }
        Some("themes") => {
            let t = parts.next();
            if theme.is_some_and(|th| t.as_deref() != Some(th)) {
                return Kind::Ignored;
            }
            match parts.next().as_deref() {
                Some("templates") => Kind::Template,
                Some("static") => Kind::Static,
                _ => Kind::Theme,
            }
        }
        _ => Kind::Ignored,
    }
}

/// A full build that keeps everything in memory (the same steps as [`build::build`]).
fn full_build(opts: &BuildOptions, image_cache: &Arc<ImageCache>) -> Result<State, BuildError> {
    let site_dir = &opts.site_dir;
    let config = SiteConfig::load(site_dir).map_err(BuildError::one)?;
    // A fresh theme cache: the theme folder may have changed since the last build.
    let (theme, templates) = build::load_templates(site_dir, &config, &ThemeCache::default())?;
    let md = MdOptions {
        highlight: config.highlight_code,
        sanitize: !config.unsafe_html,
    };
    let (data, loaded) = build::load_sources(site_dir, md, &templates)?;
    let docs: BTreeMap<PathBuf, Document> = loaded
        .documents
        .iter()
        .map(|d| (d.file.clone(), d.clone()))
        .collect();
    let site = Site::build(config.clone(), loaded, data.clone(), build::filter_of(opts))
        .map_err(BuildError::new)?;
    let image_settings = ImageSettings::from_config(&site.config.images)
        .map_err(|e| BuildError::one(e.to_diagnostic(Some(Path::new("site.toml")))))?;
    let statics_in = build::collect_statics(site_dir, &theme, &site)?;
    let images = SiteImages::process(image_cache, &image_settings, &statics_in);
    let (statics_out, renamed, published) =
        statics_out(&images, &statics_in, opts.dev).map_err(BuildError::one)?;
    let renderer = Renderer::new(&site, &templates, RenderOptions { dev: opts.dev });
    let jobs = render::jobs(&site);
    let closure = templates.closure();
    let mut st = State {
        config,
        theme,
        templates,
        closure,
        md,
        docs,
        data,
        site,
        renderer,
        by_file: HashMap::new(),
        by_path: HashMap::new(),
        jobs,
        pages: HashMap::new(),
        readers: HashMap::new(),
        failed: BTreeSet::new(),
        image_settings,
        images,
        statics_in,
        statics_out,
        published,
        renamed,
        sitemap_files: Vec::new(),
        sitemap_stale: true,
        feeds: BTreeMap::new(),
        feed_pages: HashMap::new(),
        files: BTreeMap::new(),
        manifest: Manifest {
            version: 1,
            files: BTreeMap::new(),
        },
    };
    index_pages(&mut st);
    let mut errors = BTreeMap::new();
    let jobs = st.jobs.clone();
    render_jobs(&mut st, &jobs, &mut errors);
    if !errors.is_empty() {
        return Err(BuildError::new(errors.into_values().flatten().collect()));
    }
    refresh_feeds(&mut st, None);
    st.sitemap_files = sitemaps(&st);
    st.sitemap_stale = false;
    st.files = all_files(&st).map_err(BuildError::new)?;
    for (path, bytes) in &st.files {
        st.manifest
            .files
            .insert(format!("/{path}"), manifest_entry(path, bytes));
    }
    Ok(st)
}
