//! Rendering: turns the site model into template contexts and renders every output page
//! (pages, paginated sections and taxonomy terms, taxonomy lists, record pages, aliases,
//! 404) in parallel. Values shared by many pages are built once.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use tera::{Context, Value};

use chrono::NaiveDate;

use crate::error::Diagnostic;
use crate::seo::{self, Kind, PageInfo};
use crate::site::{Link, Site, normalize_alias};
use crate::templates::{PAGES_KEY, SECTIONS_KEY, Templates};

/// One rendered file: where it goes in the output and its bytes.
#[derive(Debug)]
pub struct Rendered {
    /// Path in the output, e.g. `blog/hello/index.html`.
    pub out: String,
    /// Bytes.
    pub bytes: Vec<u8>,
    /// What produced it (for collision errors).
    pub origin: PathBuf,
    /// Its sitemap entry (site path and last modification), if it belongs in one.
    pub sitemap: Option<(String, Option<NaiveDate>)>,
    /// Its translations for the sitemap: (language, site path), itself included.
    pub alternates: Vec<(String, String)>,
}

/// Rendered pages and the warnings found rendering them.
#[derive(Debug, Default)]
pub struct RenderOutput {
    /// Pages.
    pub pages: Vec<Rendered>,
    /// Warnings (records missing properties search engines require...).
    pub warnings: Vec<Diagnostic>,
}

/// One output page to render: what the build renders, and what `qpage dev` re-renders
/// when something it depends on changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// A content page (index into [`Site::pages`]).
    Page(usize),
    /// Page `k` (from 1) of a section's listing.
    Section(usize, usize),
    /// The list of a taxonomy's terms.
    TaxonomyList(usize),
    /// Page `k` of a taxonomy term's listing.
    Term(usize, String, usize),
    /// A data record's page.
    Record(usize),
    /// A redirect page: (alias path, target path, the page's file).
    Alias(String, String, PathBuf),
    /// `404.html`.
    NotFound,
}

/// One job's result: the page (or the error), its warnings, and the pages and sections
/// its templates looked up through `get_page` / `get_section` (`page:/path/`,
/// `section:/path/`).
#[derive(Debug)]
pub struct JobOutput {
    /// The job.
    pub job: Job,
    /// The rendered page or why it failed.
    pub result: Result<Rendered, Diagnostic>,
    /// Warnings found rendering it.
    pub warnings: Vec<Diagnostic>,
    /// Lookups made while rendering.
    pub reads: Vec<String>,
}

/// Options that change what templates see.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// Rendering for `qpage dev`.
    pub dev: bool,
}

