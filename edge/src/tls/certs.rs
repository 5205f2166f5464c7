//! The certificate store: SNI name -> certificate, answered with one hash lookup (then
//! one for the wildcard of the parent domain) however many certificates there are.
//!
//! ACME certificates live in `data/certs/<name>.pem` (private key and chain in one file,
//! mode 0600, replaced by rename so key and chain always match). Opening the store only
//! lists that directory; a certificate is read and parsed on its first handshake (or by
//! the background warm-up), so a node with 50,000 certificates starts in seconds.
//! Operator-provided files are loaded eagerly and win over ACME for the names they
//! cover. Replacing a certificate swaps one pointer: open connections keep the old one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use arc_swap::{ArcSwap, ArcSwapOption};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::error::{EdgeError, Result};

/// A certificate ready for handshakes, with what the node needs to know about it.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub info: CertInfo,
}

/// Facts read from a leaf certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    /// DNS names of its subjectAltName (lowercase; wildcards as `*.example.com`).
    pub names: Arc<[String]>,
    /// Validity, in seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// The ACME Renewal Information identifier (`AKI.serial`), when it has an AKI.
    pub ari_id: Option<instant_acme::CertificateIdentifier<'static>>,
}

/// Whether certificate name `name` covers `host`.
pub(crate) fn name_matches(name: &str, host: &str) -> bool {
    if name == host {
        return true;
    }
    match (name.strip_prefix("*."), host.split_once('.')) {
        (Some(parent), Some((label, rest))) => !label.is_empty() && rest == parent,
        _ => false,
    }
}

/// One ACME-managed name: its file, loaded on first use.
#[derive(Debug)]
struct Slot {
    loaded: ArcSwapOption<Loaded>,
    /// Set when the file could not be loaded, so handshakes do not retry it each time.
    broken: AtomicBool,
}

/// Counters about the store.
#[derive(Debug, Default)]
pub(crate) struct StoreStats {
    pub loads: AtomicU64,
    pub load_failures: AtomicU64,
}

/// Every certificate the node can present.
#[derive(Debug)]
pub(crate) struct CertStore {
    dir: PathBuf,
    slots: RwLock<HashMap<Box<str>, Arc<Slot>>>,
    /// Operator-provided certificates by each name they cover.
    files: ArcSwap<HashMap<String, Arc<Loaded>>>,
    pub stats: StoreStats,
}

