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
    /// The TLS layer, when `tls.listen` is set.
    pub tls: std::sync::OnceLock<Arc<crate::tls::Tls>>,
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
            tls: std::sync::OnceLock::new(),
            reload_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Reloads the routing table from the store (reusing unchanged deploys), and with
    /// `config` also the header policy and routing settings.
    pub(crate) async fn reload(self: &Arc<Self>, config: Option<EdgeConfig>) -> Result<usize> {
        let _guard = self.reload_lock.lock().await;
        if let Some(cfg) = config {
            if let Some(tls) = self.tls.get() {
                tls.reload_files(&cfg.tls);
            }
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

    /// Re-reads one site into the routing table after this server changed it (an
    /// activation), without reading every other site. `epochs` is the store's epoch
    /// before and after that change: when nothing else moved it, the table takes the
    /// new epoch; otherwise the store poller's full reload picks up the rest.
    pub(crate) async fn reload_site(
        self: &Arc<Self>,
        site: &str,
        epochs: (u64, u64),
    ) -> Result<()> {
        let _guard = self.reload_lock.lock().await;
        let me = self.clone();
        let name = site.to_string();
        let table = tokio::task::spawn_blocking(move || {
            let old = me.table.load_full();
            let mut table = old.with_site_reloaded(&me.store, &name);
            if old.epoch == epochs.0 && me.store.epoch() == epochs.1 {
                table.epoch = epochs.1;
            }
            table
        })
        .await
        .map_err(|e| crate::error::EdgeError::Config(format!("reload task failed: {e}")))?;
        self.table.store(Arc::new(table));
        self.previews.invalidate_all();
        tracing::debug!(site, "routing reloaded for one site");
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Route;
    use crate::store::SiteConfig;

    fn site(store: &Store, dir: &std::path::Path, name: &str, body: &str) -> DeployId {
        store
            .put_site(
                name,
                &SiteConfig {
                    hosts: vec![format!("{name}.test")],
                    ..Default::default()
                },
            )
            .unwrap();
        let dist = dir.join(format!("{name}-{body}"));
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(dist.join("index.html"), body).unwrap();
        store.import_dir(name, &dist).unwrap()
    }

    fn live_id(shared: &Shared, host: &str) -> Option<DeployId> {
        match shared.table.load().route(Some(host)) {
            Route::Live(d, _) => Some(d.id.clone()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn one_site_reload_takes_the_epoch_only_when_nothing_else_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let store = Store::open(&data).unwrap();
        let a1 = site(&store, tmp.path(), "a", "a one");
        store.activate("a", &a1).unwrap();
        let cfg = EdgeConfig {
            data_dir: data.clone(),
            ..EdgeConfig::default()
        };
        let table = RoutingTable::load(&store, &cfg, None).unwrap();
        let shared = Arc::new(Shared::new(
            cfg,
            store.clone(),
            table,
            Metrics::default(),
            None,
        ));
        assert_eq!(live_id(&shared, "a.test"), Some(a1));

        // Only this server's activation moved the epoch: the table takes it.
        let a2 = site(&store, tmp.path(), "a", "a two");
        let before = shared.table.load().epoch;
        let epochs = store.activate_epoch("a", &a2).unwrap();
        assert_ne!(epochs.0, before, "put_site moved the epoch first");
        // put_site bumped the epoch too, so this reload must not claim it.
        shared.reload_site("a", epochs).await.unwrap();
        assert_eq!(live_id(&shared, "a.test"), Some(a2.clone()));
        assert_eq!(shared.table.load().epoch, before);

        // After a full reload, a lone activation hands its epoch to the table.
        shared.reload(None).await.unwrap();
        let a3 = site(&store, tmp.path(), "a", "a three");
        shared.reload(None).await.unwrap();
        let epochs = store.activate_epoch("a", &a3).unwrap();
        shared.reload_site("a", epochs).await.unwrap();
        assert_eq!(live_id(&shared, "a.test"), Some(a3));
        assert_eq!(shared.table.load().epoch, epochs.1);

        // Another process adds site b, then this server activates a: b is not in the
        // table yet and the epoch stays behind the store's, so the poller reloads all.
        let b1 = site(&store, tmp.path(), "b", "b one");
        store.activate("b", &b1).unwrap();
        let a4 = site(&store, tmp.path(), "a", "a four");
        let before = shared.table.load().epoch;
        let epochs = store.activate_epoch("a", &a4).unwrap();
        shared.reload_site("a", epochs).await.unwrap();
        assert_eq!(live_id(&shared, "a.test"), Some(a4));
        assert_eq!(live_id(&shared, "b.test"), None);
        assert_eq!(shared.table.load().epoch, before);
        assert_ne!(shared.table.load().epoch, store.epoch());
        shared.reload(None).await.unwrap();
        assert_eq!(live_id(&shared, "b.test"), Some(b1));
    }
}