/// Renders every output page of `site`.
pub fn render_site(
    site: &Site,
    templates: &Templates,
    opts: RenderOptions,
) -> Result<RenderOutput, Vec<Diagnostic>> {
    // Missing templates are reported once per page needing them; pages whose templates
    // exist still render, so their errors are reported in the same run.
    let mut errors = check_templates(site, templates);
    let renderer = Renderer::new(site, templates, opts);
    let mut out = RenderOutput::default();
    for r in renderer.render(site, &jobs(site)) {
        match r.result {
            Ok(page) => {
                out.pages.push(page);
                out.warnings.extend(r.warnings);
            }
            Err(d) => errors.push(d),
        }
    }
    out.warnings
        .sort_by(|a, b| (&a.file, &a.message).cmp(&(&b.file, &b.message)));
    out.warnings.dedup();
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Templates with the site's values in their global context, ready to render any job;
/// kept by `qpage dev` between edits and updated page by page.
pub struct Renderer {
    shared: Shared,
    tera: Templates,
}

impl Renderer {
    /// Builds the values every render shares.
    pub fn new(site: &Site, templates: &Templates, opts: RenderOptions) -> Renderer {
        let shared = Shared::new(site, opts);
        let mut tera = templates.clone();
        {
            let global = tera.tera.global_context();
            for (pi, p) in site.pages.iter().enumerate() {
                global.insert_value(
                    format!("{PAGES_KEY}{}", p.path),
                    shared.page_summaries[pi].clone(),
                );
            }
            shared.insert_site_values(site, global, opts);
        }
        Renderer { shared, tera }
    }

    /// Takes in a change to page `pi` that left the site's structure as it was (same
    /// path, section, terms, order): its summary and the lookups holding it.
    pub fn update_page(&mut self, site: &Site, pi: usize) {
        self.shared.page_summaries[pi] = page_summary(site, &site.pages[pi]);
        self.shared.listed[pi] = listed_form(&self.shared.page_summaries[pi]);
        let p = &site.pages[pi];
        let si = p.section;
        let section = self.shared.section_lookup(site, si);
        let global = self.tera.tera.global_context();
        global.insert_value(
            format!("{PAGES_KEY}{}", p.path),
            self.shared.page_summaries[pi].clone(),
        );
        global.insert_value(format!("{SECTIONS_KEY}{}", site.sections[si].path), section);
    }

    /// Takes in a model rebuilt from `old` (the model this renderer was made for):
    /// the values of the pages whose `reuse` entry names a page of `old` (the same
    /// document, URL, terms and section) are kept, the others made again. Returns the
    /// values it replaced.
    pub fn rebuild(
        &mut self,
        old: &Site,
        site: &Site,
        reuse: &[Option<usize>],
        opts: RenderOptions,
    ) -> Previous {
        let prev = &self.shared;
        let page_summaries: Vec<Value> = site
            .pages
            .par_iter()
            .enumerate()
            .map(|(ni, p)| match reuse[ni] {
                Some(o) => prev.page_summaries[o].clone(),
                None => page_summary(site, p),
            })
            .collect();
        let listed: Vec<Value> = (0..site.pages.len())
            .into_par_iter()
            .map(|ni| match reuse[ni] {
                Some(o) => prev.listed[o].clone(),
                None => listed_form(&page_summaries[ni]),
            })
            .collect();
        let shared = Shared::with_pages(site, opts, page_summaries, listed);
        let mut kept = vec![false; old.pages.len()];
        for o in reuse.iter().flatten() {
            kept[*o] = true;
        }
        let global = self.tera.tera.global_context();
        for (o, p) in old.pages.iter().enumerate() {
            if !kept[o] {
                global.remove(&format!("{PAGES_KEY}{}", p.path));
            }
        }
        for (ni, p) in site.pages.iter().enumerate() {
            if reuse[ni].is_none() {
                global.insert_value(
                    format!("{PAGES_KEY}{}", p.path),
                    shared.page_summaries[ni].clone(),
                );
            }
        }
        for s in &old.sections {
            global.remove(&format!("{SECTIONS_KEY}{}", s.path));
        }
        shared.insert_site_values(site, global, opts);
        Previous(std::mem::replace(&mut self.shared, shared))
    }

    /// What templates see as page `pi` in listings and in its own context.
    pub fn page_value(&self, pi: usize) -> &Value {
        &self.shared.page_summaries[pi]
    }

    /// What templates see as `section` for section `si` (without its pages).
    pub fn section_value(&self, si: usize) -> &Value {
        &self.shared.section_values[si]
    }

    /// What templates see as `taxonomy` for taxonomy `ti`.
    pub fn taxonomy_value(&self, ti: usize) -> &Value {
        &self.shared.taxonomy_values[ti]
    }

    /// Renders `jobs` in parallel, in their order.
    pub fn render(&self, site: &Site, jobs: &[Job]) -> Vec<JobOutput> {
        jobs.par_iter()
            .map(|job| {
                let mut warnings = Vec::new();
                let (result, reads) =
                    crate::templates::record_lookups(|| -> Result<Rendered, Diagnostic> {
                        let described = describe(site, job);
                        let head = described
                            .as_ref()
                            .map(|(info, _)| seo::head(&site.config, info, &mut warnings));
                        let mut r = render_job(site, &self.tera, &self.shared, job, head.as_ref())?;
                        if let Some((info, lastmod)) = described
                            && !info.noindex
                            && info.kind != Kind::NotFound
                        {
                            r.alternates = info.alternates;
                            r.sitemap = Some((info.path, lastmod));
                        }
                        Ok(r)
                    });
                JobOutput {
                    job: job.clone(),
                    result,
                    warnings,
                    reads,
                }
            })
            .collect()
    }
}

/// The template a job renders with (none for alias redirects).
pub fn job_template(site: &Site, job: &Job) -> Option<String> {
    match job {
        Job::Page(pi) => Some(page_template(site, *pi)),
        Job::Section(si, _) => Some(section_template(site, *si)),
        Job::TaxonomyList(_) => Some("taxonomy_list.html".into()),
        Job::Term(..) => Some("taxonomy_term.html".into()),
        Job::Record(ri) => Some(site.records[*ri].template.clone()),
        Job::Alias(..) => None,
        Job::NotFound => Some("404.html".into()),
    }
}

fn page_template(site: &Site, pi: usize) -> String {
    let page = &site.pages[pi];
    page.doc
        .front
        .template
        .clone()
        .or_else(|| {
            site.sections[page.section]
                .doc
                .as_ref()
                .and_then(|d| d.front.page_template.clone())
        })
        .unwrap_or_else(|| "page.html".into())
}

fn section_template(site: &Site, si: usize) -> String {
    site.sections[si]
        .doc
        .as_ref()
        .and_then(|d| d.front.template.clone())
        .unwrap_or_else(|| {
            if si == 0 {
                "index.html".into()
            } else {
                "section.html".into()
            }
        })
}

/// Every template the site needs exists, or an error names who needs the missing one.
pub fn check_templates(site: &Site, templates: &Templates) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut need = |name: String, file: &Path| {
        if !templates.has(&name) {
            errors.push(crate::templates::missing_template(file, &name));
        }
    };
    for pi in 0..site.pages.len() {
        need(page_template(site, pi), &site.pages[pi].doc.file);
    }
    for si in 0..site.sections.len() {
        let file = site.sections[si]
            .doc
            .as_ref()
            .map_or(PathBuf::from("content"), |d| d.file.clone());
        need(section_template(site, si), &file);
    }
    for r in &site.records {
        need(r.template.clone(), Path::new("site.toml"));
    }
    if site.taxonomies.iter().any(|t| !t.terms.is_empty()) {
        need("taxonomy_list.html".into(), Path::new("site.toml"));
        need("taxonomy_term.html".into(), Path::new("site.toml"));
    }
    need("404.html".into(), Path::new("templates"));
    errors
}

