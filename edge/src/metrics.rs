//! Counters for the admin listener's Prometheus `/metrics`: requests by status class and
//! site class, bytes, cache hits and misses, a latency histogram, connections, and the
//! access-event pipeline (emitted, delivered/spooled/dropped per sink, sink errors).

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::routing::SiteClass;

const CLASSES: [SiteClass; 4] = [
    SiteClass::Site,
    SiteClass::Preview,
    SiteClass::Default,
    SiteClass::Unknown,
];
/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// The node's counters. Cheap to update from any thread.
#[derive(Default)]
pub struct Metrics {
    requests: [[AtomicU64; 5]; 4],
    bytes: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_ns: AtomicU64,
    open_connections: AtomicI64,
    rejected_connections: AtomicU64,
    timeouts: AtomicU64,
    pub(crate) events: Arc<EventCounters>,
}

/// Index of the file sink in [`EventCounts::sinks`].
pub const SINK_FILE: usize = 0;
/// Index of the NATS sink in [`EventCounts::sinks`].
pub const SINK_NATS: usize = 1;
/// Index of the ClickHouse sink in [`EventCounts::sinks`].
pub const SINK_CLICKHOUSE: usize = 2;
const SINK_NAMES: [&str; 3] = ["file", "nats", "clickhouse"];

/// Counters of the access-event pipeline, shared with the events thread.
#[derive(Default)]
pub(crate) struct EventCounters {
    emitted: AtomicU64,
    queue_dropped: AtomicU64,
    delivered: [AtomicU64; 3],
    spooled: [AtomicU64; 3],
    dropped: [AtomicU64; 3],
    errors: [AtomicU64; 3],
}

impl EventCounters {
    pub(crate) fn emitted_n(&self, n: u64) {
        self.emitted.fetch_add(n, Relaxed);
    }
    pub(crate) fn queue_dropped(&self) {
        self.queue_dropped.fetch_add(1, Relaxed);
    }
    pub(crate) fn delivered(&self, sink: usize, n: u64) {
        self.delivered[sink].fetch_add(n, Relaxed);
    }
    pub(crate) fn spooled(&self, sink: usize, n: u64) {
        self.spooled[sink].fetch_add(n, Relaxed);
    }
    pub(crate) fn dropped(&self, sink: usize, n: u64) {
        self.dropped[sink].fetch_add(n, Relaxed);
    }
    pub(crate) fn sink_error(&self, sink: usize) {
        self.errors[sink].fetch_add(1, Relaxed);
    }
}

/// A snapshot of the access-event counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Events recorded by requests (counted when the batcher takes them).
    pub emitted: u64,
    /// Events dropped because the queue was full.
    pub queue_dropped: u64,
    /// Per sink ([`SINK_FILE`], [`SINK_NATS`], [`SINK_CLICKHOUSE`]).
    pub sinks: [SinkCounts; 3],
}

/// One sink's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Events the sink accepted (written, acknowledged, inserted).
    pub delivered: u64,
    /// Events written to the sink's spool.
    pub spooled: u64,
    /// Events dropped because the spool was full (or unwritable).
    pub dropped: u64,
    /// Failed deliveries (each retried).
    pub errors: u64,
}

