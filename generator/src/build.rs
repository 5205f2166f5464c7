//! One site's build, phase by phase: config, theme, data, content, model, render, emit.
//! Errors from every phase that can still run are gathered before giving up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use crate::config::SiteConfig;
use crate::error::{BuildError, Diagnostic};
use crate::finish;
use crate::images::{ImageCache, ImageSettings};
use crate::imageset::SiteImages;
use crate::output::{self, OutFile, OutFiles};
use crate::render::{self, RenderOptions};
use crate::site::{Filter, Site};
use crate::templates::{self, Templates, Theme};

/// What to build and how.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The site folder (holding `site.toml`).
    pub site_dir: PathBuf,
    /// Where to write; default `SITE/dist`.
    pub output: Option<PathBuf>,
    /// Include drafts.
    pub drafts: bool,
    /// Include pages dated in the future.
    pub future: bool,
    /// Build for `qpage dev`.
    pub dev: bool,
    /// The date that counts as today (default: the system's).
    pub today: Option<NaiveDate>,
    /// The image cache to use (shared by the sites of a multi-site build); default
    /// `SITE/.qpage-cache/images`.
    pub image_cache: Option<Arc<ImageCache>>,
}

/// Where a site keeps its image cache unless told otherwise.
pub const IMAGE_CACHE_DIR: &str = ".qpage-cache/images";

/// What a successful build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Where the site was written.
    pub output: PathBuf,
    /// Content pages.
    pub pages: usize,
    /// Sections.
    pub sections: usize,
    /// Pages generated from data records.
    pub records: usize,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Time per phase.
    pub timings: Vec<(&'static str, Duration)>,
    /// Problems that did not stop the build.
    pub warnings: Vec<Diagnostic>,
    /// Dangerous pieces of raw HTML removed from content.
    pub sanitized: usize,
    /// Images processed, and how many of their variants had to be encoded (the rest
    /// came from the cache).
    pub images: usize,
    /// Image variants encoded by this build.
    pub image_encodes: u64,
}

impl BuildReport {
    /// Total build time.
    pub fn total(&self) -> Duration {
        self.timings.iter().map(|(_, d)| *d).sum()
    }
}

type ParsedTheme = Result<Arc<(Theme, Templates)>, Vec<Diagnostic>>;

/// Parsed themes, shared by the sites of a multi-site build: each theme is read and its
/// templates parsed once.
#[derive(Default)]
pub struct ThemeCache {
    embedded: std::sync::OnceLock<Result<(Theme, Templates), Vec<Diagnostic>>>,
    folders: std::sync::Mutex<std::collections::HashMap<PathBuf, ParsedTheme>>,
}

impl ThemeCache {
    fn folder(&self, dir: &Path, shown_as: &Path) -> ParsedTheme {
        let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let mut folders = self
            .folders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        folders
            .entry(key)
            .or_insert_with(|| {
                let theme = Theme::from_dir(dir, shown_as).map_err(|d| vec![d])?;
                let templates = Templates::new(&theme, &[])?;
                Ok(Arc::new((theme, templates)))
            })
            .clone()
    }

