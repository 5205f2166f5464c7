//! Host routing: from a request's Host to a site's deploy. The table is built from the
//! store, swapped atomically on reload, and reuses already-loaded deploys, so routing
//! changes apply without a restart.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::HeaderValue;

use crate::config::EdgeConfig;

/// The routing tables' maps. Their keys (hosts, paths) come from the operator and site
/// deploys, and lookups are every request's hottest work: foldhash, with a random
/// seed per process, instead of SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use crate::error::Result;
use crate::rules::{Headers, Redirects};
use crate::store::{Deploy, DeployId, FileEntry, SiteConfig, Store, WwwPolicy};

/// A file as served: what the response needs, computed once at load.
#[derive(Debug)]
pub(crate) struct ServedFile {
    pub hash: Arc<str>,
    pub size: u64,
    pub content_type: HeaderValue,
    pub etag: HeaderValue,
    pub br: Option<u64>,
    pub gz: Option<u64>,
    pub fingerprinted: bool,
    /// Precomputed headers of its plain 200 responses.
    pub hot: crate::hot::HotHeaders,
}

/// Shares equal values between deploys: content types, and per blob its hash and ETag,
/// so a file common to thousands of sites is held once.
#[derive(Default)]
pub(crate) struct Interner {
    types: HashMap<String, HeaderValue>,
    blobs: HashMap<String, (Arc<str>, HeaderValue)>,
}

/// A deploy ready to serve.
#[derive(Debug)]
pub(crate) struct LiveDeploy {
    pub site: Arc<str>,
    pub id: DeployId,
    pub files: HashMap<Box<str>, ServedFile>,
    pub redirects: Redirects,
    pub headers: Headers,
    pub last_modified: HeaderValue,
    pub modified: std::time::SystemTime,
    pub surrogate_key: HeaderValue,
    pub cache_tag: HeaderValue,
}

impl LiveDeploy {
    /// Builds the serving form of a deploy (reads its rule files from the store).
    pub(crate) fn load(
        store: &Store,
        deploy: Deploy,
        interner: &mut Interner,
    ) -> Result<LiveDeploy> {
        let (redirects, headers) = store.deploy_rules(&deploy)?;
        let modified = UNIX_EPOCH + Duration::from_secs(deploy.created);
        let last_modified = HeaderValue::from_str(&httpdate::fmt_http_date(modified))
            .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
        let mut files = HashMap::with_capacity_and_hasher(deploy.files.len(), Default::default());
        for (path, f) in deploy.files {
            let served = ServedFile::new(&path, &f, interner);
            files.insert(path.into_boxed_str(), served);
        }
        let tag = |sep: &str| {
            HeaderValue::from_str(&format!("site-{}{sep}deploy-{}", deploy.site, deploy.id))
                .unwrap_or(HeaderValue::from_static(""))
        };
        Ok(LiveDeploy {
            surrogate_key: tag(" "),
            cache_tag: tag(","),
            site: Arc::from(deploy.site.as_str()),
            id: deploy.id,
            files,
            redirects,
            headers,
            last_modified,
            modified,
        })
    }
}

