//! The publish API under `/v1/` on the admin listener (docs/publish-api.md,
//! docs/openapi.yaml): sites, deploys (manifest -> missing blobs -> uploads ->
//! finalize), activation now or at a time, rollback, purge and GC.
//!
//! Auth is a bearer token: the operator token (from `QPAGE_OPERATOR_TOKEN` or the file
//! named by `api.operator_token_file`) may do anything; a site token
//! (`s.<site>.<hex>`, made by `POST /v1/sites/{site}/tokens`) only touches its site.
//! Tokens are kept as sha256 digests and compared in constant time; every denied call
//! is logged and counted (`qpage_api_denied_total`).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{EdgeError, Result};
use crate::publish::{
    KnownBlobs, ManifestLimits, PendingFile, PublishManifest, Scheduled, ct_eq, now_secs,
    validate_manifest,
};
use crate::state::Shared;
use crate::store::{DeployId, SiteConfig, Store, check_site_name, hex, is_hash};

/// `[api]` in edge.toml: the publish API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// A file holding the operator token (used when `QPAGE_OPERATOR_TOKEN` is unset).
    pub operator_token_file: Option<PathBuf>,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
    /// Most files in one deploy.
    pub max_manifest_entries: usize,
    /// Longest file path in a manifest, in bytes.
    pub max_path_bytes: usize,
    /// Largest manifest body (after gzip decoding), in bytes.
    pub max_manifest_bytes: u64,
    /// Deploys kept per site (older ones are deleted after each activation; the live
    /// deploy and scheduled ones are always kept).
    pub keep_deploys: usize,
    /// GC never deletes a blob younger than this, in seconds.
    pub gc_grace_secs: u64,
    /// A pending deploy not finalized within this many seconds is dropped by GC.
    pub pending_ttl_secs: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            operator_token_file: None,
            max_blob_bytes: 256 * 1024 * 1024,
            max_manifest_entries: 100_000,
            max_path_bytes: 1024,
            max_manifest_bytes: 64 * 1024 * 1024,
            keep_deploys: 20,
            gc_grace_secs: 3600,
            pending_ttl_secs: 86_400,
        }
    }
}

impl ApiConfig {
    fn limits(&self) -> ManifestLimits {
        ManifestLimits {
            max_entries: self.max_manifest_entries,
            max_path_bytes: self.max_path_bytes,
            max_blob_bytes: self.max_blob_bytes,
        }
    }
}

const DENY_REASONS: [&str; 4] = ["missing", "invalid", "wrong_site", "operator_only"];

/// Blobs that a site's pending deploys declare: hash -> (size, content type).
type DeclaredBlobs = HashMap<String, (u64, String)>;

/// State of the API inside a running server.
#[derive(Default)]
pub(crate) struct ApiState {
    operator: Mutex<Option<[u8; 32]>>,
    gc_lock: tokio::sync::RwLock<()>,
    site_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per site: blobs that a pending deploy declares (hash -> size, content type).
    pending_index: Mutex<HashMap<String, DeclaredBlobs>>,
    schedule: Mutex<BTreeSet<(u64, String, DeployId)>>,
    denied: [AtomicU64; 4],
    calls: AtomicU64,
    blobs_received: AtomicU64,
    blob_bytes: AtomicU64,
    blobs_rejected: AtomicU64,
    activations: AtomicU64,
}