    fn embedded(&self) -> Result<&(Theme, Templates), Vec<Diagnostic>> {
        self.embedded
            .get_or_init(|| {
                let theme = Theme::embedded();
                let templates = Templates::new(&theme, &[])?;
                Ok((theme, templates))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Builds one site.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, BuildError> {
    build_with(opts, &ThemeCache::default())
}

/// Builds one site, reusing parsed themes from `cache`.
pub fn build_with(opts: &BuildOptions, cache: &ThemeCache) -> Result<BuildReport, BuildError> {
    let site_dir = &opts.site_dir;
    let mut timings = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &'static str, timings: &mut Vec<(&'static str, Duration)>| {
        timings.push((name, clock.elapsed()));
        clock = Instant::now();
    };
    let config = SiteConfig::load(site_dir).map_err(BuildError::one)?;

    let (theme, templates) = load_templates(site_dir, &config, cache)?;
    lap("templates", &mut timings);

    let md = crate::content::MdOptions {
        highlight: config.highlight_code,
        sanitize: !config.unsafe_html,
    };
    let (data, loaded) = load_sources(site_dir, md, &templates)?;
    lap("load", &mut timings);

    let filter = filter_of(opts);
    let site = Site::build(config, loaded, data, filter).map_err(BuildError::new)?;
    lap("model", &mut timings);

    let image_settings = ImageSettings::from_config(&site.config.images)
        .map_err(|e| BuildError::one(e.to_diagnostic(Some(Path::new("site.toml")))))?;
    let image_cache = match &opts.image_cache {
        Some(c) => Arc::clone(c),
        None => Arc::new(
            ImageCache::open(site_dir.join(IMAGE_CACHE_DIR))
                .map_err(|e| BuildError::one(e.to_diagnostic(None)))?,
        ),
    };
    let encodes_before = image_cache.stats().encodes();

    let statics = collect_statics(site_dir, &theme, &site)?;

    // Pages render while the images are processed.
    let (rendered, images) = rayon::join(
        || render::render_site(&site, &templates, RenderOptions { dev: opts.dev }),
        || SiteImages::process(&image_cache, &image_settings, &statics),
    );
    let mut rendered = rendered.map_err(BuildError::new)?;
    lap("render", &mut timings);

    let published: std::collections::HashSet<String> =
        statics.iter().map(|(p, _)| format!("/{p}")).collect();
    let statics = images.output_files(statics).map_err(BuildError::one)?;
    let statics = if opts.dev {
        // `qpage dev` keeps asset names, so a stylesheet edit changes no page.
        finish::Statics {
            files: statics,
            renamed: Default::default(),
        }
    } else {
        finish::fingerprint(statics)
    };
    let finished = finish::rewrite_pages(
        &site.config,
        &statics.renamed,
        Some((&images, &published)),
        rendered.pages,
    )
    .map_err(BuildError::new)?;
    rendered
        .warnings
        .extend(finish::image_warnings(&site.config, &images, &finished));
    lap("rewrite", &mut timings);

    let indexes: Vec<(String, Vec<u8>)> = finish::sitemap_files(&site.config, &finished)
        .into_iter()
        .chain(finish::feed_files(&site))
        .collect();
    let pages = finished.into_iter().map(|f| f.page).collect();
    let files = assemble(&site, statics.files, pages, indexes)?;
    let dest = opts.output.clone().unwrap_or_else(|| site_dir.join("dist"));
    let manifest = output::write(&dest, &files).map_err(BuildError::new)?;
    lap("write", &mut timings);

    Ok(BuildReport {
        output: dest,
        pages: site.pages.len(),
        sections: site.sections.len(),
        records: site.records.len(),
        files: manifest.files.len(),
        bytes: manifest.files.values().map(|e| e.size).sum(),
        timings,
        warnings: rendered.warnings,
        sanitized: site.pages.iter().map(|p| p.doc.sanitized).sum::<usize>()
            + site
                .sections
                .iter()
                .filter_map(|s| s.doc.as_ref())
                .map(|d| d.sanitized)
                .sum::<usize>(),
        images: images.len(),
        image_encodes: image_cache.stats().encodes() - encodes_before,
    })
}

/// The theme (embedded or a folder, parsed once per [`ThemeCache`]) and the site's
/// templates laid over it.
/// The site's data collections and content, loaded in parallel; the errors of both are
/// reported together.
pub(crate) fn load_sources(
    site_dir: &Path,
    md: crate::content::MdOptions,
    templates: &Templates,
) -> Result<(crate::data::Collections, crate::content::Loaded), BuildError> {
    let (data, loaded) = rayon::join(
        || crate::data::load(site_dir),
        || crate::content::load(site_dir, md, templates),
    );
    let mut errors = Vec::new();
    let data = data.unwrap_or_else(|mut e| {
        errors.append(&mut e);
        Default::default()
    });
    let loaded = loaded.unwrap_or_else(|mut e| {
        errors.append(&mut e);
        Default::default()
    });
    if !errors.is_empty() {
        return Err(BuildError::new(errors));
    }
    Ok((data, loaded))
}

pub(crate) fn load_templates(
    site_dir: &Path,
    config: &SiteConfig,
    cache: &ThemeCache,
) -> Result<(Theme, Templates), BuildError> {
    let overrides = templates::read_tree(&site_dir.join("templates"), Path::new("templates"))
        .map_err(BuildError::one)?;
    if config.theme == templates::DEFAULT_THEME_NAME
        && !site_dir.join("themes").join(&config.theme).is_dir()
    {
        let (theme, base) = cache.embedded().map_err(BuildError::new)?;
        let templates = if overrides.is_empty() {
            base.clone()
        } else {
            Templates::new(theme, &overrides).map_err(BuildError::new)?
        };
        Ok((theme.clone(), templates))
    } else {
        let rel = Path::new("themes").join(&config.theme);
        let parsed = cache
            .folder(&site_dir.join(&rel), &rel)
            .map_err(BuildError::new)?;
        let (theme, base) = &*parsed;
        let templates = if overrides.is_empty() {
            base.clone()
        } else {
            Templates::new(theme, &overrides).map_err(BuildError::new)?
        };
        Ok((theme.clone(), templates))
    }
}

/// Which pages the options keep.
pub(crate) fn filter_of(opts: &BuildOptions) -> Filter {
    Filter {
        drafts: opts.drafts,
        future: opts.future,
        today: Some(
            opts.today
                .unwrap_or_else(|| chrono::Local::now().date_naive()),
        ),
    }
}

/// Static files (the theme's, then the site's, which win) and content assets, by
/// output path.
pub(crate) fn collect_statics(
    site_dir: &Path,
    theme: &Theme,
    site: &Site,
) -> Result<Vec<(String, OutFile)>, BuildError> {
    let mut statics: std::collections::BTreeMap<String, OutFile> =
        std::collections::BTreeMap::new();
    for f in theme.statics.iter().cloned().chain(
        templates::read_tree(&site_dir.join("static"), Path::new("static"))
            .map_err(BuildError::one)?,
    ) {
        statics.insert(
            f.rel,
            OutFile {
                bytes: f.bytes,
                origin: f.origin,
            },
        );
    }
    for rel in &site.assets {
        let origin = Path::new("content").join(rel);
        let bytes = std::fs::read(site_dir.join(&origin))
            .map_err(|e| BuildError::one(Diagnostic::io(&origin, &e)))?;
        let out = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if let Some(other) = statics.get(&out) {
            return Err(BuildError::one(
                Diagnostic::file(
                    &origin,
                    format!("publishes /{out}, as {} does", other.origin.display()),
                )
                .help("rename one of the two files"),
            ));
        }
        statics.insert(
            out,
            OutFile {
                bytes: Arc::from(bytes),
                origin,
            },
        );
    }
    Ok(statics.into_iter().collect())
}

/// Every output file: static files and content assets, pages, then sitemaps, feeds and
/// robots.txt. Two sources of one path are an error.
pub(crate) fn assemble(
    site: &Site,
    statics: Vec<(String, OutFile)>,
    pages: Vec<crate::render::Rendered>,
    indexes: Vec<(String, Vec<u8>)>,
) -> Result<OutFiles, BuildError> {
    let mut files = OutFiles::new();
    let mut errors = Vec::new();
    for (path, file) in statics {
        output::add(&mut files, path, file, false, &mut errors);
    }
    for page in pages {
        output::add(
            &mut files,
            page.out,
            OutFile {
                bytes: Arc::from(page.bytes),
                origin: page.origin,
            },
            false,
            &mut errors,
        );
    }
    for (path, bytes) in indexes {
        output::add(
            &mut files,
            path,
            finish::generated(bytes, "index"),
            false,
            &mut errors,
        );
    }
    if !files.contains_key("robots.txt") {
        files.insert(
            "robots.txt".into(),
            finish::generated(crate::sitemap::robots(&site.config), "robots.txt"),
        );
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(BuildError::new(errors))
    }
}
