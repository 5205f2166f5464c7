//! Access events: one compact record per request served, for the analytics pipeline
//! (schema in docs/events.md).
//!
//! The request path only fills a [`RawEvent`] — reference-counted clones and header
//! values moved out of the finished request, no formatting, no allocation, no system
//! call — and `try_send`s it into a bounded queue; a full queue drops the event and
//! counts it, so a request never waits. One OS thread (`qpage-events`) owns the rest:
//! the batcher ([`batcher`]) takes the queue every `flush_interval_ms`, derives what
//! the request path skipped (client address behind trusted proxies, visitor hash,
//! user-agent class, referrer host; [`derive`]), encodes NDJSON into one buffer
//! ([`encode`]) and hands each batch to every sink's queue ([`queue`]), which spools
//! to disk while its sink is down or slow and replays in order. Sinks: [`file`],
//! [`nats`], [`clickhouse`].

mod batcher;
mod clickhouse;
mod config;
mod derive;
mod encode;
mod file;
mod nats;
mod queue;
mod visitor;

use std::cell::Cell;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Uri, Version};

pub use config::{ClickHouseSinkConfig, EventsConfig, FileSinkConfig, NatsSinkConfig};

use crate::conn::{ConnInfo, TlsVersion};
use crate::metrics::EventCounters;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The schema version written in every event's `v` field.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Whether a response body came from the in-memory blob cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheUse {
    /// No stored body was needed (redirects, 304, HEAD, errors).
    None,
    /// Served from memory.
    Hit,
    /// Read from disk.
    Miss,
}

tokio::task_local! {
    static CACHE_USE: Cell<CacheUse>;
}

/// Records how the current request's body was found (no-op outside [`track_cache`]).
pub(crate) fn note_cache(c: CacheUse) {
    let _ = CACHE_USE.try_with(|x| x.set(c));
}

/// Runs a request's handler and reports what it noted with [`note_cache`].
pub(crate) async fn track_cache<F: Future>(f: F) -> (F::Output, CacheUse) {
    CACHE_USE
        .scope(Cell::new(CacheUse::None), async {
            let out = f.await;
            (out, CACHE_USE.with(Cell::get))
        })
        .await
}

/// What the request path hands to the batcher: moved or reference-counted parts of
/// the request and response, nothing formatted.
pub(crate) struct RawEvent {
    pub start: Instant,
    pub duration: Duration,
    pub site: Option<Arc<str>>,
    pub uri: Uri,
    pub host: Option<HeaderValue>,
    pub status: u16,
    pub bytes: u64,
    pub version: Version,
    pub tls: Option<TlsVersion>,
    pub cache: CacheUse,
    pub content_type: Option<HeaderValue>,
    pub referer: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    /// The socket's peer; never leaves memory (hashed by the batcher).
    pub peer: IpAddr,
    pub forwarded_for: Option<HeaderValue>,
    pub forwarded: Option<HeaderValue>,
}

/// What [`Events::emit`] needs from a finished request.
pub(crate) struct Served {
    pub start: Instant,
    pub duration: Duration,
    pub site: Option<Arc<str>>,
    pub status: u16,
    pub bytes: u64,
    pub cache: CacheUse,
    pub content_type: Option<HeaderValue>,
}

/// The request side of the pipeline: the queue's sending end.
pub(crate) struct Events {
    tx: SyncSender<RawEvent>,
    /// Keep the forwarding headers (only when trusted proxies are configured).
    forwarded: bool,
    counters: Arc<EventCounters>,
    worker: std::sync::Mutex<Option<batcher::Worker>>,
}

impl Events {
    /// Starts the events thread, or `None` when events are disabled.
    pub(crate) fn start(
        cfg: &EventsConfig,
        data_dir: &Path,
        counters: Arc<EventCounters>,
    ) -> std::io::Result<Option<Events>> {
        if !cfg.enabled {
            return Ok(None);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(cfg.queue_capacity);
        let dir = cfg.dir.clone().unwrap_or_else(|| data_dir.join("events"));
        let worker = batcher::Worker::spawn(cfg, &dir, counters.clone(), rx)?;
        Ok(Some(Events {
            tx,
            forwarded: !cfg.trusted_proxies.is_empty(),
            counters,
            worker: std::sync::Mutex::new(Some(worker)),
        }))
    }

    /// Queues the event of a finished request; never waits.
    pub(crate) fn emit<B>(&self, req: Request<B>, conn: &ConnInfo, served: Served) {
        let (mut parts, _body) = req.into_parts();
        let h = &mut parts.headers;
        let (forwarded_for, forwarded) = if self.forwarded {
            (h.remove(X_FORWARDED_FOR), h.remove(header::FORWARDED))
        } else {
            (None, None)
        };
        let ev = RawEvent {
            start: served.start,
            duration: served.duration,
            site: served.site,
            host: if parts.uri.authority().is_some() {
                None
            } else {
                h.remove(header::HOST)
            },
            uri: parts.uri,
            status: served.status,
            bytes: served.bytes,
            version: parts.version,
            tls: conn.tls,
            cache: served.cache,
            content_type: served.content_type,
            referer: h.remove(header::REFERER),
            user_agent: h.remove(header::USER_AGENT),
            peer: conn.peer.ip(),
            forwarded_for,
            forwarded,
        };
        match self.tx.try_send(ev) {
            Ok(()) => self.counters.emitted(),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.queue_dropped()
            }
        }
    }

    /// Delivers what is queued (or spools it), then stops the events thread.
    pub(crate) async fn shutdown(&self) {
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = worker {
            let _ = tokio::task::spawn_blocking(move || w.stop()).await;
        }
    }
}