impl CertStore {
    /// Opens `dir` (creating it, mode 0700) and indexes the certificate files in it
    /// without reading them.
    pub(crate) fn open(dir: &Path) -> Result<CertStore> {
        create_private_dir(dir)?;
        let mut slots = HashMap::new();
        let rd = std::fs::read_dir(dir).map_err(|e| EdgeError::io(dir, e))?;
        for entry in rd {
            let entry = entry.map_err(|e| EdgeError::io(dir, e))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".pem")) else {
                continue;
            };
            if let Some(name) = name_from_file(name) {
                slots.insert(name.into_boxed_str(), Arc::new(Slot::empty()));
            }
        }
        Ok(CertStore {
            dir: dir.to_path_buf(),
            slots: RwLock::new(slots),
            files: ArcSwap::from_pointee(HashMap::new()),
            stats: StoreStats::default(),
        })
    }

    /// Number of ACME-managed certificate files.
    pub(crate) fn len(&self) -> usize {
        self.read_slots().len()
    }

    fn read_slots(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, Arc<Slot>>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The certificate for an SNI name (lowercase): operator files first, then ACME;
    /// each exact, then the wildcard of the parent domain.
    pub(crate) fn get(&self, sni: &str) -> Option<Arc<Loaded>> {
        let files = self.files.load();
        if !files.is_empty()
            && let Some(l) = files.get(sni).or_else(|| files.get(&wildcard_of(sni)?))
        {
            return Some(l.clone());
        }
        if let Some(l) = self.get_managed(sni) {
            return Some(l);
        }
        self.get_managed(&wildcard_of(sni)?)
    }

    /// The ACME-managed certificate stored under exactly `name`, loading it if needed.
    pub(crate) fn get_managed(&self, name: &str) -> Option<Arc<Loaded>> {
        let slot = self.read_slots().get(name)?.clone();
        if let Some(l) = slot.loaded.load_full() {
            return Some(l);
        }
        if slot.broken.load(Ordering::Relaxed) {
            return None;
        }
        let path = self.path_of(name);
        match load_bundle(&path) {
            Ok(l) => {
                self.stats.loads.fetch_add(1, Ordering::Relaxed);
                let l = Arc::new(l);
                slot.loaded.store(Some(l.clone()));
                Some(l)
            }
            Err(e) => {
                self.stats.load_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(name, error = %e, "certificate file not usable");
                slot.broken.store(true, Ordering::Relaxed);
                None
            }
        }
    }

    /// Whether a host has a certificate (exact, wildcard, or an operator file): such a
    /// host is never ordered for.
    pub(crate) fn has(&self, host: &str) -> bool {
        let files = self.files.load();
        if files.contains_key(host) || wildcard_of(host).is_some_and(|w| files.contains_key(&w)) {
            return true;
        }
        let slots = self.read_slots();
        slots.contains_key(host)
            || wildcard_of(host).is_some_and(|w| slots.contains_key(w.as_str()))
    }

    /// Whether an operator file covers `host`.
    pub(crate) fn operator_covers(&self, host: &str) -> bool {
        let files = self.files.load();
        files.contains_key(host) || wildcard_of(host).is_some_and(|w| files.contains_key(&w))
    }

    /// Names of the ACME-managed certificates.
    pub(crate) fn managed_names(&self) -> Vec<String> {
        self.read_slots().keys().map(|k| k.to_string()).collect()
    }

    /// Loads every ACME-managed certificate not loaded yet; returns how many it loaded.
    pub(crate) fn warm(&self) -> usize {
        let names: Vec<String> = self
            .read_slots()
            .iter()
            .filter(|(_, s)| s.loaded.load().is_none() && !s.broken.load(Ordering::Relaxed))
            .map(|(k, _)| k.to_string())
            .collect();
        names
            .iter()
            .filter(|n| self.get_managed(n).is_some())
            .count()
    }

    /// ACME-managed certificate files not read yet.
    pub(crate) fn unloaded(&self) -> usize {
        self.read_slots()
            .values()
            .filter(|s| s.loaded.load().is_none())
            .count()
    }

    /// Loaded certificates (ACME and operator), for metrics.
    pub(crate) fn loaded(&self) -> Vec<Arc<Loaded>> {
        let mut out: Vec<Arc<Loaded>> = self
            .read_slots()
            .values()
            .filter_map(|s| s.loaded.load_full())
            .collect();
        let files = self.files.load();
        let mut seen = std::collections::HashSet::new();
        for l in files.values() {
            if seen.insert(Arc::as_ptr(l) as usize) {
                out.push(l.clone());
            }
        }
        out
    }

    /// Stores a new certificate (PEM: private key and chain) for an ACME-managed name
    /// and swaps it in: new handshakes get it at once.
    pub(crate) fn install(
        &self,
        name: &str,
        key_pem: &str,
        chain_pem: &str,
    ) -> Result<Arc<Loaded>> {
        let mut bundle = String::with_capacity(key_pem.len() + chain_pem.len() + 1);
        bundle.push_str(key_pem.trim_end());
        bundle.push('\n');
        bundle.push_str(chain_pem);
        let loaded = Arc::new(parse_bundle(bundle.as_bytes(), &self.path_of(name))?);
        write_private(&self.path_of(name), bundle.as_bytes())?;
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let slot = slots
            .entry(name.into())
            .or_insert_with(|| Arc::new(Slot::empty()))
            .clone();
        drop(slots);
        slot.broken.store(false, Ordering::Relaxed);
        slot.loaded.store(Some(loaded.clone()));
        Ok(loaded)
    }

    /// Replaces the operator-provided certificates (on start and on SIGHUP). A file
    /// that fails to load is reported and the others still apply.
    pub(crate) fn set_files(&self, files: &[crate::tls::config::CertFiles]) -> Vec<EdgeError> {
        let mut map = HashMap::new();
        let mut errors = Vec::new();
        for f in files {
            match load_pair(&f.cert, &f.key) {
                Ok(l) => {
                    let l = Arc::new(l);
                    for n in l.info.names.iter() {
                        map.insert(n.clone(), l.clone());
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        self.files.store(Arc::new(map));
        errors
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{}.pem", file_of_name(name)))
    }
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            loaded: ArcSwapOption::empty(),
            broken: AtomicBool::new(false),
        }
    }
}

/// `*.example.com` for `a.example.com`.
fn wildcard_of(host: &str) -> Option<String> {
    let (_, parent) = host.split_once('.')?;
    parent.contains('.').then(|| format!("*.{parent}"))
}

/// The file stem for a certificate name (`*` cannot appear in host names; `_wildcard`
/// stands for it).
fn file_of_name(name: &str) -> String {
    match name.strip_prefix("*.") {
        Some(rest) => format!("_wildcard.{rest}"),
        None => name.to_string(),
    }
}

fn name_from_file(stem: &str) -> Option<String> {
    let name = match stem.strip_prefix("_wildcard.") {
        Some(rest) => format!("*.{rest}"),
        None => stem.to_string(),
    };
    let check = name.strip_prefix("*.").unwrap_or(&name);
    crate::routing::normalize_host(check)
        .filter(|h| h == check)
        .map(|_| name)
}

/// Reads and parses a `<name>.pem` bundle.
fn load_bundle(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| EdgeError::io(path, e))?;
    parse_bundle(&bytes, path)
}

fn load_pair(cert: &Path, key: &Path) -> Result<Loaded> {
    let c = std::fs::read(cert).map_err(|e| EdgeError::io(cert, e))?;
    let k = std::fs::read(key).map_err(|e| EdgeError::io(key, e))?;
    let chain = parse_chain(&c, cert)?;
    let key =
        PrivateKeyDer::from_pem_slice(&k).map_err(|e| bad(key, format!("no private key: {e}")))?;
    certified(chain, key, cert)
}

/// Parses PEM text holding a private key and a certificate chain (leaf first).
pub(crate) fn parse_bundle(bytes: &[u8], path: &Path) -> Result<Loaded> {
    let chain = parse_chain(bytes, path)?;
    let key = PrivateKeyDer::from_pem_slice(bytes)
        .map_err(|e| bad(path, format!("no private key: {e}")))?;
    certified(chain, key, path)
}

fn parse_chain(bytes: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(path, format!("unreadable certificate: {e}")))?;
    if chain.is_empty() {
        return Err(bad(
            path,
            "no certificate (expected PEM \"CERTIFICATE\" blocks)".into(),
        ));
    }
    Ok(chain)
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    path: &Path,
) -> Result<Loaded> {
    let info = cert_info(&chain[0]).map_err(|m| bad(path, m))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| bad(path, format!("unsupported private key: {e}")))?;
    let key = CertifiedKey::new(chain, signer);
    key.keys_match().map_err(|e| {
        bad(
            path,
            format!("private key does not match the certificate: {e}"),
        )
    })?;
    Ok(Loaded {
        key: Arc::new(key),
        info,
    })
}