impl ApiState {
    /// Loads the operator token (environment first, then the configured file) and the
    /// scheduled activations of every site.
    pub(crate) fn init(&self, cfg: &ApiConfig, store: &Store) -> Result<()> {
        let token = match std::env::var("QPAGE_OPERATOR_TOKEN") {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
            _ => match &cfg.operator_token_file {
                Some(p) => {
                    let t = std::fs::read_to_string(p).map_err(|e| EdgeError::io(p, e))?;
                    let t = t.trim().to_string();
                    if t.len() < 16 {
                        return Err(EdgeError::Config(format!(
                            "{}: the operator token must be at least 16 characters",
                            p.display()
                        )));
                    }
                    Some(t)
                }
                None => None,
            },
        };
        if token.is_none() {
            tracing::info!(
                "publish API: no operator token (set QPAGE_OPERATOR_TOKEN or api.operator_token_file); only site tokens work"
            );
        }
        *lock(&self.operator) = token.map(|t| Sha256::digest(t.as_bytes()).into());
        let mut sched = lock(&self.schedule);
        sched.clear();
        for site in store.list_sites()? {
            for s in store.scheduled(&site).unwrap_or_default() {
                sched.insert((s.at, site.clone(), s.deploy));
            }
        }
        Ok(())
    }

    /// Prometheus lines for `/metrics`.
    pub(crate) fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        s.push_str("# HELP qpage_api_denied_total Publish API calls denied, by reason.\n# TYPE qpage_api_denied_total counter\n");
        for (i, r) in DENY_REASONS.iter().enumerate() {
            let _ = writeln!(
                s,
                "qpage_api_denied_total{{reason=\"{r}\"}} {}",
                self.denied[i].load(Relaxed)
            );
        }
        for (name, help, v) in [
            ("qpage_api_calls_total", "Publish API calls.", &self.calls),
            (
                "qpage_api_blobs_received_total",
                "Blobs uploaded and verified.",
                &self.blobs_received,
            ),
            (
                "qpage_api_blob_bytes_total",
                "Bytes of verified blob uploads.",
                &self.blob_bytes,
            ),
            (
                "qpage_api_blobs_rejected_total",
                "Blob uploads refused (hash mismatch, size, truncated).",
                &self.blobs_rejected,
            ),
            (
                "qpage_api_activations_total",
                "Deploys made live through the API or a schedule.",
                &self.activations,
            ),
        ] {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        }
        s
    }

    fn site_lock(&self, site: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.site_locks)
            .entry(site.to_string())
            .or_default()
            .clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An API failure: status and message.
struct Fail(StatusCode, String);

