//! The site model: pages, sections, taxonomies and collection records linked together,
//! filtered (drafts, future dates), sorted, given URLs, and checked for collisions.
//! Built once, then shared read-only by the render threads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::SiteConfig;
use crate::content::{Document, Loaded};
use crate::data::Collections;
use crate::error::Diagnostic;
use crate::frontmatter::SortBy;

/// A link to another page or section.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// Title.
    pub title: String,
    /// Site path.
    pub path: String,
}

/// A taxonomy term as pages refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermRef {
    /// Display name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// Site path.
    pub path: String,
}

/// One page.
#[derive(Debug)]
pub struct Page {
    /// Source document.
    pub doc: Document,
    /// Site path, e.g. `/blog/hello/`.
    pub path: String,
    /// Index of its section in [`Site::sections`].
    pub section: usize,
    /// Terms by taxonomy.
    pub terms: IndexMap<String, Vec<TermRef>>,
    /// Neighbours in its section (lower = older / heavier, higher = newer / lighter).
    pub lower: Option<usize>,
    /// See `lower`.
    pub higher: Option<usize>,
    /// Its language when it is not the site's main one (`foo.fr.md`, `content/fr/...`).
    pub lang: Option<String>,
    /// Its translations, this page included: (language, site path); empty when none.
    pub translations: Vec<(String, String)>,
}

/// One section (a folder with `_index.md`, or the root).
#[derive(Debug)]
pub struct Section {
    /// Source document, if the section has an `_index.md`.
    pub doc: Option<Document>,
    /// Folder components from `content/`.
    pub dirs: Vec<String>,
    /// Site path.
    pub path: String,
    /// Title.
    pub title: String,
    /// Parent section.
    pub parent: Option<usize>,
    /// Pages, sorted.
    pub pages: Vec<usize>,
    /// Child sections, sorted by weight then title.
    pub subsections: Vec<usize>,
    /// Its language when it is not the site's main one; a language's root section
    /// (`/fr/`) has no parent.
    pub lang: Option<String>,
    /// Its translations, this section included: (language, site path); empty when none.
    pub translations: Vec<(String, String)>,
}

/// A taxonomy with its terms.
#[derive(Debug)]
pub struct Taxonomy {
    /// Name (`tags`).
    pub name: String,
    /// Terms by slug, in slug order.
    pub terms: BTreeMap<String, Term>,
}

/// One taxonomy term.
#[derive(Debug)]
pub struct Term {
    /// Display name (as first written).
    pub name: String,
    /// Pages, newest first.
    pub pages: Vec<usize>,
}

/// A data record that gets its own page.
#[derive(Debug)]
pub struct RecordPage {
    /// Collection name.
    pub collection: String,
    /// Template.
    pub template: String,
    /// The record's fields, with `path` and `permalink` added.
    pub fields: Map<String, Value>,
    /// Site path.
    pub path: String,
    /// Source file.
    pub file: PathBuf,
}

/// The whole site, ready to render.
#[derive(Debug)]
pub struct Site {
    /// Configuration.
    pub config: SiteConfig,
    /// Pages.
    pub pages: Vec<Page>,
    /// Sections; index 0 is the root.
    pub sections: Vec<Section>,
    /// Taxonomies in config order.
    pub taxonomies: Vec<Taxonomy>,
    /// Data collections (as loaded, with record paths added).
    pub data: Collections,
    /// Pages generated from records.
    pub records: Vec<RecordPage>,
    /// Files from `content/` copied beside pages (relative to `content/`).
    pub assets: Vec<PathBuf>,
}

/// Which pages to keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    /// Keep drafts.
    pub drafts: bool,
    /// Keep pages dated after `today`.
    pub future: bool,
    /// Today's date.
    pub today: Option<NaiveDate>,
}