/// The values a renderer had before [`Renderer::rebuild`].
pub struct Previous(Shared);

impl Previous {
    /// As [`Renderer::page_value`].
    pub fn page_value(&self, pi: usize) -> &Value {
        &self.0.page_summaries[pi]
    }

    /// As [`Renderer::section_value`].
    pub fn section_value(&self, si: usize) -> &Value {
        &self.0.section_values[si]
    }

    /// As [`Renderer::taxonomy_value`].
    pub fn taxonomy_value(&self, ti: usize) -> &Value {
        &self.0.taxonomy_values[ti]
    }
}

/// Values built once and shared by every render.
struct Shared {
    config: Value,
    data: Value,
    top_sections: Value,
    page_summaries: Vec<Value>,
    /// The summaries as `get_section` lists them (through JSON: keys sorted).
    listed: Vec<Value>,
    section_values: Vec<Value>,
    taxonomy_values: Vec<Value>,
}

#[derive(Serialize)]
struct PageSummary<'a> {
    title: &'a str,
    description: &'a str,
    date: Option<String>,
    updated: Option<String>,
    slug: String,
    path: &'a str,
    permalink: String,
    summary: &'a str,
    word_count: usize,
    reading_time: usize,
    taxonomies: &'a indexmap::IndexMap<String, Vec<crate::site::TermRef>>,
    extra: &'a serde_json::Map<String, serde_json::Value>,
    section: &'a str,
    draft: bool,
    weight: i64,
}

impl Shared {
    fn new(site: &Site, opts: RenderOptions) -> Shared {
        let page_summaries: Vec<Value> = site
            .pages
            .par_iter()
            .map(|p| page_summary(site, p))
            .collect();
        let listed = page_summaries.par_iter().map(listed_form).collect();
        Shared::with_pages(site, opts, page_summaries, listed)
    }