impl ServedFile {
    /// The serving form of a file entry.
    fn new(path: &str, f: &FileEntry, interner: &mut Interner) -> ServedFile {
        let content_type = match interner.types.get(&f.content_type) {
            Some(v) => v.clone(),
            None => {
                let v = HeaderValue::from_str(&f.content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream"));
                interner.types.insert(f.content_type.clone(), v.clone());
                v
            }
        };
        let (hash, etag) = interner
            .blobs
            .entry(f.sha256.clone())
            .or_insert_with(|| {
                let etag = HeaderValue::from_str(&format!("\"{}\"", f.sha256))
                    .unwrap_or(HeaderValue::from_static("\"\""));
                (Arc::from(f.sha256.as_str()), etag)
            })
            .clone();
        ServedFile {
            hash,
            size: f.size,
            content_type,
            etag,
            br: f.br,
            gz: f.gz,
            fingerprinted: is_fingerprinted(path),
            hot: Default::default(),
        }
    }

    /// A copy with no precomputed headers.
    fn fresh_copy(&self) -> ServedFile {
        ServedFile {
            hash: self.hash.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            etag: self.etag.clone(),
            br: self.br,
            gz: self.gz,
            fingerprinted: self.fingerprinted,
            hot: Default::default(),
        }
    }
}

impl LiveDeploy {
    /// This deploy with some files replaced (`Some`) or removed (`None`) and, when
    /// given, new rules: how `qpage dev` updates what it serves without reloading every
    /// file's entry from the store.
    pub(crate) fn patched(
        &self,
        id: DeployId,
        changed: &[(String, Option<FileEntry>)],
        redirects: Option<Redirects>,
        headers: Option<Headers>,
    ) -> LiveDeploy {
        let mut interner = Interner::default();
        let mut files: HashMap<Box<str>, ServedFile> = self
            .files
            .iter()
            .map(|(k, v)| (k.clone(), v.fresh_copy()))
            .collect();
        for (path, entry) in changed {
            match entry {
                Some(f) => {
                    files.insert(
                        path.clone().into_boxed_str(),
                        ServedFile::new(path, f, &mut interner),
                    );
                }
                None => {
                    files.remove(path.as_str());
                }
            }
        }
        let (modified, last_modified) = now_modified(&self.last_modified);
        LiveDeploy {
            site: self.site.clone(),
            id,
            files,
            redirects: redirects.unwrap_or_else(|| self.redirects.clone()),
            headers: headers.unwrap_or_else(|| self.headers.clone()),
            last_modified,
            modified,
            surrogate_key: self.surrogate_key.clone(),
            cache_tag: self.cache_tag.clone(),
        }
    }
}

impl LiveDeploy {
    /// Replaces (`Some`) or removes (`None`) some files of this deploy in place, takes
    /// new rules when given, and makes it deploy `id`, modified now: how `qpage dev`
    /// brings its spare copy of the site up to date with work proportional to the
    /// change. Files not named keep their precomputed headers, which name the old
    /// modification time and rules: the caller must start a new header-policy
    /// generation ([`crate::hot`]) before serving this deploy.
    pub(crate) fn apply(
        &mut self,
        id: DeployId,
        changed: &[(String, Option<FileEntry>)],
        redirects: Option<Redirects>,
        headers: Option<Headers>,
    ) {
        let mut interner = Interner::default();
        for (path, entry) in changed {
            match entry {
                Some(f) => {
                    let served = ServedFile::new(path, f, &mut interner);
                    match self.files.get_mut(path.as_str()) {
                        Some(slot) => *slot = served,
                        None => {
                            self.files.insert(path.clone().into_boxed_str(), served);
                        }
                    }
                }
                None => {
                    self.files.remove(path.as_str());
                }
            }
        }
        if let Some(r) = redirects {
            self.redirects = r;
        }
        if let Some(h) = headers {
            self.headers = h;
        }
        self.id = id;
        (self.modified, self.last_modified) = now_modified(&self.last_modified);
    }
}

/// The current time as a deploy's modification time (whole seconds) and its
/// `Last-Modified` value (`fallback` if it cannot be formatted).
fn now_modified(fallback: &HeaderValue) -> (std::time::SystemTime, HeaderValue) {
    let secs = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let modified = UNIX_EPOCH + Duration::from_secs(secs);
    let last_modified = HeaderValue::from_str(&httpdate::fmt_http_date(modified))
        .unwrap_or_else(|_| fallback.clone());
    (modified, last_modified)
}

/// Whether a path names a fingerprinted asset: the last `.`- or `-`-separated part of
/// its file stem is 8 to 64 hex digits with at least one digit (e.g. `app.3f2a9c1b.css`).
pub(crate) fn is_fingerprinted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return false;
    };
    let part = stem.rsplit(['.', '-']).next().unwrap_or("");
    part != stem
        && (8..=64).contains(&part.len())
        && part.bytes().all(|b| b.is_ascii_hexdigit())
        && part.bytes().any(|b| b.is_ascii_digit())
}