impl Site {
    /// Links loaded content and data into a site, or reports every problem found.
    pub fn build(
        config: SiteConfig,
        loaded: Loaded,
        mut data: Collections,
        filter: Filter,
    ) -> Result<Site, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let keep = |d: &Document| {
            (filter.drafts || !d.front.draft)
                && (filter.future
                    || match (d.date, filter.today) {
                        (Some(date), Some(today)) => date <= today,
                        _ => true,
                    })
        };
        // Sections first: root plus every _index.md that is kept.
        let mut sections = vec![Section {
            doc: None,
            dirs: Vec::new(),
            path: "/".into(),
            title: config.title.clone(),
            parent: None,
            pages: Vec::new(),
            subsections: Vec::new(),
            lang: None,
            translations: Vec::new(),
        }];
        let mut by_dirs: HashMap<Vec<String>, usize> = HashMap::new();
        by_dirs.insert(Vec::new(), 0);
        let mut dropped_dirs: Vec<Vec<String>> = Vec::new();
        let mut page_docs = Vec::new();
        // Translation key of every page and section, by site path.
        let mut keys: HashMap<String, String> = HashMap::new();
        let mut langs_used: Vec<String> = Vec::new();
        for mut doc in loaded.documents {
            let (lang, key) = assign_language(&mut doc, &config.languages);
            if let Some(l) = &lang
                && !langs_used.contains(l)
            {
                langs_used.push(l.clone());
            }
            if doc.is_section {
                if !keep(&doc) {
                    dropped_dirs.push(doc.dirs.clone());
                    continue;
                }
                let spath = if doc.dirs.is_empty() {
                    "/".to_string()
                } else {
                    format!("/{}/", slug_dirs(&doc.dirs).join("/"))
                };
                keys.insert(spath, key);
            } else {
                page_docs.push((doc, lang, key));
                continue;
            }
            if doc.is_section {
                if !keep(&doc) {
                    dropped_dirs.push(doc.dirs.clone());
                    continue;
                }
                if doc.dirs.is_empty() {
                    sections[0].title = doc.front.title.clone().unwrap_or(config.title.clone());
                    sections[0].doc = Some(doc);
                } else {
                    let path = format!("/{}/", slug_dirs(&doc.dirs).join("/"));
                    let title = doc
                        .front
                        .title
                        .clone()
                        .unwrap_or_else(|| doc.dirs.last().cloned().unwrap_or_default());
                    by_dirs.insert(doc.dirs.clone(), sections.len());
                    let lang = language_of(&doc.dirs, &config.languages);
                    sections.push(Section {
                        dirs: doc.dirs.clone(),
                        path,
                        title,
                        parent: None,
                        pages: Vec::new(),
                        subsections: Vec::new(),
                        lang,
                        translations: Vec::new(),
                        doc: Some(doc),
                    });
                }
            }
        }
        // Each language's root section (`/fr/`), made when its `_index` is missing.
        for lang in &langs_used {
            let dirs = vec![lang.clone()];
            if by_dirs.contains_key(&dirs) {
                continue;
            }
            by_dirs.insert(dirs.clone(), sections.len());
            keys.insert(format!("/{lang}/"), "|_index|true".into());
            sections.push(Section {
                doc: None,
                dirs,
                path: format!("/{lang}/"),
                title: config.title.clone(),
                parent: None,
                pages: Vec::new(),
                subsections: Vec::new(),
                lang: Some(lang.clone()),
                translations: Vec::new(),
            });
        }
        // Parents of sections; a language's root has none.
        for i in 1..sections.len() {
            if sections[i].lang.is_some() && sections[i].dirs.len() == 1 {
                continue;
            }
            let parent = nearest(&by_dirs, &sections[i].dirs[..sections[i].dirs.len() - 1]);
            sections[i].parent = Some(parent);
            sections[parent].subsections.push(i);
        }
        // Pages.
        let mut pages = Vec::new();
        for (doc, lang, key) in page_docs {
            if !keep(&doc) || dropped_dirs.iter().any(|d| doc.dirs.starts_with(d)) {
                continue;
            }
            let section = nearest(&by_dirs, &doc.dirs);
            let slug = slug::slugify(doc.front.slug.as_deref().unwrap_or(&doc.stem));
            if slug.is_empty() {
                errors.push(
                    Diagnostic::file(&doc.file, "the page's slug is empty")
                        .help("set slug = \"...\" in the front matter"),
                );
                continue;
            }
            let mut parts = slug_dirs(&doc.dirs);
            parts.push(slug);
            let path = format!("/{}/", parts.join("/"));
            keys.insert(path.clone(), key);
            pages.push(Page {
                doc,
                path,
                section,
                terms: IndexMap::new(),
                lower: None,
                higher: None,
                lang,
                translations: Vec::new(),
            });
        }
        // Taxonomies.
        let mut taxonomies: Vec<Taxonomy> = config
            .taxonomies
            .iter()
            .map(|name| Taxonomy {
                name: name.clone(),
                terms: BTreeMap::new(),
            })
            .collect();
        for (pi, page) in pages.iter_mut().enumerate() {
            for (tax_name, names) in &page.doc.front.taxonomies {
                let Some(tax) = taxonomies.iter_mut().find(|t| &t.name == tax_name) else {
                    errors.push(
                        Diagnostic::file(&page.doc.file, format!("unknown taxonomy `{tax_name}`"))
                            .help(format!(
                                "declare it in site.toml: taxonomies = [..., \"{tax_name}\"]"
                            )),
                    );
                    continue;
                };
                let mut refs = Vec::new();
                for name in names {
                    let slug = slug::slugify(name);
                    if slug.is_empty() {
                        errors.push(Diagnostic::file(
                            &page.doc.file,
                            format!("{tax_name} term `{name}` has no letters or digits"),
                        ));
                        continue;
                    }
                    let term = tax.terms.entry(slug.clone()).or_insert_with(|| Term {
                        name: name.clone(),
                        pages: Vec::new(),
                    });
                    if !term.pages.contains(&pi) {
                        term.pages.push(pi);
                    }
                    refs.push(TermRef {
                        name: term.name.clone(),
                        path: format!("/{tax_name}/{slug}/"),
                        slug,
                    });
                }
                page.terms.insert(tax_name.clone(), refs);
            }
        }
        for tax in &mut taxonomies {
            for term in tax.terms.values_mut() {
                sort_pages(&mut term.pages, &pages, SortBy::Date);
            }
        }
        // Section membership and order.
        for (pi, page) in pages.iter().enumerate() {
            sections[page.section].pages.push(pi);
        }
        for si in 0..sections.len() {
            let sort = sections[si]
                .doc
                .as_ref()
                .and_then(|d| d.front.sort_by)
                .unwrap_or_default();
            let mut list = std::mem::take(&mut sections[si].pages);
            sort_pages(&mut list, &pages, sort);
            for w in 0..list.len() {
                pages[list[w]].higher = w.checked_sub(1).map(|h| list[h]);
                pages[list[w]].lower = list.get(w + 1).copied();
            }
            sections[si].pages = list;
            let mut subs = std::mem::take(&mut sections[si].subsections);
            subs.sort_by(|&a, &b| {
                let wa = sections[a].doc.as_ref().map_or(0, |d| d.front.weight);
                let wb = sections[b].doc.as_ref().map_or(0, |d| d.front.weight);
                (wa, &sections[a].title).cmp(&(wb, &sections[b].title))
            });
            sections[si].subsections = subs;
        }
        // Collections with templates become pages.
        let mut records = Vec::new();
        for (name, cfg) in &config.collections {
            let Some(list) = data.get_mut(name) else {
                errors.push(
                    Diagnostic::file("site.toml", format!("collection `{name}` has no data"))
                        .help(format!("add data/{name}/*.json (or data/{name}.json, .yaml, .toml, .csv), or remove [collections.{name}]")),
                );
                continue;
            };
            if let Some(field) = &cfg.sort_by {
                list.sort_by_key(|a| sort_key(&a.fields, field));
            }
            let Some(template) = &cfg.template else {
                continue;
            };
            let pattern = cfg
                .path
                .clone()
                .unwrap_or_else(|| format!("/{name}/{{slug}}/"));
            if !pattern.contains("{slug}") || !pattern.starts_with('/') {
                errors.push(Diagnostic::file(
                    "site.toml",
                    format!(
                        "collections.{name}.path `{pattern}` must start with / and contain {{slug}}"
                    ),
                ));
                continue;
            }
            for rec in list.iter_mut() {
                let slug = rec
                    .fields
                    .get("slug")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if slug.is_empty() {
                    errors.push(
                        Diagnostic::file(&rec.file, "record has an empty slug")
                            .help("give it a `slug`, `name` or `title`"),
                    );
                    continue;
                }
                let path = pattern.replace("{slug}", &slug);
                rec.fields
                    .insert("path".into(), Value::String(path.clone()));
                rec.fields
                    .insert("permalink".into(), Value::String(config.permalink(&path)));
                records.push(RecordPage {
                    collection: name.clone(),
                    template: template.clone(),
                    fields: rec.fields.clone(),
                    path,
                    file: rec.file.clone(),
                });
            }
        }
        link_translations(&config.language, &keys, &mut pages, &mut sections);
        let site = Site {
            config,
            pages,
            sections,
            taxonomies,
            data,
            records,
            assets: loaded.assets,
        };
        errors.extend(site.url_collisions());
        if errors.is_empty() {
            Ok(site)
        } else {
            Err(errors)
        }
    }

    /// Every site path claimed twice, as errors naming both claimants.
    fn url_collisions(&self) -> Vec<Diagnostic> {
        let mut claims: Vec<(String, PathBuf)> = Vec::new();
        for s in &self.sections {
            let file = s
                .doc
                .as_ref()
                .map_or(PathBuf::from("content"), |d| d.file.clone());
            claims.push((s.path.clone(), file));
        }
        for p in &self.pages {
            claims.push((p.path.clone(), p.doc.file.clone()));
            for alias in &p.doc.front.aliases {
                claims.push((normalize_alias(alias), p.doc.file.clone()));
            }
        }
        for t in &self.taxonomies {
            claims.push((format!("/{}/", t.name), PathBuf::from("site.toml")));
        }
        for r in &self.records {
            claims.push((r.path.clone(), r.file.clone()));
        }
        let mut claimed: HashMap<&str, &PathBuf> = HashMap::new();
        let mut errors = Vec::new();
        for (path, file) in &claims {
            if let Some(first) = claimed.get(path.as_str()) {
                errors.push(
                    Diagnostic::file(file, format!("URL {path} is already taken by {}", first.display()))
                        .help("give one of them another slug (front matter `slug`, or the record's `slug`)"),
                );
            } else {
                claimed.insert(path, file);
            }
        }
        errors
    }
}