impl From<EdgeError> for Fail {
    fn from(e: EdgeError) -> Fail {
        let status = match &e {
            EdgeError::UnknownSite(_) | EdgeError::UnknownDeploy { .. } => StatusCode::NOT_FOUND,
            EdgeError::SiteName(_)
            | EdgeError::Host(_)
            | EdgeError::Manifest(_)
            | EdgeError::Rule { .. } => StatusCode::BAD_REQUEST,
            EdgeError::HostTaken { .. } | EdgeError::Conflict(_) => StatusCode::CONFLICT,
            _ => {
                tracing::error!(error = %e, "publish API: internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Fail(status, e.to_string())
    }
}

type Answer = std::result::Result<(StatusCode, serde_json::Value), Fail>;

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
    body.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Who a route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Operator,
    Site(String),
}

#[derive(Debug)]
enum Route {
    ListSites,
    Gc,
    Site(String),
    SiteTokens(String),
    Deploys(String),
    Blob(String, String),
    Finalize(String, DeployId),
    Activate(String, DeployId),
    Rollback(String),
    Schedule(String),
    Purge(String),
}

fn parse_route(path: &str) -> std::result::Result<Route, Fail> {
    let not_found = || Fail(StatusCode::NOT_FOUND, "no such API route".into());
    let rest = path.strip_prefix("/v1/").ok_or_else(not_found)?;
    let segs: Vec<&str> = rest.split('/').collect();
    let site = |s: &str| -> std::result::Result<String, Fail> {
        check_site_name(s).map_err(Fail::from)?;
        Ok(s.to_string())
    };
    let deploy = |s: &str| -> std::result::Result<DeployId, Fail> {
        DeployId::parse(s).ok_or_else(|| {
            Fail(
                StatusCode::BAD_REQUEST,
                format!("{s:?} is not a deploy id (16 lowercase hex digits)"),
            )
        })
    };
    Ok(match segs.as_slice() {
        ["sites"] => Route::ListSites,
        ["gc"] => Route::Gc,
        ["sites", s] => Route::Site(site(s)?),
        ["sites", s, "tokens"] => Route::SiteTokens(site(s)?),
        ["sites", s, "deploys"] => Route::Deploys(site(s)?),
        ["sites", s, "blobs", h] => {
            let s = site(s)?;
            if !is_hash(h) {
                return Err(Fail(
                    StatusCode::BAD_REQUEST,
                    format!("{h:?} is not a sha256 (64 lowercase hex digits)"),
                ));
            }
            Route::Blob(s, h.to_string())
        }
        ["sites", s, "deploys", d, "finalize"] => Route::Finalize(site(s)?, deploy(d)?),
        ["sites", s, "deploys", d, "activate"] => Route::Activate(site(s)?, deploy(d)?),
        ["sites", s, "rollback"] => Route::Rollback(site(s)?),
        ["sites", s, "schedule"] => Route::Schedule(site(s)?),
        ["sites", s, "purge"] => Route::Purge(site(s)?),
        _ => return Err(not_found()),
    })
}

fn scope_of(route: &Route, method: &Method) -> Scope {
    match route {
        Route::ListSites | Route::Gc | Route::SiteTokens(_) => Scope::Operator,
        Route::Site(s) if *method != Method::GET => Scope::Operator,
        Route::Site(s)
        | Route::Deploys(s)
        | Route::Blob(s, _)
        | Route::Finalize(s, _)
        | Route::Activate(s, _)
        | Route::Rollback(s)
        | Route::Schedule(s)
        | Route::Purge(s) => Scope::Site(s.clone()),
    }
}

/// Checks the bearer token against the scope; `Err(reason index)` when denied.
fn authorize(
    shared: &Shared,
    headers: &http::HeaderMap,
    scope: &Scope,
) -> std::result::Result<(), usize> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(0);
    };
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(op) = *lock(&shared.api.operator)
        && ct_eq(&op, &digest)
    {
        return Ok(());
    }
    // A site token names its site: `s.<site>.<hex>`.
    let token_site = token
        .strip_prefix("s.")
        .and_then(|t| t.split_once('.'))
        .map(|(s, _)| s)
        .filter(|s| check_site_name(s).is_ok());
    let Some(token_site) = token_site else {
        return Err(1);
    };
    if !shared.store.site_token_matches(token_site, &digest) {
        return Err(1);
    }
    match scope {
        Scope::Site(s) if s == token_site => Ok(()),
        Scope::Site(_) => Err(2),
        Scope::Operator => Err(3),
    }
}

/// Answers one `/v1/` request.
pub(crate) async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Response<Full<Bytes>> {
    shared.api.calls.fetch_add(1, Relaxed);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = match parse_route(&path) {
        Ok(r) => r,
        Err(Fail(status, msg)) => {
            return json_response(status, &serde_json::json!({ "error": msg }));
        }
    };
    let scope = scope_of(&route, &method);
    if let Err(reason) = authorize(&shared, req.headers(), &scope) {
        shared.api.denied[reason].fetch_add(1, Relaxed);
        let why = DENY_REASONS[reason];
        tracing::warn!(%peer, %method, path = %path, reason = why, "publish API call denied");
        let (status, msg) = if reason < 2 {
            (
                StatusCode::UNAUTHORIZED,
                "missing or invalid bearer token".to_string(),
            )
        } else if reason == 2 {
            (
                StatusCode::FORBIDDEN,
                "this token belongs to another site".to_string(),
            )
        } else {
            (
                StatusCode::FORBIDDEN,
                "this call needs the operator token".to_string(),
            )
        };
        let mut r = json_response(status, &serde_json::json!({ "error": msg }));
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"qpage\""),
            );
        }
        return r;
    }
    let result = dispatch(req, &method, route, &shared).await;
    match result {
        Ok((status, v)) => json_response(status, &v),
        Err(Fail(status, msg)) => {
            tracing::info!(%peer, %method, path = %path, status = status.as_u16(), error = %msg, "publish API call failed");
            json_response(status, &serde_json::json!({ "error": msg }))
        }
    }
}

