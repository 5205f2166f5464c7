//! The in-memory blob cache: moka, bounded by the bytes it holds, keyed by blob hash and
//! variant, so a file shared by thousands of sites is held once. Counts hits and misses.

use std::sync::Arc;

use bytes::Bytes;

use crate::metrics::Metrics;
use crate::store::{Store, Variant};

/// A cache key: a blob hash and a variant. Hashing reads 16 hex digits of the
/// (uniformly distributed) sha256 instead of all 64; equality compares the whole key.
#[derive(Clone, PartialEq, Eq)]
struct Key(Arc<str>, Variant);

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let b = self.0.as_bytes();
        state.write(&b[..b.len().min(16)]);
        self.1.hash(state);
    }
}

/// Blob bodies by (hash, variant).
pub(crate) struct BlobCache {
    cache: moka::sync::Cache<Key, Bytes>,
    max_object: u64,
    store: Store,
}

impl BlobCache {
    pub(crate) fn new(store: Store, max_bytes: u64, max_object: u64) -> BlobCache {
        let cache = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &Key, v: &Bytes| u32::try_from(v.len() + 128).unwrap_or(u32::MAX))
            .build();
        BlobCache {
            cache,
            max_object,
            store,
        }
    }

    /// The body of a blob variant if it is in memory (counted as a hit).
    pub(crate) fn get_cached(
        &self,
        hash: &Arc<str>,
        variant: Variant,
        metrics: &Metrics,
    ) -> Option<Bytes> {
        let b = self.cache.get(&Key(hash.clone(), variant))?;
        metrics.cache_hit();
        Some(b)
    }

    /// The body of a blob variant, from memory or from disk.
    pub(crate) async fn get(
        &self,
        hash: &Arc<str>,
        variant: Variant,
        metrics: &Metrics,
    ) -> std::io::Result<Bytes> {
        let key = Key(hash.clone(), variant);
        if let Some(b) = self.cache.get(&key) {
            metrics.cache_hit();
            return Ok(b);
        }
        metrics.cache_miss();
        let path = self.store.blob_path(hash, variant);
        // Large bodies keep their file open so they can be sent with sendfile.
        let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
            use std::io::Read;
            let mut file = std::fs::File::open(path)?;
            let mut data = Vec::new();
            file.read_to_end(&mut data)?;
            Ok(crate::zerocopy::body(data, file))
        })
        .await
        .map_err(std::io::Error::other)??;
        if (bytes.len() as u64) <= self.max_object {
            self.cache.insert(key, bytes.clone());
        }
        Ok(bytes)
    }

    /// Drops every variant of a blob from memory (publish API purge); returns how
    /// many entries were held.
    pub(crate) fn invalidate_blob(&self, hash: &str) -> u64 {
        let key: Arc<str> = Arc::from(hash);
        let mut n = 0;
        for v in [Variant::Identity, Variant::Br, Variant::Gzip] {
            if self.cache.remove(&Key(key.clone(), v)).is_some() {
                n += 1;
            }
        }
        n
    }

    /// Bodies larger than this are not cached (they are streamed from disk).
    pub(crate) fn max_object(&self) -> u64 {
        self.max_object
    }

    /// Bytes currently held (approximate, as moka counts).
    pub(crate) fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }

    /// Entries currently held.
    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}