/// One site in the routing table.
#[derive(Debug)]
pub(crate) struct SiteEntry {
    pub name: Arc<str>,
    pub config: SiteConfig,
    pub live: Option<Arc<LiveDeploy>>,
}

/// What the Host of a request leads to.
pub(crate) enum Route {
    /// Serve this site's live deploy.
    Live(Arc<LiveDeploy>, SiteClass),
    /// Serve a given deploy of a site (preview host).
    Preview(Arc<SiteEntry>, DeployId),
    /// Redirect to this host (www/apex policy) of this site.
    Host(String, Arc<str>),
    /// Nothing here: neutral 404.
    Unknown,
}

/// How a request reached its site (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteClass {
    /// A routed host or alias.
    Site,
    /// A wildcard preview host.
    Preview,
    /// The configured default site.
    Default,
    /// No site.
    Unknown,
}

impl SiteClass {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteClass::Site => "site",
            SiteClass::Preview => "preview",
            SiteClass::Default => "default",
            SiteClass::Unknown => "unknown",
        }
    }
}

/// Host -> site, with the preview domains and default site.
#[derive(Debug, Default)]
pub(crate) struct RoutingTable {
    hosts: HashMap<String, Arc<SiteEntry>>,
    sites: HashMap<String, Arc<SiteEntry>>,
    preview_domains: Vec<String>,
    default_site: Option<String>,
    pub epoch: u64,
}

/// Reads one site from the store: its settings and its live deploy (reused from
/// `previous` when unchanged). `None` when the site's settings cannot be read; a live
/// deploy that fails to load is logged and the site routed without one.
fn load_site(
    store: &Store,
    name: &str,
    previous: Option<&RoutingTable>,
    interner: &mut Interner,
) -> Option<Arc<SiteEntry>> {
    let site_cfg = match store.site_config(name) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(site = %name, error = %e, "site left out of routing");
            return None;
        }
    };
    let live = match store.live(name) {
        Ok(Some(id)) => {
            let reuse = previous
                .and_then(|p| p.sites.get(name))
                .and_then(|s| s.live.clone())
                .filter(|d| d.id == id);
            match reuse {
                Some(d) => Some(d),
                None => match store
                    .deploy(name, &id)
                    .and_then(|d| LiveDeploy::load(store, d, interner))
                {
                    Ok(d) => Some(Arc::new(d)),
                    Err(e) => {
                        tracing::warn!(site = %name, error = %e, "live deploy not loaded");
                        None
                    }
                },
            }
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(site = %name, error = %e, "live pointer unreadable");
            None
        }
    };
    Some(Arc::new(SiteEntry {
        name: Arc::from(name),
        config: site_cfg,
        live,
    }))
}

impl RoutingTable {
    /// Loads the table from the store, reusing deploys of `previous` that did not change.
    /// A site that fails to load is logged and left out; the rest still serve.
    pub(crate) fn load(
        store: &Store,
        config: &EdgeConfig,
        previous: Option<&RoutingTable>,
    ) -> Result<RoutingTable> {
        let epoch = store.epoch();
        let mut interner = Interner::default();
        let mut table = RoutingTable {
            preview_domains: config
                .routing
                .preview_domains
                .iter()
                .filter_map(|d| normalize_host(d))
                .collect(),
            default_site: config.routing.default_site.clone(),
            epoch,
            ..RoutingTable::default()
        };
        for name in store.list_sites()? {
            if let Some(entry) = load_site(store, &name, previous, &mut interner) {
                table.insert(entry);
            }
        }
        Ok(table)
    }

