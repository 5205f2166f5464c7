//! [`ImageCache`]: a content-addressed store of encoded images that survives between builds
//! and is shared (it is `Sync`) by every site of a multi-site build.
//!
//! Layout under the cache folder (all writes are temp file + rename, so a crash or two
//! builds at once never leave a half-written entry):
//!
//! ```text
//! v1/src/ab/<sha256 of source>.json   oriented dimensions and kind of an original
//! v1/var/cd/<key>.json                one width of one original: fallback + AVIF blobs
//! v1/ph/ef/<key>.json                 placeholder data: URI
//! v1/blobs/01/<sha256 of bytes>       encoded bytes, shared by every entry that has them
//! ```
//!
//! A variant key is the sha256 of the source hash, the width and every encoder parameter,
//! so a change of settings misses and an unchanged rebuild hits without decoding anything.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use super::ImageError;
use super::budget::EncodeBudget;

/// Version of the cache layout and of the encoding pipeline: bump it when output changes
/// for the same parameters.
pub(crate) const CACHE_VERSION: &str = "qpage-images-v2";

/// Counters of one [`ImageCache`] since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Variant widths and placeholders found in the cache.
    pub hits: u64,
    /// Variant widths and placeholders that had to be computed.
    pub misses: u64,
    /// Originals decoded.
    pub decodes: u64,
    /// AVIF encodes run.
    pub avif_encodes: u64,
    /// Fallback (JPEG / PNG) encodes run.
    pub fallback_encodes: u64,
}

impl CacheStats {
    /// All encodes, AVIF and fallback.
    pub fn encodes(&self) -> u64 {
        self.avif_encodes + self.fallback_encodes
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub decodes: AtomicU64,
    pub avif_encodes: AtomicU64,
    pub fallback_encodes: AtomicU64,
}

/// The image cache: see the module docs for its layout.
#[derive(Debug)]
pub struct ImageCache {
    root: PathBuf,
    budget: EncodeBudget,
    pub(crate) counters: Counters,
    inflight: Mutex<HashMap<[u8; 32], Arc<Mutex<()>>>>,
    tmp_seq: AtomicU64,
}

impl ImageCache {
    /// Opens (creating it if needed) the cache in `dir`, with the default encode budget
    /// ([`EncodeBudget::default_for_machine`]).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ImageError> {
        ImageCache::open_with_budget(dir, EncodeBudget::default_for_machine())
    }

    /// Opens the cache in `dir`, bounding concurrent AVIF encodes by `budget`.
    pub fn open_with_budget(
        dir: impl Into<PathBuf>,
        budget: EncodeBudget,
    ) -> Result<Self, ImageError> {
        let root = dir.into();
        let base = root.join("v1");
        fs::create_dir_all(&base).map_err(|source| ImageError::Cache {
            path: base.clone(),
            source,
        })?;
        Ok(ImageCache {
            root,
            budget,
            counters: Counters::default(),
            inflight: Mutex::new(HashMap::new()),
            tmp_seq: AtomicU64::new(0),
        })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The encode budget shared by everything using this cache.
    pub fn budget(&self) -> &EncodeBudget {
        &self.budget
    }

    /// Counters since the cache was opened.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            decodes: c.decodes.load(Ordering::Relaxed),
            avif_encodes: c.avif_encodes.load(Ordering::Relaxed),
            fallback_encodes: c.fallback_encodes.load(Ordering::Relaxed),
        }
    }

    /// A lock per source hash, so that two sites (or pages) processing the same original at
    /// once encode it once: the second waits and then hits.
    pub(crate) fn source_lock(&self, source: &[u8; 32]) -> Arc<Mutex<()>> {
        let mut map = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(*source).or_default().clone()
    }

    fn entry_path(&self, kind: &str, key: &str, ext: &str) -> PathBuf {
        self.root
            .join("v1")
            .join(kind)
            .join(&key[..2])
            .join(format!("{key}{ext}"))
    }

    /// Path of the blob with this sha256 (hex).
    pub(crate) fn blob_path(&self, sha256_hex: &str) -> PathBuf {
        self.entry_path("blobs", sha256_hex, "")
    }

    /// Reads a JSON entry; a missing or unreadable entry is a miss (the caller recomputes
    /// and overwrites it).
    pub(crate) fn get<T: DeserializeOwned>(&self, kind: &str, key: &str) -> Option<T> {
        let bytes = fs::read(self.entry_path(kind, key, ".json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes a JSON entry atomically.
    pub(crate) fn put<T: Serialize>(
        &self,
        kind: &str,
        key: &str,
        value: &T,
    ) -> Result<(), ImageError> {
        let json = serde_json::to_vec(value).expect("cache entries serialize");
        self.write_atomic(&self.entry_path(kind, key, ".json"), &json)
    }

    /// Stores bytes under their sha256 and returns the hex hash.
    pub(crate) fn put_blob(&self, bytes: &[u8]) -> Result<String, ImageError> {
        let hash = hex::encode(Sha256::digest(bytes));
        let path = self.blob_path(&hash);
        let fresh = fs::metadata(&path).map(|m| m.len() == bytes.len() as u64);
        if !matches!(fresh, Ok(true)) {
            self.write_atomic(&path, bytes)?;
        }
        Ok(hash)
    }

    /// Whether a blob is present with the expected size.
    pub(crate) fn has_blob(&self, sha256_hex: &str, size: u64) -> bool {
        sha256_hex.len() == 64
            && fs::metadata(self.blob_path(sha256_hex)).is_ok_and(|m| m.len() == size)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
        let err = |source: io::Error| ImageError::Cache {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().expect("cache paths have a parent");
        fs::create_dir_all(dir).map_err(err)?;
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".tmp-{}-{seq}", std::process::id()));
        let result = (|| {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_data().ok();
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(err)
    }
}

/// sha256 of the parts, each length-prefixed so that no two different lists collide.
pub(crate) fn key_of(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(CACHE_VERSION.as_bytes());
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}