fn method_not_allowed() -> Fail {
    Fail(StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> std::result::Result<T, Fail> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Fail::from),
        Err(e) => Err(Fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        )),
    }
}

async fn dispatch(
    req: Request<Incoming>,
    method: &Method,
    route: Route,
    shared: &Arc<Shared>,
) -> Answer {
    let store = shared.store.clone();
    let api_cfg = shared.config.load().api.clone();
    match (route, method.clone()) {
        (Route::ListSites, Method::GET) => {
            let list = blocking(move || {
                let mut out = Vec::new();
                for name in store.list_sites()? {
                    out.push(site_json(&store, &name)?);
                }
                Ok(out)
            })
            .await?;
            Ok((StatusCode::OK, serde_json::json!({ "sites": list })))
        }
        (Route::Site(site), Method::GET) => {
            let v = blocking(move || site_json(&store, &site)).await?;
            Ok((StatusCode::OK, v))
        }
        (Route::Site(site), Method::PUT) => {
            let body = read_body(req, 1024 * 1024).await?;
            let cfg: SiteConfig = serde_json::from_slice(&body)
                .map_err(|e| Fail(StatusCode::BAD_REQUEST, format!("site settings: {e}")))?;
            let lk = shared.api.site_lock(&site);
            let _g = lk.lock().await;
            let s2 = site.clone();
            let created = blocking(move || {
                let existed = store.site_config(&s2).is_ok();
                store.put_site(&s2, &cfg)?;
                Ok(!existed)
            })
            .await?;
            reload(shared).await;
            let v = blocking({
                let store = shared.store.clone();
                move || site_json(&store, &site)
            })
            .await?;
            Ok((
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                v,
            ))
        }
        (Route::Site(site), Method::DELETE) => {
            let lk = shared.api.site_lock(&site);
            let _g = lk.lock().await;
            let s2 = site.clone();
            blocking(move || store.delete_site(&s2)).await?;
            lock(&shared.api.schedule).retain(|(_, s, _)| *s != site);
            lock(&shared.api.pending_index).remove(&site);
            reload(shared).await;
            Ok((StatusCode::OK, serde_json::json!({ "deleted": site })))
        }
        (Route::SiteTokens(site), Method::POST) => {
            let token = blocking(move || store.add_site_token(&site)).await?;
            Ok((StatusCode::CREATED, serde_json::json!({ "token": token })))
        }
        (Route::SiteTokens(site), Method::DELETE) => {
            blocking(move || store.revoke_site_tokens(&site)).await?;
            Ok((StatusCode::OK, serde_json::json!({ "revoked": true })))
        }
        (Route::Deploys(site), Method::GET) => {
            let v = blocking(move || deploys_json(&store, &site)).await?;
            Ok((StatusCode::OK, v))
        }
        (Route::Deploys(site), Method::POST) => {
            let gzip = req
                .headers()
                .get(header::CONTENT_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            let raw = read_body(req, api_cfg.max_manifest_bytes).await?;
            let body = if gzip {
                gunzip_limited(&raw, api_cfg.max_manifest_bytes)?
            } else {
                raw.to_vec()
            };
            let limits = api_cfg.limits();
            let manifest: PublishManifest = serde_json::from_slice(&body)
                .map_err(|e| Fail(StatusCode::BAD_REQUEST, format!("manifest: {e}")))?;
            let files = validate_manifest(&manifest, &limits)?;
            let _gc = shared.api.gc_lock.read().await;
            let s2 = site.clone();
            let files2 = files.clone();
            let known = known_blobs(shared, &site);
            let (id, exists, missing) =
                blocking(move || store.begin_deploy(&s2, files2, &known)).await?;
            if !exists {
                let mut idx = lock(&shared.api.pending_index);
                let m = idx.entry(site.clone()).or_default();
                for f in files.into_values() {
                    m.insert(f.sha256, (f.size, f.content_type));
                }
            }
            Ok((
                if exists {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                },
                serde_json::json!({ "deploy": id, "exists": exists, "missing": missing }),
            ))
        }
        (Route::Blob(site, hash), Method::PUT) => {
            put_blob(req, shared, &site, &hash, api_cfg.max_blob_bytes).await
        }
        (Route::Finalize(site, id), Method::POST) => {
            let body = read_body(req, 64 * 1024).await?;
            let opts: FinalizeOptions = if body.iter().all(u8::is_ascii_whitespace) {
                FinalizeOptions::default()
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| Fail(StatusCode::BAD_REQUEST, format!("finalize options: {e}")))?
            };
            finalize(shared, site, id, opts).await
        }
        (Route::Activate(site, id), Method::POST) => {
            activate(shared, &site, &id).await?;
            Ok((
                StatusCode::OK,
                serde_json::json!({ "deploy": id, "live": true }),
            ))
        }
        (Route::Rollback(site), Method::POST) => {
            let s2 = site.clone();
            let target = blocking(move || {
                let live = store.live(&s2)?;
                let list = store.deploys_ordered(&s2)?;
                let pos = live
                    .as_ref()
                    .and_then(|l| list.iter().position(|(id, _)| id == l));
                match pos {
                    Some(p) if p > 0 => Ok(list[p - 1].0.clone()),
                    _ => Err(EdgeError::Conflict(
                        "no earlier deploy to roll back to".into(),
                    )),
                }
            })
            .await?;
            activate(shared, &site, &target).await?;
            Ok((
                StatusCode::OK,
                serde_json::json!({ "deploy": target, "live": true }),
            ))
        }
        (Route::Schedule(site), Method::GET) => {
            let list = blocking(move || store.scheduled(&site)).await?;
            Ok((StatusCode::OK, serde_json::json!({ "scheduled": list })))
        }
        (Route::Schedule(site), Method::DELETE) => {
            let lk = shared.api.site_lock(&site);
            let _g = lk.lock().await;
            let s2 = site.clone();
            blocking(move || store.set_scheduled(&s2, &[])).await?;
            lock(&shared.api.schedule).retain(|(_, s, _)| *s != site);
            Ok((StatusCode::OK, serde_json::json!({ "scheduled": [] })))
        }
        (Route::Purge(site), Method::POST) => {
            let hashes = blocking(move || {
                let mut hs = BTreeSet::new();
                for (id, _) in store.deploys(&site)? {
                    hs.extend(
                        store
                            .deploy(&site, &id)?
                            .files
                            .into_values()
                            .map(|f| f.sha256),
                    );
                }
                Ok(hs)
            })
            .await?;
            let mut evicted = 0u64;
            for h in &hashes {
                evicted += shared.blobs.invalidate_blob(h);
            }
            Ok((
                StatusCode::OK,
                serde_json::json!({ "blobs": hashes.len(), "evicted": evicted }),
            ))
        }
        (Route::Gc, Method::POST) => {
            let _gc = shared.api.gc_lock.write().await;
            let grace = Duration::from_secs(api_cfg.gc_grace_secs);
            let ttl = Duration::from_secs(api_cfg.pending_ttl_secs);
            let report = blocking(move || store.gc(grace, ttl)).await?;
            lock(&shared.api.pending_index).clear();
            tracing::info!(
                removed = report.blobs_removed,
                bytes = report.bytes_freed,
                "blob GC"
            );
            Ok((
                StatusCode::OK,
                serde_json::to_value(report).unwrap_or_default(),
            ))
        }
        _ => Err(method_not_allowed()),
    }
}

