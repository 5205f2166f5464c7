//! The on-disk, content-addressed store of an edge node (DESIGN.md):
//!
//! ```text
//! data/blobs/ab/abcdef...(.br|.gz)     content-addressed, shared by all sites
//! data/sites/<site>/site.toml          hosts, aliases, settings
//! data/sites/<site>/deploys/<id>.json  manifest of one deploy
//! data/sites/<site>/live               id of the live deploy (replaced by rename)
//! data/epoch                           bumped on every change; servers poll it
//! ```
//!
//! Every write goes to a temporary file, is fsynced and renamed into place, so a reader
//! sees the old or the new file, never half of one. Importing a `dist/` writes blobs
//! (and their Brotli and gzip variants, made once) before the deploy manifest that
//! names them, and the live pointer only moves in [`Store::activate`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EdgeError, Result};
use crate::rules::{Headers, Redirects};

/// Smallest body worth precompressing.
const MIN_COMPRESS: u64 = 256;

/// The id of one deploy of a site: 16 hex digits of the hash of its manifest, so
/// importing the same files twice gives the same deploy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeployId(String);

impl DeployId {
    /// Parses a deploy id (16 lowercase hex digits).
    pub fn parse(s: &str) -> Option<DeployId> {
        (s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| DeployId(s.to_string()))
    }

    /// The id made of the first 16 digits of a hex digest (64 lowercase hex digits).
    pub(crate) fn from_digest(hex: &str) -> DeployId {
        DeployId(hex.chars().take(16).collect())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeployId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to do with `www.` hosts of a site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WwwPolicy {
    /// `www.example.com` redirects (301) to `example.com` when both are routed to the site.
    #[default]
    Apex,
    /// `example.com` redirects (301) to `www.example.com` when both are routed to the site.
    Www,
    /// Both are served as they are.
    Off,
}

/// `site.toml`: how requests reach a site.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// Primary hosts, e.g. `example.com`.
    pub hosts: Vec<String>,
    /// Other hosts that serve the same site, e.g. `www.example.com`.
    pub aliases: Vec<String>,
    /// The www/apex redirect policy.
    pub www: WwwPolicy,
    /// HTTPS behaviour (when the node has TLS on).
    pub https: HttpsPolicy,
}

impl SiteConfig {
    /// Every host the site answers: its hosts, then its aliases.
    pub fn all_hosts(&self) -> impl Iterator<Item = &String> {
        self.hosts.iter().chain(self.aliases.iter())
    }
}

/// `[https]` of `site.toml`: how a site treats plain HTTP, and HSTS. Only applies when
/// the node's HTTPS listener is on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpsPolicy {
    /// Serve plain HTTP as it is instead of redirecting it to HTTPS.
    pub allow_http: bool,
    /// `Strict-Transport-Security` max-age in seconds on HTTPS responses; 0 (the
    /// default) sends no HSTS header. HSTS is opt-in: browsers remember it.
    pub hsts_max_age: u64,
    /// Adds `includeSubDomains` to the HSTS header.
    pub hsts_include_subdomains: bool,
    /// Adds `preload` to the HSTS header.
    pub hsts_preload: bool,
}

/// One file of a deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Hex sha256 of the file: the blob's name.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// `Content-Type`, with a charset for text.
    pub content_type: String,
    /// Size of the Brotli variant, when the store has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub br: Option<u64>,
    /// Size of the gzip variant, when the store has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gz: Option<u64>,
}

/// The manifest of one deploy (`deploys/<id>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    /// The deploy's id.
    pub id: DeployId,
    /// The site it belongs to.
    pub site: String,
    /// When it was imported (seconds since the Unix epoch): its `Last-Modified`.
    pub created: u64,
    /// Site path (`/index.html`) to file.
    pub files: BTreeMap<String, FileEntry>,
}

/// The generator's `dist/.qpage/manifest.json`.
#[derive(Debug, Deserialize)]
struct DistManifest {
    files: BTreeMap<String, DistEntry>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DistEntry {
    pub(crate) sha256: String,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) content_type: Option<String>,
}

/// A blob variant on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The file as it was built.
    Identity,
    /// Brotli, quality 11.
    Br,
    /// gzip, level 9.
    Gzip,
}

