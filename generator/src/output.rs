//! Output: assembles rendered pages and copied files, refuses two files at one path,
//! writes everything into a temporary folder beside the destination, adds
//! `.qpage/manifest.json` (path -> sha256, size, content type), and swaps it into place,
//! so a failed build never leaves a half-written `dist/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Diagnostic;

/// A file to emit.
#[derive(Debug)]
pub struct OutFile {
    /// Bytes.
    pub bytes: std::sync::Arc<[u8]>,
    /// What produced it.
    pub origin: PathBuf,
}

/// Output files by path (relative, `/`-separated).
pub type OutFiles = BTreeMap<String, OutFile>;

/// Adds a file, reporting a collision with an earlier one. `replace` lets a later
/// source (a site's static file) win over an earlier one (the theme's).
pub fn add(
    files: &mut OutFiles,
    path: String,
    file: OutFile,
    replace: bool,
    errors: &mut Vec<Diagnostic>,
) {
    if let Some(existing) = files.get(&path)
        && !replace
    {
        errors.push(
            Diagnostic::file(
                &file.origin,
                format!(
                    "output file /{path} is also produced by {}",
                    existing.origin.display()
                ),
            )
            .help("rename one of them; two sources cannot write the same URL"),
        );
        return;
    }
    files.insert(path, file);
}

/// One manifest entry.
#[derive(Debug, Serialize)]
pub struct ManifestEntry {
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type with charset for text.
    pub content_type: String,
}

/// `dist/.qpage/manifest.json`.
#[derive(Debug, Serialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Entries by site path (`/index.html`).
    pub files: BTreeMap<String, ManifestEntry>,
}

/// Content type of a file name, with `charset=utf-8` for text.
pub fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    let texty = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "image/svg+xml"
                | "application/manifest+json"
                | "application/rss+xml"
                | "application/atom+xml"
        );
    if texty {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

/// Writes `files` to `dest` atomically (temp folder + rename). Returns the manifest.
pub fn write(dest: &Path, files: &OutFiles) -> Result<Manifest, Vec<Diagnostic>> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| vec![Diagnostic::io(parent, &e)])?;
    let name = dest
        .file_name()
        .map_or("dist".into(), |n| n.to_string_lossy().into_owned());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let result = write_tree(&tmp, files);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dest.exists() {
        std::fs::rename(dest, &old).map_err(|e| vec![Diagnostic::io(dest, &e)])?;
    }
    if let Err(e) = std::fs::rename(&tmp, dest) {
        let _ = std::fs::rename(&old, dest);
        return Err(vec![Diagnostic::io(dest, &e)]);
    }
    if old.exists() {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(manifest)
}

fn write_tree(root: &Path, files: &OutFiles) -> Result<Manifest, Vec<Diagnostic>> {
    let mut dirs: Vec<PathBuf> = files
        .keys()
        .filter_map(|p| Path::new(p).parent().map(|d| root.join(d)))
        .collect();
    dirs.push(root.join(".qpage"));
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| vec![Diagnostic::io(d, &e)])?;
    }
    let entries: Vec<Result<(String, ManifestEntry), Diagnostic>> = files
        .par_iter()
        .map(|(path, f)| {
            let full = root.join(path);
            std::fs::write(&full, &f.bytes).map_err(|e| Diagnostic::io(&full, &e))?;
            Ok((
                format!("/{path}"),
                ManifestEntry {
                    sha256: hex::encode(Sha256::digest(&f.bytes)),
                    size: f.bytes.len() as u64,
                    content_type: content_type(path),
                },
            ))
        })
        .collect();
    let mut manifest = Manifest {
        version: 1,
        files: BTreeMap::new(),
    };
    let mut errors = Vec::new();
    for e in entries {
        match e {
            Ok((k, v)) => {
                manifest.files.insert(k, v);
            }
            Err(d) => errors.push(d),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| vec![Diagnostic::file(root, e.to_string())])?;
    let mpath = root.join(".qpage/manifest.json");
    std::fs::write(&mpath, json).map_err(|e| vec![Diagnostic::io(&mpath, &e)])?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type("a/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.png"), "image/png");
        assert_eq!(content_type("x.svg"), "image/svg+xml; charset=utf-8");
    }
}