    /// The shared values around pages' values already made.
    fn with_pages(
        site: &Site,
        _opts: RenderOptions,
        page_summaries: Vec<Value>,
        listed: Vec<Value>,
    ) -> Shared {
        let data: serde_json::Map<String, serde_json::Value> = site
            .data
            .iter()
            .map(|(k, records)| {
                (
                    k.clone(),
                    serde_json::Value::Array(
                        records
                            .iter()
                            .map(|r| serde_json::Value::Object(r.fields.clone()))
                            .collect(),
                    ),
                )
            })
            .collect();
        let section_values = (0..site.sections.len())
            .map(|si| {
                let s = &site.sections[si];
                let doc = s.doc.as_ref();
                Value::from_serializable(&json!({
                    "title": s.title,
                    "description": doc.map_or(site.config.description.as_str(), |d| d.front.description.as_str()),
                    "path": s.path,
                    "permalink": site.config.permalink(&s.path),
                    "content": doc.map_or("", |d| d.rendered.html.as_str()),
                    "extra": doc.map(|d| d.front.extra.clone()).unwrap_or_default(),
                    "subsections": s.subsections.iter().map(|&c| json!({
                        "title": site.sections[c].title,
                        "path": site.sections[c].path,
                        "description": site.sections[c].doc.as_ref().map_or("", |d| d.front.description.as_str()),
                    })).collect::<Vec<_>>(),
                    "pages_count": s.pages.len(),
                    "ancestors": section_ancestors(site, s.parent),
                    "weight": doc.map_or(0, |d| d.front.weight),
                }))
            })
            .collect();
        let mut top: Vec<usize> = site.sections[0].subsections.clone();
        top.sort_by_key(|&i| {
            (
                site.sections[i].doc.as_ref().map_or(0, |d| d.front.weight),
                site.sections[i].title.clone(),
            )
        });
        let top_sections = Value::from_serializable(
            &top.iter()
                .map(|&i| {
                    json!({
                        "title": site.sections[i].title,
                        "path": site.sections[i].path,
                        "permalink": site.config.permalink(&site.sections[i].path),
                        "weight": site.sections[i].doc.as_ref().map_or(0, |d| d.front.weight),
                    })
                })
                .collect::<Vec<_>>(),
        );
        let taxonomy_values = site
            .taxonomies
            .iter()
            .map(|t| {
                let path = format!("/{}/", t.name);
                Value::from_serializable(&json!({
                    "name": t.name,
                    "permalink": site.config.permalink(&path),
                    "path": path,
                    "terms": t.terms.iter().map(|(slug, term)| term_json(site, &t.name, slug, &term.name, term.pages.len())).collect::<Vec<_>>(),
                }))
            })
            .collect();
        Shared {
            config: Value::from_serializable(&site.config),
            data: Value::from_serializable(&data),
            top_sections,
            listed,
            page_summaries,
            section_values,
            taxonomy_values,
        }
    }

    /// The maps behind `get_page` and `get_section`: path -> value.
    /// What `get_section` returns for section `si`: its value with its pages.
    /// Puts the site-wide values into the templates' global context: each section's
    /// `get_section` value, `config`, `data`, `sections` and `build`.
    fn insert_site_values(&self, site: &Site, global: &mut tera::Context, opts: RenderOptions) {
        for (si, s) in site.sections.iter().enumerate() {
            global.insert_value(
                format!("{SECTIONS_KEY}{}", s.path),
                self.section_lookup(site, si),
            );
        }
        global.insert_value("config", self.config.clone());
        global.insert_value("data", self.data.clone());
        global.insert_value("sections", self.top_sections.clone());
        global.insert("build", &json!({ "dev": opts.dev }));
    }

    fn section_lookup(&self, site: &Site, si: usize) -> Value {
        let mut v: serde_json::Value =
            serde_json::to_value(&self.section_values[si]).unwrap_or_default();
        let Some(obj) = v.as_object_mut() else {
            return Value::from_serializable(&v);
        };
        // The pages go in at the key's place; their values are converted once per page.
        obj.insert("pages".into(), serde_json::Value::Null);
        let base = Value::from_serializable(&v);
        let Some(map) = base.as_map() else {
            return base;
        };
        let pages: Vec<Value> = site.sections[si]
            .pages
            .iter()
            .map(|&p| self.listed[p].clone())
            .collect();
        let mut map = map.clone();
        map.insert("pages".into(), Value::from(pages));
        Value::from(map)
    }
}

/// A page summary as it looks after a trip through JSON (what `get_section` lists).
fn listed_form(summary: &Value) -> Value {
    Value::from_serializable(&serde_json::to_value(summary).unwrap_or_default())
}

/// The value templates see for a page in listings and lookups.
fn page_summary(site: &Site, p: &crate::site::Page) -> Value {
    Value::from_serializable(&PageSummary {
        title: p.doc.front.title.as_deref().unwrap_or(""),
        description: &p.doc.front.description,
        date: p.doc.date.map(|d| d.to_string()),
        updated: p.doc.updated.map(|d| d.to_string()),
        slug: p
            .path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string(),
        path: &p.path,
        permalink: site.config.permalink(&p.path),
        summary: &p.doc.rendered.summary,
        word_count: p.doc.rendered.word_count,
        reading_time: p.doc.rendered.word_count.div_ceil(200).max(1),
        taxonomies: &p.terms,
        extra: &p.doc.front.extra,
        section: &site.sections[p.section].path,
        draft: p.doc.front.draft,
        weight: p.doc.front.weight,
    })
}