impl Metrics {
    pub(crate) fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Relaxed);
    }

    pub(crate) fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Relaxed);
    }

    /// Cache hits so far.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Relaxed)
    }

    /// Cache misses so far.
    pub fn cache_misses(&self) -> u64 {
        self.cache_misses.load(Relaxed)
    }

    pub(crate) fn request(&self, class: SiteClass, status: u16, bytes: u64, took: Duration) {
        let ci = CLASSES.iter().position(|c| *c == class).unwrap_or(3);
        let si = usize::from((status / 100).clamp(1, 5) - 1);
        self.requests[ci][si].fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        let secs = took.as_secs_f64();
        let bi = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.latency[bi].fetch_add(1, Relaxed);
        self.latency_sum_ns
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    pub(crate) fn conn_opened(&self) {
        self.open_connections.fetch_add(1, Relaxed);
    }

    pub(crate) fn conn_closed(&self) {
        self.open_connections.fetch_sub(1, Relaxed);
    }

    pub(crate) fn conn_rejected(&self) {
        self.rejected_connections.fetch_add(1, Relaxed);
    }

    pub(crate) fn timeout(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }

    /// The access-event counters.
    pub fn events(&self) -> EventCounts {
        let e = &self.events;
        let mut sinks = [SinkCounts::default(); 3];
        for (i, s) in sinks.iter_mut().enumerate() {
            *s = SinkCounts {
                delivered: e.delivered[i].load(Relaxed),
                spooled: e.spooled[i].load(Relaxed),
                dropped: e.dropped[i].load(Relaxed),
                errors: e.errors[i].load(Relaxed),
            };
        }
        EventCounts {
            emitted: e.emitted.load(Relaxed),
            queue_dropped: e.queue_dropped.load(Relaxed),
            sinks,
        }
    }

    /// Currently open client connections.
    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Relaxed)
    }

    /// Renders the Prometheus text format; `extra` lines are appended (gauges owned elsewhere).
    pub(crate) fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut s = String::with_capacity(4096);
        s.push_str("# HELP qpage_requests_total Requests answered, by status class and site class.\n# TYPE qpage_requests_total counter\n");
        for (ci, class) in CLASSES.iter().enumerate() {
            for si in 0..5 {
                let _ = writeln!(
                    s,
                    "qpage_requests_total{{site_class=\"{}\",status=\"{}xx\"}} {}",
                    class.as_str(),
                    si + 1,
                    self.requests[ci][si].load(Relaxed)
                );
            }
        }
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            &mut s,
            "qpage_response_body_bytes_total",
            "Body bytes sent.",
            self.bytes.load(Relaxed),
        );
        counter(
            &mut s,
            "qpage_cache_hits_total",
            "Blob cache hits.",
            self.cache_hits(),
        );
        counter(
            &mut s,
            "qpage_cache_misses_total",
            "Blob cache misses.",
            self.cache_misses(),
        );
        counter(
            &mut s,
            "qpage_connections_rejected_total",
            "Connections refused with 503 (over the total or per-IP cap).",
            self.rejected_connections.load(Relaxed),
        );
        counter(
            &mut s,
            "qpage_timeouts_total",
            "Requests or writes that timed out.",
            self.timeouts.load(Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP qpage_open_connections Open client connections.\n# TYPE qpage_open_connections gauge\nqpage_open_connections {}",
            self.open_connections()
        );
        s.push_str("# HELP qpage_request_duration_seconds Time to build a response.\n# TYPE qpage_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.latency[i].load(Relaxed);
            let _ = writeln!(
                s,
                "qpage_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        cumulative += self.latency[BUCKETS.len()].load(Relaxed);
        let _ = writeln!(
            s,
            "qpage_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            s,
            "qpage_request_duration_seconds_sum {}",
            self.latency_sum_ns.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(s, "qpage_request_duration_seconds_count {cumulative}");
        let ev = self.events();
        counter(
            &mut s,
            "qpage_events_emitted_total",
            "Access events recorded by requests (counted when the batcher takes them).",
            ev.emitted,
        );
        s.push_str("# HELP qpage_events_dropped_total Access events dropped: queue full (sink=\"queue\") or a sink's spool full.\n# TYPE qpage_events_dropped_total counter\n");
        let _ = writeln!(
            s,
            "qpage_events_dropped_total{{sink=\"queue\"}} {}",
            ev.queue_dropped
        );
        for (i, name) in SINK_NAMES.iter().enumerate() {
            let _ = writeln!(
                s,
                "qpage_events_dropped_total{{sink=\"{name}\"}} {}",
                ev.sinks[i].dropped
            );
        }
        let per_sink =
            |s: &mut String, metric: &str, help: &str, f: &dyn Fn(&SinkCounts) -> u64| {
                let _ = writeln!(s, "# HELP {metric} {help}\n# TYPE {metric} counter");
                for (i, name) in SINK_NAMES.iter().enumerate() {
                    let _ = writeln!(s, "{metric}{{sink=\"{name}\"}} {}", f(&ev.sinks[i]));
                }
            };
        per_sink(
            &mut s,
            "qpage_events_delivered_total",
            "Access events accepted by a sink.",
            &|c| c.delivered,
        );
        per_sink(
            &mut s,
            "qpage_events_spooled_total",
            "Access events spooled to disk while a sink was down or slow.",
            &|c| c.spooled,
        );
        per_sink(
            &mut s,
            "qpage_events_sink_errors_total",
            "Failed deliveries to a sink (each retried).",
            &|c| c.errors,
        );
        for (name, help, v) in extra {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        s
    }
}