/// Body of `POST .../finalize`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinalizeOptions {
    /// Make the deploy live now (default true, unless `activate_at` is given).
    pub activate: Option<bool>,
    /// Make it live at this time (seconds since the Unix epoch); survives restarts.
    pub activate_at: Option<u64>,
}

async fn finalize(
    shared: &Arc<Shared>,
    site: String,
    id: DeployId,
    opts: FinalizeOptions,
) -> Answer {
    let lk = shared.api.site_lock(&site);
    let guard = lk.lock().await;
    {
        let _gc = shared.api.gc_lock.read().await;
        let store = shared.store.clone();
        let (s2, i2) = (site.clone(), id.clone());
        let known = known_blobs(shared, &site);
        blocking(move || store.finish_deploy(&s2, &i2, &known)).await?;
    }
    // The site's remaining pending uploads are re-read from disk when next needed.
    lock(&shared.api.pending_index).remove(&site);
    let now = now_secs();
    match opts.activate_at {
        Some(at) if at > now => {
            let store = shared.store.clone();
            let (s2, i2) = (site.clone(), id.clone());
            blocking(move || {
                let mut list = store.scheduled(&s2)?;
                list.retain(|s| !(s.deploy == i2 && s.at == at));
                list.push(Scheduled { deploy: i2, at });
                list.sort_by_key(|s| s.at);
                store.set_scheduled(&s2, &list)
            })
            .await?;
            lock(&shared.api.schedule).insert((at, site.clone(), id.clone()));
            tracing::info!(site = %site, deploy = %id, at, "deploy scheduled");
            Ok((
                StatusCode::OK,
                serde_json::json!({ "deploy": id, "live": false, "activate_at": at }),
            ))
        }
        _ if opts.activate == Some(false) && opts.activate_at.is_none() => Ok((
            StatusCode::OK,
            serde_json::json!({ "deploy": id, "live": false }),
        )),
        _ => {
            drop(guard);
            activate(shared, &site, &id).await?;
            Ok((
                StatusCode::OK,
                serde_json::json!({ "deploy": id, "live": true }),
            ))
        }
    }
}

