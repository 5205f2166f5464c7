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

    /// Records the event of a finished request; never waits.
    pub(crate) fn emit<B>(&self, req: &Request<B>, conn: &ConnInfo, served: Served<'_>) {
        let (mut host, mut referer, mut ua): (&[u8], &[u8], &[u8]) = (b"", b"", b"");
        let (mut xff, mut fwd): (&[u8], &[u8]) = (b"", b"");
        // One pass over the headers costs less than a hashed lookup per name.
        for (name, value) in req.headers() {
            if name == header::USER_AGENT {
                ua = value.as_bytes();
            } else if name == header::REFERER {
                referer = value.as_bytes();
            } else if name == header::HOST {
                host = value.as_bytes();
            } else if self.forwarded {
                if name == X_FORWARDED_FOR {
                    xff = value.as_bytes();
                } else if name == header::FORWARDED {
                    fwd = value.as_bytes();
                }
            }
        }
        if let Some(a) = req.uri().authority() {
            host = a.as_str().as_bytes();
        }
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
