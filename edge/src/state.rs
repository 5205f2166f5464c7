//! The node's shared state: configuration-derived header policy, the routing table,
//! the blob and preview caches, metrics; and reloading them without a restart.

use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue};

use crate::cache::BlobCache;
use crate::config::EdgeConfig;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::routing::{LiveDeploy, RoutingTable};
use crate::store::{DeployId, Store};

/// Header values derived from the configuration, computed once per (re)load.
pub(crate) struct Policy {
    pub immutable: HeaderValue,
    pub revalidate: HeaderValue,
    pub cdn: HeaderValue,
    pub security: Vec<(HeaderName, HeaderValue)>,
    pub redirect_scheme: String,
    pub request_timeout: std::time::Duration,
    pub response_deadline: std::time::Duration,
    /// Identifies this policy for the precomputed headers of [`crate::hot`].
    pub generation: u64,
}

impl Policy {
    pub(crate) fn new(cfg: &EdgeConfig) -> Policy {
        let revalidate = format!(
            "public, max-age={}, must-revalidate, s-maxage={}",
            cfg.http.browser_max_age, cfg.http.cdn_max_age
        );
        Policy {
            immutable: HeaderValue::from_static("public, max-age=31536000, immutable"),
            revalidate: HeaderValue::from_str(&revalidate).unwrap_or(HeaderValue::from_static(
                "public, max-age=0, must-revalidate",
            )),
            cdn: HeaderValue::from_str(&format!("max-age={}", cfg.http.cdn_max_age))
                .unwrap_or(HeaderValue::from_static("max-age=0")),
            security: cfg
                .http
                .security_headers
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        HeaderName::from_bytes(k.as_bytes()).ok()?,
                        HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect(),
            redirect_scheme: cfg.routing.redirect_scheme.clone(),
            request_timeout: std::time::Duration::from_millis(cfg.limits.request_timeout_ms),
            response_deadline: std::time::Duration::from_millis(cfg.limits.response_deadline_ms),
            generation: crate::hot::next_generation(),
        }
    }
}

/// Everything a request handler reads.
pub(crate) struct Shared {
    pub store: Store,
    pub config: ArcSwap<EdgeConfig>,
    pub policy: ArcSwap<Policy>,
    pub table: ArcSwap<RoutingTable>,
    pub blobs: BlobCache,
    pub previews: moka::sync::Cache<(Arc<str>, DeployId), Arc<LiveDeploy>>,
    pub metrics: Metrics,
    pub draining: std::sync::atomic::AtomicBool,
    /// The publish API's tokens, locks, upload index and schedule.
    pub api: crate::api::ApiState,
    /// The access-event queue; `None` when events are off.
    pub events: Option<crate::events::Events>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    pub(crate) fn new(
        cfg: EdgeConfig,
        store: Store,
        table: RoutingTable,
        metrics: Metrics,
        events: Option<crate::events::Events>,
    ) -> Shared {
        let blobs = BlobCache::new(
            store.clone(),
            cfg.cache.max_bytes,
            cfg.cache.max_object_bytes,
        );
        Shared {
            store,
            policy: ArcSwap::from_pointee(Policy::new(&cfg)),
            config: ArcSwap::from_pointee(cfg),
            table: ArcSwap::from_pointee(table),
            blobs,
            previews: moka::sync::Cache::new(256),
            metrics,
            draining: std::sync::atomic::AtomicBool::new(false),
            api: crate::api::ApiState::default(),
            events,
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Reloads the routing table from the store (reusing unchanged deploys), and with
    /// `config` also the header policy and routing settings.
    pub(crate) async fn reload(self: &Arc<Self>, config: Option<EdgeConfig>) -> Result<usize> {
        let _guard = self.reload_lock.lock().await;
        if let Some(cfg) = config {
            self.policy.store(Arc::new(Policy::new(&cfg)));
            self.config.store(Arc::new(cfg));
        }
        let me = self.clone();
        let table = tokio::task::spawn_blocking(move || {
            let cfg = me.config.load_full();
            let old = me.table.load_full();
            RoutingTable::load(&me.store, &cfg, Some(&old))
        })
        .await
        .map_err(|e| crate::error::EdgeError::Config(format!("reload task failed: {e}")))??;
        let n = table.site_count();
        self.table.store(Arc::new(table));
        self.previews.invalidate_all();
        tracing::info!(sites = n, "routing reloaded");
        Ok(n)
    }

    /// A deploy for a preview host, loaded on first use.
    pub(crate) async fn preview(
        self: &Arc<Self>,
        site: &Arc<str>,
        id: &DeployId,
    ) -> Option<Arc<LiveDeploy>> {
        let key = (site.clone(), id.clone());
        if let Some(d) = self.previews.get(&key) {
            return Some(d);
        }
        let store = self.store.clone();
        let (s, i) = (site.to_string(), id.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let deploy = store.deploy(&s, &i)?;
            LiveDeploy::load(&store, deploy, &mut Default::default())
        })
        .await
        .ok()?
        .ok()?;
        let d = Arc::new(loaded);
        self.previews.insert(key, d.clone());
        Some(d)
    }
}