/// Makes a deploy live: the `live` pointer is renamed into place, then the in-memory
/// routing is swapped, then deploys beyond `keep_deploys` are pruned.
async fn activate(
    shared: &Arc<Shared>,
    site: &str,
    id: &DeployId,
) -> std::result::Result<(), Fail> {
    let lk = shared.api.site_lock(site);
    let _g = lk.lock().await;
    let keep = shared.config.load().api.keep_deploys;
    let store = shared.store.clone();
    let (s2, i2) = (site.to_string(), id.clone());
    let epochs = blocking(move || {
        let epochs = store.activate_epoch(&s2, &i2)?;
        let list = store.scheduled(&s2)?;
        if list.iter().any(|s| s.deploy == i2) {
            let rest: Vec<Scheduled> = list.into_iter().filter(|s| s.deploy != i2).collect();
            store.set_scheduled(&s2, &rest)?;
        }
        Ok(epochs)
    })
    .await?;
    lock(&shared.api.schedule).retain(|(_, s, d)| !(s == site && d == id));
    shared.api.activations.fetch_add(1, Relaxed);
    if let Err(e) = shared.reload_site(site, epochs).await {
        tracing::warn!(site, error = %e, "routing reload failed; the poller will retry");
    }
    tracing::info!(site, deploy = %id, "deploy live");
    let store = shared.store.clone();
    let s2 = site.to_string();
    match blocking(move || store.prune(&s2, keep.max(2))).await {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(site, removed = removed.len(), "old deploys pruned")
        }
        Ok(_) => {}
        Err(Fail(_, e)) => tracing::warn!(site, error = %e, "pruning deploys failed"),
    }
    Ok(())
}