/// Normalizes an alias to a site path with a trailing slash (unless it names a file).
pub fn normalize_alias(alias: &str) -> String {
    let mut a = format!("/{}", alias.trim().trim_start_matches('/'));
    let last = a.rsplit('/').next().unwrap_or("");
    if !a.ends_with('/') && !last.contains('.') {
        a.push('/');
    }
    a
}

/// The language of content under `dirs` (its first folder, when that is one of the
/// site's other languages).
fn language_of(dirs: &[String], languages: &[String]) -> Option<String> {
    dirs.first().filter(|d| languages.contains(d)).cloned()
}

/// Moves a translated document (`foo.fr.md`, `_index.fr.md`, `post/index.fr.md`) into
/// its language's folder (`fr/foo`), and returns its language and the key that its
/// translations share (folders without the language, stem, section or not).
pub(crate) fn assign_language(
    doc: &mut Document,
    languages: &[String],
) -> (Option<String>, String) {
    let name = doc
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    let suffixed = name
        .strip_suffix(".md")
        .and_then(|n| n.rsplit_once('.'))
        .filter(|(_, l)| languages.iter().any(|x| x == l));
    if let Some((base, lang)) = suffixed {
        match base {
            "_index" => doc.is_section = true,
            "index" => {
                doc.stem = doc.dirs.pop().unwrap_or_default();
                doc.bundle = doc
                    .file
                    .parent()
                    .and_then(|p| p.strip_prefix("content").ok())
                    .map(Path::to_path_buf);
            }
            other => doc.stem = other.to_string(),
        }
        let key = format!(
            "{}|{}|{}",
            doc.dirs.join("/"),
            key_stem(doc),
            doc.is_section
        );
        doc.dirs.insert(0, lang.to_string());
        return (Some(lang.to_string()), key);
    }
    let lang = language_of(&doc.dirs, languages);
    let rest = if lang.is_some() {
        &doc.dirs[1..]
    } else {
        &doc.dirs[..]
    };
    let key = format!("{}|{}|{}", rest.join("/"), key_stem(doc), doc.is_section);
    (lang, key)
}