fn term_json(site: &Site, tax: &str, slug: &str, name: &str, count: usize) -> serde_json::Value {
    let path = format!("/{tax}/{slug}/");
    json!({"name": name, "slug": slug, "permalink": site.config.permalink(&path), "path": path, "count": count})
}

fn section_ancestors(site: &Site, mut at: Option<usize>) -> Vec<Link> {
    let mut out = Vec::new();
    while let Some(i) = at {
        out.push(Link {
            title: site.sections[i].title.clone(),
            path: site.sections[i].path.clone(),
        });
        at = site.sections[i].parent;
    }
    out.reverse();
    out
}

/// Every output page of the site, in a fixed order.
pub fn jobs(site: &Site) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (pi, p) in site.pages.iter().enumerate() {
        jobs.push(Job::Page(pi));
        for alias in &p.doc.front.aliases {
            jobs.push(Job::Alias(
                normalize_alias(alias),
                p.path.clone(),
                p.doc.file.clone(),
            ));
        }
    }
    for (si, s) in site.sections.iter().enumerate() {
        let per = per_page(site, si);
        let n = s.pages.len().div_ceil(per).max(1);
        for k in 1..=n {
            jobs.push(Job::Section(si, k));
        }
    }
    for (ti, t) in site.taxonomies.iter().enumerate() {
        if t.terms.is_empty() {
            continue;
        }
        jobs.push(Job::TaxonomyList(ti));
        for (slug, term) in &t.terms {
            let n = term.pages.len().div_ceil(site.config.paginate_by).max(1);
            for k in 1..=n {
                jobs.push(Job::Term(ti, slug.clone(), k));
            }
        }
    }
    jobs.extend((0..site.records.len()).map(Job::Record));
    jobs.push(Job::NotFound);
    jobs
}

/// Pages per listing page of section `si`.
pub(crate) fn per_page(site: &Site, si: usize) -> usize {
    site.sections[si]
        .doc
        .as_ref()
        .and_then(|d| d.front.paginate_by)
        .filter(|&n| n > 0)
        .unwrap_or(site.config.paginate_by)
}

/// Output file for a site path: `/a/b/` -> `a/b/index.html`, `/x.html` -> `x.html`.
pub fn output_path(path: &str) -> String {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() || trimmed.ends_with('/') {
        format!("{trimmed}index.html")
    } else {
        trimmed.to_string()
    }
}

fn paged_path(base: &str, k: usize) -> String {
    if k == 1 {
        base.to_string()
    } else {
        format!("{base}page/{k}/")
    }
}

fn paginator(shared: &Shared, items: &[usize], base: &str, k: usize, per: usize) -> Value {
    let total = items.len().div_ceil(per).max(1);
    let pages: Vec<Value> = items
        .iter()
        .skip((k - 1) * per)
        .take(per)
        .map(|&p| shared.page_summaries[p].clone())
        .collect();
    let mut map = tera::Map::new();
    map.insert("pages".into(), Value::from(pages));
    map.insert("current_index".into(), Value::from(k));
    map.insert("total_pages".into(), Value::from(total));
    map.insert("first".into(), Value::from(base.to_string()));
    map.insert("last".into(), Value::from(paged_path(base, total)));
    map.insert(
        "previous".into(),
        if k > 1 {
            Value::from(paged_path(base, k - 1))
        } else {
            Value::none()
        },
    );
    map.insert(
        "next".into(),
        if k < total {
            Value::from(paged_path(base, k + 1))
        } else {
            Value::none()
        },
    );
    Value::from(map)
}

fn base_context(site: &Site, path: &str) -> Context {
    let mut ctx = Context::new();
    ctx.insert("current_path", path);
    ctx.insert("current_url", &site.config.permalink(path));
    ctx
}

