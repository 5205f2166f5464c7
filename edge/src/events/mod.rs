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
use http::{Request, Version};

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

/// Bytes copied out of a request: inline up to `N`, on the heap beyond (rare).
/// Copies, not references: a header value from hyper shares the connection's read
/// buffer, and holding it until the batcher runs would stop hyper from reusing that
/// buffer (a fresh allocation per request, and megabytes pinned by the queue).
pub(crate) enum Small<const N: usize> {
    Inline(u8, [u8; N]),
    Heap(Box<[u8]>),
}

impl<const N: usize> Small<N> {
    pub(crate) const EMPTY: Small<N> = Small::Inline(0, [0; N]);

    pub(crate) fn new(b: &[u8]) -> Small<N> {
        if b.len() <= N && N <= 255 {
            let mut buf = [0u8; N];
            buf[..b.len()].copy_from_slice(b);
            Small::Inline(b.len() as u8, buf)
        } else {
            Small::Heap(b[..b.len().min(MAX_COPY)].into())
        }
    }

    fn of(v: Option<&HeaderValue>) -> Small<N> {
        v.map_or(Self::EMPTY, |v| Self::new(v.as_bytes()))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Small::Inline(n, b) => &b[..usize::from(*n)],
            Small::Heap(b) => b,
        }
    }
}

/// Longest value copied from a request (longer ones are cut).
const MAX_COPY: usize = 1024;

/// What the request path hands to the batcher: small copies of request values and
/// reference-counted response values, nothing formatted.
pub(crate) struct RawEvent {
    pub start: Instant,
    pub duration: Duration,
    pub site: Option<Arc<str>>,
    pub path: Small<96>,
    pub host: Small<48>,
    pub status: u16,
    pub bytes: u64,
    pub version: Version,
    pub tls: Option<TlsVersion>,
    pub cache: CacheUse,
    pub content_type: Option<HeaderValue>,
    /// Only the referrer's host is kept.
    pub referer: Small<48>,
    pub user_agent: Small<160>,
    /// The socket's peer; never leaves memory (hashed by the batcher).
    pub peer: IpAddr,
    /// `X-Forwarded-For` and `Forwarded`, only when trusted proxies are configured.
    pub forwarded_for: Option<Box<[u8]>>,
    pub forwarded: Option<Box<[u8]>>,
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
    pub(crate) fn emit<B>(&self, req: &Request<B>, conn: &ConnInfo, served: Served) {
        let h = req.headers();
        let (forwarded_for, forwarded) = if self.forwarded {
            let copy = |n: &HeaderName| h.get(n).map(|v| v.as_bytes().into());
            (copy(&X_FORWARDED_FOR), copy(&header::FORWARDED))
        } else {
            (None, None)
        };
        let host = match req.uri().authority() {
            Some(a) => Small::new(a.as_str().as_bytes()),
            None => Small::of(h.get(header::HOST)),
        };
        let referer = h.get(header::REFERER).map_or(Small::EMPTY, |r| {
            Small::new(derive::referrer_host(r.as_bytes()))
        });
        let ev = RawEvent {
            start: served.start,
            duration: served.duration,
            site: served.site,
            path: Small::new(req.uri().path().as_bytes()),
            host,
            status: served.status,
            bytes: served.bytes,
            version: req.version(),
            tls: conn.tls,
            cache: served.cache,
            content_type: served.content_type,
            referer,
            user_agent: Small::of(h.get(header::USER_AGENT)),
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
