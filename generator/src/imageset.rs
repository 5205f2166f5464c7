//! A site's images during a build: which output files are raster originals, processing
//! them through the shared [`ImageCache`] (in parallel, while the pages render), and the
//! files they become in `dist/`.
//!
//! Every original (from `static/`, the theme or a page bundle) becomes its responsive
//! variants under `/img/`. A JPEG or PNG original is still published at its own path, as
//! the widest metadata-free fallback, so URLs in feeds, JSON-LD and CSS keep working
//! without leaking EXIF (GPS) data. WebP and GIF originals are only published as their
//! variants. A broken original is a warning naming it and the pages that show it; its
//! file is published as it is (it carries no decodable metadata) and the pages keep
//! their plain `<img>`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::Diagnostic;
use crate::images::{Format, ImageCache, ImageError, ImageSettings, Processed};
use crate::output::OutFile;

/// Where the variants are published.
pub const VARIANT_PREFIX: &str = "/img/";

/// Whether an output path names a raster image the pipeline takes.
pub fn is_raster(path: &str) -> bool {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "webp" | "gif")
}

/// The processed images of one site, by site path (`/blog/post/photo.jpg`).
#[derive(Debug, Default)]
pub struct SiteImages {
    processed: HashMap<String, Processed>,
    failed: HashMap<String, ImageError>,
}

impl SiteImages {
    /// Processes every raster file among `files` (output path, file) in parallel.
    pub fn process(
        cache: &ImageCache,
        settings: &ImageSettings,
        files: &[(String, OutFile)],
    ) -> SiteImages {
        let results: Vec<(String, Result<Processed, ImageError>)> = files
            .par_iter()
            .filter(|(path, _)| is_raster(path))
            .map(|(path, file)| {
                let result = crate::images::process(cache, settings, &file.origin, &file.bytes);
                (format!("/{path}"), result)
            })
            .collect();
        let mut out = SiteImages::default();
        for (path, result) in results {
            match result {
                Ok(p) => {
                    out.processed.insert(path, p);
                }
                Err(e) => {
                    out.failed.insert(path, e);
                }
            }
        }
        out
    }

    /// Processes the original at output path `path` again (`file` is its new content),
    /// or forgets it (`None`): what `qpage dev` does when one image changes.
    pub fn replace(
        &mut self,
        cache: &ImageCache,
        settings: &ImageSettings,
        path: &str,
        file: Option<&OutFile>,
    ) {
        let key = format!("/{path}");
        self.processed.remove(&key);
        self.failed.remove(&key);
        if let Some(file) = file.filter(|_| is_raster(path)) {
            match crate::images::process(cache, settings, &file.origin, &file.bytes) {
                Ok(p) => {
                    self.processed.insert(key, p);
                }
                Err(e) => {
                    self.failed.insert(key, e);
                }
            }
        }
    }

    /// The processed image at a site path.
    pub fn get(&self, site_path: &str) -> Option<&Processed> {
        self.processed.get(site_path)
    }

    /// Whether the original at a site path could not be processed.
    pub fn failed(&self, site_path: &str) -> bool {
        self.failed.contains_key(site_path)
    }

    /// Where the full-size image of the original at `site_path` is published (its own
    /// path for JPEG/PNG, else the widest fallback variant), with its width and height.
    pub fn published(&self, site_path: &str) -> Option<(String, u32, u32)> {
        let p = self.processed.get(site_path)?;
        let f = p.fallback();
        let url = if same_format(site_path, f.format) {
            site_path.to_string()
        } else {
            format!("{VARIANT_PREFIX}{}", f.file_name)
        };
        Some((url, f.width, f.height))
    }

    /// Number of images processed.
    pub fn len(&self) -> usize {
        self.processed.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.processed.is_empty()
    }

    /// One warning per broken original, naming the pages that show it (`shown_on`: site
    /// path of an image -> origins of the pages referencing it).
    pub fn warnings(&self, shown_on: &HashMap<String, Vec<PathBuf>>) -> Vec<Diagnostic> {
        let mut failed: Vec<(&String, &ImageError)> = self.failed.iter().collect();
        failed.sort_by(|a, b| a.0.cmp(b.0));
        failed
            .into_iter()
            .map(|(site_path, e)| {
                let mut d = e.to_diagnostic(None);
                if let Some(pages) = shown_on.get(site_path) {
                    let names: Vec<String> =
                        pages.iter().map(|p| p.display().to_string()).collect();
                    d.message = format!("{} (shown on {})", d.message, names.join(", "));
                }
                d
            })
            .collect()
    }