fn render_job(
    site: &Site,
    t: &Templates,
    shared: &Shared,
    job: &Job,
    head: Option<&seo::Head>,
) -> Result<Rendered, Diagnostic> {
    let base_context = |site: &Site, path: &str| {
        let mut ctx = base_context(site, path);
        if let Some(h) = head {
            ctx.insert("seo", h);
            ctx.insert_value("page_head", Value::safe_string(&h.html));
        }
        ctx
    };
    match job {
        Job::Page(pi) => {
            let p = &site.pages[*pi];
            let mut ctx = base_context(site, &p.path);
            let mut v: serde_json::Value =
                serde_json::to_value(&shared.page_summaries[*pi]).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("content".into(), json!(p.doc.rendered.html));
                obj.insert("toc".into(), json!(p.doc.rendered.toc));
                let mut anc = section_ancestors(site, Some(p.section));
                if p.section == 0 {
                    anc.truncate(1);
                }
                obj.insert("ancestors".into(), json!(anc));
                let link = |i: Option<usize>| {
                    i.map(|i| json!({"title": site.pages[i].doc.front.title, "path": site.pages[i].path}))
                };
                obj.insert("lower".into(), json!(link(p.lower)));
                obj.insert("higher".into(), json!(link(p.higher)));
            }
            ctx.insert("page", &v);
            let html = t.render(&page_template(site, *pi), &ctx, &p.doc.file)?;
            Ok(out(&p.path, html, &p.doc.file))
        }
        Job::Section(si, k) => {
            let s = &site.sections[*si];
            let path = paged_path(&s.path, *k);
            let mut ctx = base_context(site, &path);
            ctx.insert_value("section", shared.section_values[*si].clone());
            ctx.insert_value(
                "paginator",
                paginator(shared, &s.pages, &s.path, *k, per_page(site, *si)),
            );
            let file = s
                .doc
                .as_ref()
                .map_or(PathBuf::from("content"), |d| d.file.clone());
            let html = t.render(&section_template(site, *si), &ctx, &file)?;
            Ok(out(&path, html, &file))
        }
        Job::TaxonomyList(ti) => {
            let path = format!("/{}/", site.taxonomies[*ti].name);
            let mut ctx = base_context(site, &path);
            ctx.insert_value("taxonomy", shared.taxonomy_values[*ti].clone());
            let html = t.render("taxonomy_list.html", &ctx, Path::new("site.toml"))?;
            Ok(out(&path, html, Path::new("site.toml")))
        }
        Job::Term(ti, slug, k) => {
            let tax = &site.taxonomies[*ti];
            let term = &tax.terms[slug];
            let base = format!("/{}/{slug}/", tax.name);
            let path = paged_path(&base, *k);
            let mut ctx = base_context(site, &path);
            ctx.insert_value("taxonomy", shared.taxonomy_values[*ti].clone());
            ctx.insert(
                "term",
                &term_json(site, &tax.name, slug, &term.name, term.pages.len()),
            );
            ctx.insert_value(
                "paginator",
                paginator(shared, &term.pages, &base, *k, site.config.paginate_by),
            );
            let html = t.render("taxonomy_term.html", &ctx, Path::new("site.toml"))?;
            Ok(out(&path, html, Path::new("site.toml")))
        }
        Job::Record(ri) => {
            let r = &site.records[*ri];
            let mut ctx = base_context(site, &r.path);
            ctx.insert("record", &r.fields);
            ctx.insert("collection", &r.collection);
            let html = t.render(&r.template, &ctx, &r.file)?;
            Ok(out(&r.path, html, &r.file))
        }
        Job::Alias(from, to, file) => {
            let target = site.config.permalink(to);
            let html = format!(
                "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>Moved</title><link rel=\"canonical\" href=\"{target}\"><meta name=\"robots\" content=\"noindex\"><meta http-equiv=\"refresh\" content=\"0; url={target}\"></head><body><p>This page moved to <a href=\"{target}\">{target}</a>.</p></body></html>\n",
                lang = crate::markdown::escape_attr(&site.config.language),
                target = crate::markdown::escape_attr(&target),
            );
            Ok(out(from, html, file))
        }
        Job::NotFound => {
            let ctx = base_context(site, "/404.html");
            let html = t.render("404.html", &ctx, Path::new("templates/404.html"))?;
            Ok(out("/404.html", html, Path::new("templates/404.html")))
        }
    }
}

fn out(path: &str, html: String, origin: &Path) -> Rendered {
    Rendered {
        out: output_path(path),
        bytes: html.into_bytes(),
        origin: origin.to_path_buf(),
        sitemap: None,
        alternates: Vec::new(),
    }
}

/// Site path of the feeds that follow the page at `page_path`: (MIME type, path).
pub fn feed_links(site: &Site, page_path: &str) -> Vec<(&'static str, String)> {
    let f = &site.config.feeds;
    let has_feed = if page_path == "/" {
        site.pages.iter().any(|p| p.doc.date.is_some())
    } else if let Some(s) = site.sections.iter().find(|s| s.path == page_path) {
        f.sections && s.pages.iter().any(|&p| site.pages[p].doc.date.is_some())
    } else {
        f.taxonomies
            && site.taxonomies.iter().any(|t| {
                t.terms.iter().any(|(slug, term)| {
                    format!("/{}/{slug}/", t.name) == page_path
                        && term.pages.iter().any(|&p| site.pages[p].doc.date.is_some())
                })
            })
    };
    let mut out = Vec::new();
    if has_feed && f.atom {
        out.push(("application/atom+xml", format!("{page_path}atom.xml")));
    }
    if has_feed && f.rss {
        out.push(("application/rss+xml", format!("{page_path}rss.xml")));
    }
    out
}