    /// A table with one site, served whatever the Host (`qpage dev`).
    pub(crate) fn single(name: &str, live: Arc<LiveDeploy>) -> RoutingTable {
        let entry = Arc::new(SiteEntry {
            name: Arc::from(name),
            config: SiteConfig::default(),
            live: Some(live),
        });
        let mut table = RoutingTable {
            default_site: Some(name.to_string()),
            ..RoutingTable::default()
        };
        table.sites.insert(name.to_string(), entry);
        table
    }

    /// The site a host (normalized) is routed to, by its hosts and aliases only.
    pub(crate) fn site_for_host(&self, host: &str) -> Option<&Arc<SiteEntry>> {
        self.hosts.get(host)
    }

    /// Every routed host and alias (the names certificates may be ordered for).
    pub(crate) fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// A copy of this table with one site re-read from the store (its settings and its
    /// live deploy; gone if the site was deleted), everything else shared: what an
    /// activation needs, without reading every site of a node that holds thousands.
    /// The copy keeps this table's epoch.
    pub(crate) fn with_site_reloaded(&self, store: &Store, name: &str) -> RoutingTable {
        let mut table = RoutingTable {
            hosts: self.hosts.clone(),
            sites: self.sites.clone(),
            preview_domains: self.preview_domains.clone(),
            default_site: self.default_site.clone(),
            epoch: self.epoch,
        };
        if table.sites.remove(name).is_some() {
            table.hosts.retain(|_, e| &*e.name != name);
        }
        let mut interner = Interner::default();
        if let Some(entry) = load_site(store, name, Some(self), &mut interner) {
            table.insert(entry);
        }
        table
    }

    /// Adds a site and its hosts; a host already routed to another site stays there.
    fn insert(&mut self, entry: Arc<SiteEntry>) {
        for host in entry.config.all_hosts() {
            let Some(h) = normalize_host(host) else {
                continue;
            };
            if let Some(other) = self.hosts.get(&h) {
                tracing::warn!(host = %h, kept = %other.name, ignored = %entry.name, "host routed to two sites");
                continue;
            }
            self.hosts.insert(h, entry.clone());
        }
        self.sites.insert(entry.name.to_string(), entry);
    }

    /// The live deploy of a site, by name.
    pub(crate) fn live_deploy(&self, site: &str) -> Option<Arc<LiveDeploy>> {
        self.sites.get(site).and_then(|s| s.live.clone())
    }

    /// Number of sites.
    pub(crate) fn site_count(&self) -> usize {
        self.sites.len()
    }

    /// Routes a raw Host value.
    pub(crate) fn route(&self, raw_host: Option<&str>) -> Route {
        let Some(host) = raw_host.and_then(host_key) else {
            return self.default_route();
        };
        let host: &str = &host;
        if let Some(site) = self.hosts.get(host) {
            let has = |h: &str| {
                site.config.hosts.iter().any(|x| x == h)
                    || site.config.aliases.iter().any(|x| x == h)
            };
            match site.config.www {
                WwwPolicy::Apex => {
                    if let Some(apex) = host.strip_prefix("www.")
                        && has(apex)
                    {
                        return Route::Host(apex.to_string(), site.name.clone());
                    }
                }
                WwwPolicy::Www => {
                    let www = format!("www.{host}");
                    if !host.starts_with("www.") && has(&www) {
                        return Route::Host(www, site.name.clone());
                    }
                }
                WwwPolicy::Off => {}
            }
            return match &site.live {
                Some(d) => Route::Live(d.clone(), SiteClass::Site),
                None => Route::Unknown,
            };
        }
        for domain in &self.preview_domains {
            let Some(label) = host
                .strip_suffix(domain.as_str())
                .and_then(|l| l.strip_suffix('.'))
            else {
                continue;
            };
            if label.is_empty() || label.contains('.') {
                return Route::Unknown;
            }
            let (deploy, site_name) = match label.split_once("--") {
                Some((d, s)) => (DeployId::parse(d), s),
                None => (None, label),
            };
            let Some(site) = self.sites.get(site_name) else {
                return Route::Unknown;
            };
            if label.contains("--") {
                return match deploy {
                    Some(id) => Route::Preview(site.clone(), id),
                    None => Route::Unknown,
                };
            }
            return match &site.live {
                Some(d) => Route::Live(d.clone(), SiteClass::Preview),
                None => Route::Unknown,
            };
        }
        self.default_route()
    }

