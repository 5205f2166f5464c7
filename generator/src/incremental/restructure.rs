//! Structural edits: when edited documents change the site's shape (a page added or
//! removed; a new date, URL, weight, title used for sorting, draft flag or terms), the
//! model is rebuilt from the documents in memory, and this module carries the old
//! outputs over to the new model's jobs (page indexes shift; pages are matched by their
//! source file) and finds the jobs whose output can differ: the edited pages, pages
//! whose own value, neighbour links or translations changed, listing pages whose items,
//! page count, head (last modification, feeds) or listing value changed, and the pages
//! whose templates looked up a page or section that changed. Everything else keeps its
//! output as it is.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use chrono::NaiveDate;
use tera::Value;

use super::{PageOut, State};
use crate::render::{self, Job, Previous};
use crate::site::Site;

/// What carrying the old outputs over found.
pub(super) struct Carried {
    /// Jobs to render again.
    pub dirty: BTreeSet<Job>,
    /// Listings (`/`, a section's or a term's path) whose feeds are made again.
    pub feeds: HashSet<String>,
    /// Output paths of old jobs with no counterpart in the new model.
    pub gone: Vec<String>,
}

/// Whether the two models have the same sections and records, the case this module
/// handles (a section's `_index.md` or a data change reaches further).
pub(super) fn same_frame(old: &Site, new: &Site) -> bool {
    old.sections.len() == new.sections.len()
        && old.sections.iter().zip(&new.sections).all(|(a, b)| {
            a.path == b.path
                && a.title == b.title
                && a.parent == b.parent
                && a.subsections == b.subsections
                && a.lang == b.lang
                && a.translations == b.translations
                && a.doc.as_ref().map(|d| &d.file) == b.doc.as_ref().map(|d| &d.file)
        })
        && old.records.len() == new.records.len()
        && old
            .records
            .iter()
            .zip(&new.records)
            .all(|(a, b)| a.path == b.path)
        && old
            .taxonomies
            .iter()
            .map(|t| &t.name)
            .eq(new.taxonomies.iter().map(|t| &t.name))
}

/// For each page of `new`, the page of `old` it was made from (the same source file),
/// if any.
fn old_of_new(old: &Site, new: &Site) -> Vec<Option<usize>> {
    let old_by_file: HashMap<&PathBuf, usize> = old
        .pages
        .iter()
        .enumerate()
        .map(|(i, p)| (&p.doc.file, i))
        .collect();
    new.pages
        .iter()
        .map(|p| old_by_file.get(&p.doc.file).copied())
        .collect()
}

/// For each page of `new`, the page of `old` whose value (as templates see it) it
/// keeps: a document that did not change, with the same URL, terms and section. A
/// page's value is made from these alone.
pub(super) fn reusable(old: &Site, new: &Site, edited: &HashSet<PathBuf>) -> Vec<Option<usize>> {
    old_of_new(old, new)
        .into_iter()
        .zip(&new.pages)
        .map(|(o, np)| {
            let o = o?;
            let op = &old.pages[o];
            let same = !edited.contains(&np.doc.file)
                && op.path == np.path
                && op.terms == np.terms
                && old.sections[op.section].path == new.sections[np.section].path;
            same.then_some(o)
        })
        .collect()
}