/// A handle on a data directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating if needed) the store in `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for dir in [root.join("blobs"), root.join("sites")] {
            std::fs::create_dir_all(&dir).map_err(|e| EdgeError::io(&dir, e))?;
        }
        Ok(Store { root })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a blob variant. `hash` must be 64 hex digits (checked by callers).
    pub fn blob_path(&self, hash: &str, variant: Variant) -> PathBuf {
        let name = match variant {
            Variant::Identity => hash.to_string(),
            Variant::Br => format!("{hash}.br"),
            Variant::Gzip => format!("{hash}.gz"),
        };
        self.root.join("blobs").join(&hash[..2]).join(name)
    }

    pub(crate) fn site_dir(&self, site: &str) -> PathBuf {
        self.root.join("sites").join(site)
    }

    /// The value of `data/epoch`, bumped by every change to sites or live pointers.
    pub fn epoch(&self) -> u64 {
        std::fs::read_to_string(self.root.join("epoch"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    pub(crate) fn bump_epoch(&self) -> Result<()> {
        self.bump_epoch_from().map(|_| ())
    }

    /// Bumps the epoch; returns the values before and after.
    fn bump_epoch_from(&self) -> Result<(u64, u64)> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let prev = self.epoch();
        let next = now.max(prev + 1);
        write_atomic(&self.root.join("epoch"), next.to_string().as_bytes())?;
        Ok((prev, next))
    }

    /// Creates or replaces a site's `site.toml`. Hosts are normalized; a host already
    /// routed to another site is an error.
    pub fn put_site(&self, site: &str, config: &SiteConfig) -> Result<()> {
        check_site_name(site)?;
        let mut cfg = config.clone();
        for h in cfg.hosts.iter_mut().chain(cfg.aliases.iter_mut()) {
            *h = normalize_host_config(h)?;
        }
        let before = self.site_config(site).ok();
        let claims = HostClaims::open(self)?;
        let mut taken = Vec::new();
        for host in cfg.all_hosts() {
            match claims.claim(self, host, site) {
                Ok(new) => {
                    if new {
                        taken.push(host.clone());
                    }
                }
                Err(e) => {
                    for h in &taken {
                        claims.release(h, site);
                    }
                    return Err(e);
                }
            }
        }
        let dir = self.site_dir(site);
        std::fs::create_dir_all(dir.join("deploys")).map_err(|e| EdgeError::io(&dir, e))?;
        let text = toml::to_string(&cfg).map_err(|e| EdgeError::Config(e.to_string()))?;
        write_atomic(&dir.join("site.toml"), text.as_bytes())?;
        if let Some(old) = before {
            for h in old.all_hosts() {
                if !cfg.all_hosts().any(|n| n == h) {
                    claims.release(h, site);
                }
            }
        }
        self.bump_epoch()
    }

    /// Gives up the host claims of `site` (which is being deleted).
    pub(crate) fn release_hosts(&self, site: &str, cfg: &SiteConfig) {
        if let Ok(claims) = HostClaims::open(self) {
            for h in cfg.all_hosts() {
                claims.release(h, site);
            }
        }
    }

    /// Names of all sites in the store, sorted.
    pub fn list_sites(&self) -> Result<Vec<String>> {
        let dir = self.root.join("sites");
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&dir).map_err(|e| EdgeError::io(&dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| EdgeError::io(&dir, e))?;
            if let Some(name) = entry.file_name().to_str()
                && check_site_name(name).is_ok()
                && entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
            {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads a site's `site.toml`.
    pub fn site_config(&self, site: &str) -> Result<SiteConfig> {
        check_site_name(site)?;
        let path = self.site_dir(site).join("site.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EdgeError::UnknownSite(site.into()));
            }
            Err(e) => return Err(EdgeError::io(&path, e)),
        };
        toml::from_str(&text).map_err(|e| EdgeError::Parse {
            path,
            message: e.to_string(),
        })
    }

    /// The id of a site's live deploy, if it has one.
    pub fn live(&self, site: &str) -> Result<Option<DeployId>> {
        check_site_name(site)?;
        let path = self.site_dir(site).join("live");
        match std::fs::read_to_string(&path) {
            Ok(t) => DeployId::parse(t.trim()).map(Some).ok_or(EdgeError::Parse {
                path,
                message: "not a deploy id".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EdgeError::io(&path, e)),
        }
    }

    /// Reads one deploy's manifest, checking that every blob name is a hash.
    pub fn deploy(&self, site: &str, id: &DeployId) -> Result<Deploy> {
        check_site_name(site)?;
        let path = self
            .site_dir(site)
            .join("deploys")
            .join(format!("{}.json", id.as_str()));
        let bytes = read_deploy_file(&path, site, id)?;
        let deploy: Deploy = serde_json::from_slice(&bytes).map_err(|e| EdgeError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if let Some((p, _)) = deploy
            .files
            .iter()
            .find(|(p, f)| !is_hash(&f.sha256) || !p.starts_with('/'))
        {
            return Err(EdgeError::Parse {
                path,
                message: format!("bad entry {p:?}"),
            });
        }
        Ok(deploy)
    }

    /// A site's deploys, oldest first, with their import times (seconds since the epoch).
    pub fn deploys(&self, site: &str) -> Result<Vec<(DeployId, u64)>> {
        self.site_config(site)?;
        let dir = self.site_dir(site).join("deploys");
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&dir).map_err(|e| EdgeError::io(&dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| EdgeError::io(&dir, e))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(DeployId::parse)
            else {
                continue;
            };
            let created = self.deploy(site, &id)?.created;
            out.push((id, created));
        }
        out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(out)
    }

    /// Reads a deploy's `_redirects` and `_headers` rules.
    pub fn deploy_rules(&self, deploy: &Deploy) -> Result<(Redirects, Headers)> {
        let read = |name: &str| -> Result<Option<String>> {
            let Some(entry) = deploy.files.get(name) else {
                return Ok(None);
            };
            let path = self.blob_path(&entry.sha256, Variant::Identity);
            let bytes = std::fs::read(&path).map_err(|e| EdgeError::io(&path, e))?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        };
        let redirects = match read("/_redirects")? {
            Some(t) => Redirects::parse(&t)?,
            None => Redirects::default(),
        };
        let headers = match read("/_headers")? {
            Some(t) => Headers::parse(&t)?,
            None => Headers::default(),
        };
        Ok((redirects, headers))
    }

    /// Imports a built site directory as a new deploy of `site` (which must exist) and
    /// returns its id. Uses `dist/.qpage/manifest.json` when present (verifying every
    /// hash) and otherwise walks the directory. The deploy does not go live until
    /// [`Store::activate`].
    pub fn import_dir(&self, site: &str, dist: &Path) -> Result<DeployId> {
        self.site_config(site)?;
        let files = collect_files(dist)?;
        // Rules first: a malformed rule file fails the import before anything is written.
        for (name, parse) in [
            (
                "/_redirects",
                (|t: &str| Redirects::parse(t).map(|_| ())) as fn(&str) -> Result<()>,
            ),
            ("/_headers", |t: &str| Headers::parse(t).map(|_| ())),
        ] {
            if let Some(f) = files.iter().find(|f| f.site_path == name) {
                let bytes = std::fs::read(&f.fs_path).map_err(|e| EdgeError::io(&f.fs_path, e))?;
                parse(&String::from_utf8_lossy(&bytes))?;
            }
        }
        let mut entries = BTreeMap::new();
        for f in files {
            let bytes = read_regular(&f.fs_path)?;
            let hash = hex(&Sha256::digest(&bytes));
            if let Some(expected) = &f.expected
                && (expected.sha256 != hash || expected.size != bytes.len() as u64)
            {
                return Err(EdgeError::Manifest(format!(
                    "{}: the file does not match dist/.qpage/manifest.json (rebuild the site)",
                    f.fs_path.display()
                )));
            }
            let content_type = f
                .expected
                .as_ref()
                .and_then(|e| e.content_type.clone())
                .unwrap_or_else(|| guess_content_type(&f.site_path));
            let (br, gz) = self.put_blob(&hash, &bytes, &content_type)?;
            entries.insert(
                f.site_path,
                FileEntry {
                    sha256: hash,
                    size: bytes.len() as u64,
                    content_type,
                    br,
                    gz,
                },
            );
        }
        let id = crate::publish::deploy_id_of(&entries);
        self.commit_deploy(site, &id, entries)?;
        Ok(id)
    }

    /// Writes a deploy's manifest (`deploys/<id>.json`) unless it exists: the one step
    /// shared by [`Store::import_dir`] and the publish API's finalize. Every blob it names
    /// must already be stored.
    pub(crate) fn commit_deploy(
        &self,
        site: &str,
        id: &DeployId,
        entries: BTreeMap<String, FileEntry>,
    ) -> Result<Deploy> {
        let path = self
            .site_dir(site)
            .join("deploys")
            .join(format!("{}.json", id.as_str()));
        if path.exists() {
            return self.deploy(site, id);
        }
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let deploy = Deploy {
            id: id.clone(),
            site: site.to_string(),
            created,
            files: entries,
        };
        let json = serde_json::to_vec(&deploy).map_err(|e| EdgeError::Manifest(e.to_string()))?;
        write_atomic(&path, &json)?;
        Ok(deploy)
    }

    /// Makes `deploy` the live deploy of `site` (one atomic rename); also used to roll back.
    pub fn activate(&self, site: &str, deploy: &DeployId) -> Result<()> {
        self.activate_epoch(site, deploy).map(|_| ())
    }

    /// [`Store::activate`], returning the store's epoch before and after the change, so
    /// a server that applies the change itself can tell whether anything else changed.
    pub(crate) fn activate_epoch(&self, site: &str, deploy: &DeployId) -> Result<(u64, u64)> {
        self.deploy(site, deploy)?;
        write_atomic(
            &self.site_dir(site).join("live"),
            deploy.as_str().as_bytes(),
        )?;
        self.bump_epoch_from()
    }

    /// Writes a blob and, for compressible types, its Brotli and gzip variants, unless
    /// already stored. Returns the variants' sizes.
    pub(crate) fn put_blob(
        &self,
        hash: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<(Option<u64>, Option<u64>)> {
        let path = self.blob_path(hash, Variant::Identity);
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        if bytes.len() as u64 <= MIN_COMPRESS || !compressible(content_type) {
            return Ok((None, None));
        }
        let mut sizes = [None, None];
        for (i, variant) in [Variant::Br, Variant::Gzip].into_iter().enumerate() {
            let vpath = self.blob_path(hash, variant);
            let marker = vpath.with_extension(match variant {
                Variant::Br => "br-none",
                _ => "gz-none",
            });
            if let Ok(meta) = std::fs::metadata(&vpath) {
                sizes[i] = Some(meta.len());
                continue;
            }
            if marker.exists() {
                continue;
            }
            let packed = match variant {
                Variant::Br => brotli_compress(bytes),
                _ => gzip_compress(bytes),
            }
            .map_err(|e| EdgeError::io(&vpath, e))?;
            // Keep a variant only when it saves at least a tenth.
            if (packed.len() as u64) * 10 <= (bytes.len() as u64) * 9 {
                write_atomic(&vpath, &packed)?;
                sizes[i] = Some(packed.len() as u64);
            } else {
                write_atomic(&marker, b"")?;
            }
        }
        Ok((sizes[0], sizes[1]))
    }
}

/// A file found in `dist/`.
pub(crate) struct DistFile {
    pub(crate) site_path: String,
    pub(crate) fs_path: PathBuf,
    pub(crate) expected: Option<DistEntry>,
}

pub(crate) fn collect_files(dist: &Path) -> Result<Vec<DistFile>> {
    let meta = std::fs::metadata(dist).map_err(|e| EdgeError::io(dist, e))?;
    if !meta.is_dir() {
        return Err(EdgeError::Manifest(format!(
            "{} is not a directory",
            dist.display()
        )));
    }
    let manifest_path = dist.join(".qpage").join("manifest.json");
    let mut out = Vec::new();
    match std::fs::read(&manifest_path) {
        Ok(bytes) => {
            let m: DistManifest = serde_json::from_slice(&bytes).map_err(|e| EdgeError::Parse {
                path: manifest_path.clone(),
                message: e.to_string(),
            })?;
            for (site_path, entry) in m.files {
                if crate::path::normalize(&site_path).as_deref() != Ok(site_path.as_str())
                    || site_path.ends_with('/')
                    || site_path.starts_with("/.qpage/")
                {
                    return Err(EdgeError::Manifest(format!(
                        "{}: bad path {site_path:?}",
                        manifest_path.display()
                    )));
                }
                let fs_path = dist.join(&site_path[1..]);
                out.push(DistFile {
                    site_path,
                    fs_path,
                    expected: Some(entry),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            for entry in walkdir::WalkDir::new(dist)
                .follow_links(false)
                .sort_by_file_name()
            {
                let entry = entry.map_err(|e| {
                    EdgeError::io(
                        e.path().unwrap_or(dist).to_path_buf(),
                        std::io::Error::other(e.to_string()),
                    )
                })?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let rel = entry.path().strip_prefix(dist).unwrap_or(entry.path());
                let Some(rel_str) = rel.to_str() else {
                    return Err(EdgeError::Manifest(format!(
                        "{}: file names must be UTF-8",
                        entry.path().display()
                    )));
                };
                let site_path = format!("/{}", rel_str.replace(std::path::MAIN_SEPARATOR, "/"));
                if site_path.starts_with("/.qpage/") {
                    continue;
                }
                if crate::path::normalize(&site_path).as_deref() != Ok(site_path.as_str()) {
                    tracing::warn!(path = %entry.path().display(), "skipping a file whose name cannot be served");
                    continue;
                }
                out.push(DistFile {
                    site_path,
                    fs_path: entry.path().to_path_buf(),
                    expected: None,
                });
            }
        }
        Err(e) => return Err(EdgeError::io(&manifest_path, e)),
    }
    Ok(out)
}

/// The bytes of one of a deploy's files (its manifest, or a pending deploy's);
/// [`EdgeError::UnknownDeploy`] when there is none.
pub(crate) fn read_deploy_file(path: &Path, site: &str, id: &DeployId) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(EdgeError::UnknownDeploy {
            site: site.into(),
            deploy: id.to_string(),
        }),
        Err(e) => Err(EdgeError::io(path, e)),
    }
}

/// Reads a regular file, refusing symlinks and anything else.
pub(crate) fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| EdgeError::io(path, e))?;
    if !meta.is_file() {
        return Err(EdgeError::Manifest(format!(
            "{}: not a regular file (symlinks are not followed)",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| EdgeError::io(path, e))
}

/// Writes a file atomically: temp file in the same directory, fsync, rename, fsync dir.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| EdgeError::io(dir, e))?;
    write_atomic_in(dir, path, bytes, 0o666)
}

/// [`write_atomic`] into an existing directory, the new file created with `mode`
/// (before umask) so a private file is never readable by others, even as a temp file.
pub(crate) fn write_atomic_in(dir: &Path, path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        EdgeError::io(path, e)
    })
}

fn brotli_compress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() / 3);
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        w.write_all(bytes)?;
        w.flush()?;
    }
    Ok(out)
}