/// The blobs of the site's live deploy, which begin and finalize need not look up.
/// Called under the GC lock, so none of them can be collected meanwhile.
fn known_blobs(shared: &Shared, site: &str) -> KnownBlobs {
    let mut known = KnownBlobs::default();
    if let Some(live) = shared.table.load().live_deploy(site) {
        for f in live.files.values() {
            if let Ok(ct) = f.content_type.to_str() {
                known.insert(f.hash.clone(), ct, f.br, f.gz);
            }
        }
    }
    known
}

async fn reload(shared: &Arc<Shared>) {
    if let Err(e) = shared.reload(None).await {
        tracing::warn!(error = %e, "routing reload failed; the poller will retry");
    }
}

/// Runs scheduled activations when they fall due (and, after a restart, those whose
/// time passed while the node was down).
pub(crate) async fn scheduler(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let due: Vec<(u64, String, DeployId)> = {
            let now = now_secs();
            let sched = lock(&shared.api.schedule);
            sched
                .iter()
                .take_while(|(at, _, _)| *at <= now)
                .cloned()
                .collect()
        };
        for (at, site, id) in due {
            tracing::info!(site = %site, deploy = %id, at, "scheduled activation due");
            if let Err(Fail(_, e)) = activate(&shared, &site, &id).await {
                tracing::warn!(site = %site, deploy = %id, error = %e, "scheduled activation failed; dropped");
                lock(&shared.api.schedule).remove(&(at, site.clone(), id.clone()));
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

async fn put_blob(
    req: Request<Incoming>,
    shared: &Arc<Shared>,
    site: &str,
    hash: &str,
    max_blob: u64,
) -> Answer {
    let store = shared.store.clone();
    // Only blobs a pending deploy of this site declares may be uploaded, at their size.
    let declared = declared_blob(shared, site, hash).await?;
    let Some((size, content_type)) = declared else {
        return Err(Fail(
            StatusCode::CONFLICT,
            format!("blob {hash} is not part of a pending deploy of site {site}"),
        ));
    };
    if size > max_blob {
        return Err(Fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("blob of {size} bytes is over the limit of {max_blob}"),
        ));
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len != size
    {
        shared.api.blobs_rejected.fetch_add(1, Relaxed);
        return Err(Fail(
            if len > size {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            },
            format!("content-length {len} differs from the declared size {size}"),
        ));
    }
    let _gc = shared.api.gc_lock.read().await;
    if store
        .blob_path(hash, crate::store::Variant::Identity)
        .exists()
    {
        // Drain nothing: the connection is closed if the client keeps sending.
        return Ok((
            StatusCode::OK,
            serde_json::json!({ "sha256": hash, "stored": false }),
        ));
    }
    let tmp_dir = store.tmp_dir();
    let _ = tokio::fs::create_dir_all(&tmp_dir).await;
    static N: AtomicU64 = AtomicU64::new(0);
    let tmp = tmp_dir.join(format!(
        "upload-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Relaxed),
        &hash[..16]
    ));
    let received = receive(req.into_body(), &tmp, size).await;
    let (got, digest) = match received {
        Ok(x) => x,
        Err(f) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            shared.api.blobs_rejected.fetch_add(1, Relaxed);
            return Err(f);
        }
    };
    if got != size || digest != hash {
        let _ = tokio::fs::remove_file(&tmp).await;
        shared.api.blobs_rejected.fetch_add(1, Relaxed);
        return Err(Fail(
            StatusCode::BAD_REQUEST,
            if got != size {
                format!("received {got} bytes, declared {size} (truncated upload?)")
            } else {
                format!("content hashes to {digest}, not {hash}")
            },
        ));
    }
    let h2 = hash.to_string();
    let tmp2 = tmp.clone();
    let installed = blocking(move || {
        store.install_blob(&tmp2, &h2)?;
        store.ensure_variants(&h2, &content_type)
    })
    .await;
    if let Err(f) = installed {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(f);
    }
    shared.api.blobs_received.fetch_add(1, Relaxed);
    shared.api.blob_bytes.fetch_add(size, Relaxed);
    Ok((
        StatusCode::CREATED,
        serde_json::json!({ "sha256": hash, "stored": true }),
    ))
}

/// Streams a body to `tmp` (never more than `size` bytes), fsyncs it and returns the
/// byte count and hex sha256.
async fn receive(
    mut body: Incoming,
    tmp: &std::path::Path,
    size: u64,
) -> std::result::Result<(u64, String), Fail> {
    let io = |e: std::io::Error| {
        Fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing the upload: {e}"),
        )
    };
    let mut file = tokio::fs::File::create(tmp).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut got = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Fail(
                StatusCode::BAD_REQUEST,
                format!("upload interrupted after {got} bytes: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        got += data.len() as u64;
        if got > size {
            return Err(Fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("more than the declared {size} bytes"),
            ));
        }
        hasher.update(&data);
        file.write_all(&data).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    Ok((got, hex(&hasher.finalize())))
}

async fn declared_blob(
    shared: &Arc<Shared>,
    site: &str,
    hash: &str,
) -> std::result::Result<Option<(u64, String)>, Fail> {
    {
        let idx = lock(&shared.api.pending_index);
        if let Some(m) = idx.get(site) {
            return Ok(m.get(hash).cloned());
        }
    }
    // Not loaded (e.g. after a restart): read the site's pending deploys once.
    let store = shared.store.clone();
    let s2 = site.to_string();
    let pend = blocking(move || store.pending_deploys(&s2)).await?;
    let mut m: HashMap<String, (u64, String)> = HashMap::new();
    for p in pend {
        for PendingFile {
            sha256,
            size,
            content_type,
        } in p.files.into_values()
        {
            m.insert(sha256, (size, content_type));
        }
    }
    let found = m.get(hash).cloned();
    lock(&shared.api.pending_index).insert(site.to_string(), m);
    Ok(found)
}

async fn read_body(req: Request<Incoming>, limit: u64) -> std::result::Result<Bytes, Fail> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(Fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body of {len} bytes is over the limit of {limit}"),
        ));
    }
    let limited = http_body_util::Limited::new(req.into_body(), limit as usize);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(Fail(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body over the limit of {limit} bytes"),
                ))
            } else {
                Err(Fail(
                    StatusCode::BAD_REQUEST,
                    format!("reading the body: {e}"),
                ))
            }
        }
    }
}