fn key_stem(doc: &Document) -> &str {
    if doc.is_section { "_index" } else { &doc.stem }
}

/// Gives every page and section whose translation key is shared the list of its
/// translations (main language first).
fn link_translations(
    main: &str,
    keys: &HashMap<String, String>,
    pages: &mut [Page],
    sections: &mut [Section],
) {
    let mut groups: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    let entries = pages
        .iter()
        .map(|p| (&p.path, &p.lang))
        .chain(sections.iter().map(|s| (&s.path, &s.lang)));
    for (path, lang) in entries {
        if let Some(key) = keys.get(path) {
            groups.entry(key.as_str()).or_default().push((
                lang.clone().unwrap_or_else(|| main.to_string()),
                path.clone(),
            ));
        }
    }
    for list in groups.values_mut() {
        list.sort_by(|a, b| ((a.0 != main), &a.0).cmp(&((b.0 != main), &b.0)));
    }
    let find = |path: &str| -> Vec<(String, String)> {
        keys.get(path)
            .and_then(|k| groups.get(k.as_str()))
            .filter(|g| g.len() > 1)
            .cloned()
            .unwrap_or_default()
    };
    for p in pages.iter_mut() {
        p.translations = find(&p.path);
    }
    for s in sections.iter_mut() {
        s.translations = find(&s.path);
    }
}