/// Moves the outputs of `old_pages` (the old model's jobs) to the new model's jobs in
/// `st` and returns what must be made again. `old_dirty` (jobs of the old model that
/// must render again anyway) are carried over too; `edited` are the documents that
/// changed (added, removed or edited).
pub(super) fn carry(
    st: &mut State,
    old_site: &Site,
    old_r: &Previous,
    old_pages: HashMap<Job, PageOut>,
    old_dirty: BTreeSet<Job>,
    edited: &HashSet<PathBuf>,
) -> Carried {
    let new_site = &st.site;
    let new_r = &st.renderer;
    // Pages are matched by their source file.
    let old_of_new = old_of_new(old_site, new_site);
    let mut new_of_old: Vec<Option<usize>> = vec![None; old_site.pages.len()];
    for (ni, o) in old_of_new.iter().enumerate() {
        if let Some(o) = *o {
            new_of_old[o] = Some(ni);
        }
    }
    let edited_new: Vec<bool> = new_site
        .pages
        .iter()
        .map(|p| edited.contains(&p.doc.file))
        .collect();
    // Pages whose value (as listings and lookups show it) changed, or that are new. A
    // page's value is made from its document, its URL, its terms and its section's
    // path: for a document that did not change, comparing those is enough.
    let summary_changed: Vec<bool> = old_of_new
        .iter()
        .enumerate()
        .map(|(ni, o)| {
            let Some(o) = *o else {
                return true;
            };
            let (op, np) = (&old_site.pages[o], &new_site.pages[ni]);
            if edited_new[ni] {
                old_r.page_value(o) != new_r.page_value(ni)
            } else {
                op.path != np.path
                    || op.terms != np.terms
                    || old_site.sections[op.section].path != new_site.sections[np.section].path
            }
        })
        .collect();
    let same_items = |old_list: &[usize], new_list: &[usize]| {
        old_list.len() == new_list.len()
            && old_list
                .iter()
                .zip(new_list)
                .all(|(&o, &n)| old_of_new[n] == Some(o) && !summary_changed[n])
    };
    let map_job = |job: &Job| -> Option<Job> {
        match job {
            Job::Page(o) => new_of_old.get(*o).copied().flatten().map(Job::Page),
            other => Some(other.clone()),
        }
    };

    // Outputs carried over to their job in the new model; the others are gone.
    let new_jobs: HashSet<&Job> = st.jobs.iter().collect();
    let mut pages: HashMap<Job, PageOut> = HashMap::with_capacity(old_pages.len());
    let mut gone = Vec::new();
    for (job, out) in old_pages {
        match map_job(&job).filter(|j| new_jobs.contains(j)) {
            Some(j) => {
                pages.insert(j, out);
            }
            None => gone.push(out.out),
        }
    }
    let mut dirty: BTreeSet<Job> = old_dirty
        .iter()
        .filter_map(map_job)
        .filter(|j| new_jobs.contains(j))
        .collect();
    let failed = std::mem::take(&mut st.failed);
    st.failed = failed
        .iter()
        .filter_map(map_job)
        .filter(|j| new_jobs.contains(j))
        .collect();
    dirty.extend(st.failed.iter().cloned());

    // What the heads of pages and listings show that others can change.
    let home_feeds_changed = render::feed_links(old_site, "/") != render::feed_links(new_site, "/");
    let newest = |site: &Site, list: &mut dyn Iterator<Item = usize>| -> Option<NaiveDate> {
        list.filter_map(|p| {
            let d = &site.pages[p].doc;
            d.updated.max(d.date)
        })
        .max()
    };
    let mentions = |job: &Job, word: &str| {
        render::job_template(new_site, job)
            .and_then(|t| st.closure.get(&t))
            .is_some_and(|c| {
                c.iter()
                    .any(|t| st.templates.source(t).is_some_and(|s| s.contains(word)))
            })
    };
    // Per section: whether every listing page of it changes (its value, page count,
    // last modification or feeds), and whether what `get_section` returns changed.
    let mut section_all = Vec::with_capacity(new_site.sections.len());
    let mut section_lookup_changed = Vec::with_capacity(new_site.sections.len());
    for (si, (os, ns)) in old_site.sections.iter().zip(&new_site.sections).enumerate() {
        let (ov, nv) = (old_r.section_value(si), new_r.section_value(si));
        let value_changed = if mentions(&Job::Section(si, 1), "pages_count") {
            ov != nv
        } else {
            !same_except(ov, nv, "pages_count")
        };
        let per = render::per_page(new_site, si);
        let lastmod = |site: &Site, s: &crate::site::Section| {
            if si == 0 {
                newest(site, &mut (0..site.pages.len()))
            } else {
                newest(site, &mut s.pages.iter().copied())
            }
        };
        section_all.push(
            value_changed
                || os.pages.len().div_ceil(per).max(1) != ns.pages.len().div_ceil(per).max(1)
                || lastmod(old_site, os) != lastmod(new_site, ns)
                || render::feed_links(old_site, &os.path) != render::feed_links(new_site, &ns.path),
        );
        section_lookup_changed.push(ov != nv || !same_items(&os.pages, &ns.pages));
    }
    // Per term: whether every listing page of it changes (name, count, the titles its
    // description names, last modification, feeds, or the taxonomy's value when the
    // term template reads its terms).
    let taxonomy_changed: Vec<bool> = (0..new_site.taxonomies.len())
        .map(|ti| old_r.taxonomy_value(ti) != new_r.taxonomy_value(ti))
        .collect();
    let term_reads_terms = mentions(&Job::Term(0, String::new(), 1), "terms");
    let mut term_all: HashMap<(usize, &str), bool> = HashMap::new();
    for (ti, (ot, nt)) in old_site
        .taxonomies
        .iter()
        .zip(&new_site.taxonomies)
        .enumerate()
    {
        for (slug, term) in &nt.terms {
            let Some(old) = ot.terms.get(slug) else {
                continue;
            };
            let titles = |site: &Site, list: &[usize]| -> Vec<String> {
                list.iter()
                    .filter_map(|&p| site.pages[p].doc.front.title.clone())
                    .take(3)
                    .collect()
            };
            let path = format!("/{}/{slug}/", nt.name);
            let all = old.name != term.name
                || old.pages.len() != term.pages.len()
                || titles(old_site, &old.pages) != titles(new_site, &term.pages)
                || newest(old_site, &mut old.pages.iter().copied())
                    != newest(new_site, &mut term.pages.iter().copied())
                || render::feed_links(old_site, &path) != render::feed_links(new_site, &path)
                || (taxonomy_changed[ti] && term_reads_terms);
            term_all.insert((ti, slug.as_str()), all);
        }
    }
    let slice = |list: &[usize], k: usize, per: usize| -> (usize, usize) {
        let from = ((k - 1) * per).min(list.len());
        (from, (from + per).min(list.len()))
    };
    let link = |site: &Site, i: Option<usize>| {
        i.map(|i| {
            (
                site.pages[i].doc.front.title.clone(),
                site.pages[i].path.clone(),
            )
        })
    };

    for job in &st.jobs {
        let changed = !pages.contains_key(job)
            || match job {
                Job::Page(ni) => {
                    let p = &new_site.pages[*ni];
                    match old_of_new[*ni] {
                        None => true,
                        Some(o) => {
                            let op = &old_site.pages[o];
                            edited_new[*ni]
                                || summary_changed[*ni]
                                || home_feeds_changed
                                || link(old_site, op.lower) != link(new_site, p.lower)
                                || link(old_site, op.higher) != link(new_site, p.higher)
                                || op.translations != p.translations
                                || op.lang != p.lang
                        }
                    }
                }
                Job::Section(si, k) => {
                    let per = render::per_page(new_site, *si);
                    let (os, ns) = (&old_site.sections[*si].pages, &new_site.sections[*si].pages);
                    let (a, b) = slice(os, *k, per);
                    let (c, d) = slice(ns, *k, per);
                    section_all[*si] || !same_items(&os[a..b], &ns[c..d])
                }
                Job::TaxonomyList(ti) => taxonomy_changed[*ti],
                Job::Term(ti, slug, k) => {
                    let per = new_site.config.paginate_by;
                    let old = old_site.taxonomies[*ti].terms.get(slug);
                    let new = new_site.taxonomies[*ti].terms.get(slug);
                    match (old, new) {
                        (Some(old), Some(new)) => {
                            let (a, b) = slice(&old.pages, *k, per);
                            let (c, d) = slice(&new.pages, *k, per);
                            term_all.get(&(*ti, slug.as_str())).copied().unwrap_or(true)
                                || !same_items(&old.pages[a..b], &new.pages[c..d])
                        }
                        _ => true,
                    }
                }
                // Records, redirects and the 404 page show no page but through lookups.
                Job::Record(_) | Job::Alias(..) | Job::NotFound => false,
            };
        if changed {
            dirty.insert(job.clone());
        }
    }

    // The lookup index, and the pages that looked up what changed.
    st.readers.clear();
    for (job, out) in &pages {
        for r in &out.reads {
            st.readers.entry(r.clone()).or_default().insert(job.clone());
        }
    }
    let mut keys: Vec<String> = Vec::new();
    for (ni, p) in new_site.pages.iter().enumerate() {
        if summary_changed[ni] {
            keys.push(format!("page:{}", p.path));
        }
    }
    for (o, p) in old_site.pages.iter().enumerate() {
        let moved = new_of_old[o].is_none_or(|n| new_site.pages[n].path != p.path);
        if moved {
            keys.push(format!("page:{}", p.path));
        }
    }
    for (si, s) in new_site.sections.iter().enumerate() {
        if section_lookup_changed[si] {
            keys.push(format!("section:{}", s.path));
        }
    }
    for key in &keys {
        if let Some(jobs) = st.readers.get(key) {
            dirty.extend(jobs.iter().cloned());
        }
    }

    // Feeds: the site's, and those of the listings a changed page is or was in.
    let mut feeds: HashSet<String> = HashSet::from(["/".to_string()]);
    let mut listings_of = |site: &Site, pi: usize| {
        let p = &site.pages[pi];
        feeds.insert(site.sections[p.section].path.clone());
        feeds.extend(p.terms.values().flatten().map(|t| t.path.clone()));
    };
    for ni in 0..new_site.pages.len() {
        if summary_changed[ni] || edited_new[ni] {
            listings_of(new_site, ni);
            if let Some(o) = old_of_new[ni] {
                listings_of(old_site, o);
            }
        }
    }
    for (o, n) in new_of_old.iter().enumerate() {
        if n.is_none() {
            listings_of(old_site, o);
        }
    }
    // The other listings keep their feeds; the pages they show get their new indexes.
    for (listing, shown) in st.feed_pages.iter_mut() {
        if feeds.contains(listing) {
            continue;
        }
        let mapped: Option<Vec<usize>> = shown
            .iter()
            .map(|&o| new_of_old.get(o).copied().flatten())
            .collect();
        match mapped {
            Some(m) => *shown = m,
            None => {
                feeds.insert(listing.clone());
            }
        }
    }

    st.pages = pages;
    st.sitemap_stale = true;
    Carried { dirty, feeds, gone }
}

/// Whether two maps are equal but for `key`.
fn same_except(a: &Value, b: &Value, key: &str) -> bool {
    match (a.as_map(), b.as_map()) {
        (Some(x), Some(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| k.as_str() == Some(key) || y.get(k) == Some(v))
        }
        _ => a == b,
    }
}
