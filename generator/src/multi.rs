//! Many sites in one process (`qpage build --sites DIR`): one rayon pool, one parse of
//! each theme, every site built even when others fail.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::build::{BuildOptions, BuildReport, IMAGE_CACHE_DIR, ThemeCache, build_with};
use crate::config::CONFIG_FILE;
use crate::error::{BuildError, Diagnostic};
use crate::images::ImageCache;

/// The result of one site in a multi-site build.
#[derive(Debug)]
pub struct SiteOutcome {
    /// The site folder.
    pub site_dir: PathBuf,
    /// Its report or its errors.
    pub result: Result<BuildReport, BuildError>,
}

/// The site folders directly under `dir` (those with a `site.toml`), sorted.
pub fn find_sites(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(dir).map_err(|e| Diagnostic::io(dir, &e))?;
    let mut sites: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(CONFIG_FILE).is_file())
        .collect();
    sites.sort();
    Ok(sites)
}

/// Builds every site under `dir` (output in each `SITE/dist`), calling `on_done` as each
/// finishes. `template` supplies drafts/future/dev settings.
pub fn build_sites(
    dir: &Path,
    template: &BuildOptions,
    on_done: &(dyn Fn(&SiteOutcome) + Sync),
) -> Result<Vec<SiteOutcome>, Diagnostic> {
    let sites = find_sites(dir)?;
    if sites.is_empty() {
        return Err(
            Diagnostic::file(dir, "no site folders (folders holding a site.toml) here")
                .help("--sites takes a folder whose subfolders are sites"),
        );
    }
    let cache = ThemeCache::default();
    // One image cache for every site: a photo used by many sites is encoded once.
    let image_cache = match &template.image_cache {
        Some(c) => std::sync::Arc::clone(c),
        None => std::sync::Arc::new(
            ImageCache::open(dir.join(IMAGE_CACHE_DIR)).map_err(|e| e.to_diagnostic(None))?,
        ),
    };
    Ok(sites
        .into_par_iter()
        .map(|site_dir| {
            let opts = BuildOptions {
                site_dir: site_dir.clone(),
                output: None,
                image_cache: Some(std::sync::Arc::clone(&image_cache)),
                ..template.clone()
            };
            let outcome = SiteOutcome {
                result: build_with(&opts, &cache),
                site_dir,
            };
            on_done(&outcome);
            outcome
        })
        .collect())
}
