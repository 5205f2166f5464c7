//! Access events: one compact record per request served, for the analytics pipeline
//! (schema in docs/events.md).
//!
//! The request path only copies a few values into its thread's ring ([`record`]) —
//! no formatting, no allocation, no lock, no channel, no system call; a full ring drops
//! the event and counts it, so a request never waits. One OS thread (`qpage-events`)
//! owns the rest: the batcher ([`batcher`]) reads the rings every `flush_interval_ms`,
//! derives what the request path skipped (client address behind trusted proxies,
//! visitor hash, user-agent class, referrer host; [`derive`], [`visitor`]), encodes
//! NDJSON into one buffer ([`encode`]) and hands each batch to every sink's queue
//! ([`queue`]), which spools to disk while its sink is down or slow and replays in
//! order. Sinks: [`file`] (through [`direct`]), [`nats`], [`clickhouse`].

mod batcher;
mod clickhouse;
mod config;
mod derive;
mod direct;
mod encode;
mod file;
mod nats;
mod queue;
mod record;
mod visitor;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use http::{Request, Version};

pub use config::{ClickHouseSinkConfig, EventsConfig, FileSinkConfig, NatsSinkConfig};

use crate::conn::{ConnInfo, TlsVersion};
use crate::metrics::EventCounters;

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The schema version written in every event's `v` field.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Whether a response body came from the in-memory blob cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheUse {
    /// No stored body was needed (redirects, 304, HEAD, errors).
    None = 0,
    /// Served from memory.
    Hit = 1,
    /// Read from disk.
    Miss = 2,
}

/// What [`Events::emit`] needs from a finished request.
pub(crate) struct Served<'a> {
    pub start: Instant,
    pub duration: Duration,
    pub site: Option<Arc<str>>,
    pub status: u16,
    pub bytes: u64,
    pub cache: CacheUse,
    pub content_type: Option<&'a HeaderValue>,
}

/// The request headers an event keeps (the first value of each), found by the
/// handler's one pass over the request's headers.
#[derive(Default, Clone, Copy)]
pub(crate) struct EventHeaders<'a> {
    pub host: Option<&'a HeaderValue>,
    pub user_agent: Option<&'a HeaderValue>,
    pub referer: Option<&'a HeaderValue>,
    /// Only looked for when [`Events::keeps_forwarded`].
    pub forwarded_for: Option<&'a HeaderValue>,
    pub forwarded: Option<&'a HeaderValue>,
}

/// A header's value, or no bytes.
fn bytes(v: Option<&HeaderValue>) -> &[u8] {
    v.map_or(&b""[..], HeaderValue::as_bytes)
}

/// The request side of the pipeline.
pub(crate) struct Events {
    buffers: Arc<record::Buffers>,
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
        let buffers = Arc::new(record::Buffers::new(cfg.queue_max_bytes));
        let dir = cfg.dir.clone().unwrap_or_else(|| data_dir.join("events"));
        let worker = batcher::Worker::spawn(cfg, &dir, counters.clone(), buffers.clone())?;
        Ok(Some(Events {
            buffers,
            forwarded: !cfg.trusted_proxies.is_empty(),
            counters,
            worker: std::sync::Mutex::new(Some(worker)),
        }))
    }

    /// Whether events keep the forwarding headers (trusted proxies are configured).
    pub(crate) fn keeps_forwarded(&self) -> bool {
        self.forwarded
    }

    /// Records the event of a finished request; never waits.
    pub(crate) fn emit<B>(
        &self,
        req: &Request<B>,
        conn: &ConnInfo,
        headers: &EventHeaders<'_>,
        served: Served<'_>,
    ) {
        let host = match req.uri().authority() {
            Some(a) => a.as_str().as_bytes(),
            None => bytes(headers.host),
        };
        let (referer, ua) = (bytes(headers.referer), bytes(headers.user_agent));
        // Empty unless [`Events::keeps_forwarded`] (the handler's scan looks for them then).
        let (xff, fwd) = (bytes(headers.forwarded_for), bytes(headers.forwarded));
        let site = served.site.as_deref().unwrap_or("").as_bytes();
        let ctype = served.content_type.map(|v| v.as_bytes()).unwrap_or(b"");
        let rec = record::Record {
            start: served.start,
            dur_us: served.duration.as_secs() * 1_000_000
                + u64::from(served.duration.subsec_micros()),
            status: served.status,
            bytes: served.bytes,
            version: match req.version() {
                Version::HTTP_09 => 0,
                Version::HTTP_10 => 1,
                Version::HTTP_11 => 2,
                Version::HTTP_2 => 3,
                Version::HTTP_3 => 4,
                _ => 5,
            },
            tls: match conn.tls {
                None => 0,
                Some(TlsVersion::Tls12) => 1,
                Some(TlsVersion::Tls13) => 2,
            },
            cache: served.cache as u8,
            peer: conn.peer.ip(),
            fields: [
                site,
                host,
                req.uri().path().as_bytes(),
                ctype,
                referer,
                ua,
                xff,
                fwd,
            ],
        };
        if !self.buffers.push(&rec) {
            self.counters.queue_dropped();
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