fn extra_str<'a>(
    extra: &'a serde_json::Map<String, serde_json::Value>,
    keys: &[&str],
) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| extra.get(*k).and_then(serde_json::Value::as_str))
}

fn faqs_of(items: Option<&serde_json::Value>) -> Vec<(String, String)> {
    let Some(serde_json::Value::Array(items)) = items else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|f| {
            let q = f.get("question")?.as_str()?;
            let a = f.get("answer")?.as_str()?;
            Some((
                q.to_string(),
                crate::markdown::render(a, false).html.trim().to_string(),
            ))
        })
        .collect()
}

fn crumbs(site: &Site, from: Option<usize>) -> Vec<(String, String)> {
    section_ancestors(site, from)
        .into_iter()
        .map(|l| (l.title, l.path))
        .collect()
}

/// The business record shown by pages using the `business.html` template.
fn business_record(
    site: &Site,
) -> Option<(&serde_json::Map<String, serde_json::Value>, String, &Path)> {
    let record = site.data.get("business")?.first()?;
    Some((
        &record.fields,
        "LocalBusiness".to_string(),
        record.file.as_path(),
    ))
}

/// What the head and the sitemap know about a job's page, and its last modification.
fn describe<'a>(site: &'a Site, job: &'a Job) -> Option<(PageInfo<'a>, Option<NaiveDate>)> {
    let newest = |pages: &[usize]| {
        pages
            .iter()
            .filter_map(|&p| {
                let d = &site.pages[p].doc;
                d.updated.max(d.date)
            })
            .max()
    };
    let base = |kind| PageInfo {
        kind,
        title: String::new(),
        description: String::new(),
        path: String::new(),
        date: None,
        updated: None,
        image: None,
        crumbs: Vec::new(),
        keywords: Vec::new(),
        word_count: 0,
        noindex: false,
        feeds: Vec::new(),
        alternates: Vec::new(),
        lang: None,
        faqs: Vec::new(),
        record: None,
    };
    match job {
        Job::Page(pi) => {
            let p = &site.pages[*pi];
            let front = &p.doc.front;
            let mut crumbs = crumbs(site, Some(p.section));
            if p.section == 0 {
                crumbs.truncate(1);
            }
            let template = page_template(site, *pi);
            let info = PageInfo {
                kind: if p.doc.date.is_some() {
                    Kind::Article
                } else {
                    Kind::Page
                },
                title: front.title.clone().unwrap_or_default(),
                description: if front.description.is_empty() {
                    seo::strip_tags(&p.doc.rendered.summary)
                } else {
                    front.description.clone()
                },
                path: p.path.clone(),
                date: p.doc.date,
                updated: p.doc.updated,
                image: extra_str(&front.extra, &["image", "hero_image", "hero"]).map(|i| {
                    (
                        page_relative(i, &p.path),
                        extra_str(&front.extra, &["image_alt", "hero_alt"])
                            .unwrap_or("")
                            .to_string(),
                    )
                }),
                crumbs,
                keywords: p
                    .terms
                    .get("tags")
                    .map(|t| t.iter().map(|t| t.name.clone()).collect())
                    .unwrap_or_default(),
                word_count: p.doc.rendered.word_count,
                noindex: front.draft,
                feeds: feed_links(site, "/"),
                alternates: p.translations.clone(),
                lang: p.lang.clone(),
                faqs: faqs_of(front.extra.get("faqs")),
                record: if template == "business.html" {
                    business_record(site)
                } else {
                    None
                },
            };
            Some((info, p.doc.updated.max(p.doc.date)))
        }
        Job::Section(si, k) => {
            let s = &site.sections[*si];
            let doc = s.doc.as_ref();
            let template = section_template(site, *si);
            let info = PageInfo {
                kind: if *si == 0 { Kind::Home } else { Kind::Listing },
                title: s.title.clone(),
                description: doc.map_or(String::new(), |d| d.front.description.clone()),
                path: paged_path(&s.path, *k),
                image: doc.and_then(|d| {
                    extra_str(&d.front.extra, &["image", "hero_image", "hero"]).map(|i| {
                        (
                            page_relative(i, &s.path),
                            extra_str(&d.front.extra, &["image_alt", "hero_alt"])
                                .unwrap_or("")
                                .to_string(),
                        )
                    })
                }),
                crumbs: crumbs(site, s.parent),
                noindex: *k > 1,
                feeds: feed_links(site, &s.path),
                alternates: if *k == 1 {
                    s.translations.clone()
                } else {
                    Vec::new()
                },
                lang: s.lang.clone(),
                faqs: doc
                    .map(|d| faqs_of(d.front.extra.get("faqs")))
                    .unwrap_or_default(),
                record: if template == "business.html" {
                    business_record(site)
                } else {
                    None
                },
                ..base(Kind::Listing)
            };
            let lastmod = if *si == 0 {
                newest(&(0..site.pages.len()).collect::<Vec<_>>())
            } else {
                newest(&s.pages)
            };
            Some((info, lastmod))
        }
        Job::TaxonomyList(ti) => {
            let t = &site.taxonomies[*ti];
            let names: Vec<&str> = t.terms.values().map(|term| term.name.as_str()).collect();
            let info = PageInfo {
                title: capitalize(&t.name),
                description: format!(
                    "All {} {} of {}, each with its posts: {}.",
                    names.len(),
                    t.name,
                    site.config.title,
                    names.join(", ")
                ),
                path: format!("/{}/", t.name),
                crumbs: crumbs(site, Some(0)),
                ..base(Kind::Listing)
            };
            Some((info, None))
        }
        Job::Term(ti, slug, k) => {
            let t = &site.taxonomies[*ti];
            let term = &t.terms[slug];
            let base_path = format!("/{}/{slug}/", t.name);
            let mut crumbs = crumbs(site, Some(0));
            crumbs.push((capitalize(&t.name), format!("/{}/", t.name)));
            let titles: Vec<&str> = term
                .pages
                .iter()
                .filter_map(|&pi| site.pages[pi].doc.front.title.as_deref())
                .take(3)
                .collect();
            let count = term.pages.len();
            let info = PageInfo {
                title: term.name.clone(),
                description: format!(
                    "{count} {} filed under “{}” on {}: {}.",
                    if count == 1 { "post" } else { "posts" },
                    term.name,
                    site.config.title,
                    titles.join("; ")
                ),
                path: paged_path(&base_path, *k),
                crumbs,
                noindex: *k > 1,
                feeds: feed_links(site, &base_path),
                ..base(Kind::Listing)
            };
            Some((info, newest(&term.pages)))
        }
        Job::Record(ri) => {
            let r = &site.records[*ri];
            let cfg = site.config.collections.get(&r.collection);
            let schema = seo::record_schema(cfg.and_then(|c| c.schema.as_deref()), &r.template);
            let text = |k: &str| r.fields.get(k).and_then(serde_json::Value::as_str);
            let parent = r
                .path
                .trim_end_matches('/')
                .rsplit_once('/')
                .map_or("/".to_string(), |(p, _)| format!("{p}/"));
            let mut crumbs = crumbs(site, Some(0));
            if let Some(s) = site.sections.iter().position(|s| s.path == parent) {
                crumbs = self::crumbs(site, Some(s));
            }
            let lastmod = ["updated", "date"]
                .iter()
                .filter_map(|k| text(k))
                .find_map(|d| NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d").ok());
            let info = PageInfo {
                title: text("name")
                    .or_else(|| text("title"))
                    .unwrap_or("")
                    .to_string(),
                description: text("description").map(seo::plain).unwrap_or_default(),
                path: r.path.clone(),
                image: text("image")
                    .map(|i| (i.to_string(), text("image_alt").unwrap_or("").to_string())),
                crumbs,
                faqs: faqs_of(r.fields.get("faqs")),
                record: Some((&r.fields, schema, r.file.as_path())),
                ..base(Kind::Record)
            };
            Some((info, lastmod))
        }
        Job::NotFound => Some((
            PageInfo {
                title: "Page not found".into(),
                path: "/404.html".into(),
                ..base(Kind::NotFound)
            },
            None,
        )),
        Job::Alias(..) => None,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}
/// A front-matter image path as a site path: relative paths (page bundles) resolve
/// against the page's URL folder; absolute paths and URLs stay as they are.
fn page_relative(src: &str, page_path: &str) -> String {
    if src.starts_with('/') || src.contains("://") {
        src.to_string()
    } else {
        let dir = if page_path.ends_with('/') {
            page_path.to_string()
        } else {
            format!("{page_path}/")
        };
        format!("{dir}{src}")
    }
}
