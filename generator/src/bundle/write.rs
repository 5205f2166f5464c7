//! Writing a composed site without ever leaving half of one behind.
//!
//! A new site is written into a temporary folder beside the target and renamed into
//! place. With `force`, the new `site.toml`, `content/` and `data/` are written into a
//! temporary folder inside the site, the old ones moved aside and the new ones moved in
//! (renames on one file system); if any rename fails, the moves are undone.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{BundleError, ComposedFile};

/// What `force` replaces; everything else in the site folder is kept.
const REPLACED: [&str; 3] = ["site.toml", "content", "data"];

/// Writes `files` as the site at `site_dir`. Returns whether an existing site's content
/// was replaced.
pub fn write_site(
    site_dir: &Path,
    files: &[ComposedFile],
    force: bool,
) -> Result<bool, BundleError> {
    let io = |path: &Path, e: std::io::Error| BundleError::io(path, e);
    let existing = match fs::symlink_metadata(site_dir) {
        Ok(m) if m.is_dir() => Some(
            fs::read_dir(site_dir)
                .map_err(|e| io(site_dir, e))?
                .next()
                .is_some(),
        ),
        Ok(_) => {
            return Err(BundleError::io(
                site_dir,
                "exists and is not a folder; choose a folder for the site",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(site_dir, e)),
    };
    match existing {
        // Missing or empty: write beside it, then rename.
        None | Some(false) => {
            let parent = match site_dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
            let stage = tempfile::Builder::new()
                .prefix(".qpage-ingest-")
                .tempdir_in(&parent)
                .map_err(|e| io(&parent, e))?;
            write_tree(stage.path(), files)?;
            if existing == Some(false) {
                fs::remove_dir(site_dir).map_err(|e| io(site_dir, e))?;
            }
            fs::rename(stage.path(), site_dir).map_err(|e| io(site_dir, e))?;
            // The folder now lives at site_dir: keep TempDir from deleting it.
            let _ = stage.keep();
            Ok(false)
        }
        Some(true) if !force => Err(BundleError::NotEmpty {
            site_dir: site_dir.to_path_buf(),
        }),
        Some(true) => {
            let stage = tempfile::Builder::new()
                .prefix(".qpage-ingest-")
                .tempdir_in(site_dir)
                .map_err(|e| io(site_dir, e))?;
            let new = stage.path().join("new");
            let old = stage.path().join("old");
            write_tree(&new, files)?;
            fs::create_dir_all(&old).map_err(|e| io(&old, e))?;
            swap_in(site_dir, &new, &old)?;
            // Dropping the stage deletes the old content.
            Ok(true)
        }
    }
}

/// Moves the old `REPLACED` entries of `site_dir` into `old` and the new ones from
/// `new` into `site_dir`, undoing every move if one fails.
fn swap_in(site_dir: &Path, new: &Path, old: &Path) -> Result<(), BundleError> {
    let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut result = Ok(());
    for name in REPLACED {
        let live = site_dir.join(name);
        if live.symlink_metadata().is_ok() {
            let aside = old.join(name);
            if let Err(e) = fs::rename(&live, &aside) {
                result = Err(BundleError::io(&live, e));
                break;
            }
            done.push((live.clone(), aside));
        }
        let fresh = new.join(name);
        if fresh.exists() {
            if let Err(e) = fs::rename(&fresh, &live) {
                result = Err(BundleError::io(&live, e));
                break;
            }
            done.push((fresh, live));
        }
    }
    if result.is_err() {
        for (from, to) in done.into_iter().rev() {
            let _ = fs::rename(&to, &from);
        }
    }
    result
}

fn write_tree(root: &Path, files: &[ComposedFile]) -> Result<(), BundleError> {
    for (f, bytes) in files {
        let path = root.join(&f.path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| BundleError::io(dir, e))?;
        }
        let mut file = fs::File::create(&path).map_err(|e| BundleError::io(&path, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| BundleError::io(&path, e))?;
    }
    Ok(())
}
