//! The store side of the publish API: strict manifest validation, pending deploys
//! (upload sessions persisted under `sites/<site>/pending/`), verified blob uploads
//! through `data/tmp/`, finalize (which shares [`Store::commit_deploy`] with
//! [`Store::import_dir`]), scheduled activation, keeping the last N deploys, garbage
//! collection of unreferenced blobs, per-site tokens, and crash recovery.
//!
//! ```text
//! data/tmp/                              upload temp files (emptied on server start)
//! data/sites/<site>/pending/<id>.json    manifest of a deploy still being uploaded
//! data/sites/<site>/scheduled.json       activations due at a given time
//! data/sites/<site>/tokens.json          sha256 of the site's API tokens
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EdgeError, Result};
use crate::rules::{Headers, Redirects};
use crate::store::{
    self, Deploy, DeployId, FileEntry, Store, Variant, check_site_name, guess_content_type, hex,
    is_hash, read_deploy_file, write_atomic,
};

/// Blobs held by a committed deploy (the site's live one), by hash: their content type
/// and the sizes of their Brotli and gzip variants. Such a blob cannot be collected
/// while that deploy exists, so begin and finalize trust this instead of asking the
/// filesystem about each of a large site's files again.
#[derive(Debug, Default)]
pub struct KnownBlobs(HashMap<std::sync::Arc<str>, (String, Option<u64>, Option<u64>)>);

impl KnownBlobs {
    /// Records a stored blob with its content type and variant sizes.
    pub fn insert(
        &mut self,
        hash: std::sync::Arc<str>,
        content_type: &str,
        br: Option<u64>,
        gz: Option<u64>,
    ) {
        self.0.insert(hash, (content_type.to_string(), br, gz));
    }

    fn has(&self, hash: &str) -> bool {
        self.0.contains_key(hash)
    }

    /// The variant sizes of a known blob stored under the same content type (variants
    /// depend on the type).
    fn variants(&self, hash: &str, content_type: &str) -> Option<(Option<u64>, Option<u64>)> {
        self.0
            .get(hash)
            .filter(|(ct, _, _)| ct == content_type)
            .map(|(_, br, gz)| (*br, *gz))
    }
}

/// Limits applied to a manifest sent to the publish API.
#[derive(Debug, Clone, Copy)]
pub struct ManifestLimits {
    /// Most entries in one manifest.
    pub max_entries: usize,
    /// Longest path, in bytes.
    pub max_path_bytes: usize,
    /// Largest file, in bytes.
    pub max_blob_bytes: u64,
}

impl Default for ManifestLimits {
    fn default() -> Self {
        ManifestLimits {
            max_entries: 100_000,
            max_path_bytes: 1024,
            max_blob_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One file as a client declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Site path, e.g. `/about/index.html`.
    pub path: String,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// `Content-Type`; guessed from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// The body of `POST /v1/sites/{site}/deploys`. A list rather than a map, so that a
/// duplicated path is seen (and refused) instead of silently collapsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishManifest {
    /// The deploy's files.
    pub files: Vec<ManifestFile>,
}

/// A validated manifest entry of a pending deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFile {
    /// Hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// `Content-Type`.
    pub content_type: String,
}

/// A deploy whose blobs are being uploaded (`pending/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingDeploy {
    /// The id it will have.
    pub id: DeployId,
    /// Its site.
    pub site: String,
    /// When the manifest was received (seconds since the epoch).
    pub created: u64,
    /// Path to file.
    pub files: BTreeMap<String, PendingFile>,
}

/// A scheduled activation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// The deploy to make live.
    pub deploy: DeployId,
    /// When (seconds since the Unix epoch).
    pub at: u64,
}

/// What a garbage collection removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GcReport {
    /// Blobs (with their variants) deleted.
    pub blobs_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Blobs kept because a deploy or an upload references them, or they are too new.
    pub blobs_kept: u64,
    /// Pending deploys dropped because they were older than the pending TTL.
    pub pending_expired: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    /// Hex sha256 of the token (the token itself is never stored).
    sha256: String,
    created: u64,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The id of a deploy: 16 hex digits of the sha256 of its (path, hash, size, type)