    fn default_route(&self) -> Route {
        if let Some(name) = &self.default_site
            && let Some(site) = self.sites.get(name)
            && let Some(d) = &site.live
        {
            return Route::Live(d.clone(), SiteClass::Default);
        }
        Route::Unknown
    }
}

/// The routing key of a raw Host, without allocating when it is already normal.
pub(crate) fn host_key(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    let b = raw.as_bytes();
    if is_plain_host(b) {
        Some(std::borrow::Cow::Borrowed(raw))
    } else {
        normalize_host(raw).map(std::borrow::Cow::Owned)
    }
}

/// One pass: lowercase letters, digits, `-`, `_` and dots between labels of 1 to 63
/// bytes, at most 253 bytes: a host already in normal form.
fn is_plain_host(b: &[u8]) -> bool {
    if b.is_empty() || b.len() > 253 {
        return false;
    }
    let mut label = 0usize;
    for &c in b {
        if c == b'.' {
            if label == 0 {
                return false;
            }
            label = 0;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_' {
            label += 1;
            if label > 63 {
                return false;
            }
        } else {
            return false;
        }
    }
    label > 0
}

/// Normalizes a Host: lowercase, port and one trailing dot removed. `None` when the
/// value is not a plausible host name or IP literal.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        if !(after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())))
        {
            return None;
        }
        let inner = &rest[..end];
        if !inner
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        return Some(format!("[{}]", inner.to_ascii_lowercase()));
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let valid = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    valid.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_pass_host_check_agrees_with_the_label_rules() {
        let reference = |raw: &str| {
            let b = raw.as_bytes();
            !b.is_empty()
                && b.len() <= 253
                && b.iter().all(|c| {
                    c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || *c == b'-'
                        || *c == b'.'
                        || *c == b'_'
                })
                && b[0] != b'.'
                && b[b.len() - 1] != b'.'
                && !raw.contains("..")
                && raw.split('.').all(|l| l.len() <= 63)
        };
        let long_label = format!("{}.test", "a".repeat(64));
        let max_label = format!("{}.test", "a".repeat(63));
        let too_long = vec!["abcdefghi"; 26].join(".");
        let longest = too_long[..253].trim_end_matches('.').to_string();
        for h in [
            "a",
            "a.b",
            "example.com",
            "Example.com",
            ".a",
            "a.",
            "a..b",
            "",
            "a_b-c.d",
            "a:80",
            "[::1]",
            "a b",
            "xn--bcher-kva.example",
            &long_label,
            &max_label,
            &too_long,
            &longest,
        ] {
            assert_eq!(is_plain_host(h.as_bytes()), reference(h), "{h:?}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            normalize_host("Example.COM:8080").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            normalize_host("example.com.").as_deref(),
            Some("example.com")
        );
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("a..b"), None);
        assert_eq!(normalize_host("a/b"), None);
        assert_eq!(normalize_host(""), None);
    }

    #[test]
    fn fingerprints() {
        assert!(is_fingerprinted("/assets/app.3f2a9c1b.css"));
        assert!(is_fingerprinted("/main-0123abcd9.js"));
        assert!(!is_fingerprinted("/index.html"));
        assert!(!is_fingerprinted("/deadbeef.css"));
        assert!(!is_fingerprinted("/a.facebook.css"));
    }
}