fn gzip_compress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::best(),
    );
    enc.write_all(bytes)?;
    enc.finish()
}

/// Whether a content type is worth precompressing.
pub(crate) fn compressible(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "font/ttf"
                | "font/otf"
        )
        || mime.ends_with("+xml")
        || mime.ends_with("+json")
}

/// Content type from a file name, with `charset=utf-8` for text.
pub(crate) fn guess_content_type(site_path: &str) -> String {
    let name = site_path.rsplit('/').next().unwrap_or("");
    if name == "_redirects" || name == "_headers" {
        return "text/plain; charset=utf-8".into();
    }
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let essence = mime.essence_str();
    let texty = essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        )
        || essence.ends_with("+xml")
        || essence.ends_with("+json");
    if texty {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

pub(crate) fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Checks a site name: a DNS label without `--` (reserved for preview hosts).
pub fn check_site_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(EdgeError::SiteName(name.into()))
    }
}

/// The store's index of which site routes each host: `hosts/<host>` holds the name of
/// the site that claimed it. A claim is made with an exclusive create, so two sites
/// cannot take one host at once, and adding a site costs a file per host instead of a
/// read of every other site's `site.toml`. A store written before the index existed
/// gets it built once, from every site's `site.toml` (`hosts/.complete` marks it done).
struct HostClaims {
    dir: PathBuf,
}