    /// The output files replacing `files`' raster originals: every variant under
    /// [`VARIANT_PREFIX`], and at each JPEG/PNG original's own path its widest
    /// metadata-free fallback. Files that are not processed images pass through unchanged.
    pub fn output_files(
        &self,
        files: Vec<(String, OutFile)>,
    ) -> Result<Vec<(String, OutFile)>, Diagnostic> {
        let mut out = Vec::with_capacity(files.len());
        let mut variants: Vec<(String, OutFile)> = Vec::new();
        for (path, file) in files {
            let Some(p) = self.processed.get(&format!("/{path}")) else {
                out.push((path, file));
                continue;
            };
            for v in &p.variants {
                let bytes = v.read().map_err(|e| Diagnostic::io(&v.path, &e))?;
                variants.push((
                    format!("{}{}", VARIANT_PREFIX.trim_start_matches('/'), v.file_name),
                    OutFile {
                        bytes: Arc::from(bytes),
                        origin: file.origin.clone(),
                    },
                ));
            }
            let fallback = p.fallback();
            if same_format(&path, fallback.format) {
                let bytes = fallback
                    .read()
                    .map_err(|e| Diagnostic::io(&fallback.path, &e))?;
                out.push((
                    path,
                    OutFile {
                        bytes: Arc::from(bytes),
                        origin: file.origin,
                    },
                ));
            }
        }
        // Two originals with the same pixels share variants: publish each file once.
        variants.sort_by(|a, b| a.0.cmp(&b.0));
        variants.dedup_by(|a, b| a.0 == b.0);
        out.extend(variants);
        Ok(out)
    }
}

fn same_format(path: &str, format: Format) -> bool {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(
        (ext.as_str(), format),
        ("jpg" | "jpeg", Format::Jpeg) | ("png", Format::Png)
    )
}

/// Resolves an `src` as written on the page at `page_dir` (its URL folder, ending in `/`)
/// to a site path: absolute paths as they are, relative ones against the page, URLs of
/// this site (`base_url` prefix) to their path; anything else (other hosts, `data:`) is
/// `None`. Query and fragment are dropped; `.` and `..` segments are resolved.
pub fn resolve_src(src: &str, page_dir: &str, base_url: &str) -> Option<String> {
    let src = src.trim();
    let src = src.split(['?', '#']).next().unwrap_or(src);
    let base = base_url.trim_end_matches('/');
    let joined = if let Some(rest) = src.strip_prefix(base).filter(|_| !base.is_empty()) {
        if !rest.starts_with('/') {
            return None;
        }
        rest.to_string()
    } else if src.starts_with('/') {
        if src.starts_with("//") {
            return None;
        }
        src.to_string()
    } else if src.contains(':') || src.is_empty() {
        return None;
    } else {
        format!("{page_dir}{src}")
    };
    let decoded = percent_decode(&joined);
    let mut parts: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Decodes `%XX` escapes (invalid UTF-8 is replaced).
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_sources() {
        let base = "https://a.test";
        assert_eq!(
            resolve_src("photo.jpg", "/blog/post/", base).as_deref(),
            Some("/blog/post/photo.jpg")
        );
        assert_eq!(
            resolve_src("../x/p%20q.png?v=1", "/blog/post/", base).as_deref(),
            Some("/blog/x/p q.png")
        );
        assert_eq!(
            resolve_src("/images/a.jpg", "/", base).as_deref(),
            Some("/images/a.jpg")
        );
        assert_eq!(
            resolve_src("https://a.test/images/a.jpg", "/", base).as_deref(),
            Some("/images/a.jpg")
        );
        assert_eq!(resolve_src("https://b.test/a.jpg", "/", base), None);
        assert_eq!(resolve_src("//cdn.test/a.jpg", "/", base), None);
        assert_eq!(resolve_src("data:image/png;base64,AA", "/", base), None);
        assert_eq!(
            resolve_src("/../../etc/passwd.jpg", "/", base).as_deref(),
            Some("/etc/passwd.jpg")
        );
    }

    #[test]
    fn raster_extensions() {
        assert!(is_raster("a/b.JPG"));
        assert!(is_raster("x.webp"));
        assert!(!is_raster("logo.svg"));
        assert!(!is_raster("style.css"));
    }
}