fn slug_dirs(dirs: &[String]) -> Vec<String> {
    dirs.iter().map(slug::slugify).collect()
}

fn nearest(by_dirs: &HashMap<Vec<String>, usize>, dirs: &[String]) -> usize {
    (0..=dirs.len())
        .rev()
        .find_map(|n| by_dirs.get(&dirs[..n]).copied())
        .unwrap_or(0)
}

fn sort_pages(list: &mut [usize], pages: &[Page], by: SortBy) {
    match by {
        SortBy::Date => list.sort_by(|&a, &b| {
            (pages[b].doc.date, &pages[a].path).cmp(&(pages[a].doc.date, &pages[b].path))
        }),
        SortBy::Weight => list.sort_by(|&a, &b| {
            (pages[a].doc.front.weight, &pages[a].path)
                .cmp(&(pages[b].doc.front.weight, &pages[b].path))
        }),
        SortBy::Title => list.sort_by(|&a, &b| {
            (
                pages[a].doc.front.title.as_deref().map(str::to_lowercase),
                &pages[a].path,
            )
                .cmp(&(
                    pages[b].doc.front.title.as_deref().map(str::to_lowercase),
                    &pages[b].path,
                ))
        }),
    }
}

fn sort_key(fields: &Map<String, Value>, field: &str) -> (u8, String) {
    match fields.get(field) {
        Some(Value::String(s)) => (1, s.to_lowercase()),
        Some(Value::Number(n)) => (0, format!("{:020.6}", n.as_f64().unwrap_or(0.0))),
        Some(v) => (2, v.to_string()),
        None => (3, String::new()),
    }
}