fn gunzip_limited(raw: &[u8], limit: u64) -> std::result::Result<Vec<u8>, Fail> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(raw).take(limit + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| Fail(StatusCode::BAD_REQUEST, format!("gzip body: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("manifest over the limit of {limit} bytes once decompressed"),
        ));
    }
    Ok(out)
}

fn site_json(store: &Store, name: &str) -> Result<serde_json::Value> {
    let cfg = store.site_config(name)?;
    let live = store.live(name)?;
    Ok(serde_json::json!({
        "name": name,
        "hosts": cfg.hosts,
        "aliases": cfg.aliases,
        "www": cfg.www,
        "live": live,
        "scheduled": store.scheduled(name)?,
    }))
}

fn deploys_json(store: &Store, site: &str) -> Result<serde_json::Value> {
    let live = store.live(site)?;
    let mut list = Vec::new();
    for (id, created) in store.deploys_ordered(site)? {
        let d = store.deploy(site, &id)?;
        let bytes: u64 = d.files.values().map(|f| f.size).sum();
        list.push(serde_json::json!({
            "id": id,
            "created": created,
            "files": d.files.len(),
            "bytes": bytes,
            "live": live.as_ref() == Some(&id),
        }));
    }
    let pending: Vec<DeployId> = store
        .pending_deploys(site)?
        .into_iter()
        .map(|p| p.id)
        .collect();
    Ok(serde_json::json!({
        "live": live,
        "deploys": list,
        "pending": pending,
        "scheduled": store.scheduled(site)?,
    }))
}