fn bad(path: &Path, message: String) -> EdgeError {
    EdgeError::Parse {
        path: path.to_path_buf(),
        message,
    }
}

/// Reads names, validity and ARI identifier from a leaf certificate.
pub(crate) fn cert_info(der: &CertificateDer<'_>) -> std::result::Result<CertInfo, String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) =
        X509Certificate::from_der(der.as_ref()).map_err(|e| format!("bad certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    let ari_id = instant_acme::CertificateIdentifier::try_from(der)
        .ok()
        .map(|id| id.into_owned());
    Ok(CertInfo {
        names: names.into(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        ari_id,
    })
}

/// Creates a directory readable by the owner only.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| EdgeError::io(dir, e))
}

/// Writes a file with mode 0600 atomically (temp file, fsync, rename, fsync dir).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    crate::store::write_atomic_in(dir, path, bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name_matches("*.example.com", "a.example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(name_matches("example.com", "example.com"));
        assert_eq!(
            wildcard_of("a.example.com").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(wildcard_of("example.com"), None);
        assert_eq!(file_of_name("*.example.com"), "_wildcard.example.com");
        assert_eq!(
            name_from_file("_wildcard.example.com").as_deref(),
            Some("*.example.com")
        );
        assert_eq!(name_from_file("Bad Name"), None);
    }
}