impl HostClaims {
    fn open(store: &Store) -> Result<HostClaims> {
        let dir = store.root.join("hosts");
        let claims = HostClaims { dir };
        let done = claims.dir.join(".complete");
        if !done.exists() {
            std::fs::create_dir_all(&claims.dir).map_err(|e| EdgeError::io(&claims.dir, e))?;
            for site in store.list_sites()? {
                let Ok(cfg) = store.site_config(&site) else {
                    continue;
                };
                for h in cfg.all_hosts() {
                    // The first site to list a host keeps it, as routing does.
                    let _ = claims.create(h, &site);
                }
            }
            write_atomic(&done, b"")?;
        }
        Ok(claims)
    }

    fn path(&self, host: &str) -> Result<PathBuf> {
        // Normalized hosts are dot-separated non-empty labels of [a-z0-9_-] or a
        // bracketed IPv6 address: never empty, `.`, `..` or containing `/`.
        if host.is_empty() || host.starts_with('.') || host.contains('/') {
            return Err(EdgeError::Host(host.into()));
        }
        Ok(self.dir.join(host))
    }

    /// Creates the claim file; false when it exists already.
    fn create(&self, host: &str, site: &str) -> Result<bool> {
        let path = self.path(host)?;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(site.as_bytes())
                    .map_err(|e| EdgeError::io(&path, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(EdgeError::io(&path, e)),
        }
    }

    fn owner(&self, host: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.path(host).ok()?).ok()?;
        Some(text.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// Claims `host` for `site`; true when the claim is new. A claim left by a site
    /// that no longer lists the host (deleted, or changed under an older qpage) is
    /// taken over.
    fn claim(&self, store: &Store, host: &str, site: &str) -> Result<bool> {
        for _ in 0..3 {
            if self.create(host, site)? {
                return Ok(true);
            }
            let owner = self.owner(host);
            let owner_cfg = owner.as_ref().map(|o| store.site_config(o));
            match (owner, owner_cfg) {
                (Some(owner), _) if owner == site => return Ok(false),
                (Some(owner), Some(Ok(c))) if c.all_hosts().any(|h| h == host) => {
                    return Err(EdgeError::HostTaken {
                        host: host.into(),
                        site: owner,
                    });
                }
                // A claim made in the last seconds by a site whose `site.toml` is not
                // written yet: that site is being created right now.
                (Some(owner), Some(Err(_))) if self.fresh(host) => {
                    return Err(EdgeError::Conflict(format!(
                        "host {host} is being claimed by site {owner} at this moment; try again"
                    )));
                }
                // Stale (or half-written): remove it and claim again.
                _ => {
                    let _ = std::fs::remove_file(self.path(host)?);
                }
            }
        }
        Err(EdgeError::Conflict(format!(
            "host {host} is being claimed by another site at the same time; try again"
        )))
    }

    /// Whether the claim on `host` was written in the last 30 seconds.
    fn fresh(&self, host: &str) -> bool {
        self.path(host)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < std::time::Duration::from_secs(30))
    }

    /// Removes `site`'s claim on `host` (a claim by another site is left alone).
    fn release(&self, host: &str, site: &str) {
        if self.owner(host).as_deref() == Some(site)
            && let Ok(p) = self.path(host)
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Normalizes a host given in configuration: lowercase, no trailing dot, no port.
pub fn normalize_host_config(host: &str) -> Result<String> {
    crate::routing::normalize_host(host).ok_or_else(|| EdgeError::Host(host.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(guess_content_type("/a.html"), "text/html; charset=utf-8");
        assert_eq!(guess_content_type("/a.png"), "image/png");
        assert!(compressible("text/css; charset=utf-8"));
        assert!(!compressible("image/png"));
        assert!(check_site_name("a--b").is_err());
        assert!(check_site_name("blog-1").is_ok());
    }
}