/// list, so the same files give the same deploy whichever way they arrive.
pub(crate) fn deploy_id_of(entries: &BTreeMap<String, FileEntry>) -> DeployId {
    let mut h = Sha256::new();
    for (path, f) in entries {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(f.sha256.as_bytes());
        h.update(f.size.to_le_bytes());
        h.update(f.content_type.as_bytes());
        h.update([0]);
    }
    DeployId::from_digest(&hex(&h.finalize()))
}

fn pending_id_of(files: &BTreeMap<String, PendingFile>) -> DeployId {
    let entries: BTreeMap<String, FileEntry> = files
        .iter()
        .map(|(p, f)| {
            (
                p.clone(),
                FileEntry {
                    sha256: f.sha256.clone(),
                    size: f.size,
                    content_type: f.content_type.clone(),
                    br: None,
                    gz: None,
                },
            )
        })
        .collect();
    deploy_id_of(&entries)
}

fn bad(msg: impl Into<String>) -> EdgeError {
    EdgeError::Manifest(msg.into())
}

/// Checks a manifest strictly and returns it as a map. Every path must be absolute,
/// already normalized, UTF-8 without `..`, `.`, empty segments, backslashes, NUL or
/// other control bytes, at most `max_path_bytes` long, and unique; hashes are 64
/// lowercase hex digits; one hash has one size.
pub fn validate_manifest(
    m: &PublishManifest,
    limits: &ManifestLimits,
) -> Result<BTreeMap<String, PendingFile>> {
    if m.files.is_empty() {
        return Err(bad("the manifest has no files"));
    }
    if m.files.len() > limits.max_entries {
        return Err(bad(format!(
            "the manifest has {} entries; at most {} are allowed",
            m.files.len(),
            limits.max_entries
        )));
    }
    let mut out = BTreeMap::new();
    let mut sizes: HashMap<&str, u64> = HashMap::new();
    for f in &m.files {
        check_manifest_path(&f.path, limits.max_path_bytes)?;
        if !is_hash(&f.sha256) {
            return Err(bad(format!(
                "{:?}: sha256 must be 64 lowercase hex digits",
                f.path
            )));
        }
        if f.size > limits.max_blob_bytes {
            return Err(bad(format!(
                "{:?}: {} bytes is over the limit of {} bytes per file",
                f.path, f.size, limits.max_blob_bytes
            )));
        }
        if let Some(prev) = sizes.insert(&f.sha256, f.size)
            && prev != f.size
        {
            return Err(bad(format!(
                "{:?}: blob {} is declared with two sizes ({prev} and {})",
                f.path, f.sha256, f.size
            )));
        }
        let content_type = match &f.content_type {
            Some(ct) => {
                if ct.is_empty() || ct.len() > 200 || http::HeaderValue::from_str(ct).is_err() {
                    return Err(bad(format!("{:?}: invalid content_type", f.path)));
                }
                ct.clone()
            }
            None => guess_content_type(&f.path),
        };
        let entry = PendingFile {
            sha256: f.sha256.clone(),
            size: f.size,
            content_type,
        };
        if out.insert(f.path.clone(), entry).is_some() {
            return Err(bad(format!("{:?} appears twice in the manifest", f.path)));
        }
    }
    Ok(out)
}

fn check_manifest_path(p: &str, max: usize) -> Result<()> {
    let why = if p.len() > max {
        Some(format!("longer than {max} bytes"))
    } else if !p.starts_with('/') {
        Some("must be absolute (start with /)".into())
    } else if p.bytes().any(|b| b == 0) {
        Some("contains NUL".into())
    } else if p.bytes().any(|b| b < 0x20 || b == 0x7f) {
        Some("contains a control character".into())
    } else if p.contains('\\') {
        Some("contains a backslash".into())
    } else if p.ends_with('/') {
        Some("names a directory".into())
    } else if p[1..]
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == ".." || s.len() > 255)
    {
        Some("has an empty, `.`, `..` or over-long segment".into())
    } else if p.starts_with("/.qpage/") {
        Some("is reserved (/.qpage/)".into())
    } else if crate::path::normalize(p).as_deref() != Ok(p) {
        Some("is not in normal form (percent-escapes or the like)".into())
    } else {
        None
    };
    match why {
        Some(w) => Err(bad(format!("bad path {p:?}: {w}"))),
        None => Ok(()),
    }
}

impl Store {
    /// Directory of upload temp files (same filesystem as the blobs, so rename works).
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root().join("tmp")
    }

    fn pending_path(&self, site: &str, id: &DeployId) -> PathBuf {
        self.site_dir(site)
            .join("pending")
            .join(format!("{}.json", id.as_str()))
    }

    fn deploy_path(&self, site: &str, id: &DeployId) -> PathBuf {
        self.site_dir(site)
            .join("deploys")
            .join(format!("{}.json", id.as_str()))
    }

    /// Crash recovery, run when a server starts: empties `data/tmp/` and removes
    /// leftover `.tmp-*` files of interrupted atomic writes. Returns how many it removed.
    pub fn recover(&self) -> Result<usize> {
        let mut removed = 0;
        let tmp = self.tmp_dir();
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| EdgeError::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| EdgeError::io(&tmp, e))?;
        let mut dirs = vec![self.root().to_path_buf()];
        for top in ["blobs", "sites"] {
            let dir = self.root().join(top);
            for e in walkdir::WalkDir::new(&dir)
                .max_depth(3)
                .into_iter()
                .filter_map(|e| e.ok())
            {
                if e.file_type().is_dir() {
                    dirs.push(e.path().to_path_buf());
                }
            }
        }
        for dir in dirs {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.filter_map(|e| e.ok()) {
                if e.file_name().to_string_lossy().starts_with(".tmp-")
                    && std::fs::remove_file(e.path()).is_ok()
                {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed leftover temp files");
        }
        Ok(removed)
    }

    /// Starts a deploy from a validated manifest: records it as pending (unless that
    /// deploy already exists) and returns its id, whether it already exists, and the
    /// hashes the store lacks (each once, sorted).
    pub fn begin_deploy(
        &self,
        site: &str,
        files: BTreeMap<String, PendingFile>,
        known: &KnownBlobs,
    ) -> Result<(DeployId, bool, Vec<String>)> {
        self.site_config(site)?;
        let id = pending_id_of(&files);
        if self.deploy_path(site, &id).exists() {
            return Ok((id, true, Vec::new()));
        }
        let missing: BTreeSet<String> = files
            .values()
            .filter(|f| !known.has(&f.sha256))
            .filter(|f| !self.blob_path(&f.sha256, Variant::Identity).exists())
            .map(|f| f.sha256.clone())
            .collect();
        let pending = PendingDeploy {
            id: id.clone(),
            site: site.to_string(),
            created: now_secs(),
            files,
        };
        let json = serde_json::to_vec(&pending).map_err(|e| bad(e.to_string()))?;
        write_atomic(&self.pending_path(site, &id), &json)?;
        Ok((id, false, missing.into_iter().collect()))
    }

    /// A pending deploy's manifest.
    pub fn pending(&self, site: &str, id: &DeployId) -> Result<PendingDeploy> {
        check_site_name(site)?;
        let path = self.pending_path(site, id);
        let bytes = read_deploy_file(&path, site, id)?;
        serde_json::from_slice(&bytes).map_err(|e| EdgeError::Parse {
            path,
            message: e.to_string(),
        })
    }

    /// All pending deploys of a site (unreadable ones are skipped).
    pub fn pending_deploys(&self, site: &str) -> Result<Vec<PendingDeploy>> {
        self.pending_deploys_inner(site, false)
    }

    fn pending_deploys_inner(&self, site: &str, strict: bool) -> Result<Vec<PendingDeploy>> {
        check_site_name(site)?;
        let dir = self.site_dir(site).join("pending");
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(out);
        };
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name();
            if let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(DeployId::parse)
            {
                match self.pending(site, &id) {
                    Ok(p) => out.push(p),
                    Err(e) if strict => return Err(e),
                    Err(_) => {}
                }
            }
        }
        Ok(out)
    }

    /// Moves a verified upload (`tmp`, already fsynced) to its place as blob `hash`.
    pub(crate) fn install_blob(&self, tmp: &Path, hash: &str) -> Result<()> {
        let dest = self.blob_path(hash, Variant::Identity);
        let dir = dest.parent().unwrap_or(self.root());
        std::fs::create_dir_all(dir).map_err(|e| EdgeError::io(dir, e))?;
        if dest.exists() {
            let _ = std::fs::remove_file(tmp);
            return Ok(());
        }
        std::fs::rename(tmp, &dest).map_err(|e| EdgeError::io(&dest, e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Makes the Brotli and gzip variants of a stored blob if its type is worth it.
    pub(crate) fn ensure_variants(
        &self,
        hash: &str,
        content_type: &str,
    ) -> Result<(Option<u64>, Option<u64>)> {
        let path = self.blob_path(hash, Variant::Identity);
        let meta = std::fs::metadata(&path).map_err(|e| EdgeError::io(&path, e))?;
        if meta.len() <= 256 || !store::compressible(content_type) {
            return Ok((None, None));
        }
        let known = |v: Variant, marker: &str| -> Option<Option<u64>> {
            let p = self.blob_path(hash, v);
            if let Ok(m) = std::fs::metadata(&p) {
                return Some(Some(m.len()));
            }
            p.with_extension(marker).exists().then_some(None)
        };
        if let (Some(br), Some(gz)) = (
            known(Variant::Br, "br-none"),
            known(Variant::Gzip, "gz-none"),
        ) {
            return Ok((br, gz));
        }
        let bytes = std::fs::read(&path).map_err(|e| EdgeError::io(&path, e))?;
        self.put_blob(hash, &bytes, content_type)
    }

    /// Finishes a pending deploy: every blob must be stored; rule files must parse;
    /// variants are made; the manifest is committed and the pending record removed.
    /// Does not activate. Finalizing an existing deploy is a no-op. Blobs in `known`
    /// are not looked up again.
    pub fn finish_deploy(&self, site: &str, id: &DeployId, known: &KnownBlobs) -> Result<Deploy> {
        if self.deploy_path(site, id).exists() {
            return self.deploy(site, id);
        }
        let pending = self.pending(site, id)?;
        let missing: BTreeSet<&str> = pending
            .files
            .values()
            .filter(|f| !known.has(&f.sha256))
            .filter(|f| !self.blob_path(&f.sha256, Variant::Identity).exists())
            .map(|f| f.sha256.as_str())
            .collect();
        if !missing.is_empty() {
            let first: Vec<&str> = missing.iter().take(3).copied().collect();
            return Err(EdgeError::Conflict(format!(
                "{} blob(s) still missing, e.g. {}",
                missing.len(),
                first.join(", ")
            )));
        }
        for (name, is_redirects) in [("/_redirects", true), ("/_headers", false)] {
            if let Some(f) = pending.files.get(name) {
                let p = self.blob_path(&f.sha256, Variant::Identity);
                let text = std::fs::read(&p).map_err(|e| EdgeError::io(&p, e))?;
                let text = String::from_utf8_lossy(&text);
                if is_redirects {
                    Redirects::parse(&text)?;
                } else {
                    Headers::parse(&text)?;
                }
            }
        }
        let mut entries = BTreeMap::new();
        for (path, f) in &pending.files {
            let (br, gz) = match known.variants(&f.sha256, &f.content_type) {
                Some(v) => v,
                None => self.ensure_variants(&f.sha256, &f.content_type)?,
            };
            entries.insert(
                path.clone(),
                FileEntry {
                    sha256: f.sha256.clone(),
                    size: f.size,
                    content_type: f.content_type.clone(),
                    br,
                    gz,
                },
            );
        }
        let deploy = self.commit_deploy(site, id, entries)?;
        let pp = self.pending_path(site, id);
        let _ = std::fs::remove_file(&pp);
        Ok(deploy)
    }

    /// A site's deploys, oldest first (by import time, then by file time).
    pub fn deploys_ordered(&self, site: &str) -> Result<Vec<(DeployId, u64)>> {
        let mut list: Vec<(DeployId, u64, SystemTime)> = self
            .deploys(site)?
            .into_iter()
            .map(|(id, created)| {
                let m = std::fs::metadata(self.deploy_path(site, &id))
                    .and_then(|m| m.modified())
                    .unwrap_or(UNIX_EPOCH);
                (id, created, m)
            })
            .collect();
        list.sort_by(|a, b| (a.1, a.2, &a.0).cmp(&(b.1, b.2, &b.0)));
        Ok(list.into_iter().map(|(i, c, _)| (i, c)).collect())
    }

    /// The scheduled activations of a site.
    pub fn scheduled(&self, site: &str) -> Result<Vec<Scheduled>> {
        check_site_name(site)?;
        let path = self.site_dir(site).join("scheduled.json");
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| EdgeError::Parse {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(EdgeError::io(&path, e)),
        }
    }

    /// Replaces the scheduled activations of a site (durably).
    pub fn set_scheduled(&self, site: &str, list: &[Scheduled]) -> Result<()> {
        check_site_name(site)?;
        let path = self.site_dir(site).join("scheduled.json");
        if list.is_empty() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EdgeError::io(&path, e)),
            }
            return Ok(());
        }
        let json = serde_json::to_vec(list).map_err(|e| bad(e.to_string()))?;
        write_atomic(&path, &json)
    }

    /// Deletes the oldest deploys of a site beyond the newest `keep`, never the live
    /// one nor one with a scheduled activation. Returns the ids removed.
    pub fn prune(&self, site: &str, keep: usize) -> Result<Vec<DeployId>> {
        let keep = keep.max(1);
        // Cheap check first: reading every manifest is only worth it when over the limit.
        let dir = self.site_dir(site).join("deploys");
        let count = std::fs::read_dir(&dir)
            .map_err(|e| EdgeError::io(&dir, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .count();
        if count <= keep {
            return Ok(Vec::new());
        }
        let live = self.live(site)?;
        let scheduled: HashSet<DeployId> = self
            .scheduled(site)?
            .into_iter()
            .map(|s| s.deploy)
            .collect();
        let list = self.deploys_ordered(site)?;
        let mut removed = Vec::new();
        if list.len() <= keep {
            return Ok(removed);
        }
        let cut = list.len() - keep;
        for (id, _) in &list[..cut] {
            if Some(id) == live.as_ref() || scheduled.contains(id) {
                continue;
            }
            let p = self.deploy_path(site, id);
            std::fs::remove_file(&p).map_err(|e| EdgeError::io(&p, e))?;
            removed.push(id.clone());
        }
        Ok(removed)
    }

    /// Every blob hash some kept deploy or pending upload of any site references.
    pub fn referenced_blobs(&self) -> Result<HashSet<String>> {
        let mut refs = HashSet::new();
        for site in self.list_sites()? {
            // Every manifest file is read; any error aborts (a GC that cannot see all
            // references must not delete anything).
            let dir = self.site_dir(&site).join("deploys");
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(EdgeError::io(&dir, e)),
            };
            for e in rd {
                let e = e.map_err(|e| EdgeError::io(&dir, e))?;
                let name = e.file_name();
                let Some(id) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .and_then(DeployId::parse)
                else {
                    continue;
                };
                let d = self.deploy(&site, &id)?;
                refs.extend(d.files.into_values().map(|f| f.sha256));
            }
            for p in self.pending_deploys_inner(&site, true)? {
                refs.extend(p.files.into_values().map(|f| f.sha256));
            }
        }
        Ok(refs)
    }

    /// Deletes pending deploys older than `pending_ttl`, then every blob (and its
    /// variants) that no deploy or pending deploy references and that is older than
    /// `grace`. The caller must keep new manifests out while this runs (the API holds
    /// its GC lock).
    pub fn gc(&self, grace: Duration, pending_ttl: Duration) -> Result<GcReport> {
        let mut report = GcReport::default();
        let now = now_secs();
        for site in self.list_sites()? {
            for p in self.pending_deploys(&site)? {
                if now.saturating_sub(p.created) > pending_ttl.as_secs() {
                    let _ = std::fs::remove_file(self.pending_path(&site, &p.id));
                    report.pending_expired += 1;
                }
            }
        }
        let refs = self.referenced_blobs()?;
        let blobs = self.root().join("blobs");
        let cutoff = SystemTime::now().checked_sub(grace).unwrap_or(UNIX_EPOCH);
        let rd = std::fs::read_dir(&blobs).map_err(|e| EdgeError::io(&blobs, e))?;
        for shard in rd.filter_map(|e| e.ok()) {
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.filter_map(|e| e.ok()) {
                let name = f.file_name();
                let Some(name) = name.to_str() else { continue };
                if !is_hash(name) {
                    continue;
                }
                let young = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|m| m > cutoff)
                    .unwrap_or(true);
                if refs.contains(name) || young {
                    report.blobs_kept += 1;
                    continue;
                }
                for suffix in ["", ".br", ".gz", ".br-none", ".gz-none"] {
                    let p = shard.path().join(format!("{name}{suffix}"));
                    let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                    if std::fs::remove_file(&p).is_ok() {
                        report.bytes_freed += len;
                    }
                }
                report.blobs_removed += 1;
            }
        }
        Ok(report)
    }

    /// Deletes a site: its directory is renamed into `data/tmp/` (one atomic step that
    /// takes it out of routing) and then removed. Its blobs go at the next GC.
    pub fn delete_site(&self, site: &str) -> Result<()> {
        let cfg = self.site_config(site)?;
        let tmp = self.tmp_dir();
        std::fs::create_dir_all(&tmp).map_err(|e| EdgeError::io(&tmp, e))?;
        let dest = tmp.join(format!(
            "deleted-{site}-{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let dir = self.site_dir(site);
        std::fs::rename(&dir, &dest).map_err(|e| EdgeError::io(&dir, e))?;
        self.release_hosts(site, &cfg);
        let _ = std::fs::remove_dir_all(&dest);
        self.bump_epoch()
    }

    /// Creates a new API token for a site and returns it (only its hash is stored).
    /// The token reads `s.<site>.<64 hex digits>`.
    pub fn add_site_token(&self, site: &str) -> Result<String> {
        self.site_config(site)?;
        let mut raw = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .map_err(|e| EdgeError::io("/dev/urandom", e))?;
        let token = format!("s.{site}.{}", hex(&raw));
        let mut file = self.token_file(site)?;
        file.tokens.push(TokenRecord {
            sha256: hex(&Sha256::digest(token.as_bytes())),
            created: now_secs(),
        });
        let json = serde_json::to_vec(&file).map_err(|e| bad(e.to_string()))?;
        write_atomic(&self.site_dir(site).join("tokens.json"), &json)?;
        Ok(token)
    }

    /// Removes every API token of a site.
    pub fn revoke_site_tokens(&self, site: &str) -> Result<()> {
        self.site_config(site)?;
        let p = self.site_dir(site).join("tokens.json");
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EdgeError::io(&p, e)),
        }
    }

    fn token_file(&self, site: &str) -> Result<TokenFile> {
        let p = self.site_dir(site).join("tokens.json");
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| EdgeError::Parse {
                path: p,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
            Err(e) => Err(EdgeError::io(&p, e)),
        }
    }

    /// Whether `token_hash` (sha256 of a presented token) is one of the site's tokens;
    /// compared in constant time against each.
    pub(crate) fn site_token_matches(&self, site: &str, token_hash: &[u8; 32]) -> bool {
        let Ok(file) = self.token_file(site) else {
            return false;
        };
        let mut found = false;
        for t in &file.tokens {
            let mut stored = [0u8; 32];
            if unhex32(&t.sha256, &mut stored) {
                found |= ct_eq(&stored, token_hash);
            }
        }
        found
    }
}

fn unhex32(s: &str, out: &mut [u8; 32]) -> bool {
    if s.len() != 64 {
        return false;
    }
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let v = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        match (v(chunk[0]), v(chunk[1])) {
            (Some(h), Some(l)) => out[i] = h << 4 | l,
            _ => return false,
        }
    }
    true
}

/// Constant-time equality of two digests.
pub(crate) fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for i in 0..32 {
        diff |= a[i] ^ b[i];
    }
    std::hint::black_box(diff) == 0
}
